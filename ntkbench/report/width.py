"""Width convergence: how fast a measurement at initialization approaches its infinite-width value.

For a run that sweeps ``model.width``, fit per (task, initializer, backend) the power law

    y(n) ≈ a · n^p       by least squares on   log y = log a + p log n

over every ok trial (one point per trial, seeds pooled), with ``y`` a positive measurement
such as ``ntk_init.analytic_distance`` = ‖K_emp − K_∞‖_F / ‖K_∞‖_F (the relative distance of the
empirical NTK at init to the analytic one moment-matched to the same weights). For i.i.d.
Gaussian weights the empirical NTK is an average over n units, so its fluctuation, and this
distance, shrink as ``n^{−1/2}`` (Jacot et al. 2018; Hanin & Nica 2020 for the finite-depth
correction); Huang, Du & Xu (2021) prove the same limit and rate for orthogonal weights.

The fit is ``scipy.stats.linregress`` on the logs; the slope's 95% CI is
``p ± t_{0.975, m−2} · stderr`` over the ``m`` points (which assumes independent log-normal
scatter around the line: seeds are independent draws, so it holds for the pooled points).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from ntkbench.report.figures import trial_labels

COLUMNS = ("task", "initializer", "backend", "measure", "widths", "n_points", "exponent",
           "exponent_ci_low", "exponent_ci_high", "prefactor", "r_squared")
DEFAULT_MEASURE = "ntk_init.analytic_distance"


def power_law_fit(width: np.ndarray, y: np.ndarray, confidence: float = 0.95) -> dict:
    """``{exponent, exponent_ci_low, exponent_ci_high, prefactor, r_squared, n_points}`` of
    ``y ≈ prefactor · width^exponent`` (module docstring); NaN when fewer than 3 points with
    positive, finite values at two or more widths."""
    width, y = np.asarray(width, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(width) & np.isfinite(y) & (width > 0) & (y > 0)
    width, y = width[keep], y[keep]
    out = {"n_points": int(len(y)), "exponent": math.nan, "exponent_ci_low": math.nan,
           "exponent_ci_high": math.nan, "prefactor": math.nan, "r_squared": math.nan}
    if len(y) < 3 or len(np.unique(width)) < 2:
        return out
    fit = sps.linregress(np.log(width), np.log(y))
    half = sps.t.ppf(0.5 + confidence / 2, len(y) - 2) * fit.stderr
    out.update(exponent=float(fit.slope), exponent_ci_low=float(fit.slope - half),
               exponent_ci_high=float(fit.slope + half), prefactor=float(math.exp(fit.intercept)),
               r_squared=float(fit.rvalue ** 2))
    return out


def width_convergence(df: pd.DataFrame, measure: str = DEFAULT_MEASURE) -> pd.DataFrame:
    """One row per (task, initializer label, backend) of the results ``df`` (columns
    :data:`COLUMNS`): the power-law fit of ``measure`` against ``model.width``."""
    for column in ("model.width", measure):
        if column not in df.columns:
            raise ValueError(f"the results have no column {column!r}: a width convergence fit "
                             f"needs trials that sweep model.width and record {measure!r}")
    rows = df[df["status"] == "ok"] if "status" in df.columns else df
    # Group by initializer and every swept field except the width itself (the figures' labels
    # carry the whole sweep label, which would give one width per group).
    other = (rows["sweep_label"].fillna("").astype(str).map(_without_width)
             if "sweep_label" in rows.columns else pd.Series("", index=rows.index))
    base = trial_labels(rows.assign(sweep_label=""))
    rows = rows.assign(_label=base.where(other == "", base + " " + other),
                       _backend=rows["backend"] if "backend" in rows else "")
    out = []
    for (task, label, backend), group in rows.groupby(["task", "_label", "_backend"],
                                                      sort=True):
        widths = group["model.width"].to_numpy(dtype=float)
        fit = power_law_fit(widths, group[measure].to_numpy(dtype=float))
        out.append({"task": task, "initializer": label, "backend": backend, "measure": measure,
                    "widths": sorted({int(w) for w in widths if math.isfinite(w)}), **fit})
    return pd.DataFrame(out, columns=list(COLUMNS))


def _without_width(sweep_label: str) -> str:
    """A trial's sweep label (``"model.depth=4, model.width=64"``) without the width part."""
    return ", ".join(part for part in sweep_label.split(", ")
                     if part and not part.startswith("model.width="))
