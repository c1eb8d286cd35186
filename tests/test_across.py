"""Across-task statistics against closed forms, Demšar's table and scikit-posthocs."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ntkbench.report import leaderboard
from ntkbench.report.across import TAUS, across_tasks, critical_difference

# Demšar (2006), Table 5(a): q_0.05 for the two-tailed Nemenyi test, k = 2..10.
DEMSAR_Q05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]


def test_critical_difference_matches_demsars_table():
    for k, q in zip(range(2, 11), DEMSAR_Q05, strict=True):
        n = 14
        assert critical_difference(k, n) == pytest.approx(q * math.sqrt(k * (k + 1) / (6 * n)),
                                                          abs=2e-3)


def _trial(task, label, seed, value, status="ok", backend="torch", metric="test_mse"):
    goal = "max" if metric != "test_mse" else "min"
    return {"task": task, "init_label": label, "initializer": label, "backend": backend,
            "seed": seed, "status": status, "metric": metric, "metric_goal": goal,
            "final_test_metric": value if status == "ok" else math.nan}


def _results(values: dict[str, list[float]], **kw) -> pd.DataFrame:
    """values: initializer → one test MSE per task (two identical seeds each)."""
    n_tasks = len(next(iter(values.values())))
    return pd.DataFrame([_trial(f"task{t}", label, s, v[t], **kw) for label, v in values.items()
                         for t in range(n_tasks) for s in range(2)])


def test_mean_ranks_and_friedman_match_the_closed_form():
    rng = np.random.default_rng(3)
    mse = rng.uniform(0.1, 1.0, size=(4, 12))  # 4 initializers × 12 tasks, no ties
    values = {f"init{j}": list(mse[j]) for j in range(4)}
    (summary,) = across_tasks(leaderboard(_results(values)))
    ranks = np.argsort(np.argsort(mse, axis=0), axis=0) + 1.0  # rank 1 = lowest MSE
    expected = pd.Series(ranks.mean(axis=1), index=list(values))
    pd.testing.assert_series_equal(summary.mean_rank, expected[summary.mean_rank.index],
                                   check_names=False)
    k, n = 4, 12
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(ranks.mean(axis=1) ** 2) - k * (k + 1) ** 2 / 4)
    assert summary.friedman_statistic == pytest.approx(chi2, rel=1e-12)
    assert summary.friedman_p == pytest.approx(sps.chi2.sf(chi2, k - 1), rel=1e-9)


def test_nemenyi_p_values_agree_with_the_critical_difference():
    rng = np.random.default_rng(11)
    # A clear order plus noise: some pairs separate, some do not.
    mse = np.arange(5)[:, None] * 0.3 + rng.uniform(0, 1.0, size=(5, 20))
    (summary,) = across_tasks(leaderboard(_results({f"i{j}": list(mse[j]) for j in range(5)})))
    names = list(summary.mean_rank.index)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    separated = [summary.significant(a, b) for a, b in pairs]
    assert any(separated) and not all(separated)
    for (a, b), sep in zip(pairs, separated, strict=True):
        gap = abs(summary.mean_rank[a] - summary.mean_rank[b])
        if abs(gap - summary.critical_difference) > 0.05:  # away from the boundary
            assert bool(summary.nemenyi_p.loc[a, b] < 0.05) is sep, (a, b, gap)


def test_a_group_with_a_failed_seed_ranks_below_every_complete_one():
    df = _results({"a": [0.1, 0.1], "b": [0.2, 0.2], "c": [0.3, 0.3]})
    # "a" fails one seed on task0; on task1 it keeps first place.
    df.loc[(df.init_label == "a") & (df.task == "task0") & (df.seed == 1), "status"] = "failed"
    (summary,) = across_tasks(leaderboard(df))
    assert summary.ranks.loc["task0"].to_dict() == {"a": 3.0, "b": 1.0, "c": 2.0}
    assert summary.ranks.loc["task1"].to_dict() == {"a": 1.0, "b": 2.0, "c": 3.0}
    assert math.isinf(summary.cost.loc["task0", "a"])


def test_performance_profile_by_hand():
    # Costs per task (MSE): task0 a=1 b=2 c=4; task1 a=3 b=1.5 c=1.5.
    df = _results({"a": [1.0, 3.0], "b": [2.0, 1.5], "c": [4.0, 1.5]})
    (summary,) = across_tasks(leaderboard(df))
    p = summary.profile
    assert p.loc[1.0].to_dict() == {"a": 0.5, "b": 0.5, "c": 0.5}
    assert p.loc[2.0].to_dict() == {"a": 1.0, "b": 1.0, "c": 0.5}
    assert p.loc[TAUS[-1]].to_dict() == {"a": 1.0, "b": 1.0, "c": 1.0}


def test_costs_of_accuracy_and_decibels():
    df = pd.concat([
        _results({"a": [0.9], "b": [0.8]}, metric="test_accuracy"),
        _results({"a": [20.0], "b": [30.0]}, metric="test_snr_db").assign(task="snr")])
    (summary,) = across_tasks(leaderboard(df))
    assert summary.cost.loc["task0"].to_numpy() == pytest.approx([0.1, 0.2])
    assert summary.cost.loc["snr"].to_numpy() == pytest.approx([0.01, 0.001])
    assert summary.profile.loc[2.0].to_dict() == {"a": 0.5, "b": 1.0}


def test_backends_apart_and_incomplete_initializers_left_out():
    torch = _results({"a": [0.1, 0.2], "b": [0.2, 0.1], "c": [0.3, 0.3]})
    jax = _results({"a": [0.5, 0.5], "b": [0.1, 0.1]}, backend="jax")
    extra = pd.DataFrame([_trial("task0", "d", s, 0.01) for s in range(2)])
    summaries = across_tasks(leaderboard(pd.concat([torch, jax, extra])))
    assert [s.backend for s in summaries] == ["torch", "jax"]
    assert list(summaries[0].mean_rank.index) == ["a", "b", "c"]
    assert any("d" in n and "every task" in n for n in summaries[0].notes)
    assert math.isnan(summaries[1].friedman_p)  # two initializers: no Friedman
