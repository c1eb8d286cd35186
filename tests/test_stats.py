"""Leaderboard statistics against independent references: t-intervals, scipy's Wilcoxon and
Mann–Whitney, a hand-computed Holm correction, and constructed data with a known answer."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ntkbench.report import leaderboard, stats


def test_bootstrap_ci_covers_the_mean_like_a_t_interval():
    """On normal samples the 95% BCa interval covers the true mean about 95% of the time and is
    about as wide as the exact t-interval (Monte Carlo error of the coverage: ~1.1% at 400)."""
    rng = np.random.default_rng(1)
    n, draws, covered, ratio = 30, 400, 0, []
    for i in range(draws):
        x = rng.normal(2.0, 3.0, size=n)
        low, high, method = stats.bootstrap_ci(x, seed=i)
        assert method == "BCa"
        covered += low <= 2.0 <= high
        t_half = sps.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n)
        ratio.append((high - low) / (2 * t_half))
    assert 0.91 <= covered / draws <= 0.98  # bootstrap intervals undercover slightly at n=30
    assert 0.88 <= np.mean(ratio) <= 1.02


def test_bootstrap_ci_method_by_sample_size():
    assert stats.bootstrap_ci([1.0])[2] == "none"
    assert stats.bootstrap_ci([1.0, 2.0])[2] == "none"  # two values: only their range
    assert stats.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, "exact")
    low, high, method = stats.bootstrap_ci([1.0, 2.0, 4.0])
    assert method == "percentile" and 1.0 <= low < high <= 4.0
    assert stats.bootstrap_ci(np.arange(8.0))[2] == "BCa"
    # Seeded: the same values give the same interval.
    assert stats.bootstrap_ci([1.0, 5.0, 2.0]) == stats.bootstrap_ci([1.0, 5.0, 2.0])


def test_summary_median_and_iqm():
    x = np.array([1.0, 2.0, 3.0, 4.0, 100.0, 5.0, 6.0, 7.0, np.nan])
    s = stats.summarize(x)
    finite = x[np.isfinite(x)]
    assert s.n == 8 and s.mean == pytest.approx(finite.mean())
    assert s.median == pytest.approx(np.median(finite))
    assert s.iqm == pytest.approx(np.mean(np.sort(finite)[2:6]))  # middle 50%: 3, 4, 5, 6


def test_oriented_makes_lower_better_and_failures_worst():
    out = stats.oriented(np.array([0.9, 0.5, np.nan]), np.array([True, False, True]), "max")
    assert list(out) == [-0.9, math.inf, math.inf]
    with pytest.raises(ValueError, match="goal"):
        stats.oriented(np.zeros(1), np.ones(1), "up")


def test_paired_p_value_equals_scipys_exact_wilcoxon():
    rng = np.random.default_rng(3)
    for _ in range(20):
        a, b = rng.normal(size=9), rng.normal(size=9) + 0.5
        expected = sps.wilcoxon(a - b, method="exact").pvalue
        assert stats.paired_p_value(a, b) == pytest.approx(expected, rel=1e-12)


def test_a_failure_is_the_largest_paired_difference():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    b = a + np.array([0.1, -0.2, 0.3, 0.4, 0.5, 0.6])
    b_failed = b.copy()
    b_failed[1] = math.inf  # b's one better seed now failed: b is worse on every seed
    assert stats.paired_p_value(a, b_failed) == pytest.approx(stats.min_attainable_p(6))
    # Same ranks as a huge finite difference at that seed.
    b_huge = b.copy()
    b_huge[1] = 1e9
    assert stats.paired_p_value(a, b_failed) == stats.paired_p_value(a, b_huge)
    both = np.array([math.inf] * 3)
    assert stats.paired_p_value(both, both) == 1.0  # two failures tie


def test_min_attainable_p():
    assert stats.min_attainable_p(2) == 0.5 and stats.min_attainable_p(6) == 2 / 64
    x = np.arange(1.0, 7.0)
    assert stats.paired_p_value(np.zeros(6), x) == pytest.approx(stats.min_attainable_p(6))


def test_holm_against_a_hand_computed_example():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 → ×4, ×3, ×2, ×1 = 0.02, 0.03, 0.06, 0.04 → running max
    np.testing.assert_allclose(stats.holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm(np.array([0.5, 0.9])), [1.0, 1.0])


def test_holm_matches_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(0).uniform(0, 0.2, size=12)
    np.testing.assert_allclose(stats.holm(p), multitest.multipletests(p, method="holm")[1])


def test_probability_of_improvement_is_mann_whitney_u():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=7).round(1), rng.normal(0.3, size=5).round(1)  # rounding: ties
    u = sps.mannwhitneyu(b, a).statistic  # pairs where b > a (ties 1/2): a is better there
    assert stats.probability_of_improvement(a, b) == pytest.approx(u / (7 * 5))
    assert stats.probability_of_improvement(np.array([math.inf]), np.array([1.0])) == 0.0


def test_paired_difference_ci_uses_only_pairs_that_both_finished():
    a = np.array([1.0, 2.0, 3.0, math.inf])
    b = np.array([2.0, 3.5, 4.0, 1.0])
    mean, low, high, n = stats.paired_difference_ci(a, b)
    assert n == 3 and mean == pytest.approx(-3.5 / 3) and low <= mean <= high


def test_top_group_on_constructed_data():
    rng = np.random.default_rng(7)
    best = rng.normal(size=8)
    outcomes = {"best": best,
                "worse": best + 1.0,  # worse on every seed: p = 2/256, Holm ×2 = 0.0156
                "same": best + rng.normal(0, 0.01, size=8) * np.array([1, -1] * 4)}
    member, adjusted = stats.top_group(outcomes, best="best")
    assert member == {"best": True, "worse": False, "same": True}
    assert adjusted["worse"] == pytest.approx(2 * 2 / 256)


def _trial(label, seed, value, status="ok", backend="torch"):
    return {"task": "t", "init_label": label, "initializer": label, "backend": backend,
            "seed": seed, "status": status, "metric": "test_mse", "metric_goal": "min",
            "final_test_metric": value if status == "ok" else math.nan}


def test_half_diverged_cell_does_not_rank_first_on_its_good_seed():
    df = pd.DataFrame([_trial("lsuv", 0, 0.01), _trial("lsuv", 1, 0, "diverged"),
                       _trial("he", 0, 0.20), _trial("he", 1, 0.30)])
    (t,) = leaderboard(df)
    assert list(t.numeric["initializer"]) == ["he", "lsuv"]
    assert list(t.numeric["rank"]) == [1, 2]


def test_significance_separates_cells_with_enough_seeds():
    rows = []
    for s in range(8):
        rows += [_trial("good", s, 0.1 + 0.01 * s), _trial("bad", s, 0.5 + 0.01 * s),
                 _trial("twin", s, 0.1 + 0.01 * s + (0.001 if s % 2 else -0.001))]
    (t,) = leaderboard(pd.DataFrame(rows))
    num = t.numeric.set_index("initializer")
    assert num.loc["good", "top_group"] and num.loc["twin", "top_group"]
    assert not num.loc["bad", "top_group"]
    assert [r[0] for r in t.rows] == ["=1", "=1", "3"]
    assert not any("No significance" in n for n in t.notes)
    low, high = num.loc["bad", "metric_ci_low"], num.loc["bad", "metric_ci_high"]
    assert low < num.loc["bad", "metric_mean"] < high and num.loc["bad", "ci_method"] == "BCa"


@pytest.mark.parametrize("n_seeds, separable", [(7, False), (8, True)])
def test_the_no_significance_note_accounts_for_holm(n_seeds, separable):
    # Six initializers: Holm's first step needs the smallest p below 0.05 / 5 = 0.01, and
    # 2 / 2^n is 0.0156 at 7 seeds, 0.0078 at 8. "bad" is worse on every seed.
    rows = [_trial(label, s, offset + 0.01 * s) for s in range(n_seeds)
            for label, offset in [("good", 0.1), ("bad", 0.9)]
            + [(f"twin{i}", 0.1) for i in range(4)]]
    (t,) = leaderboard(pd.DataFrame(rows))
    notes = [n for n in t.notes if "No significance" in n]
    bad = t.numeric.set_index("initializer").loc["bad"]
    assert bool(bad["top_group"]) is not separable
    assert bool(bad["p_vs_best"] < 0.05) is separable
    if separable:
        assert notes == []
    else:
        assert len(notes) == 1 and "run at least 8 seeds" in notes[0]


def test_backends_are_ranked_separately():
    df = pd.DataFrame([_trial("a", 0, 0.1, backend="torch"), _trial("b", 0, 0.2, backend="torch"),
                       _trial("a", 0, 0.3, backend="jax"), _trial("b", 0, 0.4, backend="jax")])
    (t,) = leaderboard(df)
    assert list(zip(t.numeric["backend"], t.numeric["rank"], strict=True)) == [
        ("torch", 1), ("torch", 2), ("jax", 1), ("jax", 2)]
    assert sum("No significance can be claimed (" in n for n in t.notes) == 2
