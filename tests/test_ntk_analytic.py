"""Infinite-width NNGP and NTK kernels against independent references.

Three references, each failing if the kernels are wrong in a different way:

- numerical integration: every closed form against 2-D Gauss–Hermite quadrature of the same
  recursion (and ReLU, whose kink defeats Gauss–Hermite, against adaptive 1-D integration);
- wide finite networks: the mean over independent draws of the real engine's empirical NTK
  (``ntkbench.empirical_ntk``) and of the output covariance, at width 4096. Monte Carlo checks
  pass when ``|mean − analytic| ≤ 5·SE`` per entry, SE the standard error over draws, plus a
  floor of 1e-9 relative to the kernel for entries that do not vary across draws;
- exact identities: known values, depth 0, symmetry, PSD, the Du et al. (2019) Gram matrix.
"""

import dataclasses
import math
import pickle
import tracemalloc

import numpy as np
import pytest
import torch
from conftest import BACKENDS
from scipy import integrate, special

import ntkbench as nb
from ntkbench.ntk.analytic import (
    AnalyticKernels,
    analytic_kernels,
    analytic_method,
    layerwise_kernels,
    matched_analytic_ntk,
    relu_gram_two_layer,
)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # The engine calls here are tiny (8 inputs); on a busy 2-core machine torch's spinning
    # worker threads make each one ~40x slower, so run them on one thread and restore after.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# Monte Carlo tolerance in standard errors. By chance a 5·SE miss has probability ~1e-6 per
# entry for normal errors, ~2e-4 with the t-distribution of an SE from 16 draws.
N_SE = 5.0
FLOOR = 1e-9  # relative to max|analytic|, for entries with zero spread over draws
WIDTH = 4096


def _inputs(n: int, d: int, seed: int) -> np.ndarray:
    """Inputs with ‖x‖²/d of order 1 (unit-variance entries)."""
    return np.random.default_rng(seed).standard_normal((n, d))


def assert_mc_close(samples: np.ndarray, analytic: np.ndarray, *, scale: float | None = None,
                    max_rel_se: float = 0.03):
    """``samples``: (S, ...) independent draws whose expectation is ``analytic``.

    Also requires the standard error to be small (``max_rel_se`` of ``scale``, by default the
    kernel's largest entry), so that a pass means the check could have seen an error of a few
    percent.
    """
    n = samples.shape[0]
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / math.sqrt(n)
    scale = np.abs(analytic).max() if scale is None else scale
    assert se.max() <= max_rel_se * scale, f"too few draws: max SE {se.max():.3g} vs {scale:.3g}"
    excess = np.abs(mean - analytic) - (N_SE * se + FLOOR * scale)
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    assert excess.max() <= 0, (
        f"entry {worst}: MC mean {mean[worst]:.6g} ± {se[worst]:.2g} (SE) vs analytic "
        f"{analytic[worst]:.6g}, z = {(mean[worst] - analytic[worst]) / se[worst]:.2f}")


def _ntk_weights(model: nb.MLP, rng: np.random.Generator) -> list[dict]:
    """All weights and biases N(0, 1), as NTK parameterization assumes."""
    return [{"W": rng.standard_normal((info.fan_out, info.fan_in)),
             "b": rng.standard_normal(info.fan_out)} for info in model.layers()]


def _forward(model: nb.MLP, weights: list[dict], x: np.ndarray) -> np.ndarray:
    """The documented forward pass of ntkbench.models, written independently (float64)."""
    act = {"relu": torch.relu, "tanh": torch.tanh, "erf": torch.special.erf,
           "gelu": lambda z: z * torch.special.ndtr(z), "sin": torch.sin, "linear": lambda z: z}
    h = torch.from_numpy(x)
    for info, w in zip(model.layers(), weights, strict=True):
        sw, sb = model.scales(info)
        h = sw * h @ torch.from_numpy(w["W"]).double().T
        if model.bias:
            h = h + sb * torch.from_numpy(w["b"])
        if not info.is_readout:
            h = act[model.activation](h)
    return h.numpy()


