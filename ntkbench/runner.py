"""Run a suite: expand the grid, skip what is recorded, execute the rest, record each result.

Resumable by construction: every finished trial is written to the store the moment it
arrives, and a run only executes trials that have no record yet. Ctrl-C stops the workers and
keeps every record already written; running the same command again continues.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ntkbench import registry
from ntkbench.config import Trial
from ntkbench.data.cache import REMOTE, MissingDataError
from ntkbench.execute import crashed_record, environment, run_trial
from ntkbench.executors import Executor, make_executor
from ntkbench.reuse import Reuse
from ntkbench.store import (
    RunDirectoryError,
    RunStore,
    StoreWriteError,
    atomic_write_text,
    locked,
)


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM during a run; everything finished before it is recorded."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is so that it stops as Ctrl-C stops it (exit 143)."""


def raise_terminated(signum: int, frame: Any) -> None:
    """A SIGTERM handler: ``signal.signal(signal.SIGTERM, raise_terminated)``."""
    raise Terminated()


@dataclass
class RunSummary:
    """What a run did: counts by status, and what it skipped or lost."""

    run_dir: Path
    total: int
    skipped: int  # already recorded before this run
    reused: int = 0  # taken from --reuse run directories by this run
    statuses: Counter = field(default_factory=Counter)
    crashed: list[str] = field(default_factory=list)  # trials whose worker process died
    set_aside: list[tuple[Path, Path, str]] = field(default_factory=list)  # damaged records
    seconds: float = 0.0

    @property
    def ran(self) -> int:
        return sum(self.statuses.values())


def parse_only(filters: Sequence[str]) -> list[tuple[str, set[str]]]:
    """``["task=a,b", "model.width=256"]`` → ``[("task", {"a","b"}), ("model.width", {"256"})]``."""
    out = []
    for f in filters:
        key, sep, values = f.partition("=")
        if not sep or not key.strip() or not values:
            raise ValueError(f"--only expects key=value (e.g. initializer=he_normal), got {f!r}")
        out.append((key.strip(), {v.strip() for v in values.split(",")}))
    return out


def _field(trial: Trial, key: str) -> Any:
    if key == "initializer":
        return {trial.initializer.name, trial.initializer.label}
    value: Any = trial.model_dump(mode="json")
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(key)
        value = value[part]
    return value


def _matches(value: Any, wanted: set[str]) -> bool:
    if isinstance(value, set):
        return bool(value & wanted)
    if str(value) in wanted:
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for w in wanted:
            try:
                if float(w) == float(value):
                    return True
            except ValueError:
                pass
    return False


def filter_trials(trials: list[Trial], filters: Sequence[str]) -> list[Trial]:
    """Trials whose fields match every ``key=value[,value...]`` filter.

    Keys: ``task``, ``initializer`` (name or label), ``backend``, ``seed``, ``device`` or any
    dotted field of a trial (``model.width``, ``training.lr``, ``data.params.frequency``).
    """
    parsed = parse_only(filters)
    out = []
    for trial in trials:
        try:
            if all(_matches(_field(trial, k), v) for k, v in parsed):
                out.append(trial)
        except KeyError as exc:
            raise ValueError(f"--only: unknown field {exc.args[0]!r} (try task, initializer, "
                             "backend, seed, model.width, training.lr, data.params.<name>)"
                             ) from None
    return out


def missing_data(trials: Sequence[Trial]) -> dict[str, tuple[MissingDataError, list[Trial]]]:
    """The downloadable data sets that ``trials`` need and the cache lacks: name → (the error,
    with the command that fetches it; the trials that need it).

    A task declares what it needs with a ``requires_data(**params) -> list[str]`` attribute
    (names in :data:`ntkbench.data.cache.REMOTE`); tasks without it need nothing.
    """
    out: dict[str, tuple[MissingDataError, list[Trial]]] = {}
    checked: dict[str, list[Path]] = {}
    for trial in trials:
        needs = getattr(registry.tasks.get(trial.data.generator).obj, "requires_data", None)
        for name in needs(**trial.data.params) if needs else ():
            if name not in checked:
                checked[name] = REMOTE[name].missing()
            if checked[name]:
                error = out.setdefault(name, (MissingDataError(name, checked[name]), []))
                error[1].append(trial)
    return out


def pending(trials: Sequence[Trial], recorded: dict[str, str], *,
            retry_failed: bool = False) -> list[Trial]:
    """The trials a run still has to execute, given ``recorded`` (hash → status).

    A recorded outcome (``ok``, ``diverged``, ``failed``) is kept unless ``retry_failed`` asks
    to re-run the ones that are not ``ok``; an ``unavailable`` record (the backend was not
    installed or the device absent on the machine that tried) is no outcome, and is always
    tried again.
    """
    return [t for t in trials if t.trial_hash not in recorded
            or recorded[t.trial_hash] == "unavailable"
            or (retry_failed and recorded[t.trial_hash] != "ok")]


