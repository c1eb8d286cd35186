"""truncated_normal, lecun_uniform, sparse and identity/eye: formulas and torch.nn.init.

Tolerances come from the sample size: a moment must lie within ``Z = 5`` standard errors of its
expectation and a KS / chi-square test must give p > 1e-4 (fixed seeds, so every run gives the
same verdict).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from ntkbench import registry
from ntkbench.initializers import classical
from tests.test_initializers import LAYER, draw, torch_draw

Z = 5.0
P_MIN = 1e-4


def assert_moments_and_ks(w: np.ndarray, dist) -> None:
    """Mean within Z·σ/√N; sample variance within Z·SE(s²), SE² = (μ4 − σ⁴(N−3)/(N−1))/N with
    μ4 = (3 + excess kurtosis)σ⁴; KS p > P_MIN."""
    mean, var, _, excess = (float(m) for m in dist.stats(moments="mvsk"))
    n = w.size
    assert abs(w.mean() - mean) <= Z * math.sqrt(var / n), (w.mean(), mean)
    se = math.sqrt(((3.0 + excess) * var**2 - var**2 * (n - 3) / (n - 1)) / n)
    assert abs(w.var(ddof=1) - var) <= Z * se, (w.var(ddof=1), var)
    assert stats.kstest(w.ravel(), dist.cdf).pvalue > P_MIN


# --- truncated_normal ---------------------------------------------------------------------------

# (mean, std, a, b), one case per branch of the rejection sampler.
TRUNC_CASES = [
    (0.0, 1.0, -2.0, 2.0),     # torch's default: N(0, 1) proposal
    (0.3, 0.5, -0.2, 0.6),     # narrow interval around the mean: uniform proposal
    (0.0, 1.0, 3.0, 10.0),     # right tail: exponential proposal
    (1.0, 2.0, -30.0, -5.0),   # left tail, mirrored onto the right one
    (0.0, 1.0, 2.0, 2.05),     # thin slice of a tail: uniform proposal with envelope e^{-α²/2}
]


@pytest.mark.parametrize("mean, std, a, b", TRUNC_CASES)
def test_truncated_normal_matches_the_truncated_distribution(mean, std, a, b) -> None:
    w = draw("truncated_normal", (400, 500), mean=mean, std=std, a=a, b=b)
    assert w.shape == (400, 500)
    assert a <= w.min() and w.max() <= b
    assert_moments_and_ks(w, stats.truncnorm((a - mean) / std, (b - mean) / std, mean, std))


@pytest.mark.parametrize("mean, std, a, b", [(0.0, 1.0, -2.0, 2.0), (0.5, 0.2, 0.0, 1.0)])
def test_truncated_normal_matches_torch_trunc_normal(mean, std, a, b) -> None:
    """Two-sample KS against torch's inverse-CDF draws (N = 2·10⁵ each)."""
    shape = (400, 500)
    ours = draw("truncated_normal", shape, mean=mean, std=std, a=a, b=b)
    theirs = torch_draw(torch.nn.init.trunc_normal_, shape, mean=mean, std=std, a=a, b=b)
    assert stats.ks_2samp(ours.ravel(), theirs.ravel()).pvalue > P_MIN


def test_truncated_normal_fills_conv_kernels() -> None:
    w = draw("truncated_normal", (64, 32, 3, 3), std=0.1, a=-0.15, b=0.15)
    assert w.shape == (64, 32, 3, 3)
    assert_moments_and_ks(w, stats.truncnorm(-1.5, 1.5, 0.0, 0.1))


# --- lecun_uniform ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, fan_in", [((512, 1024), 1024), ((64, 32, 3, 3), 288),
                                           ((32768, 2, 2), 4)])
def test_lecun_uniform_has_variance_one_over_fan_in(shape, fan_in: int) -> None:
    w = draw("lecun_uniform", shape)
    bound = math.sqrt(3.0 / fan_in)
    assert_moments_and_ks(w, stats.uniform(-bound, 2 * bound))
    # P(no draw within ε of an end) = (1 − ε/2B)^N ≤ 1e-9 for ε = 2B·ln(1e9)/N.
    eps = 2 * bound * math.log(1e9) / w.size
    assert -bound <= w.min() < -bound + eps and bound - eps < w.max() <= bound


def test_lecun_uniform_has_torch_kaiming_linear_bound() -> None:
    theirs = torch_draw(torch.nn.init.kaiming_uniform_, (512, 1024), nonlinearity="linear")
    assert stats.ks_2samp(draw("lecun_uniform", (512, 1024)).ravel(),
                          theirs.ravel()).pvalue > P_MIN


# --- sparse -------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows, sparsity", [(30, 0.1), (100, 0.1), (7, 0.5), (10, 0.0),
                                            (10, 1.0), (1000, 0.37)])