def _dual_kernels(activation, x1, x2, *, w2, b2, **kw):
    """``(E[φ(a)φ(b)], E[φ′(a)φ′(b)])`` under ``Σ_1 = w2·x·x'/d + b2``, read off the public
    recursion: with one hidden layer, ``σ_2² = 1, β_2² = 0`` the NNGP is ``E[φφ]``, and with
    ``g_1 = 0, c_1 = 1`` the first layer's contribution is ``B_1 = E[φ′φ′]``."""
    out = layerwise_kernels(x1, x2, activation=activation, sigma_w2=[w2, 1.0],
                            sigma_b2=[b2, 0.0], grad_w=[0.0, 0.0], grad_b=[1.0, 0.0], **kw)
    return out.nngp, out.layers[0]


# --- closed forms against numerical integration -----------------------------------------------

@pytest.mark.parametrize("activation", ["erf", "gelu", "sin", "linear"])
@pytest.mark.parametrize("depth,w_std,b_std,cross", [
    (1, 1.0, 0.0, False), (2, 1.3, 0.5, True), (3, 0.8, 1.0, True), (4, 1.1, 0.2, False)])
def test_smooth_closed_forms_match_gauss_hermite(activation, depth, w_std, b_std, cross):
    x1 = _inputs(7, 5, 1)
    x2 = _inputs(5, 5, 2) if cross else None
    exact = analytic_kernels(x1, x2, depth=depth, activation=activation, w_std=w_std,
                             b_std=b_std)
    numeric = analytic_kernels(x1, x2, depth=depth, activation=activation, w_std=w_std,
                               b_std=b_std, quadrature=True, quadrature_points=160)
    assert (exact.method, numeric.method) == ("closed_form", "quadrature")
    for a, b in zip(exact, numeric, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(a).max())


def test_gelu_dual_kernels_match_quadrature_over_a_range_of_variances():
    # Small to moderate variances and strong (anti-)correlation, where the closed form's
    # arcsin and 1/√det terms each matter. (Beyond variance ~5 Gauss–Hermite itself is off.)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 3)) * np.array([[0.1], [0.5], [1.0], [1.5], [1.2], [1.0]])
    x[5] = -x[4] + 0.01
    exact = _dual_kernels("gelu", x, None, w2=1.0, b2=0.0)
    numeric = _dual_kernels("gelu", x, None, w2=1.0, b2=0.0, quadrature=True,
                            quadrature_points=256)
    for a, b in zip(exact, numeric, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("variance", [0.01, 10.0, 100.0])
def test_gelu_variance_matches_adaptive_integration(variance):
    # The diagonal E[φ(a)²], E[φ′(a)²] at variances where Gauss–Hermite is not accurate.
    def moment(f):
        sd = math.sqrt(variance)
        return integrate.quad(lambda z: f(sd * z) ** 2 * math.exp(-0.5 * z * z), -40, 40,
                              points=[0.0], epsabs=1e-14, epsrel=1e-13, limit=200)[0] / math.sqrt(
            2 * math.pi)

    def gelu_slope(a):
        return special.ndtr(a) + a * math.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)

    x = np.array([[math.sqrt(variance)]])
    value, slope = _dual_kernels("gelu", x, None, w2=1.0, b2=0.0)
    assert value.item() == pytest.approx(moment(lambda a: a * special.ndtr(a)), rel=1e-10)
    assert slope.item() == pytest.approx(moment(gelu_slope), rel=1e-10)


def test_gelu_tends_to_relu_at_large_variance():
    # z·Φ(z) → relu(z) as the scale grows: the GELU kernels approach the arc-cosine ones.
    x = _inputs(5, 3, 4)
    gelu = _dual_kernels("gelu", x, None, w2=1e6, b2=0.0)
    relu = _dual_kernels("relu", x, None, w2=1e6, b2=0.0)
    np.testing.assert_allclose(gelu[0], relu[0], rtol=1e-3)
    np.testing.assert_allclose(gelu[1], relu[1], atol=2e-3)


