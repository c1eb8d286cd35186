"""Spearman ρ between NTK measurements at init and outcomes, against scipy."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ntkbench.report.predictors import ntk_predictors, spearman, spearman_ci


def test_spearman_matches_scipy_with_ties_and_vectorised():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=(7, 20)).astype(float)  # many ties
    y = x + rng.normal(size=(7, 20))
    rho = spearman(x, y)
    for i in range(7):
        assert rho[i] == pytest.approx(sps.spearmanr(x[i], y[i]).statistic, abs=1e-12)


def test_spearman_ci_brackets_the_estimate_and_narrows_with_n():
    rng = np.random.default_rng(1)
    widths = []
    for n in (15, 200):
        x = rng.normal(size=n)
        y = 0.6 * x + rng.normal(size=n)
        low, high = spearman_ci(x, y)
        assert low < spearman(x, y) < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2


def _df(n=8):
    rng = np.random.default_rng(2)
    align = rng.uniform(0, 1, size=n)
    return pd.DataFrame({
        "task": "t", "backend": "torch", "status": "ok", "metric_goal": "min",
        "ntk_init.centered_alignment": align,
        "ntk_init.lambda_max": rng.uniform(1, 10, size=n),
        "final_test_metric": 1.0 - align,  # better (lower) test MSE with higher alignment
        "steps_to_10pct": np.where(align > 0.1, 100 * (1 - align), np.nan),  # 6 of 8 reach
    })


def test_perfectly_monotone_relation_and_never_as_slowest():
    out = ntk_predictors(_df()).set_index(["measure", "outcome"])
    row = out.loc[("ntk_init.centered_alignment", "final_test_metric")]
    assert row["rho"] == pytest.approx(-1.0) and row["goal"] == "min" and row["n"] == 8
    steps = out.loc[("ntk_init.centered_alignment", "steps_to_10pct")]
    # "never" (nan) counts as the slowest (tied among themselves), not as a dropped trial.
    d = _df()
    slowest = d["steps_to_10pct"].fillna(1e9)
    assert steps["n"] == 8 and d["steps_to_10pct"].isna().sum() >= 2
    assert steps["rho"] == pytest.approx(
        sps.spearmanr(d["ntk_init.centered_alignment"], slowest).statistic)
    assert steps["rho"] < -0.8
    lam = out.loc[("ntk_init.lambda_max", "final_test_metric")]
    x, y = _df()["ntk_init.lambda_max"], _df()["final_test_metric"]
    assert lam["rho"] == pytest.approx(sps.spearmanr(x, y).statistic)
    assert lam["p_value"] == pytest.approx(sps.spearmanr(x, y).pvalue)


def test_steps_are_left_out_when_too_few_trials_reached_10pct():
    df = _df()
    df.loc[df["ntk_init.centered_alignment"] < 0.7, "steps_to_10pct"] = np.nan  # 2 reach
    out = ntk_predictors(df)
    assert set(out["outcome"]) == {"final_test_metric"}


def test_failed_trials_and_too_few_pairs_are_left_out():
    df = _df(6)
    df.loc[0, "status"] = "diverged"
    assert len(ntk_predictors(df)) > 0  # 5 ok trials: reported
    df.loc[1, "status"] = "failed"
    assert len(ntk_predictors(df)) == 0  # 4: too few
