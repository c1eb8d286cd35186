"""The J_λ objective, its derivatives, and its Newton minimiser, against independent references."""

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from ntkbench.ntk.metrics import loss_decrease_rate, rkhs_norm_complexity
from ntkbench.ntk.objectives import (
    NewtonResult,
    j_lambda,
    j_lambda_derivatives,
    minimize_j_lambda,
)

# An RBF kernel family K(l) = exp(−D²/(2l²)) + σ·I on 15 random points of the plane, with
# smooth targets; σ keeps K(l) positive definite for every l. For E = exp(−D²/(2l²)):
#   dE/dl = E ⊙ D²/l³,   d²E/dl² = E ⊙ (D⁴/l⁶ − 3D²/l⁴).
_rng = np.random.default_rng(0)
X = _rng.uniform(-2.0, 2.0, size=(15, 2))
D2 = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
Y = np.sin(2.0 * X[:, 0]) + 0.5 * X[:, 1]
NUGGET = 1e-2
# Where l ↦ J_λ(K(l), Y) has its minimum, inside (0.05, 10), located by the tests below.
INTERIOR = {0.0: 0.5875, 0.3: 0.8095, 0.7: 1.1456}


def rbf(ell: float) -> np.ndarray:
    return np.exp(-D2 / (2 * ell * ell)) + NUGGET * np.eye(len(X))


def rbf_derivatives(ell: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    E = np.exp(-D2 / (2 * ell * ell))
    return E + NUGGET * np.eye(len(X)), E * D2 / ell**3, E * (D2**2 / ell**6 - 3 * D2 / ell**4)


def direct_j(K: np.ndarray, y: np.ndarray, lam: float, reg: float = 0.0) -> float:
    """The textbook formula with a general solver (LU), not the module's Cholesky path."""
    Ym = y.reshape(len(y), -1)
    inverse = np.trace(Ym.T @ np.linalg.solve(K + reg * np.eye(len(K)), Ym))
    return (1 - lam) * inverse - lam * np.trace(Ym.T @ K @ Ym)


# A 1 × 1 family whose objective at λ = 0 is the Gaussian well J(l) = 2 − exp(−(l − 2)²):
# minimum at l = 2, concave (J'' < 0) for |l − 2| > 1/√2. With k = 1/J and y = (1,),
# yᵀk⁻¹y = J, and k' = −J'/J², k'' = (2J'² − J J'')/J³.
def well_kernel(ell: float) -> np.ndarray:
    return np.array([[1.0 / (2.0 - math.exp(-((ell - 2.0) ** 2)))]])


def well_derivatives(ell: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = math.exp(-((ell - 2.0) ** 2))
    J, d1, d2 = 2.0 - g, 2.0 * (ell - 2.0) * g, 2.0 * g * (1.0 - 2.0 * (ell - 2.0) ** 2)
    return well_kernel(ell), np.array([[-d1 / J**2]]), np.array([[(2 * d1**2 - J * d2) / J**3]])


def _spd(n: int, seed: int) -> np.ndarray:
    A = np.random.default_rng(seed).normal(size=(n, n))
    return A @ A.T + 0.5 * np.eye(n)


# --- the objective -------------------------------------------------------------------------

@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7, 1.0])
@pytest.mark.parametrize("columns", [None, 3])
def test_j_lambda_matches_the_direct_formula(lam, columns):
    K = _spd(8, seed=1)
    rng = np.random.default_rng(2)
    y = rng.normal(size=8) if columns is None else rng.normal(size=(8, columns))
    assert j_lambda(K, y, lam) == pytest.approx(direct_j(K, y, lam), rel=1e-12)
    assert j_lambda(K, y, lam, reg=0.3) == pytest.approx(direct_j(K, y, lam, 0.3), rel=1e-12)


def test_j_lambda_is_n_times_the_metric_combination():
    K, y, lam = _spd(6, seed=3), np.random.default_rng(4).normal(size=6), 0.4
    combination = (1 - lam) * rkhs_norm_complexity(K, y, reg=0.1) - lam * loss_decrease_rate(K, y)
    assert j_lambda(K, y, lam, reg=0.1) == pytest.approx(6 * combination, rel=1e-12)


def test_j_lambda_on_a_diagonal_kernel_by_hand():
    # K = diag(2, 4), y = (1, 2): yᵀK⁻¹y = 1/2 + 4/4 = 1.5, yᵀKy = 2 + 16 = 18.
    K, y = np.diag([2.0, 4.0]), np.array([1.0, 2.0])
    assert j_lambda(K, y, 0.0) == 1.5
    assert j_lambda(K, y, 1.0) == -18.0
    assert j_lambda(K, y, 0.5) == pytest.approx(0.5 * 1.5 - 0.5 * 18.0, abs=1e-15)


