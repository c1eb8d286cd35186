"""``ntkbench report RUN_DIR [RUN_DIR ...] --out SITE_DIR``: a static results site."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="a static results site (tables, figures, per-trial records)",
        description="Build a static HTML site from one or more run directories: an index with "
        "provenance and the across-task summary, one page per task with its leaderboard, "
        "figures (SVG, and PDF for papers) and trials. It opens from file:// and needs no "
        "network.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="run directories written by `ntkbench run`")
    p.add_argument("--out", metavar="SITE_DIR", default=None,
                   help="where to write the site (default: RUN_DIR/site of the first run)")
    p.add_argument("--no-progress", action="store_true", help="do not list figures as drawn")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from pathlib import Path

    from ntkbench.report.site import build_site

    out = Path(args.out) if args.out else Path(args.run_dirs[0]) / "site"

    def progress(name: str) -> None:
        print(f"  figure {name}", file=sys.stderr, flush=True)

    index = build_site(args.run_dirs, out, progress=None if args.no_progress else progress)
    print(f"report: {index}  (open it in a browser: file://{index.resolve()})")
    return 0
