"""Where spec files are found: the default suite, and the folders task names are looked up in."""

from __future__ import annotations

from pathlib import Path

import ntkbench


def task_search_dirs(suite_path: str | Path) -> list[Path]:
    """Where task names are looked up: ``tasks/`` beside the suite, then the built-in tasks."""
    dirs = [Path(suite_path).parent / "tasks"]
    builtin = _builtin("tasks")
    if builtin is not None and builtin.resolve() != dirs[0].resolve():
        dirs.append(builtin)
    return dirs


def find_task_file(name: str, dirs: list[Path]) -> Path | None:
    """``<dir>/<name>.yaml`` in the first of ``dirs`` that has it (``None``: none has)."""
    for d in dirs:
        path = d / f"{name}.yaml"
        if path.is_file():
            return path
    return None


def default_suite_path() -> Path:
    """``./benchmarks.yaml`` if present, else the suite shipped with ntkbench."""
    local = Path("benchmarks.yaml")
    if local.is_file():
        return local
    return _builtin("benchmarks.yaml") or Path(ntkbench.__file__).parent.parent / local


def suite_path(arg: str | None) -> Path:
    """The suite file a command line names: a path, or the name of a built-in suite
    (``full`` → ``suites/full.yaml`` shipped with ntkbench) when no such file exists; no
    argument means :func:`default_suite_path`."""
    if not arg:
        return default_suite_path()
    path = Path(arg)
    if path.is_file() or path.suffix or "/" in arg:
        return path
    return _builtin(f"suites/{arg}.yaml") or path


def builtin_suites() -> list[Path]:
    """The suite files shipped with ntkbench (``suites/*.yaml``), by name."""
    folder = _builtin("suites")
    return sorted(folder.glob("*.yaml")) if folder is not None else []


def _builtin(name: str) -> Path | None:
    pkg = Path(ntkbench.__file__).parent
    for candidate in (pkg / "_builtin" / name, pkg.parent / name):  # wheel, then source checkout
        if candidate.exists():
            return candidate
    return None