def _relu_reference(k11: float, k22: float, k12: float) -> tuple[float, float]:
    """ReLU dual kernels by adaptive 1-D integration over a = √k11 z of the conditional means
    of b | z ~ N(μ, s²): E[relu(b)|z] = μΦ(μ/s) + s·pdf(μ/s) and P(b > 0 | z) = Φ(μ/s)."""
    rho = k12 / math.sqrt(k11 * k22)
    s = math.sqrt(k22 * (1 - rho * rho))

    def mu(z):
        return math.sqrt(k22) * rho * z

    def pdf(z):
        return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    def relu_mean(z):
        return mu(z) * special.ndtr(mu(z) / s) + s * pdf(mu(z) / s)

    value = integrate.quad(lambda z: math.sqrt(k11) * z * relu_mean(z) * pdf(z), 0, np.inf,
                           epsabs=1e-13, epsrel=1e-12)[0]
    slope = integrate.quad(lambda z: special.ndtr(mu(z) / s) * pdf(z), 0, np.inf,
                           epsabs=1e-13, epsrel=1e-12)[0]
    return value, slope


def test_relu_closed_form_matches_adaptive_integration():
    x1, x2 = _inputs(4, 3, 5), _inputs(3, 3, 6)
    w2, b2 = 1.7, 0.3
    value, slope = _dual_kernels("relu", x1, x2, w2=w2, b2=b2)
    k11 = w2 * (x1 * x1).sum(1) / 3 + b2
    k22 = w2 * (x2 * x2).sum(1) / 3 + b2
    k12 = w2 * x1 @ x2.T / 3 + b2
    for i in range(len(x1)):
        for j in range(len(x2)):
            ref = _relu_reference(k11[i], k22[j], k12[i, j])
            assert value[i, j] == pytest.approx(ref[0], abs=1e-10)
            assert slope[i, j] == pytest.approx(ref[1], abs=1e-10)


def test_relu_closed_form_matches_gauss_hermite_within_its_slow_convergence():
    # Gauss–Hermite sums a step function (relu′) with an error that decays only algebraically
    # (NTK: 2.8%, 1.8%, 1.0% at 64, 128, 256 points here), so the bound is 3× the error at 256
    # points; the tight check of these formulas is the adaptive integration above.
    x1, x2 = _inputs(6, 4, 7), _inputs(4, 4, 8)
    exact = analytic_kernels(x1, x2, depth=2, activation="relu", w_std=1.2, b_std=0.4)
    numeric = analytic_kernels(x1, x2, depth=2, activation="relu", w_std=1.2, b_std=0.4,
                               quadrature=True, quadrature_points=256)
    for a, b in zip(exact, numeric, strict=True):
        np.testing.assert_allclose(a, b, rtol=3e-2)


def test_tanh_uses_quadrature_and_default_points_are_converged():
    x1, x2 = _inputs(6, 4, 9), _inputs(4, 4, 10)
    assert analytic_method("tanh") == "quadrature"
    assert {analytic_method(a) for a in ("relu", "erf", "gelu", "sin", "linear")} == {
        "closed_form"}
    default = analytic_kernels(x1, x2, depth=3, activation="tanh", b_std=0.3)
    fine = analytic_kernels(x1, x2, depth=3, activation="tanh", b_std=0.3,
                            quadrature_points=200)
    assert default.method == "quadrature"
    for a, b in zip(default, fine, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(b).max())


# --- Monte Carlo against wide networks with the real engine ------------------------------------

