import functools
import subprocess
from pathlib import Path

__version__ = "0.4.0"


@functools.lru_cache(maxsize=1)
def source_commit() -> str | None:
    """The git commit of the ntkbench source in use (``abc1234…``, with ``+dirty`` when the
    package has uncommitted changes), or ``None`` when it is not a git checkout of ntkbench
    (e.g. a wheel install). Recorded with every trial, so a published number can be traced to
    the code that produced it."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != here.parent:
            return None  # ntkbench sits inside some other repository: not its own commit
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", str(here))
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")
