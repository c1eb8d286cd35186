"""Leaderboard tables: trials grouped over seeds and ranked per task by the primary metric.

Input is the results table of a run (:func:`ntkbench.store.load_results`), one row per trial.
Columns it reads, each optional except that the table must not be empty:

- identity: ``task``, ``init_label`` (falls back to ``initializer``), ``backend``,
  ``sweep_label``; ``seed`` is what the rows of a group differ in;
- outcome: ``status`` (``ok`` / ``diverged`` / ``failed``; when absent, a trial with a finite
  ``final_test_metric`` counts as ok), ``error``;
- ``metric``, ``metric_goal`` (``min`` / ``max``), ``final_test_metric``;
- ``steps_to_target`` (else ``steps_to_10pct``), ``ntk_init.centered_alignment``,
  ``ntk_drift``, ``wall_time_s``;
- ``kernel_regression.ntk_test_metric`` (and ``.nngp_test_metric``, CSV only): the test metric
  of kernel regression with the initializer's infinite-width NTK (NNGP), its kernel limit;
- ``mean_predictor.test_metric``: the task's predict-the-mean reference, shown as a row
  ``ref`` below the ranked ones (one value per seed; it does not depend on the initializer).

A group is one (initializer label, backend, sweep label) cell of a task; its row aggregates the
seeds. Statistics use the group's ``ok`` trials, except the NTK alignment at initialisation,
which describes the initializer rather than the training outcome and so uses every trial that
measured it (a diverged trial's kernel at step 0 is as valid as any). Non-finite values are
ignored.

Ranking rule. Groups are ranked within each backend (backends are one axis of the study, not
rival rows: torch is never ranked against JAX). Groups whose every seed is ok come first, by
mean primary metric in the goal direction (equal means share a rank); groups with a diverged or
failed seed rank after all of them (fewer non-ok seeds first, then by the mean of their ok
seeds), so one good seed cannot carry a half-failed group to the top; groups without any ok
seed come last, unranked, with their status instead.

Significance. From three ok seeds on, the mean carries a 95% bootstrap CI over them
(:func:`ntkbench.report.stats.bootstrap_ci`); with two it carries their standard deviation.
Every ranked group of a backend is compared with that backend's rank-1 group by a paired
Wilcoxon signed-rank test over the seeds they share (a non-ok seed counts as the worst outcome),
Holm-corrected over the comparisons; the groups whose adjusted p-value is at least α = 0.05 form
the *top group* with the best one, shown as ``=1``. With too few seeds no difference can be
significant (two-sided exact p >= 2/2^n, and Holm's first step needs p < α/k for k comparisons)
and the table says so, with the number of seeds that would be needed.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ntkbench.report import stats
from ntkbench.report.numbers import (
    MISSING,
    format_mean_ci,
    format_mean_std,
    format_number,
    format_steps,
)
from ntkbench.store import current_records

RANK = "rank"
INITIALIZER = "initializer"
BACKEND = "backend"
SWEEP = "sweep"
SEEDS = "seeds"
STEPS = "steps to 10%"
STEPS_TARGET = "steps to target"
REFERENCE = "predict the mean"
NTK_LIMIT = "NTK limit"
ALIGNMENT = "NTK align. (init)"
DRIFT = "NTK drift"
WALL_TIME = "wall time (s)"
TEXT_COLUMNS = frozenset({INITIALIZER, BACKEND, SWEEP})  # left-aligned; the others are numbers

# Source column in the results table → display column it feeds (omitted when the source is absent).
OPTIONAL_SOURCES = {"kernel_regression.ntk_test_metric": NTK_LIMIT,
                    "steps_to_target": STEPS_TARGET, "steps_to_10pct": STEPS,
                    "ntk_init.centered_alignment": ALIGNMENT,
                    "ntk_drift": DRIFT, "wall_time_s": WALL_TIME}

NUMERIC_COLUMNS = (
    "task", "rank", "initializer", "backend", "sweep", "n_ok", "n_total", "metric",
    "metric_mean", "metric_std", "metric_ci_low", "metric_ci_high", "metric_median",
    "metric_iqm", "ci_method", "top_group", "p_vs_best", "steps_to_target", "steps_to_10pct",
    "alignment_init_mean", "alignment_init_std",
    "drift_mean", "drift_std", "wall_time_s", "ntk_limit_mean", "nngp_limit_mean",
    # Beyond the published schema: what a machine reader needs to interpret the above.
    "n_reached_target", "n_reached_10pct", "status",
)
GOAL_TEXT = {"min": "lower is better", "max": "higher is better"}
_ERROR_CHARS = 160  # an error message in a note is cut to this length


@dataclass(frozen=True, eq=False)
class TaskTable:
    """The leaderboard of one task, ready to render.

    Attributes:
        task: task name.
        metric: name of the primary metric ranked by (e.g. ``test_mse``).
        goal: ``"min"`` or ``"max"``: the direction in which the metric is better.
        columns: display column names; the metric column is named after the metric.
        rows: one list of display strings per group, in rank order, aligned with ``columns``.
        numeric: the same rows as numbers, columns :data:`NUMERIC_COLUMNS` (``rank`` is a
            nullable integer, empty for unranked groups).
        notes: sentences about the table (non-ok trials and their errors, assumptions made).
    """

    task: str
    metric: str
    goal: str
    columns: list[str]
    rows: list[list[str]]
    numeric: pd.DataFrame
    notes: list[str]

    @property
    def goal_text(self) -> str:
        """``"lower is better"`` or ``"higher is better"``."""
        return GOAL_TEXT[self.goal]


def leaderboard(df: pd.DataFrame) -> list[TaskTable]:
    """One ranked :class:`TaskTable` per task, tasks in order of first appearance in ``df``.

    Raises:
        ValueError: ``df`` has no rows (``"no trials ..."``).
    """
    df, superseded = latest_records(df)
    for task, n in df.attrs.get("superseded", {}).items():  # dropped by load_results
        superseded[task] = superseded.get(task, 0) + n
    trials = _normalise(df)
    tables = [_task_table(task, trials[trials["task"] == task], present=set(df.columns))
              for task in pd.unique(trials["task"])]
    for table in tables:
        if superseded.get(table.task):
            table.notes.append(f"{superseded[table.task]} older record(s) of the same trial "
                               "(task, initializer, sweep, backend, seed) are superseded by "
                               "the latest one (from a run with an earlier measurement "
                               "version, measure settings or plugin source, or another run "
                               "directory of the same report).")
    return tables


def latest_records(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Only the latest record of each (task, initializer label, sweep, backend, seed) across
    the run directories of a report, and per task how many older ones were dropped."""
    return current_records(df, ("task", "init_label", "sweep_label", "backend", "seed"))


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    """The columns the leaderboard reads, with defaults for missing ones and clean dtypes."""
    if df is None or len(df) == 0:
        raise ValueError("no trials: the results table is empty, so there is nothing to rank")
    df = df.reset_index(drop=True)
    out = pd.DataFrame(index=df.index)
    out["task"] = _text(df, "task", "(no task)")
    label = _text(df, "init_label", "")
    out["label"] = label.where(label != "", _text(df, "initializer", "?"))
    out["backend"] = _text(df, "backend", "")
    out["sweep"] = _text(df, "sweep_label", "")
    out["metric"] = _text(df, "metric", "")
    out["goal"] = _text(df, "metric_goal", "")
    out["error"] = _text(df, "error", "")
    # Seeds pair trials across initializers; without a seed column every trial is its own seed.
    out["seed"] = df["seed"].to_numpy() if "seed" in df.columns else np.arange(len(df))
    for column in ("final_test_metric", "mean_predictor.test_metric", "worker_trial_index",
                   "kernel_regression.nngp_test_metric", *OPTIONAL_SOURCES):
        out[column] = _number(df, column)
    if "status" in df.columns:
        out["status"] = _text(df, "status", "failed")
    else:
        out["status"] = np.where(np.isfinite(out["final_test_metric"]), "ok", "failed")
    return out