def test_sparse_zero_count_per_column_is_torchs(rows: int, sparsity: float) -> None:
    """⌈sparsity·rows⌉ with torch's float rounding: 0.1·30 = 3.0000000000000004 → 4 zeros."""
    shape = (rows, 50)
    w = draw("sparse", shape, sparsity=sparsity, std=1.0)
    theirs = torch_draw(torch.nn.init.sparse_, shape, sparsity=sparsity, std=1.0)
    expected = math.ceil(sparsity * rows)
    np.testing.assert_array_equal((w == 0).sum(axis=0), expected)
    np.testing.assert_array_equal((theirs == 0).sum(axis=0), expected)


def test_sparse_nonzeros_are_gaussian_and_zeros_uniformly_placed() -> None:
    rows, cols, sparsity, std = 200, 2000, 0.25, 0.03
    w = draw("sparse", (rows, cols), sparsity=sparsity, std=std)
    assert_moments_and_ks(w[w != 0], stats.norm(0.0, std))
    # Each column zeroes a uniform 50-subset of 200 rows, so each row's zero count over the
    # columns is Binomial(2000, 1/4): a chi-square test of the counts against equal shares.
    per_row = (w == 0).sum(axis=1)
    assert stats.chisquare(per_row).pvalue > P_MIN
    assert per_row.sum() == cols * math.ceil(sparsity * rows)


def test_sparse_rejects_conv_kernels_and_bad_parameters() -> None:
    with pytest.raises(ValueError, match="dense 2-D weights only.*\\(8, 4, 3, 3\\)"):
        draw("sparse", (8, 4, 3, 3))
    with pytest.raises(ValueError, match="sparsity must be in \\[0, 1\\], got 1.5"):
        draw("sparse", (8, 4), sparsity=1.5)
    with pytest.raises(ValueError, match="std must be >= 0"):
        draw("sparse", (8, 4), std=-0.1)
    assert np.array_equal(draw("sparse", (8, 4), seed=3), draw("sparse", (8, 4), seed=3))
    assert not np.array_equal(draw("sparse", (8, 4), seed=3), draw("sparse", (8, 4), seed=4))


# --- identity / eye -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3), (1, 6)])
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_identity_dense_is_torch_eye_times_gain(shape: tuple[int, int], gain: float) -> None:
    expected = gain * torch.nn.init.eye_(torch.empty(shape, dtype=torch.float64)).numpy()
    np.testing.assert_array_equal(draw("identity", shape, gain=gain), expected)
    np.testing.assert_array_equal(draw("eye", shape, gain=gain), np.eye(*shape) * gain)


@pytest.mark.parametrize("shape", [(6, 4, 3, 3), (3, 5, 5, 5), (4, 4, 1, 1), (2, 3, 3, 5)])
def test_identity_conv_is_torch_dirac_times_gain(shape: tuple[int, ...]) -> None:
    expected = 1.5 * torch.nn.init.dirac_(torch.empty(shape, dtype=torch.float64)).numpy()
    np.testing.assert_array_equal(draw("identity", shape, gain=1.5), expected)


@pytest.mark.parametrize("out_ch, in_ch, k", [(6, 4, 3), (3, 5, 5), (4, 4, 1)])
def test_identity_conv_layer_copies_the_first_channels(out_ch: int, in_ch: int, k: int) -> None:
    """With stride 1 and padding k//2 the Dirac kernel is the identity on min(out, in) channels
    (times gain) and outputs zero on the others."""
    w = torch.from_numpy(draw("identity", (out_ch, in_ch, k, k), gain=2.0))
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((3, in_ch, 7, 6)))
    y = torch.nn.functional.conv2d(x, w, padding=k // 2).numpy()
    n = min(out_ch, in_ch)
    np.testing.assert_array_equal(y[:, :n], 2.0 * x[:, :n].numpy())
    assert not y[:, n:].any()


def test_identity_is_deterministic_and_validates() -> None:
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    classical.identity((5, 3), rng, layer=LAYER)
    assert rng.bit_generator.state == state, "identity drew from rng"
    assert registry.initializers.get("eye").obj is registry.initializers.get("identity").obj
    with pytest.raises(ValueError, match="odd kernel sizes"):
        draw("identity", (4, 4, 2, 2))
    with pytest.raises(ValueError, match="gain must be >= 0"):
        draw("identity", (4, 4), gain=-1.0)


# --- validation and declared parameters ---------------------------------------------------------


@pytest.mark.parametrize("params, message", [
    ({"std": 0.0}, "std must be > 0, got 0.0"),
    ({"a": 1.0, "b": 1.0}, "truncated_normal needs a < b, got a=1.0, b=1.0"),
    ({"mean": float("nan")}, "mean must be finite"),
    ({"b": "2"}, "b must be a number, got '2'"),
])
def test_truncated_normal_rejects_bad_parameters(params, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        draw("truncated_normal", (4, 4), **params)


def test_declared_parameters() -> None:
    declared = {
        "truncated_normal": {"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0},
        "lecun_uniform": {}, "sparse": {"sparsity": 0.1, "std": 0.01},
        "identity": {"gain": 1.0}, "eye": {"gain": 1.0},
    }
    for name, expected in declared.items():
        entry = registry.initializers.get(name)
        assert {p.name: p.default for p in entry.params} == expected, name
        assert entry.summary(), name
