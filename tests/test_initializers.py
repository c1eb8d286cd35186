"""The classical initializers against their formulas, against torch.nn.init, and the contract.

Statistical checks use tolerances derived from the sample size: an estimate must lie within
``Z = 5`` standard errors of its expectation (a false alarm has probability < 1e-6 per check;
the seeds are fixed, so every run gives the same verdict).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import ntkbench as nb
from ntkbench import registry
from ntkbench.initializers import classical, layer_rng

Z = 5.0
SHAPE = (512, 1024)  # fan_out = 512 ≠ fan_in = 1024, so a swapped fan shows; N ≈ 5e5
FAN_IN, FAN_OUT = 1024, 512
CONV = (64, 32, 3, 3)  # receptive field 9: fan_in = 32·9 = 288, fan_out = 64·9 = 576
CONV_FAN_IN, CONV_FAN_OUT = 288, 576
SKINNY = (32768, 2, 2)  # fan_in = 4: an off-by-one in a fan changes the scale by 12-25%
SKINNY_FAN_IN, SKINNY_FAN_OUT = 4, 65536
FANS = [(SHAPE, FAN_IN, FAN_OUT), (CONV, CONV_FAN_IN, CONV_FAN_OUT),
        (SKINNY, SKINNY_FAN_IN, SKINNY_FAN_OUT)]
# Deliberately wrong fans: initializers must take the fans from `shape`, not from `layer`.
LAYER = nb.LayerInfo(index=0, depth=1, fan_in=1, fan_out=1, activation="relu", is_readout=True)

BUILTINS = (
    "zeros", "ones", "constant", "normal", "uniform", "xavier_normal", "xavier_uniform",
    "he_normal", "he_uniform", "kaiming_normal", "kaiming_uniform", "lecun_normal", "orthogonal",
    "delta_orthogonal", "truncated_normal", "lecun_uniform", "identity", "eye", "torch_default",
    "flax_default", "zerO", "siren", "scaled_orthogonal",
)
DETERMINISTIC = ("zeros", "ones", "constant", "identity", "eye", "zerO")
RANDOM = tuple(n for n in BUILTINS if n not in DETERMINISTIC)
# (mode, nonlinearity, negative_slope): every gain of torch's table, both fans.
HE_CASES = [
    (mode, nl, slope)
    for mode in ("fan_in", "fan_out")
    for nl, slope in [("relu", 0.0), ("linear", 0.0), ("sigmoid", 0.0), ("tanh", 0.0),
                      ("selu", 0.0), ("conv2d", 0.0), ("leaky_relu", 0.0), ("leaky_relu", 0.2)]
]


def draw(name: str, shape: tuple[int, ...] = SHAPE, seed: int = 0, **params) -> np.ndarray:
    fn = registry.initializers.get(name).obj
    return fn(shape, np.random.default_rng(seed), layer=LAYER, **params)


def torch_draw(init_, shape: tuple[int, ...], seed: int = 0, **kwargs) -> np.ndarray:
    """A draw of ``torch.nn.init.<init_>`` in float64 with its own generator."""
    w = torch.empty(shape, dtype=torch.float64)
    init_(w, generator=torch.Generator().manual_seed(seed), **kwargs)
    return w.numpy()


def var_se(var: float, excess_kurtosis: float, n: int) -> float:
    """Standard error of the unbiased sample variance of n i.i.d. draws.

    ``Var(s²) = (μ4 − σ⁴ (n − 3)/(n − 1)) / n`` with ``μ4 = (3 + excess) σ⁴``; for a normal this
    is ``σ² √(2 / (n − 1))``, for a uniform ``μ4 = 9/5 σ⁴``.
    """
    mu4 = (3.0 + excess_kurtosis) * var**2
    return math.sqrt((mu4 - var**2 * (n - 3) / (n - 1)) / n)


def assert_distributed_as(w: np.ndarray, dist) -> None:
    """Mean within Z·σ/√N, variance within Z·SE(s²), and a KS test of the whole shape."""
    mean, var, _, excess = (float(m) for m in dist.stats(moments="mvsk"))
    n = w.size
    assert abs(w.mean() - mean) <= Z * math.sqrt(var / n), (w.mean(), mean)
    assert abs(w.var(ddof=1) - var) <= Z * var_se(var, excess, n), (w.var(ddof=1), var)
    assert stats.kstest(w.ravel(), dist.cdf).pvalue > 1e-6


def assert_uniform_support(w: np.ndarray, lo: float, hi: float) -> None:
    """All draws in [lo, hi], and both ends approached to within ε·(hi − lo).

    P(no draw within ε(hi − lo) of an end) = (1 − ε)^N ≤ 1e-9 for ε = ln(1e9)/N.
    """
    eps = (hi - lo) * math.log(1e9) / w.size
    assert lo <= w.min() < lo + eps
    assert hi - eps < w.max() <= hi


def normal(std: float, mean: float = 0.0):
    return stats.norm(mean, std)


def symmetric_uniform(bound: float):
    return stats.uniform(-bound, 2 * bound)


# --- fans and gains ----------------------------------------------------------------------------


def test_fans_follow_torch_convention() -> None:
    assert classical.compute_fans(SHAPE) == (FAN_IN, FAN_OUT)
    assert classical.compute_fans(CONV) == (CONV_FAN_IN, CONV_FAN_OUT)
    assert classical.compute_fans(SKINNY) == (SKINNY_FAN_IN, SKINNY_FAN_OUT)
    assert classical.compute_fans((7, 5, 3)) == (15, 21)


@pytest.mark.parametrize("nonlinearity", classical.NONLINEARITIES)
@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, -0.5, 3.0])
def test_gain_matches_torch(nonlinearity: str, slope: float) -> None:
    ours = classical.calculate_gain(nonlinearity, slope)
    assert ours == pytest.approx(torch.nn.init.calculate_gain(nonlinearity, slope), rel=1e-15)


def test_gain_table_values() -> None:
    assert classical.calculate_gain("tanh") == 5 / 3
    assert classical.calculate_gain("relu") == math.sqrt(2)
    assert classical.calculate_gain("selu") == 0.75
    assert classical.calculate_gain("leaky_relu", 1.0) == 1.0  # slope 1 is linear


# --- each initializer against its formula ------------------------------------------------------


@pytest.mark.parametrize("shape", [SHAPE, CONV])
def test_constants_are_exact(shape: tuple[int, ...]) -> None:
    for name, params, value in [("zeros", {}, 0.0), ("ones", {}, 1.0),
                                ("constant", {}, 0.0), ("constant", {"value": -0.37}, -0.37)]:
        w = draw(name, shape, **params)
        assert w.shape == shape and w.dtype == np.float64
        assert np.all(w == value), name


@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (0.3, 0.05)])
def test_normal(mean: float, std: float) -> None:
    assert_distributed_as(draw("normal", mean=mean, std=std), normal(std, mean))


def test_normal_std_zero_is_the_mean() -> None:
    assert np.all(draw("normal", mean=0.25, std=0.0) == 0.25)


@pytest.mark.parametrize("a, b", [(-1.0, 1.0), (0.5, 2.0)])
def test_uniform(a: float, b: float) -> None:
    w = draw("uniform", a=a, b=b)
    assert_distributed_as(w, stats.uniform(a, b - a))
    assert_uniform_support(w, a, b)


@pytest.mark.parametrize("shape, fan_in, fan_out", FANS)
@pytest.mark.parametrize("gain", [1.0, 5 / 3, 0.5])
def test_xavier(shape: tuple[int, ...], fan_in: int, fan_out: int, gain: float) -> None:
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    assert_distributed_as(draw("xavier_normal", shape, gain=gain), normal(std))
    w = draw("xavier_uniform", shape, gain=gain)
    assert_distributed_as(w, symmetric_uniform(bound))
    assert_uniform_support(w, -bound, bound)


@pytest.mark.parametrize("mode, nonlinearity, slope", HE_CASES)
def test_he(mode: str, nonlinearity: str, slope: float) -> None:
    gain = torch.nn.init.calculate_gain(nonlinearity, slope)
    fan = FAN_IN if mode == "fan_in" else FAN_OUT
    params = dict(mode=mode, nonlinearity=nonlinearity, negative_slope=slope)
    assert_distributed_as(draw("he_normal", **params), normal(gain / math.sqrt(fan)))
    bound = gain * math.sqrt(3.0 / fan)
    w = draw("he_uniform", **params)
    assert_distributed_as(w, symmetric_uniform(bound))
    assert_uniform_support(w, -bound, bound)


@pytest.mark.parametrize("shape, fan_in, fan_out", FANS[1:])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_he_fans_from_shape(shape: tuple[int, ...], fan_in: int, fan_out: int, mode: str) -> None:
    fan = fan_in if mode == "fan_in" else fan_out
    assert_distributed_as(draw("he_normal", shape, mode=mode), normal(math.sqrt(2.0 / fan)))
    bound = math.sqrt(6.0 / fan)
    w = draw("he_uniform", shape, mode=mode)
    assert_distributed_as(w, symmetric_uniform(bound))
    assert_uniform_support(w, -bound, bound)


def test_he_defaults_are_relu_fan_in() -> None:
    assert_distributed_as(draw("he_normal"), normal(math.sqrt(2.0 / FAN_IN)))
    assert_distributed_as(draw("he_uniform"), symmetric_uniform(math.sqrt(6.0 / FAN_IN)))


@pytest.mark.parametrize("shape, fan_in, fan_out", FANS)
def test_lecun_normal(shape: tuple[int, ...], fan_in: int, fan_out: int) -> None:
    assert_distributed_as(draw("lecun_normal", shape), normal(1.0 / math.sqrt(fan_in)))


# --- cross-checks against torch.nn.init --------------------------------------------------------


def assert_same_scale(ours: np.ndarray, theirs: np.ndarray, excess_kurtosis: float) -> None:
    """Two independent samples of the same distribution: sample variances differ by at most
    Z·√2·SE(s²), with SE estimated from torch's sample."""
    var = theirs.var(ddof=1)
    se = var_se(var, excess_kurtosis, theirs.size)
    assert abs(ours.var(ddof=1) - var) <= Z * math.sqrt(2.0) * se, (ours.var(ddof=1), var)