def _text(df: pd.DataFrame, column: str, default: str) -> pd.Series:
    if column not in df.columns:
        return pd.Series(default, index=df.index, dtype=object)
    values = df[column].astype(object)
    return values.where(values.notna(), default).map(str)


def _number(df: pd.DataFrame, column: str) -> pd.Series:
    if column not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[column], errors="coerce").astype(float)


def _mean_std(values: pd.Series) -> tuple[float, float, int]:
    """Mean, sample std (``ddof=1``; ``nan`` below two values) and count of the finite values."""
    x = values.to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan, 0
    return float(np.mean(x)), float(np.std(x, ddof=1)) if len(x) > 1 else math.nan, len(x)


def _status_summary(statuses: Counter, total: int) -> str:
    """``"ok"`` when every trial is ok, else e.g. ``"diverged 1/3, failed 1/3"``."""
    bad = sorted((s, n) for s, n in statuses.items() if s != "ok")
    return ", ".join(f"{s} {n}/{total}" for s, n in bad) if bad else "ok"


def _group_stats(group: pd.DataFrame, goal: str) -> dict[str, Any]:
    ok = group[group["status"] == "ok"]
    summary = stats.summarize(ok["final_test_metric"].to_numpy(dtype=float))
    metric_mean, metric_std, n_metric = _mean_std(ok["final_test_metric"])
    align_mean, align_std, n_align = _mean_std(group["ntk_init.centered_alignment"])
    drift_mean, drift_std, n_drift = _mean_std(ok["ntk_drift"])
    # The kernel limit depends on the initial weights only: every trial that computed it.
    ntk_limit = _mean_std(group["kernel_regression.ntk_test_metric"])
    nngp_limit = _mean_std(group["kernel_regression.nngp_test_metric"])
    steps = {}
    for name in ("steps_to_target", "steps_to_10pct"):
        values = ok[name].to_numpy(dtype=float)
        steps[name] = values[np.isfinite(values)]
    wall = ok["wall_time_s"].to_numpy(dtype=float)
    warm = ok["worker_trial_index"].to_numpy(dtype=float) != 0  # nan (not recorded): keep
    if (warm & np.isfinite(wall)).any():
        wall = wall[warm]  # each process's first trial pays its one-off warm-up
    wall = wall[np.isfinite(wall)]
    errors = [e for e in group.loc[group["status"] != "ok", "error"] if e]
    outcome = pd.Series(stats.oriented(group["final_test_metric"].to_numpy(dtype=float),
                                       (group["status"] == "ok").to_numpy(), goal),
                        index=group["seed"].to_numpy()).groupby(level=0).last()
    return {
        "n_ok": len(ok), "n_total": len(group), "n_metric": n_metric,
        "metric_mean": metric_mean, "metric_std": metric_std,
        "metric_ci_low": summary.ci_low, "metric_ci_high": summary.ci_high,
        "metric_median": summary.median, "metric_iqm": summary.iqm,
        "ci_method": summary.ci_method, "outcome": outcome,
        **{name: float(np.median(v)) if len(v) else math.nan for name, v in steps.items()},
        "n_reached_target": len(steps["steps_to_target"]),
        "n_reached_10pct": len(steps["steps_to_10pct"]),
        "alignment_init_mean": align_mean, "alignment_init_std": align_std, "n_align": n_align,
        "drift_mean": drift_mean, "drift_std": drift_std, "n_drift": n_drift,
        "ntk_limit_mean": ntk_limit[0], "ntk_limit_std": ntk_limit[1], "n_ntk_limit": ntk_limit[2],
        "nngp_limit_mean": nngp_limit[0],
        "wall_time_s": float(np.mean(wall)) if len(wall) else math.nan,
        "status": _status_summary(Counter(group["status"]), len(group)),
        "first_error": errors[0] if errors else "",
    }


