"""Does the kernel at initialization predict the outcome?

Per task (and backend), the Spearman rank correlation ρ across trials between each NTK
measurement at step 0 and each training outcome, with a 95% paired-bootstrap CI (trials are
resampled as (measurement, outcome) pairs) and scipy's p-value. Spearman rather than Pearson:
the measurements span orders of magnitude (λ_max, the condition number) and only a monotone
relation is claimed.

Trials that are not ``ok`` are left out (their outcome is undefined). A trial whose train loss
never fell to 10% of its start counts as the slowest (``+inf`` steps) rather than being dropped,
so that "never" is not silently removed from the correlation; but at least :data:`MIN_TRIALS`
trials must have reached it, since a ranking that is mostly one tie says nothing.

Reference: Spearman (1904); the CI is the percentile bootstrap of Efron & Tibshirani (1993).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from ntkbench.report.stats import CONFIDENCE, N_RESAMPLES

# Column of the results table → label: NTK measurements at initialization.
MEASURES = {
    "ntk_init.centered_alignment": "centred alignment",
    "ntk_init.top10pct_alignment": "top-10% alignment",
    "ntk_init.condition_number": "condition number",
    "ntk_init.lambda_max": "λ_max",
    "ntk_init.rkhs_norm_complexity": "yᵀK⁻¹y/n",
    "ntk_init.analytic_distance": "distance to analytic NTK",
}
OUTCOMES = {"final_test_metric": "final test metric", "steps_to_10pct": "steps to 10%"}
MIN_TRIALS = 5  # below this many pairs no correlation is reported


def spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's ρ along ``axis`` (average ranks for ties), vectorised over the other axes so
    that ``scipy.stats.bootstrap`` can evaluate every resample at once; ``nan`` where either
    ranking is constant."""
    rx = sps.rankdata(x, axis=axis)
    ry = sps.rankdata(y, axis=axis)
    rx = rx - rx.mean(axis=axis, keepdims=True)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(axis=axis) / np.sqrt((rx**2).sum(axis=axis) * (ry**2).sum(axis=axis))


def spearman_ci(x: np.ndarray, y: np.ndarray, confidence: float = CONFIDENCE, seed: int = 0
                ) -> tuple[float, float]:
    """Percentile-bootstrap CI of Spearman's ρ over paired resamples of ``(x, y)``; resamples
    whose ρ is undefined (a constant ranking) are left out. ``(nan, nan)`` when too few remain."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(x), size=(N_RESAMPLES, len(x)))
    rho = spearman(np.asarray(x)[index], np.asarray(y)[index])
    rho = rho[np.isfinite(rho)]
    if len(rho) < N_RESAMPLES // 2:
        return math.nan, math.nan
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(rho, [tail, 100 - tail])
    return float(low), float(high)


def ntk_predictors(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, backend, measure, outcome) with at least :data:`MIN_TRIALS` pairs:
    columns ``task, backend, measure, measure_label, outcome, outcome_label, goal, n, rho,
    ci_low, ci_high, p_value``. ``goal`` is the outcome's direction (``min``/``max``), so a
    reader knows whether a positive ρ means "predicts better"."""
    rows = []
    present = [m for m in MEASURES if m in df.columns]
    if not present or "task" not in df.columns:
        return pd.DataFrame(columns=_COLUMNS)
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    backend = ok["backend"] if "backend" in ok.columns else pd.Series("", index=ok.index)
    for (task, be), trials in ok.groupby([ok["task"], backend], sort=False):
        goal_metric = str(trials["metric_goal"].iloc[0]) if "metric_goal" in trials else "min"
        for outcome in OUTCOMES:
            if outcome not in trials.columns:
                continue
            y = pd.to_numeric(trials[outcome], errors="coerce").to_numpy(dtype=float)
            if outcome == "steps_to_10pct":
                y = np.where(np.isnan(y), np.inf, y)  # never reached: the slowest
            goal = goal_metric if outcome == "final_test_metric" else "min"
            for measure in present:
                x = pd.to_numeric(trials[measure], errors="coerce").to_numpy(dtype=float)
                keep = np.isfinite(x) & ~np.isnan(y)
                if keep.sum() < MIN_TRIALS:
                    continue
                xs, ys = x[keep], y[keep]
                if np.isfinite(ys).sum() < MIN_TRIALS or len(np.unique(xs)) < 2:
                    continue  # e.g. most trials never reached 10%: one big tie, no ranking
                result = sps.spearmanr(xs, np.where(np.isinf(ys), np.finfo(float).max, ys))
                low, high = spearman_ci(xs, ys)
                rows.append({"task": task, "backend": be, "measure": measure,
                             "measure_label": MEASURES[measure], "outcome": outcome,
                             "outcome_label": OUTCOMES[outcome], "goal": goal,
                             "n": int(keep.sum()), "rho": float(result.statistic),
                             "ci_low": low, "ci_high": high, "p_value": float(result.pvalue)})
    return pd.DataFrame(rows, columns=_COLUMNS)


_COLUMNS = ["task", "backend", "measure", "measure_label", "outcome", "outcome_label", "goal",
            "n", "rho", "ci_low", "ci_high", "p_value"]