def test_singular_kernel_gives_inf_unless_only_the_linear_term_counts():
    K, y = np.diag([1.0, 0.0]), np.array([1.0, 1.0])
    assert j_lambda(K, y, 0.0) == math.inf
    assert j_lambda(K, y, 0.5) == math.inf
    assert j_lambda(K, y, 1.0) == -1.0
    assert j_lambda(K, y, 0.0, reg=1.0) == pytest.approx(0.5 + 1.0, abs=1e-15)
    J, d1, d2 = j_lambda_derivatives(K, np.eye(2), np.eye(2), y, 0.5)
    assert J == math.inf and math.isnan(d1) and math.isnan(d2)
    # λ = 1 needs no inverse: derivatives stay finite, tr(YᵀK'Y) = tr(YᵀK''Y) = ‖y‖² = 2.
    assert j_lambda_derivatives(K, np.eye(2), np.eye(2), y, 1.0) == (-1.0, -2.0, -2.0)


def test_non_finite_kernel_gives_nan():
    bad = np.array([[np.nan, 0.0], [0.0, 1.0]])
    assert math.isnan(j_lambda(bad, np.ones(2), 0.5))
    for lam in (0.5, 1.0):
        assert all(math.isnan(v) for v in j_lambda_derivatives(bad, np.eye(2), np.eye(2),
                                                               np.ones(2), lam))
        assert all(math.isnan(v) for v in j_lambda_derivatives(np.eye(2), bad, np.eye(2),
                                                               np.ones(2), lam))


# --- derivatives ---------------------------------------------------------------------------

@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7, 1.0])
@pytest.mark.parametrize("ell", [0.4, 0.9, 2.5])
def test_derivatives_match_finite_differences_of_j(lam, ell):
    J, d1, d2 = j_lambda_derivatives(*rbf_derivatives(ell), Y, lam)
    assert J == pytest.approx(j_lambda(rbf(ell), Y, lam), rel=1e-12)
    h = 1e-4 * ell  # 4th-order central differences: truncation O(h⁴) ≈ 1e-16 relative
    f = [j_lambda(rbf(ell + k * h), Y, lam) for k in (-2, -1, 0, 1, 2)]
    fd1 = (f[0] - 8 * f[1] + 8 * f[3] - f[4]) / (12 * h)
    fd2 = (-f[0] + 16 * f[1] - 30 * f[2] + 16 * f[3] - f[4]) / (12 * h * h)
    scale = max(abs(J), 1.0)  # derivative errors scale with round-off in J, not with J'
    assert d1 == pytest.approx(fd1, abs=1e-7 * scale / ell)
    assert d2 == pytest.approx(fd2, abs=1e-4 * scale / ell**2)


def test_rbf_family_derivatives_are_right():
    # The test's own K'(l), K''(l) against differences of K(l), so the check above is sound.
    ell, h = 0.8, 1e-5
    _, dK, d2K = rbf_derivatives(ell)
    np.testing.assert_allclose(dK, (rbf(ell + h) - rbf(ell - h)) / (2 * h), atol=1e-8)
    np.testing.assert_allclose(d2K, (rbf(ell + h) - 2 * rbf(ell) + rbf(ell - h)) / h**2, atol=1e-4)


def test_derivatives_of_the_well_in_closed_form():
    ell = 2.9
    g = math.exp(-((ell - 2) ** 2))
    J, d1, d2 = j_lambda_derivatives(*well_derivatives(ell), np.array([1.0]), 0.0)
    assert J == pytest.approx(2 - g, rel=1e-14)
    assert d1 == pytest.approx(2 * (ell - 2) * g, rel=1e-12)
    assert d2 == pytest.approx(2 * g * (1 - 2 * (ell - 2) ** 2), rel=1e-12)
    assert d2 < 0  # a concave point, used by the fallback test below


def test_derivatives_use_the_symmetric_part_of_dk():
    K, dK, d2K = rbf_derivatives(0.7)
    skew = np.triu(np.ones_like(dK), 1)
    skew -= skew.T
    assert j_lambda_derivatives(K, dK + skew, d2K - 3 * skew, Y, 0.3) == pytest.approx(
        j_lambda_derivatives(K, dK, d2K, Y, 0.3), rel=1e-13)


