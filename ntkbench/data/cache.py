"""Where downloaded data sets live, what they consist of, and the errors for missing or broken
files.

Data sets that do not ship inside a package (full MNIST, CIFAR-10) are files in a cache
directory: ``$NTKBENCH_DATA`` if set, else the user cache directory (``~/.cache/ntkbench`` on
Linux, ``~/Library/Caches/ntkbench`` on macOS, ``%LOCALAPPDATA%\\ntkbench\\Cache`` on Windows),
one sub-directory per data set. ``ntkbench data download NAME`` fetches them (verifying
SHA-256); ``ntkbench run`` never downloads: a loader whose files are missing raises
:class:`MissingDataError`, which names the command that fetches them.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "NTKBENCH_DATA"


def data_dir() -> Path:
    """The cache root: ``$NTKBENCH_DATA``, else the platform's user cache directory."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / "ntkbench" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "ntkbench"
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "ntkbench"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a downloadable data set: its name in the cache, where to fetch it, and its
    SHA-256 and size in bytes (the download is checked against both)."""

    name: str
    url: str
    sha256: str
    size: int


@dataclass(frozen=True)
class RemoteDataset:
    """A downloadable data set: its files, kept in ``<cache root>/<name>/``."""

    name: str
    description: str
    files: tuple[RemoteFile, ...]
    source: str  # human-readable provenance (paper / web page)

    def directory(self, root: Path | None = None) -> Path:
        return (root if root is not None else data_dir()) / self.name

    def paths(self, root: Path | None = None) -> dict[str, Path]:
        """File name → path in the cache (whether or not the file exists)."""
        d = self.directory(root)
        return {f.name: d / f.name for f in self.files}

    def missing(self, root: Path | None = None) -> list[Path]:
        """The files not in the cache."""
        return [p for p in self.paths(root).values() if not p.is_file()]

    def require(self, root: Path | None = None) -> dict[str, Path]:
        """:meth:`paths`, or :class:`MissingDataError` when any file is absent."""
        missing = self.missing(root)
        if missing:
            raise MissingDataError(self.name, missing, root)
        return self.paths(root)


#: Every data set ``ntkbench data download`` knows, by name (filled by the loader modules).
REMOTE: dict[str, RemoteDataset] = {}


def register_remote(dataset: RemoteDataset) -> RemoteDataset:
    REMOTE[dataset.name] = dataset
    return dataset


class MissingDataError(FileNotFoundError):
    """A data set's files are not in the cache; the message says how to fetch them."""

    def __init__(self, name: str, missing: list[Path], root: Path | None = None) -> None:
        self.dataset = name
        self.missing = list(missing)
        where = f" --dir {root}" if root is not None and root != data_dir() else ""
        self.command = f"ntkbench data download {name}{where}"
        shown = ", ".join(str(p) for p in self.missing[:3])
        more = f" and {len(self.missing) - 3} more" if len(self.missing) > 3 else ""
        super().__init__(f"data set {name!r} is not downloaded (missing {shown}{more}); "
                         f"fetch it with: {self.command}")


class CorruptDataError(ValueError):
    """A data file exists but is truncated, corrupt or in the wrong format."""

    def __init__(self, path: Path | str, expected: str) -> None:
        self.path = Path(path)
        super().__init__(f"{path}: {expected}")


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