def _rank(groups: list[dict[str, Any]], goal: str) -> list[dict[str, Any]]:
    """Groups of one backend in rank order (see the module's ranking rule), ranks and top group
    filled in; returns them with a note when significance cannot be claimed."""
    sign = 1.0 if goal == "min" else -1.0

    def key(g: dict[str, Any]) -> tuple[int, float]:
        return g["n_total"] - g["n_ok"], sign * g["metric_mean"]

    ranked = sorted((g for g in groups if g["n_metric"] > 0), key=key)  # stable: ties keep order
    for g in ranked:
        g["rank"] = 1 + sum(key(h) < key(g) for h in ranked)
    unranked = [g for g in groups if g["n_metric"] == 0]
    for g in unranked:
        g["rank"] = None
    for g in groups:
        g["top_group"], g["p_vs_best"] = False, math.nan
    if ranked:
        seeds = sorted(set().union(*(g["outcome"].index for g in ranked)))
        outcomes = {i: g["outcome"].reindex(seeds).to_numpy(dtype=float)
                    for i, g in enumerate(ranked)}
        member, adjusted = stats.top_group(outcomes, best=0)
        for i, g in enumerate(ranked):
            g["top_group"], g["p_vs_best"] = member[i], adjusted[i]
    return ranked + unranked