def test_derivatives_with_multi_column_targets_and_ridge():
    ell, lam, reg = 1.3, 0.4, 0.05
    Ym = np.column_stack([Y, np.cos(X[:, 1])])
    _, d1, d2 = j_lambda_derivatives(*rbf_derivatives(ell), Ym, lam, reg=reg)
    h = 1e-4
    f = [direct_j(rbf(ell + k * h), Ym, lam, reg) for k in (-1, 0, 1)]
    assert d1 == pytest.approx((f[2] - f[0]) / (2 * h), rel=1e-6)
    assert d2 == pytest.approx((f[2] - 2 * f[1] + f[0]) / h**2, rel=1e-4)


# --- Newton minimiser ----------------------------------------------------------------------

@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("exact", [True, False], ids=["exact", "finite-differences"])
def test_minimiser_agrees_with_scipy_bounded_brent(lam, exact):
    reference = minimize_scalar(lambda ell: j_lambda(rbf(ell), Y, lam), bounds=(0.05, 10.0),
                                method="bounded", options={"xatol": 1e-12})
    assert 0.1 < reference.x < 5.0  # interior: the test is about a true stationary point
    assert reference.x == pytest.approx(INTERIOR[lam], abs=1e-4)
    result = minimize_j_lambda(rbf, Y, lam, 1.0,
                               derivatives=rbf_derivatives if exact else None)
    assert isinstance(result, NewtonResult)
    assert result.converged, result.message
    # Brent compares values of J, so it locates l* only to ~√ε; Newton solves J' = 0.
    assert result.value == pytest.approx(reference.x, rel=1e-6)
    assert result.objective == pytest.approx(reference.fun, rel=1e-12)
    assert result.objective == j_lambda(rbf(result.value), Y, lam)
    assert result.iterations <= 8
    _, slope, curvature = j_lambda_derivatives(*rbf_derivatives(result.value), Y, lam)
    assert curvature > 0
    assert abs(slope) < 1e-7 * curvature


def test_exact_and_finite_difference_minimisers_agree_closely():
    exact = minimize_j_lambda(rbf, Y, 0.3, 1.0, derivatives=rbf_derivatives)
    approximate = minimize_j_lambda(rbf, Y, 0.3, 1.0)
    # The documented bias of the differences, O(h²) with h = ε^(1/4)·l: about 1e-9 relative.
    assert approximate.value == pytest.approx(exact.value, rel=1e-8)
    assert approximate.value != exact.value


def test_convergence_is_quadratic():
    result = minimize_j_lambda(rbf, Y, 0.0, 1.0, derivatives=rbf_derivatives, tol=1e-12)
    assert result.converged
    errors = [abs(ell - result.value) for ell, _ in result.history[:-1]]
    pairs = [(a, b) for a, b in zip(errors[:-1], errors[1:], strict=True) if a > 1e-6]
    assert len(pairs) >= 2
    for before, after in pairs:
        assert after <= 2.0 * before**2 + 1e-12, (before, after)


def test_history_decreases_and_starts_at_l0():
    result = minimize_j_lambda(rbf, Y, 0.7, 0.3, derivatives=rbf_derivatives)
    assert result.converged
    assert result.history[0] == (0.3, j_lambda(rbf(0.3), Y, 0.7))
    assert result.iterations == len(result.history) - 1
    values = [J for _, J in result.history]
    assert all(b < a for a, b in zip(values[:-2], values[1:-1], strict=True))
    # The last step is taken once the predicted decrease is below round-off: J may move by that.
    assert values[-1] <= values[-2] + 1e-12 * abs(values[-2])
    assert result.history[-1] == (result.value, result.objective)


@pytest.mark.parametrize("l0", [4.0, 0.3, 8.0])
def test_non_convex_start_falls_back_and_still_reaches_the_minimum(l0):
    # From l0 the Newton step would climb (J'' < 0): the fallback must still go downhill.
    _, _, curvature = j_lambda_derivatives(*well_derivatives(l0), np.array([1.0]), 0.0)
    assert curvature < 0
    result = minimize_j_lambda(well_kernel, [1.0], 0.0, l0, derivatives=well_derivatives)
    assert result.converged, result.message
    assert result.value == pytest.approx(2.0, abs=1e-10)
    assert result.iterations <= 12  # the doubling downhill steps cross the concave shoulder
    values = [J for _, J in result.history]
    assert all(b < a for a, b in zip(values[:-2], values[1:-1], strict=True))


