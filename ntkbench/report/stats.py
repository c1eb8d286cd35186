"""Statistics for leaderboards: per-cell summaries with bootstrap CIs, paired comparisons
between initializers, and significance-aware top groups.

Every function is pure: arrays in, numbers out. Outcomes are first *oriented* so that lower is
better (:func:`oriented`); a trial that failed or diverged scores ``+inf``, worse than any
finished trial, as AlgoPerf scores a failed run as infinite time. That is how a cell with one
diverged seed out of two is kept from ranking first on its one good seed.

Seeds are paired across initializers (seed ``s`` draws the same data split and batch order for
every initializer), so comparisons between two cells are paired by seed.

References:
    Efron & Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 13-14 (percentile, BCa).
    Wilcoxon (1945), signed-rank test; Holm (1979), step-down multiple-test correction.
    Agarwal et al. (2021), *Deep RL at the edge of the statistical precipice* (IQM,
    probability of improvement).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05
CI_MIN_N = 3  # a bootstrap of two values only resamples {a, (a+b)/2, b}: their range, no CI
BCA_MIN_N = 8  # below this many values BCa's jackknife acceleration is too noisy: percentile
N_RESAMPLES = 9999
EXACT_MAX_N = 13  # 2**13 = 8192 sign patterns <= N_RESAMPLES: the permutation test is exact


@dataclass(frozen=True)
class Summary:
    """Location and 95% bootstrap CI of one cell's finite outcomes.

    Attributes:
        n: number of finite values summarised.
        mean, median, iqm: the mean, the median and the interquartile mean (the mean of the
            middle 50%, ``scipy.stats.trim_mean(x, 0.25)``; Agarwal et al. 2021).
        ci_low, ci_high: bounds of the bootstrap CI of the mean (``nan`` below
            :data:`CI_MIN_N` values).
        ci_method: ``"BCa"``, ``"percentile"``, ``"exact"`` (every value equal, so every
            resample has the same mean) or ``"none"`` (fewer than :data:`CI_MIN_N` values).
    """

    n: int
    mean: float
    median: float
    iqm: float
    ci_low: float
    ci_high: float
    ci_method: str


def oriented(values: np.ndarray, ok: np.ndarray, goal: str) -> np.ndarray:
    """Outcomes with lower = better: ``values`` for ``goal="min"``, ``-values`` for ``"max"``;
    entries that are not ``ok`` or not finite become ``+inf`` (the worst outcome)."""
    if goal not in ("min", "max"):
        raise ValueError(f"goal must be 'min' or 'max', not {goal!r}")
    x = np.asarray(values, dtype=float) * (1.0 if goal == "min" else -1.0)
    good = np.asarray(ok, dtype=bool) & np.isfinite(x)
    return np.where(good, x, np.inf)


def bootstrap_ci(x: np.ndarray, confidence: float = CONFIDENCE, seed: int = 0,
                 ) -> tuple[float, float, str]:
    """CI of the mean of the finite values of ``x`` by ``scipy.stats.bootstrap``.

    BCa from :data:`BCA_MIN_N` values on, the percentile method below; ``(nan, nan, "none")``
    under :data:`CI_MIN_N` values (two values resample to three possible means, so the
    "interval" would only restate their range), ``(v, v, "exact")`` when all values equal
    ``v``. The resampling is seeded, so the same values always give the same interval.
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < CI_MIN_N:
        return math.nan, math.nan, "none"
    if np.all(x == x[0]):
        return float(x[0]), float(x[0]), "exact"
    method = "BCa" if len(x) >= BCA_MIN_N else "percentile"
    low, high = _bootstrap(x, method, confidence, seed)
    if method == "BCa" and not (math.isfinite(low) and math.isfinite(high)):
        method = "percentile"  # BCa's acceleration is undefined (e.g. a near-constant sample)
        low, high = _bootstrap(x, method, confidence, seed)
    return low, high, method


