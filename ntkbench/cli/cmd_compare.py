"""``ntkbench compare RUN_DIR BASELINE_DIR``: per cell, better or worse than the baseline; exit
code 1 on a significant regression or a determinism drift (a CI gate)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare a run with a baseline, cell by cell",
                       description="Per cell (task, initializer, sweep, backend) the paired "
                       "difference run - baseline of the test metric over the seeds both have, "
                       "with its 95%% bootstrap CI, and whether it improved or regressed; "
                       "trials with the same hash on the same CPU, threads and versions are "
                       "checked for equal numbers. Exit code 1 when a cell regressed or a "
                       "deterministic trial drifted, 0 otherwise.")
    p.add_argument("run_dir", help="the run directory to judge")
    p.add_argument("baseline_dir", help="the run directory or baseline to compare against "
                   "(e.g. baselines/default-cpu)")
    p.add_argument("--tolerance", type=float, default=0.01, metavar="REL",
                   help="smallest change of a cell's mean, relative to the baseline's, that "
                   "counts as improved or regressed (default 0.01); the CI must exclude zero "
                   "too")
    p.add_argument("--rtol", type=float, default=1e-6,
                   help="relative difference beyond which a same-hash deterministic trial has "
                   "drifted (default 1e-6)")
    p.add_argument("--changed-only", action="store_true",
                   help="list only the cells that improved or regressed (the summary line "
                   "still counts every verdict)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from ntkbench.report.compare import compare_runs, render_comparison
    from ntkbench.store import json_safe

    for name in ("tolerance", "rtol"):
        if not getattr(args, name) >= 0:
            raise ValueError(f"--{name} must be >= 0, got {getattr(args, name)}")
    result = compare_runs(args.run_dir, args.baseline_dir, rtol=args.rtol,
                          tolerance=args.tolerance)
    if args.json:
        print(json.dumps(json_safe({
            "cells": [asdict(c) for c in result.cells],
            "counts": dict(result.counts), "determinism_checked": result.checked,
            "determinism_not_checked": dict(result.not_checked),
            "drifts": [{"trial_hash": d.trial_hash, "trial": d.summary,
                        "differences": [str(x) for x in d.differences]}
                       for d in result.drifts],
            "failed": result.failed}), indent=1))
    else:
        print(render_comparison(result, show_all=not args.changed_only))
    return 1 if result.failed else 0