@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "gelu", "sin"])
def test_ntk_matches_wide_networks_depth_one(activation, backend):
    x = _inputs(8, 5, 11)
    w_std, b_std = 1.2, 0.6
    model = nb.MLP(in_dim=5, width=WIDTH, depth=1, out_dim=1, activation=activation,
                   parameterization="ntk", w_std=w_std, b_std=b_std)
    rng = np.random.default_rng(12)
    draws = np.stack([nb.empirical_ntk(model, _ntk_weights(model, rng), x, backend=backend,
                                       dtype="float64", per_layer=True) for _ in range(200)])
    analytic = layerwise_kernels(x, activation=activation, sigma_w2=[w_std**2] * 2,
                                 sigma_b2=[b_std**2] * 2, grad_w=[w_std**2] * 2,
                                 grad_b=[b_std**2] * 2)
    np.testing.assert_allclose(
        analytic.ntk, analytic_kernels(x, depth=1, activation=activation, w_std=w_std,
                                       b_std=b_std).ntk, rtol=1e-13)
    assert_mc_close(draws.sum(1), analytic.ntk)
    for layer in range(2):
        assert_mc_close(draws[:, layer], analytic.layers[layer])
    # The cross kernel (separate diagonals for x1 and x2) against the off-diagonal block.
    _, cross = analytic_kernels(x[:5], x[5:], depth=1, activation=activation, w_std=w_std,
                                b_std=b_std)
    assert_mc_close(draws.sum(1)[:, :5, 5:], cross)


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
def test_nngp_matches_output_covariance_depth_one(activation):
    # Outputs of one network are uncorrelated across its 64 output units; averaging f fᵀ over
    # them per draw and then taking the SE over independent draws accounts for their coupling.
    x = _inputs(8, 5, 13)
    model = nb.MLP(in_dim=5, width=WIDTH, depth=1, out_dim=64, activation=activation,
                   parameterization="ntk", w_std=1.3, b_std=0.4)
    rng = np.random.default_rng(14)
    draws = []
    for _ in range(100):
        f = _forward(model, _ntk_weights(model, rng), x)
        draws.append(f @ f.T / model.out_dim)
    nngp, _ = analytic_kernels(x, depth=1, activation=activation, w_std=1.3, b_std=0.4)
    assert_mc_close(np.stack(draws), nngp)


@pytest.fixture(scope="module", params=BACKENDS)
def deep_relu_draws(request):
    """16 independent depth-2 ReLU networks of width 4096 with biases (the costly sample).

    The NTK is the engine's, averaged over 4 outputs. For the NNGP the same hidden layers get
    a fresh readout of 512 units (more outputs of the same network, cheap to evaluate), and
    ``f fᵀ`` is averaged over them.
    """
    backend = request.param
    if backend == "jax":
        pytest.importorskip("jax")
    x = _inputs(8, 6, 15)
    model = nb.MLP(in_dim=6, width=WIDTH, depth=2, out_dim=4, activation="relu",
                   parameterization="ntk", w_std=1.4, b_std=0.5)
    wide_readout = dataclasses.replace(model, out_dim=512)
    rng = np.random.default_rng(16)
    ntks, covs, matched = [], [], []
    for _ in range(16):
        weights = _ntk_weights(model, rng)
        ntks.append(nb.empirical_ntk(model, weights, x, backend=backend, dtype="float64",
                                     per_layer=True) / model.out_dim)
        readout = {"W": rng.standard_normal((512, WIDTH)), "b": rng.standard_normal(512)}
        f = _forward(wide_readout, weights[:-1] + [readout], x)
        covs.append(f @ f.T / wide_readout.out_dim)
        matched.append(matched_analytic_ntk(model, weights, x) / model.out_dim)
    return x, model, np.stack(ntks), np.stack(covs), np.stack(matched)


def test_ntk_and_nngp_match_wide_deep_networks_with_bias(deep_relu_draws):
    x, model, ntks, covs, _ = deep_relu_draws
    analytic = layerwise_kernels(x, activation="relu", sigma_w2=[1.4**2] * 3,
                                 sigma_b2=[0.5**2] * 3, grad_w=[1.4**2] * 3,
                                 grad_b=[0.5**2] * 3)
    assert_mc_close(ntks.sum(1), analytic.ntk)
    for layer in range(3):
        assert_mc_close(ntks[:, layer], analytic.layers[layer])
    assert_mc_close(covs, analytic.nngp)


