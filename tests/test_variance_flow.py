"""The variance map against closed forms and an independent quadrature, its fixed points, and a
finite network against it.

Statistical checks allow ``Z = 5`` standard deviations; the seeds are fixed, so every run gives
the same verdict.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from ntkbench.analysis import variance_flow as vf
from ntkbench.initializers import initialize
from ntkbench.models import MLP

Z = 5.0
SIGMAS = [0.0, *np.logspace(-6, 3, 37)]
CLOSED_FORMS = {
    "relu": lambda s: s * s / 2,
    "erf": lambda s: 2 / math.pi * math.asin(2 * s * s / (1 + 2 * s * s)),
    "sin": lambda s: -math.expm1(-2 * s * s) / 2,
    "linear": lambda s: s * s,
}


def expectation(f) -> float:
    """``E[f(z)]``, ``z ~ N(0, 1)``, by scipy's adaptive quadrature: an independent reference
    for the moderate scales used below (σ ≤ 2); the density beyond |z| = 12 is below 1e-31."""
    value, _ = integrate.quad(lambda z: float(f(np.array([z]))[0]) * math.exp(-z * z / 2),
                              -12, 12, points=[0.0], epsabs=1e-15, epsrel=1e-13, limit=200)
    return value / math.sqrt(2 * math.pi)


def bisect(f, lo: float, hi: float) -> float:
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (f(mid) > 0) == (f(lo) > 0) else (lo, mid)
    return (lo + hi) / 2


@pytest.mark.parametrize("activation", sorted(CLOSED_FORMS))
def test_second_moment_matches_closed_forms_from_1e_minus_6_to_1e3(activation):
    for sigma in SIGMAS:
        exact = CLOSED_FORMS[activation](sigma)
        got = vf.second_moment(activation, sigma)
        assert abs(got - exact) <= 1e-10 * exact, (activation, sigma, got, exact)


@pytest.mark.parametrize("activation", ["tanh", "gelu"])
@pytest.mark.parametrize("sigma", [0.01, 0.3, 1.0, 2.0])
def test_second_moment_without_closed_form_matches_expectation(activation, sigma):
    phi = vf.activation_function(activation)
    expected = expectation(lambda z: phi(sigma * z) ** 2)
    assert vf.second_moment(activation, sigma) == pytest.approx(expected, rel=1e-10)


def test_tanh_second_moment_follows_its_taylor_series_and_saturates():
    # tanh(u)² = u² − 2u⁴/3 + 17u⁶/45 − ...; with E z⁴ = 3, E z⁶ = 15: M = σ² − 2σ⁴ + 17σ⁶/3.
    sigma = 1e-2
    taylor = sigma**2 - 2 * sigma**4 + 17 * sigma**6 / 3
    assert vf.second_moment("tanh", sigma) == pytest.approx(taylor, rel=1e-11)
    # 1 − M(σ) = E[sech²(σz)] → (1/σ)·√(2/π)·∫₀^∞ sech² = √(2/π)/σ for large σ.
    big = 1e3
    assert 1 - vf.second_moment("tanh", big) == pytest.approx(math.sqrt(2 / math.pi) / big,
                                                               rel=1e-5)


def test_second_moment_rejects_bad_input():
    with pytest.raises(ValueError, match="activation must be one of"):
        vf.second_moment("tanhh", 1.0)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        vf.second_moment("tanh", -1.0)


@pytest.mark.parametrize(("activation", "c"), [("relu", math.sqrt(2)), ("linear", 1.0)])
def test_critical_homogeneous_maps_preserve_the_variance_and_are_lines_of_fixed_points(
        activation, c):
    for s0 in (1e-3, 1.0, 1e3):
        np.testing.assert_allclose(vf.iterate(activation, c, s0, 30), s0, rtol=1e-12)
    result = vf.fixed_points(activation, c)
    assert result.every_s and result.points == ()
    # 0.1 % off the critical gain the line breaks: only 0 is fixed, and it repels.
    off = vf.fixed_points(activation, c * 1.001)
    assert not off.every_s and [p.s for p in off.points] == [0.0]
    assert off.points[0].slope == pytest.approx(1.001, rel=1e-9) and not off.points[0].stable
    # ... unless the gain is known only to ±0.5 %: then the difference is not resolved.
    assert vf.fixed_points(activation, c * 1.001, rtol=5e-3).every_s


def test_tanh_at_unit_gain_collapses_to_the_stable_fixed_point_zero_as_a_power_law():
    result = vf.fixed_points("tanh", 1.0)
    (zero,) = result.points
    assert zero.s == 0 and zero.stable and zero.marginal
    assert zero.slope == pytest.approx(1.0, abs=1e-9)
    s = vf.iterate("tanh", 1.0, 1.0, 4000)
    assert np.all(np.diff(s) < 0) and s[-1] > 0
    # M(σ) = σ² − 2σ⁴ + O(σ⁶) gives 1/s_{l+1}² = 1/s_l² + 2 + O(s_l²): s_l √(2l) → 1 with a
    # relative correction of order log(l)/l.
    for layer in (1000, 4000):
        assert abs(s[layer] * math.sqrt(2 * layer) - 1) <= math.log(layer) / layer


def test_tanh_at_gain_two_has_an_unstable_zero_and_a_stable_nonzero_fixed_point():
    c = 2.0
    zero, star = vf.fixed_points("tanh", c).points
    assert zero.s == 0 and not zero.stable and zero.slope == pytest.approx(c, rel=1e-9)
    assert star.stable and not star.marginal

    # The same fixed point by iterating the map with scipy's quadrature (it contracts with rate
    # g′(s*) ≈ 0.33, so 40 steps converge to machine precision).
    def g(s: float) -> float:
        return math.sqrt(expectation(lambda z: np.tanh(c * s * z) ** 2))

    s = 1.0
    for _ in range(40):
        s = g(s)
    assert star.s == pytest.approx(s, rel=1e-10) and star.s == pytest.approx(0.72826, abs=1e-5)
    # g′(s) = c E[φ(σz) φ′(σz) z] / g(s) with σ = c s, by the same quadrature.
    sigma = c * s
    slope = c * expectation(lambda z: np.tanh(sigma * z) * (1 - np.tanh(sigma * z) ** 2) * z) / s
    assert star.slope == pytest.approx(slope, rel=1e-6)
    # From below and from above, the flow reaches s*.
    assert vf.iterate("tanh", c, 1e-3, 60)[-1] == pytest.approx(star.s, rel=1e-9)
    assert vf.iterate("tanh", c, 10.0, 60)[-1] == pytest.approx(star.s, rel=1e-9)


def test_erf_fixed_point_matches_the_closed_form_map():
    # g(s)² = (2/π) arcsin(2c²s²/(1 + 2c²s²)); with c = 1 solve g(s)² = s² directly.
    exact = bisect(lambda s: CLOSED_FORMS["erf"](s) - s * s, 0.1, 1.0)
    zero, star = vf.fixed_points("erf", 1.0).points
    assert zero.slope == pytest.approx(2 / math.sqrt(math.pi), rel=1e-9)  # c·erf′(0)
    assert not zero.stable and star.stable
    assert star.s == pytest.approx(exact, rel=1e-10)


def test_zero_gain_maps_everything_to_zero():
    (zero,) = vf.fixed_points("tanh", 0.0).points
    assert zero.s == 0 and zero.stable and zero.slope == 0
    np.testing.assert_array_equal(vf.iterate("relu", 0.0, 1.0, 3), [1.0, 0.0, 0.0, 0.0])


def test_iterate_uses_the_first_layer_gain_once():
    s = vf.iterate("linear", 1.0, 2.0, 3, c_first=0.5)
    np.testing.assert_allclose(s, [2.0, 1.0, 1.0, 1.0], rtol=1e-12)


@pytest.mark.parametrize(("init", "gain"), [("xavier_normal", 1.0), ("he_normal", math.sqrt(2))])
def test_weight_gain_recovers_the_initializer_gain_within_its_standard_error(init, gain):
    model = MLP(in_dim=256, width=256, depth=3, activation="relu", bias=False)
    weights = initialize(model, init, seed=0)
    c = vf.weight_gain(model, weights, [1, 2])
    n = 2 * 256 * 256
    # For Gaussian entries m4 = 3 m2², so the standard error is c/√(2N); the sample kurtosis
    # has relative error ≈ √(96/N)/3 < 1 %, hence 5 %.
    assert c.stderr == pytest.approx(gain / math.sqrt(2 * n), rel=0.05)
    assert abs(c.value - gain) <= Z * c.stderr and c.zero_mean
    assert not vf.weight_gain(model, initialize(model, "ones"), [1]).zero_mean


def test_weight_gain_includes_the_ntk_multiplier():
    model = MLP(in_dim=128, width=128, depth=2, parameterization="ntk", w_std=2.0, bias=False)
    c = vf.weight_gain(model, initialize(model, "normal", seed=1), [1])  # W ~ N(0, 1)
    assert abs(c.value - 2.0) <= Z * c.stderr


def test_measured_flow_of_orthogonal_linear_layers_is_exact():
    # Orthonormal columns (in_dim < width) and square orthogonal layers preserve |h|; the first
    # layer spreads in_dim coordinates over width units: RMS × √(in_dim / width).
    model = MLP(in_dim=16, width=64, depth=4, activation="linear", bias=False)
    weights = initialize(model, "orthogonal", seed=0)
    x = vf.unit_rms_inputs(8, 16, np.random.default_rng(0))
    expected = [1.0] + [math.sqrt(16 / 64)] * 4
    np.testing.assert_allclose(vf.measured_flow(model, weights, x), expected, rtol=1e-12)


def _measured_vs_theory(activation: str, init: str, c: float, width: int, depth: int):
    model = MLP(in_dim=width, width=width, depth=depth, activation=activation, bias=False)
    weights = initialize(model, init, seed=0)
    x = vf.unit_rms_inputs(64, width, np.random.default_rng(1))
    return vf.measured_flow(model, weights, x), vf.iterate(activation, c, 1.0, depth)


def _log_tolerance(activation: str, theory: np.ndarray, c: float, width: int) -> np.ndarray:
    """Z standard deviations of log(measured s_l / theory s_l) at finite width, per layer.

    Given h_l, the pre-activations of the ``width`` units of layer l+1 are i.i.d. N(0, (c s_l)²)
    (Gaussian weights), so for one input the mean of φ² over units has relative variance
    κ_l / width, κ_l = E[φ⁴]/E[φ²]² − 1 at σ = c s_l; averaging over several inputs can only
    shrink it. As log s = ½ log q and |d log g / d log s| ≤ 1 here, the variances add up over
    the layers: Var(log s_l) ≤ Σ_{k<l} κ_k / (4 width).
    """
    phi = vf.activation_function(activation)
    kappa = [expectation(lambda z, s=s: phi(c * s * z) ** 4)
             / expectation(lambda z, s=s: phi(c * s * z) ** 2) ** 2 - 1 for s in theory[:-1]]
    return Z * np.sqrt(np.concatenate([[0.0], np.cumsum(kappa)]) / (4 * width))


def test_wide_relu_he_network_keeps_its_rms_within_the_finite_width_tolerance():
    width, depth, c = 2048, 5, math.sqrt(2)
    measured, theory = _measured_vs_theory("relu", "he_normal", c, width, depth)
    np.testing.assert_allclose(theory, 1.0, rtol=1e-12)
    tol = _log_tolerance("relu", theory, c, width)  # κ = E[z⁴; z>0]/(1/2)² − 1 = 5 per layer
    assert np.all(np.abs(np.log(measured / theory)) <= tol), (measured, tol)


def test_wide_tanh_xavier_network_follows_the_variance_map():
    width, depth, c = 2048, 5, 1.0  # xavier_normal on square layers: σ_w √fan_in = 1 exactly
    measured, theory = _measured_vs_theory("tanh", "xavier_normal", c, width, depth)
    tol = _log_tolerance("tanh", theory, c, width)
    assert np.all(np.abs(np.log(measured / theory)) <= tol), (measured, theory, tol)
    # The check is sharp enough to see a map shifted by one layer (s_l vs s_{l+1}).
    assert np.any(np.abs(np.log(measured[1:-1] / theory[2:])) > tol[1:-1])