def _bootstrap(x: np.ndarray, method: str, confidence: float, seed: int) -> tuple[float, float]:
    res = stats.bootstrap((x,), np.mean, confidence_level=confidence, method=method,
                          n_resamples=N_RESAMPLES, vectorized=True,
                          rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(x: np.ndarray, confidence: float = CONFIDENCE, seed: int = 0) -> Summary:
    """:class:`Summary` of the finite values of ``x`` (all ``nan`` when there are none)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan, math.nan, "none")
    low, high, method = bootstrap_ci(x, confidence, seed)
    return Summary(len(x), float(np.mean(x)), float(np.median(x)),
                   float(stats.trim_mean(x, 0.25)), low, high, method)


def _rank_preserving_finite(d: np.ndarray) -> np.ndarray:
    """``d`` with ``±inf`` replaced by ``±(2 · max finite |d| + 1)``: the signed-rank statistic
    depends only on the signs and the ranks of ``|d|``, which this keeps (an infinite difference
    ranks above every finite one), and scipy needs finite input."""
    finite = d[np.isfinite(d)]
    big = 2.0 * (float(np.max(np.abs(finite))) if len(finite) else 1.0) + 1.0
    return np.where(np.isposinf(d), big, np.where(np.isneginf(d), -big, d))


def paired_differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-seed differences ``a - b`` of oriented outcomes (negative: ``a`` is better); two
    failures tie (difference 0), one failure is an infinite difference."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes need one value per seed each: {a.shape} vs {b.shape}")
    both_failed = np.isposinf(a) & np.isposinf(b)
    with np.errstate(invalid="ignore"):
        return np.where(both_failed, 0.0, a - b)


def paired_p_value(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the paired oriented outcomes ``a``, ``b``.

    Zero differences are dropped (Wilcoxon's convention), and so are seeds that only one of
    the two has (``nan``). Up to :data:`EXACT_MAX_N` non-zero
    pairs the null distribution is enumerated exactly (every sign pattern, through
    ``scipy.stats.PermutationMethod``, which also handles tied ranks exactly); above, scipy's
    default (exact without ties, normal approximation otherwise). 1.0 when no pair differs.
    """
    d = paired_differences(a, b)
    d = d[~np.isnan(d) & (d != 0)]  # nan: a seed one of the two cells does not have
    if len(d) == 0:
        return 1.0
    if len(d) == 1:
        return 1.0  # both sign patterns are as extreme as the observed one
    d = _rank_preserving_finite(d)
    method = stats.PermutationMethod(n_resamples=N_RESAMPLES) if len(d) <= EXACT_MAX_N else "auto"
    return float(stats.wilcoxon(d, method=method).pvalue)


def min_attainable_p(n_pairs: int) -> float:
    """Smallest two-sided p-value an exact signed-rank test can give with ``n_pairs`` pairs:
    ``2 / 2**n`` (all differences of one sign). When it is at least α no difference between two
    cells can be significant, whatever the numbers."""
    return min(1.0, 2.0 / 2.0 ** n_pairs) if n_pairs > 0 else 1.0


def paired_difference_ci(a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE,
                         seed: int = 0) -> tuple[float, float, float, int]:
    """Mean paired difference ``a - b`` and its bootstrap CI over the seeds where both are
    finite (a failure has no finite difference); returns ``(mean, low, high, n_pairs)``."""
    d = paired_differences(a, b)
    d = d[np.isfinite(d)]
    low, high, _ = bootstrap_ci(d, confidence, seed)
    return (float(np.mean(d)) if len(d) else math.nan), low, high, len(d)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (control the family-wise error rate).

    With the p-values sorted ascending, ``p_(i)`` becomes ``max_{j<=i} min(1, (m - j) p_(j))``
    (0-based ``j``). Written here because scipy offers only Benjamini–Hochberg
    (``false_discovery_control``) and the formula is three lines; tested against a
    hand-computed example and against statsmodels when it is installed.
    """
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def probability_of_improvement(a: np.ndarray, b: np.ndarray) -> float:
    """P(A better than B): the chance that a random seed of ``a`` beats a random seed of ``b``
    (oriented outcomes, lower is better), ties counting one half — the Mann–Whitney U statistic
    over ``len(a) · len(b)`` (Agarwal et al. 2021). Failures (``+inf``) tie with each other."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) == 0 or len(b) == 0:
        return math.nan
    less = a[:, None] < b[None, :]
    ties = a[:, None] == b[None, :]
    return float(np.mean(less + 0.5 * ties))


def top_group(outcomes: dict[str, np.ndarray], best: str, alpha: float = ALPHA
              ) -> tuple[dict[str, bool], dict[str, float]]:
    """Which cells are not significantly worse than ``best``.

    Each other cell is compared with ``best`` by :func:`paired_p_value` over the seeds both
    have; the p-values are Holm-corrected over those comparisons. A cell is in the top group when
    its adjusted p-value is at least ``alpha`` (``best`` always is).

    Args:
        outcomes: cell name → oriented outcome per seed; all arrays aligned by seed.
        best: the name of the best cell.
    Returns:
        ``(member, adjusted_p)``: per cell, whether it is in the top group, and its Holm-adjusted
        p-value against ``best`` (``nan`` for ``best`` itself).
    """
    others = [name for name in outcomes if name != best]
    raw = np.array([paired_p_value(outcomes[name], outcomes[best]) for name in others])
    adjusted = holm(raw)
    member = {best: True} | {n: bool(p >= alpha) for n, p in zip(others, adjusted, strict=True)}
    return member, {best: math.nan} | dict(zip(others, map(float, adjusted), strict=True))
