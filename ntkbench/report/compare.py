"""``ntkbench compare RUN BASELINE``: per cell, did the run get better or worse than the
baseline, and did the trials that should be bit-reproducible reproduce?

Cells are (task, initializer label, sweep, backend); within a cell, seeds pair up (seed ``s``
draws the same data split and batch order in both runs). Per cell the paired differences of
the test metric are summarised by their mean and a 95% bootstrap CI (the leaderboard's
:func:`ntkbench.report.stats.paired_difference_ci`); a cell is **improved** or **regressed**
when the CI excludes zero in that direction *and* the mean difference is at least
``tolerance`` (relative to the baseline's mean; default 1%), or when a seed failed or diverged
on one side only. The tolerance is needed: with three seeds a percentile-bootstrap CI excludes
zero whenever the three differences share a sign (one chance in four for pure noise, such as
the float rounding of another CPU), so significance alone would flag noise. Under three pairs
there is no CI, and only a failure can flag a cell.

**Determinism.** A trial with the same hash in both runs, on CPU, with the same CPU model and
instruction-set flags, thread count and library versions, should give the same numbers: those
are compared field by field (:func:`ntkbench.reuse.differences`) and any drift beyond ``rtol``
is reported. Trials where the conditions differ are counted as not checked, with the reason.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ntkbench.report import stats
from ntkbench.reuse import Difference, device_kind, differences
from ntkbench.store import RunStore, load_results, read_record

CELL = ("task", "init_label", "sweep_label", "backend")
VERDICTS = ("regressed", "improved", "unchanged", "missing in run", "missing in baseline")


@dataclass(frozen=True)
class CellComparison:
    """One cell: the paired difference ``run − baseline`` of the test metric (its own units)."""

    task: str
    label: str
    sweep: str
    backend: str
    metric: str
    goal: str
    n_pairs: int
    baseline_mean: float
    run_mean: float
    diff: float
    ci_low: float
    ci_high: float
    verdict: str
    note: str = ""


@dataclass(frozen=True)
class Drift:
    """A trial of one hash whose numbers differ between the run and the baseline."""

    trial_hash: str
    summary: str
    differences: list[Difference]


@dataclass
class Comparison:
    cells: list[CellComparison]
    checked: int = 0  # same-hash trials whose determinism was checked
    not_checked: Counter = field(default_factory=Counter)  # reason → count
    drifts: list[Drift] = field(default_factory=list)
    rtol: float = 1e-6

    @property
    def counts(self) -> Counter:
        return Counter(c.verdict for c in self.cells)

    @property
    def failed(self) -> bool:
        """A significant regression or a determinism drift: ``ntkbench compare`` exits 1."""
        return bool(self.counts["regressed"] or self.drifts)


def _text(df: pd.DataFrame, column: str) -> pd.Series:
    return df[column].fillna("").astype(str) if column in df else pd.Series("", index=df.index)


def _cells(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({c: _text(df, c) for c in CELL})
    out["seed"] = df["seed"].to_numpy() if "seed" in df else np.arange(len(df))
    out["metric"] = _text(df, "metric")
    out["goal"] = _text(df, "metric_goal").replace("", "min")
    out["value"] = pd.to_numeric(df.get("final_test_metric"), errors="coerce")
    out["ok"] = _text(df, "status") == "ok"
    return out


def _compare_cell(key: tuple, run: pd.DataFrame | None, base: pd.DataFrame | None,
                  tolerance: float) -> CellComparison:
    task, label, sweep, backend = key
    side = run if run is not None else base
    metric, goal = side["metric"].iloc[0], side["goal"].iloc[0]
    if run is None or base is None:
        verdict = "missing in run" if run is None else "missing in baseline"
        mean = float(side.loc[side["ok"], "value"].mean())
        return CellComparison(task, label, sweep, backend, metric, goal, 0,
                              mean if run is None else math.nan,
                              mean if base is None else math.nan, math.nan, math.nan,
                              math.nan, verdict)
    paired = run.merge(base, on="seed", suffixes=("_run", "_base"))
    o_run = stats.oriented(paired["value_run"], paired["ok_run"], goal)
    o_base = stats.oriented(paired["value_base"], paired["ok_base"], goal)
    mean, low, high, n = stats.paired_difference_ci(o_run, o_base)
    sign = 1.0 if goal == "min" else -1.0  # oriented (lower is better) → the metric's units
    diff, ci = sign * mean, sorted((sign * low, sign * high))
    newly_failed = int(np.sum(np.isinf(o_run) & np.isfinite(o_base)))
    newly_ok = int(np.sum(np.isfinite(o_run) & np.isinf(o_base)))
    notes = []
    if newly_failed:
        notes.append(f"{newly_failed} seed(s) failed or diverged in the run only")
    if newly_ok:
        notes.append(f"{newly_ok} seed(s) failed or diverged in the baseline only")
    unpaired = len(set(run["seed"]) ^ set(base["seed"]))
    if unpaired:
        notes.append(f"{unpaired} seed(s) in one of the two only (not compared)")
    if n < stats.CI_MIN_N:
        notes.append(f"{n} pair(s): no CI")
    both = paired["ok_run"] & paired["ok_base"]
    base_mean = float(paired.loc[both, "value_base"].mean())
    large = math.isfinite(mean) and abs(mean) >= tolerance * abs(base_mean)
    if newly_failed or (large and math.isfinite(low) and low > 0):
        verdict = "regressed"
    elif newly_ok or (large and math.isfinite(high) and high < 0):
        verdict = "improved"
    else:
        verdict = "unchanged"
    return CellComparison(task, label, sweep, backend, metric, goal, n, base_mean,
                          float(paired.loc[both, "value_run"].mean()), diff, ci[0], ci[1],
                          verdict, "; ".join(notes))


def compare_frames(run: pd.DataFrame, base: pd.DataFrame, *, tolerance: float = 0.01
                   ) -> list[CellComparison]:
    """Cell-by-cell comparison of two results tables (:func:`load_results`)."""
    run_cells, base_cells = _cells(run), _cells(base)
    groups_run = dict(list(run_cells.groupby(list(CELL), sort=False)))
    groups_base = dict(list(base_cells.groupby(list(CELL), sort=False)))
    keys = list(groups_base) + [k for k in groups_run if k not in groups_base]
    return [_compare_cell(k, groups_run.get(k), groups_base.get(k), tolerance) for k in keys]


_SAME = (("cpu", "CPU model"), ("cpu_flags", "CPU instruction-set flags"),
         ("threads", "thread count"), ("blas_threads", "numpy BLAS thread count"),
         ("versions", "library versions"))


def _why_not_comparable(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """Why two records of one hash need not be bit-equal (``None``: they should be)."""
    if a.get("status") == "unavailable" or b.get("status") == "unavailable":
        return "unavailable on one side"
    kinds = {device_kind(a.get("device_resolved")), device_kind(b.get("device_resolved"))}
    if kinds != {"cpu"}:
        return "not both on CPU"
    for key, what in _SAME:
        if a.get(key) is None or b.get(key) is None:
            return f"no {what} recorded"
        if a.get(key) != b.get(key):
            return f"different {what}"
    return None


def compare_runs(run_dir: str | Path, baseline_dir: str | Path, *, rtol: float = 1e-6,
                 tolerance: float = 0.01) -> Comparison:
    """Compare the run directory ``run_dir`` with ``baseline_dir`` (see the module doc):
    ``tolerance`` is the smallest relative change of a cell's mean that counts, ``rtol`` the
    relative difference beyond which a same-hash deterministic trial has drifted."""
    run_df, base_df = load_results(run_dir), load_results(baseline_dir)
    out = Comparison(compare_frames(run_df, base_df, tolerance=tolerance), rtol=rtol)
    run_store, base_store = RunStore(run_dir), RunStore(baseline_dir)
    for h in sorted(set(run_df["trial_hash"]) & set(base_df["trial_hash"])):
        a = read_record(run_store.record_path(h))
        b = read_record(base_store.record_path(h))
        why = _why_not_comparable(a, b)
        if why:
            out.not_checked[why] += 1
            continue
        out.checked += 1
        diffs = differences(a, b, rtol)
        if diffs:
            summary = " | ".join(str(a.get(k, "")) for k in ("task", "init_label", "backend"))
            out.drifts.append(Drift(h, f"{summary} | seed={a.get('seed')}", diffs))
    return out


def _number(x: float) -> str:
    return "" if not math.isfinite(x) else f"{x:.4g}"


def render_comparison(c: Comparison, *, show_all: bool = True) -> str:
    """The comparison as text: a table of cells, the determinism check, a summary line."""
    from tabulate import tabulate

    rows = []
    for cell in c.cells:
        if not show_all and cell.verdict not in ("regressed", "improved"):
            continue
        ci = (f"[{_number(cell.ci_low)}, {_number(cell.ci_high)}]"
              if math.isfinite(cell.ci_low) else "")
        rows.append([cell.task, cell.label, cell.sweep, cell.backend, cell.metric,
                     cell.n_pairs or "", _number(cell.baseline_mean), _number(cell.run_mean),
                     _number(cell.diff), ci, cell.verdict, cell.note])
    lines = []
    if rows:
        lines.append(tabulate(rows, headers=["task", "initializer", "sweep", "backend", "metric",
                                             "pairs", "baseline", "run", "diff", "95% CI",
                                             "verdict", "note"]))
    else:
        lines.append("no cell improved or regressed")
    lines.append("")
    not_checked = ", ".join(f"{n} {why}" for why, n in sorted(c.not_checked.items()))
    det = (f"determinism: {c.checked} same-hash trial(s) checked (CPU, same CPU model and "
           f"flags, threads and versions)")
    if not_checked:
        det += f"; not checked: {not_checked}"
    if c.drifts:
        det += f"; {len(c.drifts)} DRIFTED beyond rtol {c.rtol:g}:"
    elif c.checked:
        det += f"; all equal within rtol {c.rtol:g}"
    lines.append(det)
    for drift in c.drifts:
        shown = "; ".join(map(str, drift.differences[:3]))
        more = len(drift.differences) - 3
        lines.append(f"  {drift.trial_hash} {drift.summary}: {shown}"
                     + (f" (+{more} more)" if more > 0 else ""))
    counts = c.counts
    lines.append("summary: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])
                 + f" (of {len(c.cells)} cells)")
    return "\n".join(lines)
