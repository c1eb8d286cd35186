"""Dynamical isometry: the input–output Jacobian against finite differences, the exact
orthogonal linear case, and Monte Carlo against the free-probability closed forms of
Pennington, Schoenholz & Ganguli (2017). Seeds are fixed, so every run gives the same verdict.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from ntkbench.analysis import isometry as iso
from ntkbench.analysis import variance_flow as vf
from ntkbench.initializers import initialize
from ntkbench.models import MLP

SQRT2 = {"gain": math.sqrt(2.0)}


def _net(activation: str, init: str, depth: int, width: int = 256, params=None, **kw):
    model = MLP(in_dim=kw.pop("in_dim", width), width=width, depth=depth,
                activation=activation, bias=kw.pop("bias", False), **kw)
    weights = initialize(model, init, 3, params or {})
    x = vf.unit_rms_inputs(32, model.in_dim, np.random.default_rng(7))
    return model, weights, x


def _forward(model, weights, x):
    """Post-activations of the last hidden layer, written out independently of the module."""
    phi = vf.activation_function(model.activation)
    h = x
    for layer, info in zip(range(model.depth), model.layers(), strict=False):
        s_w, s_b = model.scales(info)
        h = phi(s_w * h @ weights[layer]["W"].T + s_b * weights[layer]["b"])
    return h


def test_jacobian_singular_values_match_central_differences():
    # NTK parameterization with biases: the multipliers and the biases enter the Jacobian.
    model, weights, x = _net("tanh", "xavier_normal", 3, width=12, in_dim=5, bias=True,
                             parameterization="ntk", b_std=0.5)
    x = x[:3]
    got = iso.jacobian_spectrum(model, weights, x)
    eps = 1e-6
    for n in range(len(x)):
        J = np.empty((model.width, model.in_dim))
        for k in range(model.in_dim):
            e = np.zeros(model.in_dim)
            e[k] = eps
            J[:, k] = (_forward(model, weights, x[n] + e) - _forward(model, weights, x[n] - e)) \
                / (2 * eps)
        np.testing.assert_allclose(got.singular_values[n], np.linalg.svd(J, compute_uv=False),
                                   rtol=1e-7, atol=1e-9)


def test_orthogonal_linear_network_is_exactly_isometric_at_every_depth():
    model, weights, x = _net("linear", "orthogonal", 5, width=64, params={"gain": 1.3})
    got = iso.jacobian_spectrum(model, weights, x)
    np.testing.assert_allclose(got.singular_values, 1.3 ** 5, rtol=1e-12)
    np.testing.assert_allclose(got.mean_sq, 1.3 ** (2 * np.arange(1, 6)), rtol=1e-12)
    np.testing.assert_allclose(got.var_sq, 0.0, atol=1e-12)
    mean, var = iso.free_probability_prediction(model, weights)
    np.testing.assert_allclose(mean, got.mean_sq, rtol=1e-12)
    np.testing.assert_allclose(var, 0.0, atol=1e-12)


@pytest.mark.parametrize(("activation", "init", "params", "per_layer"), [
    ("linear", "xavier_normal", None, 1.0),   # Wishart at ratio 1: σ² = L
    ("relu", "he_normal", None, 2.0),         # Gaussian W and Bernoulli D²: σ² = 2L
    ("relu", "orthogonal", SQRT2, 1.0),       # orthogonal W removes the W part: σ² = L
])
def test_mean_and_variance_of_squared_singular_values_match_the_closed_forms(
        activation, init, params, per_layer):
    # Monte Carlo over 8 weight draws at width 128: the mean over draws is within 4 standard
    # errors of m₁ = 1 and of σ²/(per_layer · l) = 1, plus l/width for the finite-width
    # corrections of a product of l random matrices (the closed forms are N → ∞ limits).
    depth, width, draws = 3, 128, 8
    layers = np.arange(1, depth + 1)
    means, variances, predicted = [], [], []
    for seed in range(draws):
        model = MLP(in_dim=width, width=width, depth=depth, activation=activation, bias=False)
        weights = initialize(model, init, seed, params or {})
        x = vf.unit_rms_inputs(16, width, np.random.default_rng(100 + seed))
        got = iso.jacobian_spectrum(model, weights, x)
        means.append(got.mean_sq)
        variances.append(got.var_sq / (per_layer * layers))
        predicted.append(iso.free_probability_prediction(model, weights)[1]
                         / (per_layer * layers))
    for values in (np.array(means), np.array(variances)):
        stderr = values.std(axis=0, ddof=1) / math.sqrt(draws)
        assert np.all(np.abs(values.mean(axis=0) - 1.0) <= 4 * stderr + layers / width), \
            (values.mean(axis=0), stderr)
    # The prediction takes each drawn layer's weight moments: O(1/width) from the limit.
    assert np.all(np.abs(np.mean(predicted, axis=0) - 1.0) <= layers / width)


def test_tanh_prediction_follows_the_measured_network_and_its_expectations():
    model, weights, x = _net("tanh", "orthogonal", 6)
    got = iso.jacobian_spectrum(model, weights, x)
    mean, var = iso.free_probability_prediction(model, weights)
    np.testing.assert_allclose(mean, got.mean_sq, rtol=0.05)
    np.testing.assert_allclose(var, got.var_sq, rtol=0.06)
    # Layer 1 by hand: h ~ N(0, 1) (inputs of RMS 1, orthogonal rows of norm 1), so
    # m₁ = E[sech⁴ h] and, with v_W = 0, σ² = E[sech⁸ h] − E[sech⁴ h]², by scipy quadrature.
    def expect(f):
        value, _ = integrate.quad(lambda z: f(z) * math.exp(-z * z / 2), -12, 12)
        return value / math.sqrt(2 * math.pi)
    e2 = expect(lambda z: (1 - math.tanh(z) ** 2) ** 2)
    e4 = expect(lambda z: (1 - math.tanh(z) ** 2) ** 4)
    assert mean[0] == pytest.approx(e2, rel=1e-9)
    assert var[0] == pytest.approx(e4 - e2 * e2, rel=1e-8)


def test_weight_moments_of_gaussian_and_orthogonal_square_matrices():
    rng = np.random.default_rng(0)
    n = 400
    m1, v = iso.weight_moments(rng.normal(0, 1 / math.sqrt(n), (n, n)))
    assert m1 == pytest.approx(1.0, abs=5 / n) and v == pytest.approx(1.0, abs=0.02)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    assert iso.weight_moments(2 * q) == pytest.approx((4.0, 0.0), abs=1e-12)


def test_jacobian_spectrum_rejects_a_wrong_input_shape():
    model, weights, _ = _net("relu", "he_normal", 2, width=8)
    with pytest.raises(ValueError, match=r"shape \(n, 8\)"):
        iso.jacobian_spectrum(model, weights, np.ones((3, 5)))


def test_prediction_follows_small_inputs_and_a_wide_input_layer():
    # tanh at input RMS 0.1 (near-linear start, variance growing with depth) and a first layer
    # 64×256 that expands the input: the prediction must use s0 and the row norms.
    for in_dim, width, rms in ((256, 256, 0.1), (256, 64, 1.0)):
        model = MLP(in_dim=in_dim, width=width, depth=4, activation="tanh", bias=False)
        weights = initialize(model, "orthogonal", 3, {"gain": 1.05})
        x = rms * vf.unit_rms_inputs(32, in_dim, np.random.default_rng(7))
        got = iso.jacobian_spectrum(model, weights, x)
        mean, var = iso.free_probability_prediction(model, weights, rms)
        np.testing.assert_allclose(mean, got.mean_sq, rtol=0.05)
        np.testing.assert_allclose(var, got.var_sq, rtol=0.08)
    # Ignoring s0 would predict the RMS-1 spectrum, far from the measured one at RMS 0.1.
    model = MLP(in_dim=256, width=256, depth=4, activation="tanh", bias=False)
    weights = initialize(model, "orthogonal", 3, {"gain": 1.05})
    assert iso.free_probability_prediction(model, weights, 1.0)[0][-1] < 0.5 * \
        iso.free_probability_prediction(model, weights, 0.1)[0][-1]


def test_prediction_refuses_biases_and_a_compressing_first_layer():
    with pytest.raises(ValueError, match="zero biases"):
        model = MLP(in_dim=8, width=8, depth=2, activation="relu", bias=True)
        iso.free_probability_prediction(model, initialize(model, "he_normal", 0))
    with pytest.raises(ValueError, match="in_dim >= width"):
        model = MLP(in_dim=8, width=32, depth=2, activation="relu", bias=False)
        iso.free_probability_prediction(model, initialize(model, "he_normal", 0))
