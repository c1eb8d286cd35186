"""``ntkbench leaderboard RUN_DIR``: publishable tables from a run's results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# render.FORMATS, spelled out: importing ntkbench.report (pandas) would add ~1 s to every
# `ntkbench` command; tests/cli/test_cmd_leaderboard.py checks that the two agree.
FORMATS = ("md", "html", "latex", "csv", "text")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="tables from a run directory",
                       description="Rank initializers per task by the task's primary metric "
                       "(mean and 95% bootstrap CI over seeds, top group by paired Wilcoxon "
                       "tests) and write a table in the chosen format.")
    p.add_argument("run_dir", help="a run directory written by `ntkbench run`")
    p.add_argument("--format", choices=FORMATS, default="md")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--discrimination", action="store_true",
                   help="instead of the leaderboard, check per task whether the suite tells "
                        "initializers apart (best-worst gap vs twice the largest seed std, "
                        "training reaching 10%% of its initial loss); md, csv or text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from ntkbench.report import render
    from ntkbench.store import damaged_note, load_results

    df = load_results(args.run_dir)
    if note := damaged_note(df.attrs.get("damaged")):
        print(note, file=sys.stderr)
    if args.discrimination:
        from ntkbench.report import leaderboard
        from ntkbench.report.discrimination import discrimination, render_discrimination

        text = render_discrimination(discrimination(leaderboard(df)), args.format)
    else:
        text = render(df, args.format)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text if text.endswith("\n") else text + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