def assert_same_bound(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Both max|W| lie in [B(1 − δ), B] with δ = ln(1e9)/N (see :func:`assert_uniform_support`),
    so they differ by at most B·δ ≤ max|W_torch|·δ/(1 − δ)."""
    delta = math.log(1e9) / theirs.size
    m_ours, m_theirs = np.abs(ours).max(), np.abs(theirs).max()
    assert abs(m_ours - m_theirs) <= m_theirs * delta / (1 - delta), (m_ours, m_theirs)


@pytest.mark.parametrize("mode, nonlinearity, slope", HE_CASES)
@pytest.mark.parametrize("shape", [SHAPE, CONV, SKINNY])
def test_he_matches_torch_kaiming(shape, mode: str, nonlinearity: str, slope: float) -> None:
    params = dict(mode=mode, nonlinearity=nonlinearity, negative_slope=slope)
    kw = dict(a=slope, mode=mode, nonlinearity=nonlinearity)
    assert_same_scale(draw("he_normal", shape, **params),
                      torch_draw(torch.nn.init.kaiming_normal_, shape, **kw), 0.0)
    ours = draw("he_uniform", shape, **params)
    theirs = torch_draw(torch.nn.init.kaiming_uniform_, shape, **kw)
    assert_same_scale(ours, theirs, -1.2)
    assert_same_bound(ours, theirs)


@pytest.mark.parametrize("gain", [1.0, 5 / 3, 0.5])
@pytest.mark.parametrize("shape", [SHAPE, CONV, SKINNY])
def test_xavier_matches_torch(shape, gain: float) -> None:
    assert_same_scale(draw("xavier_normal", shape, gain=gain),
                      torch_draw(torch.nn.init.xavier_normal_, shape, gain=gain), 0.0)
    ours = draw("xavier_uniform", shape, gain=gain)
    theirs = torch_draw(torch.nn.init.xavier_uniform_, shape, gain=gain)
    assert_same_scale(ours, theirs, -1.2)
    assert_same_bound(ours, theirs)


@pytest.mark.parametrize("shape", [SHAPE, CONV, SKINNY])
def test_lecun_normal_is_torch_kaiming_linear(shape) -> None:
    theirs = torch_draw(torch.nn.init.kaiming_normal_, shape, nonlinearity="linear")
    assert_same_scale(draw("lecun_normal", shape), theirs, 0.0)


# --- orthogonal ---------------------------------------------------------------------------------

ORTHO_SHAPES = [(256, 256), (512, 128), (128, 512), (16, 8, 3, 3), (200, 8, 3, 3)]


@pytest.mark.parametrize("shape", ORTHO_SHAPES)
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal_is_orthonormal(shape: tuple[int, ...], gain: float) -> None:
    w = draw("orthogonal", shape, gain=gain, conv="flatten")
    assert w.shape == shape
    m = w.reshape(shape[0], -1)
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(len(gram)), rtol=0, atol=1e-10)


@pytest.mark.parametrize("shape", ORTHO_SHAPES)
def test_scaled_orthogonal_is_orthogonal_with_unit_variance_entries(shape: tuple[int, ...]):
    w = draw("scaled_orthogonal", shape, seed=4, gain=1.5)
    # The same Haar matrix as orthogonal's, rescaled by √max(rows, cols): every entry then has
    # mean square exactly gain² (the Gram matrix is gain²·max·I on the smaller side).
    big = max(shape[0], math.prod(shape[1:]))
    np.testing.assert_allclose(w, math.sqrt(big) * draw("orthogonal", shape, seed=4, gain=1.5,
                                                        conv="flatten"), rtol=1e-12)
    assert np.mean(w ** 2) == pytest.approx(1.5 ** 2, rel=1e-10)


@pytest.mark.parametrize("shape", ORTHO_SHAPES)
def test_orthogonal_runs_torch_recipe_on_the_same_gaussian(shape: tuple[int, ...]) -> None:
    """torch.nn.init.orthogonal_'s steps, in torch, on the N(0, 1) matrix our rng yields."""
    rows, cols = shape[0], math.prod(shape[1:])
    flat = torch.from_numpy(np.random.default_rng(3).standard_normal((rows, cols)))
    if rows < cols:
        flat = flat.T
    q, r = torch.linalg.qr(flat)
    q = q * torch.diag(r, 0).sign()
    if rows < cols:
        q = q.T
    expected = 1.5 * q.reshape(shape).numpy()
    np.testing.assert_allclose(draw("orthogonal", shape, seed=3, gain=1.5, conv="flatten"),
                               expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["orthogonal", "delta_orthogonal"])
@pytest.mark.parametrize("shape", [(16, 8, 3, 3), (8, 8, 5, 5), (6, 16, 3, 3)])
def test_delta_orthogonal_kernel_is_an_orthogonal_centre_tap(name: str,
                                                            shape: tuple[int, ...]) -> None:
    """Xiao et al. 2018: the centre tap is the Haar (semi-)orthogonal matrix the dense
    recipe draws from the same rng, every other tap is zero."""
    w = draw(name, shape, seed=5, gain=1.5)
    centre = w[:, :, shape[2] // 2, shape[3] // 2]
    np.testing.assert_array_equal(centre, draw("orthogonal", shape[:2], seed=5, gain=1.5))
    rest = w.copy()
    rest[:, :, shape[2] // 2, shape[3] // 2] = 0
    assert not rest.any()


@pytest.mark.parametrize("gain", [1.0, 1.7])
def test_delta_orthogonal_convolution_preserves_norms(gain: float) -> None:
    """With out ≥ in channels and 'same' zero padding the delta-orthogonal convolution is an
    isometry (times gain) of every input image — the dynamical-isometry property."""
    shape = (12, 5, 3, 3)
    w = torch.from_numpy(draw("delta_orthogonal", shape, seed=1, gain=gain))
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((4, 5, 9, 9)))
    y = torch.nn.functional.conv2d(x, w, padding=1)
    np.testing.assert_allclose(y.flatten(1).norm(dim=1), gain * x.flatten(1).norm(dim=1),
                               rtol=1e-12)
    # A flattened-orthogonal kernel of the same shape is not an isometry of images.
    wf = torch.from_numpy(draw("orthogonal", shape, seed=1, gain=gain, conv="flatten"))
    yf = torch.nn.functional.conv2d(x, wf, padding=1)
    assert not np.allclose(yf.flatten(1).norm(dim=1), gain * x.flatten(1).norm(dim=1),
                           rtol=1e-3)


def test_orthogonal_rejects_an_unknown_conv_mode_and_delta_even_kernels() -> None:
    with pytest.raises(ValueError, match="conv must be one of delta, flatten"):
        draw("orthogonal", (4, 4, 3, 3), conv="centre")
    with pytest.raises(ValueError, match="odd kernel sizes"):
        draw("delta_orthogonal", (4, 4, 2, 2))
    assert draw("orthogonal", (4, 4, 2, 2), conv="flatten").shape == (4, 4, 2, 2)


@pytest.mark.parametrize("shape", [(512, 512), (1024, 256), (256, 1024)])
def test_orthogonal_trace_is_haar(shape: tuple[int, ...]) -> None:
    """For Haar Q ∈ O(n): E[Q_ii] = 0, E[Q_ii²] = 1/n and E[Q_ii Q_jj] = 0 (i ≠ j, since
    E[(tr Q)²] = 1), so the trace of the leading k×k block has mean 0 and variance k/n.
    Without the sign correction LAPACK's QR gives tr ≈ −12 for n = 512."""
    k, n = min(shape), max(shape)
    w = draw("orthogonal", shape, gain=2.0) / 2.0
    assert abs(np.trace(w[:k, :k])) <= Z * math.sqrt(k / n)


@pytest.mark.parametrize("shape", [(3, 3), (3, 2), (2, 3)])
def test_orthogonal_corner_entries_are_uniform(shape: tuple[int, ...]) -> None:
    """Every column (or row) of a Haar 3×3 is uniform on S², and by Archimedes each coordinate
    of a uniform point on S² is U(−1, 1): so W[0, 0] and W[−1, −1] are U(−1, 1)."""
    rng = np.random.default_rng(7)
    fn = classical.orthogonal
    ws = np.stack([fn(shape, rng, layer=LAYER) for _ in range(2000)])
    for corner in (ws[:, 0, 0], ws[:, -1, -1]):
        assert stats.kstest(corner, stats.uniform(-1, 2).cdf).pvalue > 1e-6


# --- contract: determinism, shape, only `rng` ---------------------------------------------------


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("shape", [(5, 3), CONV])
def test_same_seed_same_weights_and_shape(name: str, shape: tuple[int, ...]) -> None:
    state = np.random.get_state()[1].copy()
    w = draw(name, shape, seed=11)
    assert w.shape == shape and w.dtype == np.float64
    assert np.array_equal(w, draw(name, shape, seed=11))
    assert np.array_equal(np.random.get_state()[1], state), "touched the global numpy RNG"


@pytest.mark.parametrize("name", RANDOM)
def test_different_seeds_different_weights(name: str) -> None:
    assert not np.array_equal(draw(name, (5, 3), seed=0), draw(name, (5, 3), seed=1))


# --- invalid parameters -------------------------------------------------------------------------


@pytest.mark.parametrize("name, shape, params, message", [
    ("normal", SHAPE, {"std": -1}, "std must be >= 0, got -1"),
    ("normal", SHAPE, {"std": float("nan")}, "std must be finite"),
    ("normal", SHAPE, {"mean": "0.1"}, "mean must be a number, got '0.1'"),
    ("uniform", SHAPE, {"a": 1.0, "b": 1.0}, "a < b, got a=1.0, b=1.0"),
    ("uniform", SHAPE, {"a": 2.0, "b": 1.0}, "a < b"),
    ("constant", SHAPE, {"value": float("inf")}, "value must be finite"),
    ("xavier_normal", SHAPE, {"gain": -1.0}, "gain must be >= 0"),
    ("xavier_uniform", SHAPE, {"gain": float("nan")}, "gain must be finite"),
    ("he_normal", SHAPE, {"mode": "fan_avg"}, "unknown mode 'fan_avg'; valid: fan_in, fan_out"),
    ("he_uniform", SHAPE, {"nonlinearity": "gelu"},
     "unknown nonlinearity 'gelu'; valid: linear, .*tanh, relu, leaky_relu, selu"),
    ("kaiming_normal", SHAPE, {"negative_slope": 0.2},
     "negative_slope only applies to nonlinearity='leaky_relu'"),
    ("he_normal", SHAPE, {"nonlinearity": "leaky_relu", "negative_slope": None},
     "negative_slope must be a number"),
    ("orthogonal", SHAPE, {"gain": -2.0}, "gain must be >= 0"),
    ("orthogonal", (5,), {}, "at least 2 dimensions, got \\(5,\\)"),
    ("he_normal", (5,), {}, "at least 2 dimensions"),
    ("lecun_normal", (0, 5), {}, "positive dimensions"),
    ("xavier_uniform", (7,), {}, "at least 2 dimensions"),
])
def test_invalid_parameters_raise(name, shape, params, message) -> None:
    with pytest.raises(ValueError, match=message):
        draw(name, shape, **params)


def test_initialize_suggests_the_misspelt_parameter() -> None:
    model = nb.MLP(in_dim=3, width=5, depth=2, out_dim=2)
    with pytest.raises(ValueError, match="did you mean 'std'"):
        nb.initialize(model, "normal", seed=0, params={"stdd": 1})
    with pytest.raises(ValueError, match="std must be >= 0"):
        nb.initialize(model, "normal", seed=0, params={"std": -1})


# --- registry and initialize --------------------------------------------------------------------

HE_PARAMS = {"mode": "fan_in", "nonlinearity": "relu", "negative_slope": 0.0}
DECLARED = {
    "zeros": {}, "ones": {}, "constant": {"value": 0.0}, "normal": {"mean": 0.0, "std": 1.0},
    "uniform": {"a": -1.0, "b": 1.0}, "xavier_normal": {"gain": 1.0},
    "xavier_uniform": {"gain": 1.0}, "he_normal": HE_PARAMS, "he_uniform": HE_PARAMS,
    "kaiming_normal": HE_PARAMS, "kaiming_uniform": HE_PARAMS, "lecun_normal": {},
    "orthogonal": {"gain": 1.0, "conv": "delta"}, "delta_orthogonal": {"gain": 1.0},
}


def test_registry_lists_builtins_with_declared_params() -> None:
    assert set(BUILTINS) <= set(registry.initializers.names())
    for name, expected in DECLARED.items():
        entry = registry.initializers.get(name)
        assert entry.origin == "builtin"
        assert {p.name: p.default for p in entry.params} == expected, name
        assert entry.summary(), f"{name} has no one-line summary"


def test_kaiming_names_are_aliases_of_he() -> None:
    get = registry.initializers.get
    assert get("kaiming_normal").obj is get("he_normal").obj is classical.he_normal
    assert get("kaiming_uniform").obj is get("he_uniform").obj is classical.he_uniform


def test_initialize_mlp_shapes_and_zero_biases() -> None:
    model = nb.MLP(in_dim=3, width=5, depth=2, out_dim=2)
    weights = nb.initialize(model, "he_normal", seed=1)
    assert [w["W"].shape for w in weights] == [(5, 3), (5, 5), (2, 5)]
    for w in weights:
        assert w["b"].shape == (w["W"].shape[0],) and np.all(w["b"] == 0)
    layer0 = model.layers()[0]
    assert np.array_equal(weights[0]["W"],
                          classical.he_normal((5, 3), layer_rng(1, 0), layer=layer0))