@pytest.mark.parametrize("exact", [True, False])
def test_round_off_of_a_large_objective_ends_the_iteration(exact):
    # J(l) = 10⁶ + well: J'' = 2 at the minimum but J's round-off is ~10⁻¹⁰, so a step of
    # 10⁻⁶ already changes J by less than its round-off and no line search could verify it.
    # The |J'|-tiny test must stop the method there, converged.
    offset = 1e6

    def kernel(ell):
        return 1.0 / (offset + 1.0 / well_kernel(ell))

    def derivatives(ell):
        g = math.exp(-((ell - 2.0) ** 2))
        J, d1, d2 = offset + 2.0 - g, 2.0 * (ell - 2.0) * g, 2.0 * g * (1 - 2 * (ell - 2) ** 2)
        return kernel(ell), np.array([[-d1 / J**2]]), np.array([[(2 * d1**2 - J * d2) / J**3]])

    result = minimize_j_lambda(kernel, [1.0], 0.0, 2.3,
                               derivatives=derivatives if exact else None)
    assert result.converged, result.message
    assert "round-off" in result.message
    # Exact J' keeps its full accuracy; J' from differences of J is only as good as J's values.
    assert result.value == pytest.approx(2.0, abs=1e-9 if exact else 3e-6)


def test_round_off_sized_noise_in_j_does_not_stall_the_line_search():
    # The offset well again, its values perturbed by 5e-15 relative (a few ulps, below the
    # documented round-off estimate 64·n·ε): close to the minimum, J may rise by that noise
    # along a correct Newton step, so a line search alone could reject every step. The
    # |J'|-tiny test must take the step instead, from every start near the minimum.
    offset = 1e6

    def clean(ell):
        return 1.0 / (offset + 1.0 / well_kernel(ell))

    def noisy(ell):
        return clean(ell) * (1.0 + 5e-15 * math.sin(1e9 * ell))

    def derivatives(ell):
        g = math.exp(-((ell - 2.0) ** 2))
        J, d1, d2 = offset + 2.0 - g, 2.0 * (ell - 2.0) * g, 2.0 * g * (1 - 2 * (ell - 2) ** 2)
        return clean(ell), np.array([[-d1 / J**2]]), np.array([[(2 * d1**2 - J * d2) / J**3]])

    starts = [2.3, 1.9, 1.6] + [2.0 + k * 3e-6 for k in range(-20, 21) if k]
    for l0 in starts:
        result = minimize_j_lambda(noisy, [1.0], 0.0, l0, derivatives=derivatives)
        assert result.converged, (l0, result.message)
        assert result.value == pytest.approx(2.0, abs=1e-9)


def test_newton_step_that_overflows_is_capped():
    # λ = 1 and K(l) = [l − l⁴/4]: J = l⁴/4 − l, minimum at l = 1. At l0 = 1e−160,
    # J'' = 3 l0² = 3e−320 underflows to a denormal, so −J'/J'' = 1/3e−320 overflows to inf;
    # the step cap (10 · max(1, |l|)) must turn it into a finite step the line search can cut.
    def kernel(ell):
        return np.array([[ell - ell**4 / 4]])

    def derivatives(ell):
        return kernel(ell), np.array([[1 - ell**3]]), np.array([[-3 * ell**2]])

    result = minimize_j_lambda(kernel, [1.0], 1.0, 1e-160, derivatives=derivatives,
                               bounds=(-math.inf, math.inf))
    assert result.converged, result.message
    assert result.value == pytest.approx(1.0, abs=1e-10)


def test_flat_start_stops_with_a_clear_message():
    # exp(−36) ≈ 2e−16 is lost next to 2: J is flat to round-off at l = 8, J' = J'' = 0 by
    # finite differences, so there is no downhill direction to take.
    result = minimize_j_lambda(well_kernel, [1.0], 0.0, 8.0)
    assert not result.converged
    assert "not a minimum" in result.message
    assert result.iterations == 0


@pytest.mark.parametrize("exact", [True, False])
def test_minimum_outside_the_bounds_is_found_on_the_bound(exact):
    # For λ = 0 the minimiser is 0.5875; on (0.05, 0.4) J decreases up to the upper bound.
    evaluated = []

    def recording_rbf(ell):
        evaluated.append(ell)
        return rbf(ell)

    result = minimize_j_lambda(recording_rbf, Y, 0.0, 0.1, bounds=(0.05, 0.4),
                               derivatives=rbf_derivatives if exact else None)
    assert result.converged, result.message
    assert "upper bound" in result.message
    assert all(0.05 < ell < 0.4 for ell, _ in result.history)
    # Trial points and finite-difference points never leave the open interval either.
    assert all(0.05 < ell < 0.4 for ell in evaluated)
    assert result.value == pytest.approx(0.4, abs=1e-7)