def test_matched_ntk_tracks_each_draw_under_ntk_parameterization(deep_relu_draws):
    # Moment matching absorbs each draw's weight norms, so the paired difference
    # empirical − matched has mean 0 within its own (smaller) standard error.
    _, _, ntks, _, matched = deep_relu_draws
    assert_mc_close(ntks.sum(1) - matched, np.zeros(matched.shape[1:]),
                    scale=np.abs(matched).max())


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_ntk_matches_wide_networks_depth_three(activation, backend):
    x = _inputs(6, 4, 17)
    model = nb.MLP(in_dim=4, width=WIDTH, depth=3, out_dim=1, activation=activation,
                   parameterization="ntk", w_std=1.2, b_std=0.3)
    rng = np.random.default_rng(18)
    draws = np.stack([nb.empirical_ntk(model, _ntk_weights(model, rng), x, backend=backend,
                                       dtype="float64") for _ in range(24)])
    _, ntk = analytic_kernels(x, depth=3, activation=activation, w_std=1.2, b_std=0.3)
    assert_mc_close(draws, ntk)


def test_matched_ntk_reduces_to_analytic_kernels_under_ntk_parameterization():
    # Weights rescaled to second moments exactly 1 are what analytic_kernels assumes, so the
    # match is exact (to rounding), traced over out_dim outputs, at any width.
    x = _inputs(6, 3, 19)
    for activation, bias in (("relu", True), ("tanh", True), ("gelu", False)):
        model = nb.MLP(in_dim=3, width=32, depth=2, out_dim=3, activation=activation,
                       parameterization="ntk", w_std=1.3, b_std=0.7, bias=bias)
        weights = _ntk_weights(model, np.random.default_rng(20))
        for w in weights:
            w["W"] /= np.sqrt(np.mean(w["W"] ** 2))
            w["b"] /= np.sqrt(np.mean(w["b"] ** 2))
        _, ntk = analytic_kernels(x, depth=2, activation=activation, w_std=1.3,
                                  b_std=0.7 if bias else 0.0)
        np.testing.assert_allclose(matched_analytic_ntk(model, weights, x), 3 * ntk,
                                   rtol=1e-12)


@pytest.mark.parametrize("activation,depth,width,draws", [
    ("relu", 1, WIDTH, 100), ("tanh", 1, WIDTH, 100), ("relu", 2, 1024, 40),
    ("gelu", 2, 1024, 40)])
def test_matched_ntk_matches_he_normal_standard_networks(activation, depth, width, draws, backend):
    # Standard parameterization, He-normal weights and zero biases: σ_l² ≈ 2, g_l = fan_in,
    # c_l = 1. One input is 0, whose first pre-activation is exactly 0 (relu′(0) = 0 there).
    x = _inputs(7, 4, 21)
    x[3] = 0.0
    model = nb.MLP(in_dim=4, width=width, depth=depth, out_dim=2, activation=activation)
    empirical, matched = [], []
    for seed in range(draws):
        weights = nb.initialize(model, "he_normal", seed=seed)
        empirical.append(nb.empirical_ntk(model, weights, x, backend=backend, dtype="float64"))
        matched.append(matched_analytic_ntk(model, weights, x))
    # Paired by draw: the mean of empirical − matched is 0 within its standard error.
    empirical, matched = np.stack(empirical), np.stack(matched)
    assert_mc_close(empirical - matched, np.zeros(x.shape[:1] * 2), scale=np.abs(matched).max())


# --- the Du et al. (2019) Gram matrix ----------------------------------------------------------