def _significance_note(groups: list[dict[str, Any]], backend: str) -> str | None:
    """A note when the seeds are too few for any difference to be significant: Holm's first
    step compares the smallest of the k p-values with α / k, and an exact signed-rank test over
    n pairs cannot go below 2 / 2^n."""
    ranked = [g for g in groups if g["rank"] is not None]
    if len(ranked) < 2:
        return None
    k = len(ranked) - 1  # comparisons with the best
    best = ranked[0]["outcome"]
    shared = max(len(best.index.intersection(g["outcome"].index)) for g in ranked[1:])
    p_min = stats.min_attainable_p(shared)
    if p_min * k < stats.ALPHA:
        return None
    needed = next(n for n in range(1, 64) if stats.min_attainable_p(n) * k < stats.ALPHA)
    where = f" ({backend})" if backend else ""
    return (f"No significance can be claimed{where}: with {shared} paired seed(s) the smallest "
            f"attainable two-sided p-value is {format_number(p_min)}, and Holm's correction "
            f"over {k} comparison(s) needs one below {format_number(stats.ALPHA / k)}, so "
            f"every ranked initializer shares the top group (=1); run at least {needed} seeds "
            "to separate them.")


def _goal(trials: pd.DataFrame, metric: str, notes: list[str]) -> str:
    goals = [g for g in pd.unique(trials["goal"]) if g in GOAL_TEXT]
    if goals:
        return goals[0]
    from ntkbench.evaluation import METRICS

    if metric in METRICS:
        return METRICS[metric].goal
    notes.append(f"The goal of metric {metric!r} is unknown; ranked assuming lower is better.")
    return "min"


def _task_table(task: str, trials: pd.DataFrame, present: set[str]) -> TaskTable:
    notes: list[str] = []
    metrics = [m for m in pd.unique(trials["metric"]) if m]
    metric = metrics[0] if metrics else "final_test_metric"
    if len(metrics) > 1:
        notes.append(f"Trials of this task disagree on the metric ({', '.join(metrics)}); "
                     "each group is scored by its own final test metric.")
    goal = _goal(trials, metric, notes)
    show_backend = trials["backend"].nunique() > 1
    show_sweep = bool((trials["sweep"] != "").any())
    optional = [name for source, name in OPTIONAL_SOURCES.items() if source in present]
    if STEPS_TARGET in optional and STEPS in optional:
        optional.remove(STEPS)  # the common target replaces each initializer's own start

    groups = []
    for backend, facet in trials.groupby("backend", sort=False):
        cells = [{"label": label, "backend": backend, "sweep": sweep,
                  **_group_stats(group, goal)}
                 for (label, sweep), group in facet.groupby(["label", "sweep"], sort=False)]
        cells = _rank(cells, goal)
        note = _significance_note(cells, backend if show_backend else "")
        if note:
            notes.append(note)
        groups += cells
        groups += _references(facet, backend)

    columns = [RANK, INITIALIZER, *([BACKEND] if show_backend else []),
               *([SWEEP] if show_sweep else []), SEEDS, metric, *optional]
    rows = [_display_row(g, show_backend, show_sweep, optional) for g in groups]
    for g in groups:
        if g["status"] not in ("ok", "reference"):
            where = ", ".join(v for v, shown in ((g["backend"], show_backend),
                                                  (g["sweep"], show_sweep)) if shown and v)
            error = g["first_error"]
            if len(error) > _ERROR_CHARS:
                error = error[:_ERROR_CHARS - 1] + "…"
            notes.append(f"{g['label']}{f' ({where})' if where else ''}: {g['status']}"
                         + (f"; first error: {error}" if error else ""))
    numeric = pd.DataFrame(
        [{**{k: g.get(k) for k in NUMERIC_COLUMNS}, "task": task, "initializer": g["label"],
          "sweep": g["sweep"], "metric": metric} for g in groups],
        columns=list(NUMERIC_COLUMNS))
    numeric["rank"] = numeric["rank"].astype("Int64")
    numeric["top_group"] = numeric["top_group"].astype(bool)
    return TaskTable(task=task, metric=metric, goal=goal, columns=columns, rows=rows,
                     numeric=numeric, notes=notes)