@pytest.mark.parametrize("exact", [True, False])
def test_start_at_zero(exact):
    # l0 = 0 has no scale for the relative finite-difference step or the first downhill step;
    # both fall back to absolute sizes. J'' < 0 at l = 0 (|0 − 2| > 1/√2).
    result = minimize_j_lambda(well_kernel, [1.0], 0.0, 0.0, bounds=(-1.0, 5.0),
                               derivatives=well_derivatives if exact else None)
    assert result.converged, result.message
    assert result.history[1][0] == pytest.approx(0.1)
    assert result.value == pytest.approx(2.0, abs=1e-7)


def test_lower_bound_and_finite_upper_bound_are_respected():
    # Starting right of the minimum with a lower bound above it: the minimum is on that bound.
    result = minimize_j_lambda(rbf, Y, 0.0, 1.5, bounds=(0.9, 3.0),
                               derivatives=rbf_derivatives)
    assert result.converged and "lower bound" in result.message
    assert all(0.9 < ell < 3.0 for ell, _ in result.history)
    assert result.value == pytest.approx(0.9, abs=1e-7)


def test_max_iter_one_reports_not_converged():
    result = minimize_j_lambda(rbf, Y, 0.0, 2.0, derivatives=rbf_derivatives, max_iter=1)
    assert not result.converged
    assert result.iterations == 1
    assert "max_iter=1" in result.message
    assert result.history[1][1] < result.history[0][1]


def test_wrong_derivatives_stop_without_claiming_convergence():
    def uphill(ell):
        K, dK, d2K = rbf_derivatives(ell)
        return K, -dK, d2K  # J' with the wrong sign: every Newton step climbs

    result = minimize_j_lambda(rbf, Y, 0.0, 1.0, derivatives=uphill)
    assert not result.converged
    assert "do not match J" in result.message
    assert result.value == 1.0


# --- validation ----------------------------------------------------------------------------

@pytest.mark.parametrize("lam", [-0.1, 1.5, math.nan, "0.5"])
def test_lambda_outside_unit_interval_is_rejected(lam):
    with pytest.raises(ValueError, match="lam"):
        j_lambda(np.eye(2), np.ones(2), lam)
    with pytest.raises(ValueError, match="lam"):
        minimize_j_lambda(rbf, Y, lam, 1.0)


def test_invalid_arguments_are_rejected_with_their_names():
    with pytest.raises(ValueError, match=r"strictly inside bounds \(0, inf\)"):
        minimize_j_lambda(rbf, Y, 0.3, 0.0)
    with pytest.raises(ValueError, match=r"strictly inside bounds \(0.5, 2\)"):
        minimize_j_lambda(rbf, Y, 0.3, 3.0, bounds=(0.5, 2.0))
    with pytest.raises(ValueError, match="lower < upper"):
        minimize_j_lambda(rbf, Y, 0.3, 1.0, bounds=(2.0, 0.5))
    with pytest.raises(ValueError, match="pair"):
        minimize_j_lambda(rbf, Y, 0.3, 1.0, bounds=(0.5,))
    with pytest.raises(ValueError, match="tol"):
        minimize_j_lambda(rbf, Y, 0.3, 1.0, tol=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        minimize_j_lambda(rbf, Y, 0.3, 1.0, max_iter=0)
    with pytest.raises(ValueError, match="reg"):
        j_lambda(np.eye(2), np.ones(2), 0.3, reg=-1.0)


def test_shape_mismatches_are_rejected():
    with pytest.raises(ValueError, match=r"\(15,\) or \(15, k\)"):
        minimize_j_lambda(rbf, np.ones(14), 0.3, 1.0)
    with pytest.raises(ValueError, match=r"\(3,\) or \(3, k\)"):
        j_lambda(np.eye(3), np.ones(2), 0.3)
    with pytest.raises(ValueError, match="square"):
        minimize_j_lambda(lambda ell: np.ones((3, 2)), np.ones(3), 0.3, 1.0)
    with pytest.raises(ValueError, match="dK must have the kernel's shape"):
        j_lambda_derivatives(np.eye(3), np.eye(2), np.eye(3), np.ones(3), 0.3)


def test_non_finite_objective_at_l0_is_rejected():
    with pytest.raises(ValueError, match="not finite at l0"):
        minimize_j_lambda(lambda ell: np.zeros((2, 2)), np.ones(2), 0.5, 1.0)
