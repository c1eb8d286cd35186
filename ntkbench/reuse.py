"""Records shared between run directories: take recorded cells from a baseline, merge runs.

Both rest on the trial hash (:mod:`ntkbench.identity`): a record whose hash equals a trial's
is that trial's outcome, wherever it was produced. Reuse additionally requires the device kind
the record ran on to be the one this machine would use (a suite's ``device: auto`` means a GPU
on a GPU machine), and keeps where the record came from in ``reused_from``.
"""

from __future__ import annotations

import math
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ntkbench.config import Trial
from ntkbench.store import RECORDS, DamagedRecord, RunStore, flatten, read_record

#: Record fields that say where, when and how fast a trial ran, not what it measured: left out
#: when two records of one hash are checked for equal numbers. Dotted names are prefixes.
PROVENANCE = ("schema_version", "trial_hash", "measurement_version", "suite", "ntkbench_version",
              "ntkbench_commit", "host", "cpu", "cpu_flags", "threads", "versions.",
              "worker_trial_index", "started_at", "finished_at", "wall_time_s", "peak_memory_mb",
              "device_name", "reused_from.", "arrays_file", "traceback")


def _is_provenance(name: str) -> bool:
    """A provenance field, or a timing anywhere in the record (``*_time_s``, such as
    ``initializer_calibration.calibration_time_s``)."""
    return name.endswith("_time_s") or any(
        name == p or (p.endswith(".") and name.startswith(p)) for p in PROVENANCE)


def measured(record: dict[str, Any]) -> dict[str, float]:
    """The record's measured scalar numbers (flattened names), provenance left out."""
    out = {}
    for name, value in flatten(record).items():
        if _is_provenance(name):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


@dataclass(frozen=True)
class Difference:
    """A measured number that differs between two records of the same hash."""

    field: str
    a: float
    b: float

    @property
    def relative(self) -> float:
        if math.isnan(self.a) or math.isnan(self.b):
            return 0.0 if math.isnan(self.a) and math.isnan(self.b) else math.inf
        scale = max(abs(self.a), abs(self.b))
        return math.inf if not math.isfinite(scale) else abs(self.a - self.b) / (scale or 1.0)

    def __str__(self) -> str:
        return f"{self.field}: {self.a:.10g} vs {self.b:.10g} (relative {self.relative:.2g})"


def differences(a: dict[str, Any], b: dict[str, Any], rtol: float) -> list[Difference]:
    """Measured numbers of two records that differ by more than ``rtol`` (relative to the
    larger magnitude), a number only one of them has, and a different status; largest first.
    ``None`` (a NaN in the JSON) equals ``None``."""
    out = []
    if a.get("status") != b.get("status"):
        out.append(Difference(f"status ({a.get('status')} vs {b.get('status')})",
                              math.nan, math.inf))
    ma, mb = measured(a), measured(b)
    for name in sorted(set(ma) | set(mb)):
        d = Difference(name, ma.get(name, math.nan), mb.get(name, math.nan))
        if (name in ma) != (name in mb) or d.relative > rtol:
            out.append(d)
    return sorted(out, key=lambda d: -d.relative if not math.isnan(d.relative) else -math.inf)


def device_kind(device: str | None) -> str | None:
    """``cuda:1`` → ``cuda``; ``cpu`` → ``cpu``."""
    return None if device is None else str(device).split(":")[0]


