"""``ntkbench merge RUN_DIR... --out DIR``: the runs of several machines as one run directory."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="merge run directories into one",
                       description="Copy the records of several run directories into one, "
                       "matched by trial hash. Duplicates whose numbers agree are kept once; "
                       "conflicting numbers for the same hash are listed (the first input's "
                       "record is kept) and make the exit code 1.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="run directories, in order of precedence")
    p.add_argument("--out", required=True, metavar="DIR", help="the merged run directory")
    p.add_argument("--rtol", type=float, default=1e-6,
                   help="relative difference up to which two records of one hash agree "
                   "(default 1e-6; float32 runs on different CPUs can differ by more)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from ntkbench.reuse import merge_runs
    from ntkbench.runner import write_manifest
    from ntkbench.store import RunStore

    if not args.rtol >= 0:
        raise ValueError(f"--rtol must be >= 0, got {args.rtol}")
    report = merge_runs(args.run_dirs, args.out, rtol=args.rtol)
    write_manifest(RunStore(args.out), None, report.written, ["ntkbench", *argv])
    taken = ", ".join(f"{n} from {d}" for d, n in report.per_input.items())
    print(f"merged {report.written} trial(s) into {args.out} ({taken}); "
          f"{report.duplicates} duplicate hash(es), {len(report.conflicts)} conflicting",
          file=sys.stderr)
    for trial_hash, (kept, other), diffs in report.conflicts:
        shown = "; ".join(map(str, diffs[:3]))
        more = f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else ""
        print(f"conflict {trial_hash}: kept {kept}, differs in {other}: {shown}{more}",
              file=sys.stderr)
    return 1 if report.conflicts else 0
