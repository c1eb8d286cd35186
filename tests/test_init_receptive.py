"""Structured random receptive fields: the covariance, the sampler, the registered initializers
and the NTK-optimised length scale.

Statistical checks allow ``Z = 5`` standard errors (a false alarm has probability < 1e-6 per
check), ``Z_MAX = 6`` where the maximum over up to ~2,000 entries is taken (< 1e-5 in all);
the seeds are fixed, so every run gives the same verdict.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import minimize_scalar

import ntkbench as nb
from ntkbench import registry
from ntkbench.data.digits import digits
from ntkbench.initializers.calibration import Batch
from ntkbench.initializers.receptive import (
    draw_centres,
    receptive_field_covariance,
    receptive_field_gram,
    receptive_field_weights,
    structured_rf,
    structured_rf_incompatible,
    structured_rf_ntk,
)
from ntkbench.ntk.analytic import relu_gram_two_layer
from ntkbench.ntk.objectives import j_lambda

Z = 5.0
Z_MAX = 6.0


def first_layer(input_shape: tuple[int, ...] | None = (1, 8, 8), width: int = 16) -> nb.LayerInfo:
    in_dim = 64 if input_shape is None else math.prod(input_shape)
    return nb.MLP(in_dim=in_dim, width=width, depth=1, input_shape=input_shape).layers()[0]


def target_covariance(grid: tuple[int, ...], f: float, s: float, centre: tuple[float, ...],
                      channels: int = 1, gain: float = 1.0) -> np.ndarray:
    """``gain² · (I_channels ⊗ C) / tr(I_channels ⊗ C)``, the covariance a draw must have."""
    full = np.kron(np.eye(channels), receptive_field_covariance(grid, f, s, centre))
    return gain**2 * full / np.trace(full)


# --- the covariance ----------------------------------------------------------------------------


def test_covariance_is_the_formula() -> None:
    grid, f, s, c = (3, 4), 1.3, 2.2, np.array([0.7, 2.9])
    C = receptive_field_covariance(grid, f, s, c)
    points = [np.array(p, dtype=float) for p in np.ndindex(*grid)]  # C order, as the flat index
    for i, t in enumerate(points):
        for j, u in enumerate(points):
            expected = (math.exp(-np.sum((t - u) ** 2) / (2 * f * f))
                        * math.exp(-(np.sum((t - c) ** 2) + np.sum((u - c) ** 2)) / (2 * s * s)))
            assert C[i, j] == pytest.approx(expected, rel=1e-13)


def test_2d_covariance_is_the_kronecker_product_of_1d_covariances() -> None:
    f, s, (cr, cc) = 1.7, 2.5, (2.3, 6.1)
    C = receptive_field_covariance((5, 9), f, s, (cr, cc))
    rows, cols = (receptive_field_covariance((5,), f, s, cr),
                  receptive_field_covariance((9,), f, s, cc))
    np.testing.assert_allclose(C, np.kron(rows, cols), rtol=1e-13, atol=1e-300)
    assert np.linalg.eigvalsh(C)[0] > -1e-12  # positive semi-definite up to round-off


# --- the sampler -------------------------------------------------------------------------------


@pytest.mark.parametrize("grid, channels, centre", [((5, 6), 1, (1.3, 3.7)),
                                                    ((4, 5), 2, (2.0, 0.4)),
                                                    ((12,), 1, (8.6,))])
def test_draws_at_a_fixed_centre_have_the_covariance(grid: tuple[int, ...], channels: int,
                                                     centre: tuple[float, ...]) -> None:
    n, f, s, gain = 20000, 1.5, 2.0, 1.7
    w = receptive_field_weights(grid, f, s, np.tile(centre, (n, 1)), np.random.default_rng(0),
                                channels=channels, gain=gain)
    target = target_covariance(grid, f, s, centre, channels, gain)
    empirical = w.T @ w / n  # the mean is known to be 0
    # Var(mean of w_i w_j) = (Σ_ii Σ_jj + Σ_ij²) / N for a centred Gaussian.
    se = np.sqrt((np.outer(np.diag(target), np.diag(target)) + target**2) / n)
    assert np.max(np.abs(empirical - target) / se) < Z_MAX


def test_expected_squared_norm_is_gain_squared() -> None:
    gain = 1.5
    model = nb.MLP(in_dim=64, width=4096, depth=1, input_shape=(1, 8, 8))
    W = nb.initialize(model, "structured_rf", seed=1, params={"gain": gain})[0]["W"]
    norms = np.sum(W**2, axis=1)
    # ‖w‖² = Σ λ_k z_k² has variance 2 tr(Σ²) ≤ 2 (tr Σ)² = 2 gain⁴.
    assert abs(norms.mean() - gain**2) <= Z * gain**2 * math.sqrt(2 / len(norms))


@pytest.mark.parametrize("layer", [
    first_layer((3, 4, 5), width=4096),                       # channels share the 4×5 grid
    first_layer(None, width=4096),                            # a 1-D grid of fan_in points
    first_layer((20,), width=4096),
    nb.CNN(input_shape=(3, 6, 6), channels=(4096,), kernel_size=3).layers()[0],
    nb.CNN(input_shape=(2, 6, 6), channels=(4096,), kernel_size=2).layers()[0],  # even window
], ids=["channels", "none", "1d", "conv", "conv-even"])
def test_every_first_layer_kind_is_trace_normalised(layer: nb.LayerInfo) -> None:
    W = structured_rf(layer.weight_shape, np.random.default_rng(2), layer=layer, gain=0.8)
    assert W.shape == layer.weight_shape and np.all(np.isfinite(W))
    norms = np.sum(W.reshape(len(W), -1) ** 2, axis=1)
    assert abs(norms.mean() - 0.64) <= Z * 0.64 * math.sqrt(2 / len(norms))  # as above


def test_channels_are_independent_copies_of_one_spatial_covariance() -> None:
    layer = first_layer((2, 3, 3), width=20000)
    W = structured_rf(layer.weight_shape, np.random.default_rng(3), layer=layer, f=1e4, s=1e4)
    # f, s ≫ the grid: each channel's 9 weights are one shared value, channels independent.
    first, second = W[:, :9], W[:, 9:]
    assert np.max(np.abs(first - first[:, :1])) < 1e-2 * np.abs(W).max()
    r = np.corrcoef(first[:, 0], second[:, 0])[0, 1]
    assert abs(r) <= Z / math.sqrt(len(W))  # SE of a correlation of 0 is 1/√N


def test_larger_f_gives_smoother_weights() -> None:
    grid, s, n, centre = (8, 8), 3.0, 4000, (3.5, 3.5)
    index = np.arange(64).reshape(grid)
    pairs = [*zip(index[:, :-1].ravel(), index[:, 1:].ravel(), strict=True),
             *zip(index[:-1, :].ravel(), index[1:, :].ravel(), strict=True)]
    diff = np.zeros((len(pairs), 64))
    for k, (a, b) in enumerate(pairs):
        diff[k, a], diff[k, b] = 1.0, -1.0
    means, errors = {}, {}
    for f in (1.0, 3.0):
        w = receptive_field_weights(grid, f, s, np.tile(centre, (n, 1)),
                                    np.random.default_rng(4))
        roughness = np.sum((w @ diff.T) ** 2, axis=1)  # Σ over neighbours of (w_t − w_t')²
        # wᵀLw with L = DᵀD: mean tr(DΣDᵀ), variance 2‖DΣDᵀ‖_F².
        M = diff @ target_covariance(grid, f, s, centre) @ diff.T
        means[f], errors[f] = roughness.mean(), math.sqrt(2 * np.sum(M * M) / n)
        assert abs(means[f] - np.trace(M)) <= Z * errors[f]
    assert means[1.0] - means[3.0] > Z * (errors[1.0] + errors[3.0])


# --- the registered initializers ---------------------------------------------------------------


def test_incompatible_is_structured_rf_at_f_s_one_half() -> None:
    entry = registry.initializers.get("structured_rf_incompatible")
    assert [p.name for p in entry.params] == ["gain"]
    layer = first_layer()
    ours = structured_rf_incompatible((16, 64), np.random.default_rng(5), layer=layer, gain=1.2)
    theirs = structured_rf((16, 64), np.random.default_rng(5), layer=layer, f=0.5, s=0.5,
                           gain=1.2)
    np.testing.assert_array_equal(ours, theirs)


def test_incompatible_fields_are_nearly_white_and_about_one_pixel() -> None:
    grid, n, centre = (8, 8), 20000, (3.0, 4.0)
    w = receptive_field_weights(grid, 0.5, 0.5, np.tile(centre, (n, 1)),
                                np.random.default_rng(6))
    target = target_covariance(grid, 0.5, 0.5, centre)
    # Support: E w_t² = Σ_tt for every pixel, within Z·√2·Σ_tt/√N (a χ²₁ mean).
    variances = np.diag(target)
    assert np.all(np.abs(np.mean(w**2, axis=0) - variances) <= Z * math.sqrt(2 / n) * variances)
    assert variances[3 * 8 + 4] > 0.9  # the centre pixel carries most of E‖w‖² = 1
    # Whiteness: neighbours correlate by exp(−1/(2f²)) = e⁻² ≈ 0.14 (SE ≈ (1 − ρ²)/√N).
    rho = math.exp(-2.0)
    r = np.corrcoef(w[:, 3 * 8 + 4], w[:, 3 * 8 + 5])[0, 1]
    assert abs(r - rho) <= Z * (1 - rho**2) / math.sqrt(n)


@pytest.mark.parametrize("activation, gain", [("relu", math.sqrt(2)), ("tanh", 5 / 3),
                                              ("gelu", 1.0)])
def test_later_layers_are_iid_with_the_activation_gain(activation: str, gain: float) -> None:
    model = nb.MLP(in_dim=64, width=512, depth=2, activation=activation, input_shape=(1, 8, 8))
    weights = nb.initialize(model, "structured_rf", seed=7)
    for W, std in [(weights[1]["W"], gain / math.sqrt(512)),   # hidden: the activation's gain
                   (weights[2]["W"], 1 / math.sqrt(512))]:      # linear readout: gain 1
        n = W.size
        assert abs(W.mean()) <= Z * std / math.sqrt(n)
        assert abs(W.var(ddof=1) - std**2) <= Z * std**2 * math.sqrt(2 / (n - 1))
        assert stats.kstest(W.ravel(), stats.norm(0, std).cdf).pvalue > 1e-6


def test_uncalibrated_ntk_variant_is_structured_rf_at_l0() -> None:
    layer = first_layer()
    ours = structured_rf_ntk((16, 64), np.random.default_rng(8), layer=layer, l0=3.0,
                             f_over_s=0.5, gain=0.9)
    theirs = structured_rf((16, 64), np.random.default_rng(8), layer=layer, f=1.5, s=3.0,
                           gain=0.9)
    np.testing.assert_array_equal(ours, theirs)
    defaults = {p.name: p.default for p in registry.initializers.get("structured_rf_ntk").params}
    assert defaults["l0"] == 5.0 and defaults["f_over_s"] * defaults["l0"] == 2.0


# --- the NTK-optimised length scale ------------------------------------------------------------


def test_gram_matches_relu_gram_two_layer() -> None:
    rng = np.random.default_rng(9)
    x = rng.standard_normal((20, 2 * 4 * 5))
    centres = draw_centres((4, 5), 3, rng)
    ours = receptive_field_gram(x, (4, 5), 1.3, 2.1, centres, channels=2)
    reference = np.mean([relu_gram_two_layer(x, C=np.kron(np.eye(2),
                         receptive_field_covariance((4, 5), 1.3, 2.1, c))) for c in centres],
                        axis=0)
    # arccos amplifies a round-off ε in ρ ≈ 1 to √(2ε) ≈ 2e-8 of the entry's scale.
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6 * np.abs(reference).max())


N_CAL, CENTRES, SEED = 64, 12, 5
PARAMS = dict(f_over_s=0.4, l0=5.0, batch_size=N_CAL, centres=CENTRES, gain=1.0, reg=1e-8)


@pytest.fixture(scope="module")
def calibration() -> dict:
    """Digits 3 vs 8 (±1): the chosen dicts at λ = 0 and 0.9 and the objective they minimise."""
    data = digits(seed=0, n_train=N_CAL, n_test=50, targets="pm1", classes=[3, 8])
    batch = Batch(data.x_train, data.y_train, data.y_train, "regression")
    model = nb.MLP(in_dim=64, width=16, depth=1, input_shape=(1, 8, 8))
    pre = nb.initialize(model, "structured_rf", seed=0)
    # batch_size = n: no rows are drawn, so the centres are the generator's first draw.
    centres = draw_centres((8, 8), CENTRES, np.random.default_rng(SEED))

    def gram(scale: float) -> np.ndarray:
        H = receptive_field_gram(batch.x, (8, 8), 0.4 * scale, scale, centres)
        return N_CAL * H / np.trace(H)

    out = {"gram": gram, "y": batch.y, "model": model, "pre": pre}
    for lam in (0.0, 0.9):
        out[lam] = structured_rf_ntk.calibrate(model, pre, batch, None,
                                               rng=np.random.default_rng(SEED), lam=lam, **PARAMS)
    return out


@pytest.mark.parametrize("lam", [0.0, 0.9])
def test_calibration_finds_the_minimiser_of_j_lambda(calibration: dict, lam: float) -> None:
    gram, y = calibration["gram"], calibration["y"]
    weights, chosen = calibration[lam]

    def objective(scale: float) -> float:
        return j_lambda(gram(scale), y, lam, reg=PARAMS["reg"])

    scan = np.geomspace(0.2, 80, 24)  # bracket the global minimum, then refine it with Brent
    i = int(np.argmin([objective(scale) for scale in scan]))
    best = minimize_scalar(objective, bounds=(scan[i - 1], scan[i + 1]), method="bounded",
                           options={"xatol": 1e-10})
    scale = chosen["length_scale"]
    assert chosen["converged"] and chosen["lam"] == lam and chosen["gram"] == "relu_two_layer"
    # J is flat at its minimum: the scale agrees to ~√(round-off of J), J itself much closer.
    assert scale == pytest.approx(best.x, rel=1e-4)
    assert chosen["j_lambda"] == pytest.approx(objective(scale), rel=1e-12)
    assert chosen["j_lambda"] <= best.fun + 1e-10 * abs(best.fun)
    assert chosen["s"] == scale and chosen["f"] == pytest.approx(0.4 * scale, rel=1e-15)
    assert json.loads(json.dumps(chosen)) == chosen
    pre = calibration["pre"]
    assert weights[0]["W"].shape == pre[0]["W"].shape and not np.array_equal(weights[0]["W"],
                                                                              pre[0]["W"])
    for new, old in zip(weights[1:], pre[1:], strict=True):
        np.testing.assert_array_equal(new["W"], old["W"])


def test_weight_on_training_speed_picks_larger_receptive_fields(calibration: dict) -> None:
    gram, y = calibration["gram"], calibration["y"].ravel()
    low, high = calibration[0.0][1]["length_scale"], calibration[0.9][1]["length_scale"]
    # For global minimisers l(λ), comparing J at the two choices shows both yᵀH⁻¹y and yᵀHy
    # are nondecreasing in λ (the test above checks the minima are global).
    H_low, H_high = gram(low), gram(high)
    assert y @ H_high @ y >= y @ H_low @ y
    assert y @ np.linalg.solve(H_high, y) >= y @ np.linalg.solve(H_low, y)
    # On digits yᵀHy grows with l up to ~2 pixels while yᵀH⁻¹y is smallest near 1 pixel, so
    # more weight on training speed chooses larger, smoother receptive fields.
    assert high > 1.5 * low


def test_initialize_runs_the_calibration() -> None:
    data = digits(seed=1, n_train=40, n_test=10, targets="pm1", classes=[0, 1])
    model = nb.MLP(in_dim=64, width=8, depth=1, input_shape=(1, 8, 8))
    params = {"batch_size": 32, "centres": 4}
    weights = nb.initialize(model, "structured_rf_ntk", seed=3, params=params,
                            data=(data.x_train, data.y_train))
    assert weights.calibration["s"] == weights.calibration["length_scale"] > 0
    pre = nb.initialize(model, "structured_rf", seed=3)
    np.testing.assert_array_equal(weights[1]["W"], pre[1]["W"])


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("params, match", [({"f": 0.0}, "f must be > 0"),
                                           ({"s": -1.0}, "s must be > 0"),
                                           ({"gain": -0.1}, "gain must be >= 0")])
def test_invalid_parameters_are_rejected(params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        structured_rf((16, 64), np.random.default_rng(0), layer=first_layer(), **params)
    if "gain" not in params:
        with pytest.raises(ValueError, match=match):
            receptive_field_covariance((8, 8), **{"f": 1.0, "s": 1.0, **params},
                                       centre=(1.0, 1.0))


@pytest.mark.parametrize("params, match", [({"lam": 1.5}, "lam must be in"),
                                           ({"l0": 0.0}, "l0 must be > 0"),
                                           ({"f_over_s": -1.0}, "f_over_s must be > 0"),
                                           ({"centres": 0}, "centres must be an integer"),
                                           ({"batch_size": 1}, "batch_size must be an integer")])
def test_invalid_ntk_parameters_are_rejected(params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        structured_rf_ntk((16, 64), np.random.default_rng(0), layer=first_layer(), **params)


def test_input_shape_must_match_the_first_layer() -> None:
    layer = nb.LayerInfo(index=0, depth=2, fan_in=60, fan_out=16, activation="relu",
                         input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="does not describe the 60 inputs"):
        structured_rf((16, 60), np.random.default_rng(0), layer=layer)


def test_centres_must_match_the_grid() -> None:
    with pytest.raises(ValueError, match="2 coordinate"):
        receptive_field_weights((8, 8), 1.0, 1.0, [[1.0, 2.0, 3.0]], np.random.default_rng(0))


def test_calibration_needs_a_dense_first_layer() -> None:
    model = nb.CNN(input_shape=(1, 8, 8), channels=(4,), kernel_size=3)
    batch = Batch(np.zeros((4, 64)), np.zeros((4, 1)), np.zeros((4, 1)), "regression")
    with pytest.raises(ValueError, match="dense first layers only"):
        structured_rf_ntk.calibrate(model, [], batch, None, rng=np.random.default_rng(0),
                                    lam=0.5, **PARAMS)