def write_manifest(store: RunStore, suite_path: Path | None, n_trials: int,
                   argv: Sequence[str] | None, reused: dict[str, int] | None = None) -> None:
    manifest_path = store.run_dir / "run.json"
    runs = []
    if manifest_path.is_file():
        runs = json.loads(manifest_path.read_text()).get("runs", [])
    runs.append({"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                 "command": shlex.join(argv) if argv else None,
                 "suite": str(suite_path) if suite_path else None,
                 "grid_size": n_trials, "environment": environment(),
                 **({"reused": reused} if reused else {})})
    atomic_write_text(manifest_path, json.dumps({"runs": runs}, indent=1))
    if suite_path is not None and suite_path.is_file():
        atomic_write_text(store.run_dir / "suite.yaml", suite_path.read_text())


def run_trials(trials: list[Trial], run_dir: str | Path, *, jobs: int = 1,
               retry_failed: bool = False, progress: bool = True,
               executor: Executor | None = None, suite_path: Path | None = None,
               argv: Sequence[str] | None = None, reuse: Reuse | None = None) -> RunSummary:
    """Execute the trials that have no record in ``run_dir`` and record each one.

    Args:
        trials: the (filtered) grid.
        run_dir: the run directory (created if needed).
        jobs: worker processes (1 = in this process).
        retry_failed: also re-run trials recorded as ``failed`` or ``diverged`` (those recorded
            ``unavailable`` always run again).
        progress: show a progress bar on stderr.
        executor: a custom executor (default: local, ``jobs`` processes).
        reuse: run directories to take recorded trials from (:class:`ntkbench.reuse.Reuse`):
            a trial with an ``ok`` record of its hash there is copied, not trained.

    Raises:
        RunInterrupted: on Ctrl-C or SIGTERM, after stopping workers; finished trials stay
            recorded.
        RunDirectoryError: ``run_dir`` is a file, or another run is using it.
    """
    store = RunStore(run_dir)
    if store.run_dir.exists() and not store.run_dir.is_dir():
        raise RunDirectoryError(f"run directory {str(store.run_dir)!r} is an existing file, "
                                "not a directory: give another --out")
    store.run_dir.mkdir(parents=True, exist_ok=True)
    with locked(store.run_dir):
        return _run_locked(store, trials, jobs=jobs, retry_failed=retry_failed,
                           progress=progress, executor=executor, suite_path=suite_path,
                           argv=argv, reuse=reuse)


def _run_locked(store: RunStore, trials: list[Trial], *, jobs: int, retry_failed: bool,
                progress: bool, executor: Executor | None, suite_path: Path | None,
                argv: Sequence[str] | None, reuse: Reuse | None) -> RunSummary:
    from tqdm import tqdm

    store.remove_stale_temporaries()
    todo = pending(trials, store.statuses(), retry_failed=retry_failed)
    summary = RunSummary(store.run_dir, total=len(trials), skipped=len(trials) - len(todo))
    summary.set_aside = store.set_aside_damaged()  # their trials are in todo: no record
    if reuse is not None and todo:
        left = reuse.copy_into(store, todo)
        summary.reused = len(todo) - len(left)
        todo = left
    reused = dict(reuse.taken) if reuse is not None else None
    if not todo:
        if summary.reused:
            write_manifest(store, suite_path, len(trials), argv, reused)
        if summary.reused or not (store.run_dir / "results.parquet").is_file():
            store.write_table()  # e.g. the previous run was killed before writing it
        return summary
    write_manifest(store, suite_path, len(trials), argv, reused)
    executor = executor or make_executor(min(jobs, len(todo)))
    start = time.perf_counter()
    bar = tqdm(total=len(trials), initial=summary.skipped, unit="trial", file=sys.stderr,
               disable=not progress, dynamic_ncols=True, smoothing=0.1)
    try:
        for trial, result in executor.imap_unordered(run_trial, todo):
            if isinstance(result, BaseException):  # the worker died, or fn itself raised
                error = f"{type(result).__name__}: {result}"
                summary.crashed.append(f"{trial.summary()}: {error}")
                result = crashed_record(trial, error)
            store.write(result)
            summary.statuses[result["status"]] += 1
            bar.update(1)
            bar.set_postfix_str(", ".join(f"{k} {v}" for k, v in sorted(
                summary.statuses.items())), refresh=False)
    except KeyboardInterrupt as exc:
        executor.shutdown(cancel=True)
        what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        raise RunInterrupted(f"{what}: {summary.ran} trial(s) finished in this run are "
                             f"recorded in {store.run_dir}; run the same command to resume "
                             f"({len(todo) - summary.ran} left)",
                             143 if isinstance(exc, Terminated) else 130) from None
    except BaseException:  # e.g. the disk filled up writing a record: stop the workers
        executor.shutdown(cancel=True)
        raise
    else:
        executor.shutdown(cancel=False)
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - start
        propagating = sys.exc_info()[1]
        try:
            store.write_table()
        except StoreWriteError:
            if propagating is None:  # else the error already propagating says it
                raise
    return summary