def _references(facet: pd.DataFrame, backend: str) -> list[dict[str, Any]]:
    """The predict-the-mean rows of one backend: the test metric per seed (the same for every
    initializer of a seed), summarised like a group; one row per sweep label when the sweep
    changes it (e.g. a sweep over the data), else one row. Empty when not recorded."""
    per_sweep = {}
    for sweep, cells in facet.groupby("sweep", sort=False):
        values = cells.groupby("seed")["mean_predictor.test_metric"].first()
        values = values[np.isfinite(values.to_numpy(dtype=float))]
        if len(values):
            per_sweep[sweep] = values
    if not per_sweep:
        return []
    first = next(iter(per_sweep.values()))
    if all(v.index.equals(first.index) and np.allclose(v, first) for v in per_sweep.values()):
        per_sweep = {"": first}
    return [_reference_row(values.to_numpy(dtype=float), backend, sweep)
            for sweep, values in per_sweep.items()]


def _reference_row(per_seed: np.ndarray, backend: str, sweep: str) -> dict[str, Any]:
    summary = stats.summarize(per_seed)
    mean, std, n = _mean_std(pd.Series(per_seed))
    return {"label": REFERENCE, "backend": backend, "sweep": sweep, "rank": None,
            "top_group": False, "p_vs_best": math.nan, "n_ok": n, "n_total": n, "n_metric": n,
            "metric_mean": mean, "metric_std": std, "metric_ci_low": summary.ci_low,
            "metric_ci_high": summary.ci_high, "metric_median": summary.median,
            "metric_iqm": summary.iqm, "ci_method": summary.ci_method, "status": "reference",
            "n_align": 0, "alignment_init_mean": math.nan, "alignment_init_std": math.nan,
            "n_drift": 0, "drift_mean": math.nan, "drift_std": math.nan,
            "wall_time_s": math.nan, "first_error": ""}


def _display_row(g: dict[str, Any], show_backend: bool, show_sweep: bool,
                 optional: list[str]) -> list[str]:
    ranked = g["rank"] is not None  # the reference row has a metric and nothing else
    scored = ranked or g["status"] == "reference"
    if scored and g["ci_method"] != "none":
        metric = format_mean_ci(g["metric_mean"], g["metric_ci_low"], g["metric_ci_high"])
    elif scored:  # under three ok seeds: no CI, the spread of what there is
        metric = format_mean_std(g["metric_mean"], g["metric_std"], g["n_metric"])
    else:
        metric = g["status"] if g["status"] != "ok" else "no metric"
    cells = {
        STEPS: _steps_cell(g, "10pct") if ranked else MISSING,
        STEPS_TARGET: _steps_cell(g, "target") if ranked else MISSING,
        ALIGNMENT: format_mean_std(g["alignment_init_mean"], g["alignment_init_std"],
                                   g["n_align"]),
        DRIFT: format_mean_std(g["drift_mean"], g["drift_std"], g["n_drift"]) if ranked
        else MISSING,
        WALL_TIME: format_number(g["wall_time_s"]) if ranked else MISSING,
        NTK_LIMIT: format_mean_std(g.get("ntk_limit_mean", math.nan),
                                   g.get("ntk_limit_std", math.nan), g.get("n_ntk_limit", 0)),
    }
    return [_rank_cell(g), g["label"],
            *([g["backend"]] if show_backend else []), *([g["sweep"]] if show_sweep else []),
            f"{g['n_ok']}/{g['n_total']}", metric, *(cells[name] for name in optional)]


def _rank_cell(g: dict[str, Any]) -> str:
    """``=1`` for a top-group member, the rank otherwise, ``ref`` for the reference row, ``—``
    when unranked."""
    if g["status"] == "reference":
        return "ref"
    if g["rank"] is None:
        return MISSING
    return "=1" if g["top_group"] else str(g["rank"])


def _steps_cell(g: dict[str, Any], which: str) -> str:
    """Median steps over ok seeds that reached the target (``which``: ``"target"`` or
    ``"10pct"``); ``(k/n)`` when only k of n ok seeds did; ``never`` when none did."""
    reached = g[f"n_reached_{which}"]
    if reached == 0:
        return "never"
    median = format_steps(g[f"steps_to_{which}"])
    if reached < g["n_ok"]:
        return f"{median} ({reached}/{g['n_ok']})"
    return median
