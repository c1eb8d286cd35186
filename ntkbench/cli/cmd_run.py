"""``ntkbench run [SUITE]``: train every trial of a suite and print its leaderboard."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a suite (default: benchmarks.yaml)",
                       description="Run every trial of a suite, skipping those already "
                       "recorded in the output directory, and print the leaderboard.")
    p.add_argument("suite", nargs="?", help="suite YAML file, or the name of a built-in suite "
                   "('full', 'receptive_fields', ...; ntkbench list suites) (default: "
                   "./benchmarks.yaml, else the built-in default suite)")
    p.add_argument("--variant", metavar="NAME",
                   help="run the suite's variant NAME (its 'variants:' field, e.g. 'full' for "
                   "the paper-sized version); results go to results/<suite>-<NAME>")
    p.add_argument("--out", metavar="DIR",
                   help="run directory (default: results/<suite name>)")
    p.add_argument("-j", "--jobs", type=int, default=None,
                   help="worker processes (default: number of CPUs)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the trials on the Dask cluster whose scheduler is at ADDRESS "
                   "(e.g. tcp://head-node:8786); records are written here, workers need no "
                   "shared file system (pip install \"ntkbench[dask]\")")
    p.add_argument("--cluster", metavar="local:N",
                   help="run the trials on a Dask LocalCluster of N worker processes on this "
                   "machine (pip install \"ntkbench[dask]\")")
    p.add_argument("--dry-run", action="store_true", help="list the grid and exit")
    p.add_argument("--only", action="append", default=[], metavar="KEY=VALUE[,VALUE]",
                   help="run only matching trials, e.g. --only initializer=he_normal "
                   "--only model.width=256 (repeatable; all must match)")
    p.add_argument("--backend", action="append", metavar="NAME",
                   help="override the suite's backends (repeatable)")
    p.add_argument("--device", help="override the suite's device: auto, cpu or cuda")
    p.add_argument("--add-initializer", action="append", default=[], metavar="INIT",
                   help="add an initializer to the suite's: a registered NAME, "
                   "path/file.py:function, module:function, or NAME=SOURCE (repeatable); "
                   "with --reuse, only its trials are trained")
    p.add_argument("--reuse", action="append", default=[], metavar="DIR",
                   help="take trials already recorded (same hash, status ok, same device "
                   "kind) from the run directory or baseline DIR instead of training them, "
                   "e.g. --reuse baselines/default-cpu (repeatable; the first DIR that has a "
                   "trial provides it; records keep where they came from in 'reused_from')")
    p.add_argument("--retry-failed", action="store_true",
                   help="re-run trials recorded as failed or diverged")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--allow-failures", action="store_true",
                   help="exit 0 even when trials failed (for sweeps where failures are "
                   "expected); by default a run with failed, unavailable or crashed trials "
                   "exits 1 after its summary")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit code 2, nothing run) when a task's data is not downloaded, "
                   "instead of skipping that task's trials")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from ntkbench.reuse import Reuse
    from ntkbench.runner import (
        RunInterrupted,
        filter_trials,
        missing_data,
        pending,
        raise_terminated,
        run_trials,
    )
    from ntkbench.spec import load_suite, suite_path
    from ntkbench.store import RunStore

    path = suite_path(args.suite)
    suite = load_suite(path, backends=args.backend, device=args.device, variant=args.variant,
                       add_initializers=args.add_initializer, check_data=True)
    trials = suite.trials()
    if args.only:
        trials = filter_trials(trials, args.only)
    out = Path(args.out) if args.out else Path("results") / suite.name
    if args.dry_run:
        for trial in trials:
            print(f"{trial.trial_hash}  {trial.summary()}")
        print(f"{len(trials)} trial(s) in suite {suite.name!r}; results would go to {out}")
        _report_missing(missing_data(trials), "would skip")
        return 0
    if not trials:
        print("no trial matches the --only filters", file=sys.stderr)
        return 2
    # Only trials still to run need their data; recorded ones keep their results.
    reuse = Reuse(args.reuse) if args.reuse else None
    to_train = pending(trials, RunStore(out).statuses(), retry_failed=args.retry_failed)
    if reuse is not None:
        to_train = [t for t in to_train if reuse.find(t) is None]
    gaps = missing_data(to_train)
    _report_missing(gaps, "cannot run" if args.strict else "skipping")
    runnable = trials
    if gaps:
        if args.strict:
            print("nothing was run (--strict); download the data or drop --strict to run the "
                  "rest", file=sys.stderr)
            return 2
        blocked = {t.trial_hash for _, needing in gaps.values() for t in needing}
        runnable = [t for t in trials if t.trial_hash not in blocked]
        if not runnable:
            print("every trial needs data that is not downloaded; nothing to run",
                  file=sys.stderr)
            return 2
    jobs = args.jobs if args.jobs is not None else (os.cpu_count() or 1)
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    executor = _dask_executor(args) if to_train else None  # no cluster for nothing to run
    print(f"suite {suite.name!r}: {len(trials)} trial(s) → {out}"
          + (f" on the {executor.where}" if executor is not None else ""), file=sys.stderr)
    previous = signal.signal(signal.SIGTERM, raise_terminated)  # stop as Ctrl-C stops
    try:
        summary = run_trials(runnable, out, jobs=jobs, retry_failed=args.retry_failed,
                             progress=not args.no_progress, suite_path=path,
                             argv=["ntkbench", *argv], reuse=reuse, executor=executor)
    except RunInterrupted as exc:
        print(f"\n{exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        signal.signal(signal.SIGTERM, previous)
        if executor is not None:  # also when nothing was left to run
            executor.shutdown(cancel=True)
    failed = _report(summary, trials, out)
    if failed and not args.allow_failures:
        print(f"exit 1: {failed} trial(s) of this suite failed or could not run (see above; "
              "--allow-failures exits 0 for sweeps where that is expected)", file=sys.stderr)
        return 1
    return 0


def _dask_executor(args: argparse.Namespace):
    """The Dask executor ``--scheduler`` / ``--cluster`` ask for, else ``None`` (local pool)."""
    if args.scheduler and args.cluster:
        raise ValueError("give --scheduler (an existing Dask cluster) or --cluster local:N, "
                         "not both")
    if not (args.scheduler or args.cluster):
        return None
    from ntkbench.dask_executor import DaskExecutor, parse_cluster  # imports dask lazily

    local = parse_cluster(args.cluster) if args.cluster else None
    try:
        return DaskExecutor(address=args.scheduler, local_workers=local)
    except ImportError as exc:
        raise ValueError(str(exc)) from None
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"cannot reach the Dask scheduler at {args.scheduler}: {exc}") from None


def _report_missing(gaps: dict, verb: str) -> None:
    """One line per data set that is not downloaded, with the command that fetches it."""
    for error, needing in gaps.values():
        tasks = ", ".join(sorted({t.task for t in needing}))
        print(f"{verb} {len(needing)} trial(s) of task {tasks}: {error}", file=sys.stderr)


def _report(summary, trials, out: Path) -> int:
    """Print what the run did and the leaderboard; return how many of ``trials`` are recorded
    ``failed`` or ``unavailable`` (``diverged`` is an initializer's outcome, not a failure)."""
    from ntkbench.report import render
    from ntkbench.store import load_results

    counts = ", ".join(f"{v} {k}" for k, v in sorted(summary.statuses.items()))
    for _, target, why in summary.set_aside:
        print(f"{why}: set aside as {target}; its trial was run again", file=sys.stderr)
    if summary.reused:
        print(f"reused {summary.reused} recorded trial(s) from --reuse", file=sys.stderr)
    if summary.ran:
        print(f"ran {summary.ran} trial(s) in {summary.seconds:.1f} s ({counts}); "
              f"{summary.skipped} already recorded", file=sys.stderr)
    elif summary.reused:
        print(f"trained nothing: {summary.reused} trial(s) reused, {summary.skipped} already "
              "recorded", file=sys.stderr)
    else:
        print(f"all {summary.total} trial(s) already recorded in {out}; nothing to run "
              "(use --retry-failed to re-run failures)", file=sys.stderr)
    for crashed in summary.crashed:
        print(f"worker crashed, recorded as failed (--retry-failed tries it again): {crashed}",
              file=sys.stderr)
    order = {t.trial_hash: i for i, t in enumerate(trials)}  # the suite's order of tasks
    df = load_results(out)
    df = df[df["trial_hash"].isin(order)]
    df = df.sort_values("trial_hash", key=lambda h: h.map(order)).reset_index(drop=True)
    bad = df[df["status"] != "ok"]
    for _, row in bad.head(10).iterrows():
        print(f"{row['status']}: {row['task']} | {row['init_label']} | seed={row['seed']}: "
              f"{row.get('error')}", file=sys.stderr)
    if len(bad) > 10:
        print(f"... and {len(bad) - 10} more not ok", file=sys.stderr)
    if (bad["status"] == "unavailable").any():
        print(f"{int((bad['status'] == 'unavailable').sum())} trial(s) could not run on this "
              "machine (backend not installed or device absent): they are not cached as "
              "results, and the next run tries them again", file=sys.stderr)
    print(render(df, "text"))
    print(f"results: {out}  (tables: ntkbench leaderboard {out} --format md|html|latex|csv; "
          f"figures and a results site: ntkbench report {out})")
    return int(bad["status"].isin(["failed", "unavailable"]).sum())