class Reuse:
    """Looks up trials in the run directories (baselines) given to ``ntkbench run --reuse``.

    The first directory holding an ``ok`` record of a trial's hash, on the device kind this
    machine would use, provides it; failed, diverged and unavailable records are not reused.
    """

    def __init__(self, run_dirs: Iterable[str | os.PathLike]) -> None:
        self.stores = []
        for run_dir in run_dirs:
            store = RunStore(run_dir)
            if not store.records_dir.is_dir():
                raise FileNotFoundError(f"--reuse {str(run_dir)!r}: not a run directory (it "
                                        f"has no {RECORDS}/ folder of records)")
            self.stores.append(store)
        self._kinds: dict[tuple[str, str], str | None] = {}
        self.taken: Counter = Counter()  # run dir → how many records were taken from it

    def _local_kind(self, trial: Trial) -> str | None:
        """The device kind this machine runs ``trial`` on; ``None`` when it cannot run it."""
        if trial.device != "auto":
            return device_kind(trial.device)
        key = (trial.backend, trial.device)
        if key not in self._kinds:
            from ntkbench.backends import Unavailable, get_backend

            try:
                self._kinds[key] = device_kind(get_backend(trial.backend).resolve_device("auto"))
            except Unavailable:
                self._kinds[key] = None
        return self._kinds[key]

    def find(self, trial: Trial) -> dict[str, Any] | None:
        """A copy of the reusable record of ``trial`` with ``reused_from`` set, or ``None``."""
        for store in self.stores:
            path = store.record_path(trial.trial_hash)
            if not path.is_file():
                continue
            try:
                record = read_record(path)
            except DamagedRecord:  # not reusable; the baseline's own runs set it aside
                continue
            if record.get("status") != "ok":
                continue
            if device_kind(record.get("device_resolved")) != self._local_kind(trial):
                continue
            record["reused_from"] = {"run_dir": str(store.run_dir), "host": record.get("host"),
                                     "ntkbench_commit": record.get("ntkbench_commit")}
            record["suite"] = trial.suite  # a label: the suite that now holds the cell
            return record
        return None

    def copy_into(self, store: RunStore, trials: Sequence[Trial]) -> list[Trial]:
        """Write the reusable records of ``trials`` into ``store``; return the trials left to
        run. A record's side arrays (``trials/<hash>.npz``) are copied with it when present."""
        left = []
        for trial in trials:
            record = self.find(trial)
            if record is None:
                left.append(trial)
                continue
            self.taken[record["reused_from"]["run_dir"]] += 1
            source = Path(record["reused_from"]["run_dir"]) / RECORDS
            _copy_arrays(record, source / f"{trial.trial_hash}.npz",
                         store.arrays_path(trial.trial_hash))
            store.write(record)
        return left


def _copy_arrays(record: dict[str, Any], source: Path, target: Path) -> None:
    """Copy a record's side arrays with it; a published baseline leaves them out (binary),
    and then the copy says it has none."""
    if not record.get("arrays_file"):
        return
    if source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    else:
        del record["arrays_file"]


@dataclass
class MergeReport:
    """What ``ntkbench merge`` did."""

    out: Path
    written: int = 0
    duplicates: int = 0  # hashes recorded in more than one input (agreeing)
    conflicts: list[tuple[str, list[str], list[Difference]]] = field(default_factory=list)
    per_input: Counter = field(default_factory=Counter)


def _rank(record: dict[str, Any]) -> int:
    """Which of two records of one hash to keep: an outcome beats ``unavailable``."""
    return 0 if record.get("status") == "unavailable" else 1


def merge_runs(run_dirs: Sequence[str | os.PathLike], out: str | os.PathLike, *,
               rtol: float = 1e-6) -> MergeReport:
    """Merge the records of ``run_dirs`` into the run directory ``out``.

    Records are matched by trial hash. Two records of one hash whose measured numbers agree
    within ``rtol`` (and whose status is the same) are duplicates: the first input's is kept.
    Otherwise they conflict: the first input's is kept too (inputs are in order of
    precedence), and the conflict — both inputs and the differing numbers — is reported. An
    ``unavailable`` record gives way to an outcome of the same hash without a conflict.
    """
    out = Path(out)
    stores = [RunStore(d) for d in run_dirs]
    for store in stores:
        if not store.records_dir.is_dir():
            raise FileNotFoundError(f"{str(store.run_dir)!r} is not a run directory (no "
                                    f"{RECORDS}/ folder of records)")
        if store.run_dir.resolve() == out.resolve():
            raise ValueError(f"--out {str(out)!r} is also an input; merge into a new directory")
    chosen: dict[str, tuple[dict[str, Any], RunStore]] = {}
    report = MergeReport(out)
    for store in stores:
        for path in sorted(store.records_dir.glob("*.json")):
            record = read_record(path)
            h = record["trial_hash"]
            if h not in chosen or _rank(record) > _rank(chosen[h][0]):
                chosen[h] = (record, store)
                continue
            kept, kept_store = chosen[h]
            if _rank(record) < _rank(kept):
                continue
            report.duplicates += 1
            diffs = differences(kept, record, rtol)
            if diffs:
                report.conflicts.append((h, [str(kept_store.run_dir), str(store.run_dir)],
                                         diffs))
    target = RunStore(out)
    for h, (record, store) in sorted(chosen.items()):
        record = dict(record)
        _copy_arrays(record, store.arrays_path(h), target.arrays_path(h))
        target.write(record)
        report.written += 1
        report.per_input[str(store.run_dir)] += 1
    target.write_table()
    return report