@pytest.mark.parametrize("covariance", ["identity", "random"])
def test_relu_gram_two_layer_matches_monte_carlo(covariance):
    x = _inputs(8, 5, 22)
    x[2] = 0.0  # zero-norm input: wᵀx = 0 is never > 0, so its row is 0
    rng = np.random.default_rng(23)
    if covariance == "identity":
        C, w = None, rng.standard_normal((5, 200_000))
    else:
        root = rng.standard_normal((5, 5))
        C = root @ root.T + 0.1 * np.eye(5)
        w = np.linalg.cholesky(C) @ rng.standard_normal((5, 200_000))
    active = (x @ w > 0).astype(np.float64)
    # Split the draws into 100 batches: each batch mean is one (approximately normal) sample.
    batches = np.stack([a @ a.T / a.shape[1] for a in np.split(active, 100, axis=1)])
    H = relu_gram_two_layer(x, C=C)
    assert_mc_close(batches * (x @ x.T), H, max_rel_se=0.01)
    assert np.all(H[2] == 0) and np.all(H[:, 2] == 0)


def test_relu_gram_two_layer_is_the_first_layer_ntk_of_a_two_layer_relu_network():
    # Depth 1, NTK parameterization, w_std = 1, b_std = 0: Θ_1 = Σ_1·Ė_2 = (x·x'/d)(π − θ)/(2π).
    x1, x2 = _inputs(6, 5, 24), _inputs(4, 5, 25)
    layers = layerwise_kernels(x1, x2, activation="relu", sigma_w2=[1, 1], sigma_b2=[0, 0],
                               grad_w=[1, 1], grad_b=[0, 0]).layers
    np.testing.assert_allclose(relu_gram_two_layer(x1, x2) / 5, layers[0], rtol=1e-12)
    # The indicator only sees directions, so C and 3·C give the same matrix.
    C = np.diag([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_allclose(relu_gram_two_layer(x1, x2, C), relu_gram_two_layer(x1, x2, 3 * C),
                               rtol=1e-12)


def test_relu_gram_two_layer_rejects_bad_covariances():
    x = _inputs(3, 2, 26)
    with pytest.raises(ValueError, match="shape"):
        relu_gram_two_layer(x, C=np.eye(3))
    with pytest.raises(ValueError, match="symmetric"):
        relu_gram_two_layer(x, C=np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="positive semi-definite"):
        relu_gram_two_layer(x, C=np.diag([1.0, -1.0]))


# --- exact identities --------------------------------------------------------------------------

def test_relu_known_values_on_identical_inputs():
    # ‖x‖²/d = 1, He scale w_std² = 2, no bias: Σ_1 = 2, E[relu(a)²] = Σ/2 keeps every
    # Σ_l(x, x) = 2, Ė = 1/2, and Θ_{l+1} = 2 + 2·(1/2)·Θ_l gives Θ = 2(depth + 1)
    # (for x and a copy of x).
    x = np.array([[1.0, -1.0, 1.0, 1.0]])
    for depth in range(5):
        nngp, ntk = analytic_kernels(np.vstack([x, x]), depth=depth, w_std=math.sqrt(2))
        np.testing.assert_allclose(nngp, np.full((2, 2), 2.0), rtol=1e-14)
        np.testing.assert_allclose(ntk, np.full((2, 2), 2.0 * (depth + 1)), rtol=1e-14)
    # Unit weights: E[relu(a)²] = 1/2 and Ė = 1/2 give NNGP 1/2 and NTK 1·1/2 + 1/2 = 1.
    nngp, ntk = analytic_kernels(x, depth=1)
    assert (nngp.item(), ntk.item()) == pytest.approx((0.5, 1.0), rel=1e-14)


@pytest.mark.parametrize("activation", ["relu", "tanh", "erf", "gelu", "sin", "linear"])
def test_depth_zero_is_the_linear_kernel(activation):
    x1, x2 = _inputs(5, 3, 27), _inputs(4, 3, 28)
    nngp, ntk = analytic_kernels(x1, x2, depth=0, activation=activation, w_std=1.5, b_std=0.5)
    linear = 1.5**2 * x1 @ x2.T / 3 + 0.5**2
    np.testing.assert_allclose(nngp, linear, rtol=1e-14)
    np.testing.assert_allclose(ntk, linear, rtol=1e-14)


@pytest.mark.parametrize("activation", ["relu", "tanh", "erf", "gelu", "sin", "linear"])
def test_kernels_are_symmetric_psd_and_consistent_across_blocks(activation):
    x = _inputs(12, 4, 29)
    full = layerwise_kernels(x, activation=activation, sigma_w2=[1.2, 1.5, 0.9],
                             sigma_b2=[0.1, 0.3, 0.2], grad_w=[1.2, 1.5, 0.9],
                             grad_b=[0.1, 0.3, 0.2])
    np.testing.assert_allclose(full.layers.sum(0), full.ntk, rtol=1e-14)
    for kernel in (full.nngp, full.ntk, *full.layers):
        assert np.array_equal(kernel, kernel.T)
        assert np.linalg.eigvalsh(kernel).min() >= -1e-10 * np.abs(kernel).max()
    # The cross kernel x1 ≠ x2 takes another path (separate diagonals): same numbers.
    cross = layerwise_kernels(x[:7], x[7:], activation=activation, sigma_w2=[1.2, 1.5, 0.9],
                              sigma_b2=[0.1, 0.3, 0.2], grad_w=[1.2, 1.5, 0.9],
                              grad_b=[0.1, 0.3, 0.2])
    for a, b in zip(cross[:3], full[:3], strict=True):
        np.testing.assert_allclose(a, b[..., :7, 7:], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ["relu", "tanh", "erf", "gelu", "sin", "linear"])
def test_zero_input_without_bias_gives_zero_not_nan(activation):
    # Every activation here has φ(0) = 0, so an input 0 with no biases stays 0 at every layer.
    x = _inputs(4, 3, 30)
    x[1] = 0.0
    for quadrature in (False, True):
        nngp, ntk = analytic_kernels(x, x[:2], depth=3, activation=activation,
                                     quadrature=quadrature)
        assert np.all(np.isfinite(nngp)) and np.all(np.isfinite(ntk))
        assert np.all(nngp[1] == 0) and np.all(ntk[1] == 0)
        assert np.all(nngp[:, 1] == 0) and np.all(ntk[:, 1] == 0)


def test_large_variances_stay_finite():
    x = 30.0 * _inputs(4, 3, 31)
    for activation in ("sin", "erf", "gelu", "relu"):
        nngp, ntk = analytic_kernels(x, depth=3, activation=activation, w_std=3.0, b_std=2.0)
        assert np.all(np.isfinite(nngp)) and np.all(np.isfinite(ntk))


def test_analytic_kernels_result_unpacks_and_pickles():
    x = _inputs(3, 2, 32)
    result = analytic_kernels(x, depth=2)
    assert isinstance(result, AnalyticKernels) and len(result) == 2
    nngp, ntk = result
    assert nngp is result.nngp and ntk is result.ntk and result.method == "closed_form"
    assert nngp.dtype == ntk.dtype == np.float64 and nngp.shape == (3, 3)
    again = pickle.loads(pickle.dumps(result))
    assert again.method == "closed_form" and np.array_equal(again.ntk, ntk)


def test_bad_arguments_raise_clear_errors():
    x = _inputs(3, 2, 33)
    with pytest.raises(ValueError, match="2-D"):
        analytic_kernels(x[0], depth=1)
    with pytest.raises(ValueError, match="x2 must have shape"):
        analytic_kernels(x, _inputs(3, 4, 0), depth=1)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        analytic_kernels(x, depth=1, activation="swish")
    with pytest.raises(ValueError, match="depth"):
        analytic_kernels(x, depth=-1)
    with pytest.raises(ValueError, match="b_std"):
        analytic_kernels(x, depth=1, b_std=-0.1)
    with pytest.raises(ValueError, match="nan or inf"):
        analytic_kernels(np.full((2, 2), np.nan), depth=1)
    with pytest.raises(ValueError, match="quadrature_points"):
        analytic_kernels(x, depth=1, activation="tanh", quadrature_points=1000)
    common = dict(activation="relu", sigma_w2=[1, 1], sigma_b2=[0, 0], grad_w=[1, 1])
    with pytest.raises(ValueError, match="lengths"):
        layerwise_kernels(x, grad_b=[0, 0, 0], **common)
    with pytest.raises(ValueError, match=r"grad_b\[1\] must be >= 0"):
        layerwise_kernels(x, grad_b=[0, -1], **common)
    model = nb.MLP(in_dim=2, width=4, depth=1)
    weights = nb.initialize(model, "he_normal", seed=0)
    with pytest.raises(ValueError, match="layers"):
        matched_analytic_ntk(model, weights[:1], x)
    with pytest.raises(ValueError, match="x1 must have shape"):
        matched_analytic_ntk(model, weights, _inputs(3, 5, 0))
    with pytest.raises(ValueError, match=r"weights\[1\]\['W'\] must have shape \(1, 4\)"):
        matched_analytic_ntk(model, [weights[0], {"W": np.ones((4, 1)), "b": np.ones(1)}], x)


def test_quadrature_runs_in_bounded_blocks(monkeypatch):
    # With a 1 MiB budget (5 entries per block) the kernel is the same and the peak of numpy
    # allocations stays near the budget, far below one unblocked (entries × points²) array.
    x1, x2 = _inputs(40, 3, 34), _inputs(30, 3, 35)
    whole = analytic_kernels(x1, x2, depth=2, activation="tanh", b_std=0.2)
    monkeypatch.setattr("ntkbench.ntk.analytic.QUADRATURE_BLOCK_BYTES", 2**20)
    tracemalloc.start()
    try:
        blocked = analytic_kernels(x1, x2, depth=2, activation="tanh", b_std=0.2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    for a, b in zip(whole, blocked, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    assert peak < 4 * 2**20 < 1200 * 64**2 * 8


def test_correlation_survives_variances_whose_product_overflows():
    from ntkbench.ntk.analytic import _correlation

    k = np.array([1e200, 1.0])
    rho = _correlation(k, k, 0.5 * k)  # k11·k22 = 1e400 overflows; the correlation is 0.5
    np.testing.assert_allclose(rho, [0.5, 0.5], rtol=1e-15)
    assert _correlation(np.array([3.7]), np.array([3.7]), np.array([3.7]))[0] == 1.0


@pytest.mark.parametrize("activation", ["relu", "tanh", "erf", "linear"])
def test_forward_accumulation_equals_the_per_layer_sum(activation):
    # per_layer=False accumulates Θ forward in constant memory; per_layer=True sums the layers'
    # contributions built backward. Two recursions, one kernel: per-layer constants differ.
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(size=(7, 5)), rng.normal(size=(4, 5))
    consts = dict(sigma_w2=[1.3, 2.0, 0.7, 1.9], sigma_b2=[0.1, 0.0, 0.4, 0.2],
                  grad_w=[1.1, 0.5, 2.2, 1.0], grad_b=[0.3, 0.0, 1.0, 0.5])
    for a, b in ((x1, x2), (x1, None)):
        full = layerwise_kernels(a, b, activation=activation, **consts)
        fast = layerwise_kernels(a, b, activation=activation, per_layer=False, **consts)
        assert fast.layers is None and fast.method == full.method
        np.testing.assert_allclose(fast.ntk, full.ntk, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(fast.nngp, full.nngp, rtol=1e-15, atol=0)


def test_analytic_kernels_at_depth_4096_take_constant_memory():
    x = np.random.default_rng(0).normal(size=(40, 3))
    tracemalloc.start()
    try:
        k = nb.analytic_kernels(x, depth=4096, w_std=math.sqrt(2.0))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 40 * 40 * 8  # a few dozen (n × n) arrays, not one per layer (4096)
    off = k.ntk[np.triu_indices(40, 1)] / np.sqrt(np.outer(np.diag(k.ntk), np.diag(k.ntk)))[
        np.triu_indices(40, 1)]
    # the deep limit 1/4 (analysis.deep_limit); pairs that start close to ρ = 1 get there last
    assert np.median(np.abs(off - 0.25)) < 0.002 and np.max(np.abs(off - 0.25)) < 0.05
