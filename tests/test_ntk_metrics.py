"""NTK metrics on kernels whose values can be worked out by hand."""

import json
import math

import numpy as np
import pytest
from scipy.linalg import expm

from ntkbench.ntk.metrics import (
    Spectrum,
    centered_alignment,
    condition_number,
    effective_rank,
    kernel_distance,
    kernel_target_alignment,
    lambda_max,
    lambda_min,
    loss_decrease_rate,
    ntk_summary,
    power_law_exponent,
    relative_drift,
    rkhs_norm_complexity,
    spectrum,
    stable_rank,
    top_k_alignment,
)

SUMMARY_KEYS = {"kernel_target_alignment", "centered_alignment", "top1_alignment",
                "top10_alignment", "top10pct_alignment", "lambda_max", "lambda_min",
                "condition_number", "effective_rank", "trace", "stable_rank",
                "power_law_exponent", "loss_decrease_rate", "rkhs_norm_complexity"}

# 3×3 worked example: K = [[2,1,0],[1,2,1],[0,1,2]], y = (1, 0, −1).
#   yyᵀ = [[1,0,−1],[0,0,0],[−1,0,1]];  ⟨K, yyᵀ⟩ = 2 + 2 − 0 − 0 = 4;
#   ‖K‖_F = √(3·4 + 4·1) = 4;  ‖yyᵀ‖_F = ‖y‖² = 2  →  KTA = 4 / (4·2) = 1/2.
#   Centred: y has mean 0, so Hy = y. Row means of K are (1, 4/3, 1), grand mean 10/9:
#   HKH = [[10, −2, −8], [−2, 4, −2], [−8, −2, 10]] / 9;  ⟨HKH, yyᵀ⟩ = (10 + 10 + 16)/9 = 4;
#   ‖HKH‖_F = √(100+4+64+4+16+4+64+4+100)/9 = √360/9 = 2√10/3
#   →  A_c = 4 / ((2√10/3)·2) = 3/√10.
K3 = np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 1.0], [0.0, 1.0, 2.0]])
Y3 = np.array([1.0, 0.0, -1.0])


def _random_psd(n: int, eigenvalues: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``Q diag(λ) Qᵀ`` with a Haar-random orthogonal ``Q``; returns ``(K, Q)``."""
    Q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return Q @ np.diag(eigenvalues) @ Q.T, Q


# --- alignment -----------------------------------------------------------------------------

def test_hand_computed_example():
    assert kernel_target_alignment(K3, Y3) == pytest.approx(0.5, abs=1e-15)
    assert centered_alignment(K3, Y3) == pytest.approx(3 / math.sqrt(10), abs=1e-15)


@pytest.mark.parametrize("y", [np.array([1.0, -2.0, 0.5, 3.0]),
                               np.array([[1.0, 0.0], [2.0, 1.0], [0.0, -1.0], [1.0, 1.0]])])
def test_ideal_kernel_aligns_perfectly(y):
    Y = y.reshape(len(y), -1)
    K = Y @ Y.T
    assert kernel_target_alignment(K, y) == pytest.approx(1.0, abs=1e-14)
    assert centered_alignment(K, y) == pytest.approx(1.0, abs=1e-14)


def test_identity_kernel_alignment_is_one_over_sqrt_n():
    # ⟨I, yyᵀ⟩ = ‖y‖², ‖I‖_F = √n, ‖yyᵀ‖_F = ‖y‖²  →  1/√n, whatever y is.
    y = np.array([3.0, -1.0, 2.0, 0.5, 7.0])
    assert kernel_target_alignment(np.eye(5), y) == pytest.approx(1 / math.sqrt(5), abs=1e-15)


def test_orthogonal_kernel_has_zero_alignment():
    # Both vectors have zero mean and vᵀy = 0, so K = vvᵀ is orthogonal to yyᵀ before and
    # after centring.
    y = np.array([1.0, -1.0, 1.0, -1.0])
    v = np.array([1.0, 1.0, -1.0, -1.0])
    K = np.outer(v, v)
    assert kernel_target_alignment(K, y) == pytest.approx(0.0, abs=1e-15)
    assert centered_alignment(K, y) == pytest.approx(0.0, abs=1e-15)


def test_centered_alignment_ignores_constant_offsets_kta_does_not():
    K, _ = _random_psd(6, np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.1]))
    y = np.random.default_rng(1).normal(size=6)
    K_shift, y_shift = K + 4.0 * np.ones((6, 6)), y + 3.0
    assert centered_alignment(K_shift, y_shift) == pytest.approx(centered_alignment(K, y),
                                                                 abs=1e-12)
    # The uncentred alignment rewards the shared constant component: it moves a lot.
    assert abs(kernel_target_alignment(K_shift, y_shift) - kernel_target_alignment(K, y)) > 0.1


def test_centered_alignment_is_nan_for_constant_kernel_or_targets():
    y = np.array([0.1, 0.1, 0.1])  # 0.1 is inexact in binary: centring leaves round-off only
    assert math.isnan(centered_alignment(K3, y))
    assert math.isnan(centered_alignment(np.full((3, 3), 0.1), Y3))
    assert kernel_target_alignment(K3, y) == pytest.approx(
        np.sum(K3) * 0.01 / (4 * 3 * 0.01))  # ⟨K, c²11ᵀ⟩ / (‖K‖ · c²n): defined, unlike A_c


def test_alignment_nan_for_zero_inputs():
    assert math.isnan(kernel_target_alignment(np.zeros((3, 3)), Y3))
    assert math.isnan(kernel_target_alignment(K3, np.zeros(3)))


def test_one_dimensional_targets_match_a_column():
    assert kernel_target_alignment(K3, Y3) == kernel_target_alignment(K3, Y3[:, None])
    assert centered_alignment(K3, Y3) == centered_alignment(K3, Y3[:, None])


def test_float32_inputs_are_computed_in_float64():
    K, _ = _random_psd(5, np.array([4.0, 3.0, 2.0, 1.0, 0.5]))
    K32 = K.astype(np.float32)
    y = np.arange(5.0)
    expected = kernel_target_alignment(K32.astype(np.float64), y)
    assert kernel_target_alignment(K32, y.astype(np.float32)) == expected
    assert spectrum(K32).eigenvalues.dtype == np.float64


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(3,\) or \(3, k\)"):
        kernel_target_alignment(K3, np.ones(4))
    with pytest.raises(ValueError, match="square"):
        centered_alignment(np.ones((3, 2)), Y3)
    with pytest.raises(ValueError, match="same shape"):
        relative_drift(np.ones((2, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="k ≥ 1"):
        top_k_alignment(K3, Y3, 0)


# --- top-k eigenspace alignment ------------------------------------------------------------

def test_top_k_on_diagonal_kernel():
    K = np.diag([3.0, 2.0, 1.0])
    e1, e3 = np.eye(3)[0], np.eye(3)[2]
    assert top_k_alignment(K, e1, 1) == pytest.approx(1.0, abs=1e-15)
    assert top_k_alignment(K, e3, 1) == pytest.approx(0.0, abs=1e-15)
    assert top_k_alignment(K, e3, 2) == pytest.approx(0.0, abs=1e-15)
    assert top_k_alignment(K, e3, 3) == pytest.approx(1.0, abs=1e-15)
    # (1,1,1)/√3 has one third of its squared norm on e_1.
    assert top_k_alignment(K, np.ones(3), 1) == pytest.approx(1 / math.sqrt(3), abs=1e-15)
    assert top_k_alignment(K, np.ones(3), 2) == pytest.approx(math.sqrt(2 / 3), abs=1e-15)


def test_top_k_matches_brute_force_projection():
    eigenvalues = np.array([0.3, 7.0, 1.5, 4.0, 0.9, 2.2])  # distinct, deliberately unsorted
    K, Q = _random_psd(6, eigenvalues, seed=3)
    phi = np.random.default_rng(4).normal(size=(6, 2))
    order = np.argsort(eigenvalues)[::-1]
    spec = spectrum(K)
    for k in range(1, 7):
        U = Q[:, order[:k]]
        # Projector U Uᵀ is basis-independent, so sign flips of eigh's vectors cannot matter.
        expected = np.linalg.norm(U @ U.T @ phi) / np.linalg.norm(phi)
        assert top_k_alignment(K, phi, k) == pytest.approx(expected, abs=1e-12)
        assert top_k_alignment(spec, phi, k) == top_k_alignment(K, phi, k)


def test_top_k_with_k_at_least_n_is_one():
    y = np.random.default_rng(5).normal(size=4)
    K, _ = _random_psd(4, np.array([4.0, 3.0, 2.0, 1.0]))
    assert top_k_alignment(K, y, 4) == pytest.approx(1.0, abs=1e-14)
    assert top_k_alignment(K, y, 50) == pytest.approx(1.0, abs=1e-14)


def test_top_k_of_zero_phi_is_nan():
    assert math.isnan(top_k_alignment(K3, np.zeros(3), 1))


# --- spectrum ------------------------------------------------------------------------------

def test_spectrum_recovers_constructed_eigenvalues_in_descending_order():
    eigenvalues = np.array([0.5, 9.0, 2.0, 4.0, 1.0])
    K, _ = _random_psd(5, eigenvalues, seed=7)
    spec = spectrum(K)
    assert isinstance(spec, Spectrum)
    np.testing.assert_allclose(spec.eigenvalues, [9.0, 4.0, 2.0, 1.0, 0.5], atol=1e-13)
    np.testing.assert_allclose(spec.eigenvectors @ np.diag(spec.eigenvalues)
                               @ spec.eigenvectors.T, K, atol=1e-13)
    assert lambda_max(K) == pytest.approx(9.0, abs=1e-13)
    assert lambda_min(K) == pytest.approx(0.5, abs=1e-13)
    assert condition_number(K) == pytest.approx(18.0, rel=1e-12)


def test_spectrum_symmetrises_its_input():
    A = np.array([[2.0, 3.0], [1.0, 2.0]])  # (A + Aᵀ)/2 = [[2,2],[2,2]]: eigenvalues 4, 0
    np.testing.assert_allclose(spectrum(A).eigenvalues, [4.0, 0.0], atol=1e-15)


def test_condition_number_of_diagonal_and_singular_kernels():
    assert condition_number(np.diag([4.0, 2.0, 1.0])) == 4.0
    assert condition_number(np.diag([4.0, 2.0, 0.0])) == math.inf
    assert math.isnan(condition_number(np.zeros((3, 3))))


def test_rank_deficient_round_off_is_zeroed():
    # A rank-one kernel: eigh returns ~±1e-16 for the null space; those must read as exactly 0.
    v = np.random.default_rng(8).normal(size=6)
    K = np.outer(v, v)
    assert lambda_min(K) == 0.0
    assert condition_number(K) == math.inf
    assert effective_rank(K) == pytest.approx(1.0, abs=1e-12)


def test_indefinite_matrix_keeps_its_negative_eigenvalue():
    assert lambda_min(np.diag([2.0, -1.0])) == -1.0
    assert condition_number(np.diag([2.0, -1.0])) == math.inf


@pytest.mark.parametrize("c", [1e-3, 1.0, 250.0])
def test_effective_rank_of_scaled_identity_is_n(c):
    assert effective_rank(c * np.eye(7)) == pytest.approx(7.0, rel=1e-12)


def test_effective_rank_counts_equal_nonzero_eigenvalues():
    assert effective_rank(np.diag([1.0, 1.0, 0.0, 0.0])) == pytest.approx(2.0, rel=1e-12)


def test_effective_rank_hand_computed_entropy():
    # diag(1, 2, 3): p = (1/6, 1/3, 1/2);
    # H = (1/6)·ln 6 + (1/3)·ln 3 + (1/2)·ln 2 = 0.298627 + 0.366204 + 0.346574 = 1.011404;
    # erank = e^1.011404 = 2.74946.
    entropy = math.log(6) / 6 + math.log(3) / 3 + math.log(2) / 2
    assert effective_rank(np.diag([1.0, 2.0, 3.0])) == pytest.approx(math.exp(entropy),
                                                                     rel=1e-13)
    assert effective_rank(np.diag([1.0, 2.0, 3.0])) == pytest.approx(2.74946, abs=1e-5)


def test_non_finite_kernel_is_rejected_by_spectrum():
    with pytest.raises(ValueError, match="NaN or inf"):
        spectrum(np.array([[1.0, np.nan], [np.nan, 1.0]]))


# --- stable rank and spectral decay --------------------------------------------------------

@pytest.mark.parametrize("n", [1, 4, 9])
def test_stable_rank_of_scaled_identity_is_n(n):
    assert stable_rank(np.eye(n)) == pytest.approx(n, rel=1e-14)
    assert stable_rank(0.01 * np.eye(n)) == pytest.approx(n, rel=1e-14)


def test_stable_rank_known_answers():
    v = np.random.default_rng(10).normal(size=7)
    assert stable_rank(np.outer(v, v)) == pytest.approx(1.0, abs=1e-12)
    assert stable_rank(np.diag([4.0, 3.0])) == pytest.approx(25 / 16, rel=1e-15)  # (16 + 9)/16
    assert stable_rank(np.diag([2.0, -2.0, 1.0])) == pytest.approx(9 / 4, rel=1e-15)  # |λ|
    assert stable_rank(np.diag([1.0, -3.0])) == pytest.approx(10 / 9, rel=1e-15)  # ‖K‖_2 = 3
    assert math.isnan(stable_rank(np.zeros((3, 3))))


def test_stable_rank_matches_matrix_norms_and_accepts_a_spectrum():
    K, _ = _random_psd(8, np.array([6.0, 3.0, 2.5, 1.0, 0.7, 0.2, 0.1, 0.0]), seed=11)
    expected = np.linalg.norm(K, "fro") ** 2 / np.linalg.norm(K, 2) ** 2
    assert stable_rank(K) == pytest.approx(expected, rel=1e-12)
    assert stable_rank(spectrum(K)) == stable_rank(K)
    assert 1.0 <= stable_rank(K) <= effective_rank(K) + 1e-12 <= 7.0 + 1e-12


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 3.5])
@pytest.mark.parametrize("prefactor", [1.0, 37.0])
def test_power_law_exponent_recovers_alpha(alpha, prefactor):
    n = 20
    eigenvalues = prefactor * np.arange(1, n + 1, dtype=float) ** -alpha
    K, _ = _random_psd(n, eigenvalues[::-1].copy(), seed=12)  # order of the input is irrelevant
    assert power_law_exponent(K) == pytest.approx(alpha, abs=1e-9)
    assert power_law_exponent(spectrum(K)) == power_law_exponent(K)


def test_power_law_exponent_ignores_the_null_space():
    # Rank 12 of 20: the eight zero eigenvalues are below the floor and left out of the fit.
    eigenvalues = np.concatenate([np.arange(1, 13, dtype=float) ** -1.5, np.zeros(8)])
    K, _ = _random_psd(20, eigenvalues, seed=13)
    assert power_law_exponent(K) == pytest.approx(1.5, abs=1e-9)


def test_power_law_exponent_fits_one_regime_of_a_broken_power_law():
    # λ_i = i^-1 for i ≤ 10, then i^-3 (continuous at i = 10): each range recovers its own α.
    i = np.arange(1, 31, dtype=float)
    eigenvalues = np.where(i <= 10, 1 / i, 100 / i**3)
    spec = Spectrum(eigenvalues, np.eye(30))
    assert power_law_exponent(spec, index_range=(1, 10)) == pytest.approx(1.0, abs=1e-12)
    assert power_law_exponent(spec, index_range=(10, 30)) == pytest.approx(3.0, abs=1e-12)
    assert power_law_exponent(spec, index_range=(10, 1000)) == pytest.approx(3.0, abs=1e-12)
    whole = power_law_exponent(spec)
    assert 1.0 < whole < 3.0
    # Least squares on (log i, log λ_i) with numpy's own polynomial fit.
    assert whole == pytest.approx(-np.polyfit(np.log(i), np.log(eigenvalues), 1)[0], rel=1e-12)


def test_power_law_exponent_floor_and_too_few_points():
    i = np.arange(1, 11, dtype=float)
    eigenvalues = i**-2.0
    eigenvalues[5:] = 1e-12  # a plateau at 1e-12 ≤ 1e-10 · λ_1: dropped by the default floor
    spec = Spectrum(eigenvalues, np.eye(10))
    assert power_law_exponent(spec) == pytest.approx(2.0, abs=1e-12)
    assert power_law_exponent(spec, rel_floor=0.0) > 5.0  # the drop to 1e-12 dominates
    assert math.isnan(power_law_exponent(np.diag([1.0, 0.5, 0.0, 0.0])))  # two usable
    assert math.isnan(power_law_exponent(spec, index_range=(2, 3)))
    assert math.isnan(power_law_exponent(np.zeros((4, 4))))
    with pytest.raises(ValueError, match="i_max"):
        power_law_exponent(spec, index_range=(5, 2))
    with pytest.raises(ValueError, match="rel_floor"):
        power_law_exponent(spec, rel_floor=-1.0)


# --- loss decrease rate and RKHS complexity ------------------------------------------------

def test_loss_decrease_rate_matches_quadratic_form():
    K = _random_psd(6, np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.1]), seed=14)[0]
    rng = np.random.default_rng(15)
    y, Y = rng.normal(size=6), rng.normal(size=(6, 3))
    assert loss_decrease_rate(K, y) == pytest.approx(y @ K @ y / 6, rel=1e-13)
    assert loss_decrease_rate(K, Y) == pytest.approx(np.trace(Y.T @ K @ Y) / 6, rel=1e-13)
    assert loss_decrease_rate(K, Y) == pytest.approx(
        sum(loss_decrease_rate(K, Y[:, j]) for j in range(3)), rel=1e-13)
    assert loss_decrease_rate(K, np.zeros(6)) == 0.0


def test_loss_decrease_rate_is_the_initial_slope_of_kernel_gradient_flow():
    # Linearised gradient flow on L = ‖f − Y‖²/(2n) from f_0 = 0: f(t) = (I − e^{−ηKt/n}) Y.
    # The documented normalisation: −dL/dt at t = 0 equals (η/n) · loss_decrease_rate.
    n, eta, dt = 5, 0.7, 1e-6
    K = _random_psd(n, np.array([4.0, 2.0, 1.0, 0.5, 0.25]), seed=16)[0]
    Y = np.random.default_rng(17).normal(size=(n, 2))

    def loss(t):
        f = (np.eye(n) - expm(-eta * K * t / n)) @ Y
        return np.sum((f - Y) ** 2) / (2 * n)

    slope = (loss(dt) - loss(-dt)) / (2 * dt)
    assert -slope == pytest.approx(eta / n * loss_decrease_rate(K, Y), rel=1e-7)


def test_rkhs_norm_complexity_matches_a_linear_solve():
    K = _random_psd(7, np.array([9.0, 4.0, 2.0, 1.0, 0.3, 0.05, 0.01]), seed=18)[0]
    rng = np.random.default_rng(19)
    y, Y = rng.normal(size=7), rng.normal(size=(7, 2))
    assert rkhs_norm_complexity(K, y) == pytest.approx(y @ np.linalg.solve(K, y) / 7, rel=1e-11)
    assert rkhs_norm_complexity(K, Y) == pytest.approx(
        np.trace(Y.T @ np.linalg.solve(K, Y)) / 7, rel=1e-11)
    ridge = K + 0.2 * np.eye(7)
    assert rkhs_norm_complexity(K, Y, reg=0.2) == pytest.approx(
        np.trace(Y.T @ np.linalg.solve(ridge, Y)) / 7, rel=1e-12)
    assert rkhs_norm_complexity(spectrum(K), Y) == rkhs_norm_complexity(K, Y)


def test_rkhs_norm_complexity_hand_computed_and_arora_bound():
    # diag(2, 4), y = (1, 2): yᵀK⁻¹y = 1/2 + 1 = 3/2, over n = 2 → 3/4; bound √(2·3/4).
    K, y = np.diag([2.0, 4.0]), np.array([1.0, 2.0])
    assert rkhs_norm_complexity(K, y) == pytest.approx(0.75, rel=1e-15)
    assert math.sqrt(2 * rkhs_norm_complexity(K, y)) == pytest.approx(math.sqrt(1.5))


def test_rkhs_norm_complexity_of_singular_kernel():
    K = np.diag([3.0, 2.0, 0.0])
    # Targets reaching the null direction cannot be interpolated: inf.
    assert rkhs_norm_complexity(K, np.array([1.0, 1.0, 1.0])) == math.inf
    # Targets in the range: the pseudo-inverse value (1/3 + 1/2) / 3.
    assert rkhs_norm_complexity(K, np.array([1.0, 1.0, 0.0])) == pytest.approx(5 / 18)
    # A ridge makes it finite again: (1/3.5 + 1/2.5 + 1/0.5) / 3.
    assert rkhs_norm_complexity(K, np.ones(3), reg=0.5) == pytest.approx(
        (1 / 3.5 + 1 / 2.5 + 2.0) / 3, rel=1e-14)
    assert rkhs_norm_complexity(K, np.zeros(3)) == 0.0
    assert rkhs_norm_complexity(np.zeros((3, 3)), np.ones(3)) == math.inf
    with pytest.raises(ValueError, match="reg"):
        rkhs_norm_complexity(K, np.ones(3), reg=-0.1)


@pytest.mark.parametrize("seed", range(5))
def test_rkhs_norm_complexity_of_rank_deficient_kernel_sees_through_round_off(seed):
    # K = V Vᵀ of rank 3 in dimension 8, its range eigenvalues spread over six decades, so the
    # computed null-space eigenvectors carry ~ε·κ ≈ 1e-9 of the small range direction. For
    # y = Vc in the range, K⁺ = V (VᵀV)⁻² Vᵀ gives yᵀK⁺y = ‖c‖² exactly: finite, not inf.
    # A generic y is not in the range: inf.
    rng = np.random.default_rng(seed)
    V = rng.normal(size=(8, 3)) * np.array([10.0, 1.0, 0.01])
    K = V @ V.T
    for c in (np.array([0.0, 0.0, 1.0]), rng.normal(size=3)):
        assert rkhs_norm_complexity(K, V @ c) == pytest.approx(c @ c / 8, rel=1e-8)
    assert rkhs_norm_complexity(K, rng.normal(size=8)) == math.inf


def test_rkhs_norm_complexity_treats_tiny_and_negative_eigenvalues_as_null():
    # λ_2 = 1e−17 is below the default tolerance 10 · n · ε ≈ 4e−15 (relative to λ_1 = 1).
    tiny = Spectrum(np.array([1.0, 1e-17]), np.eye(2))
    assert rkhs_norm_complexity(tiny, np.array([1.0, 1.0])) == math.inf
    assert rkhs_norm_complexity(tiny, np.array([1.0, 0.0])) == pytest.approx(0.5)
    assert rkhs_norm_complexity(tiny, np.array([1.0, 1.0]), rtol=0.0) == pytest.approx(
        (1.0 + 1e17) / 2, rel=1e-15)  # no tolerance: the plain sum, huge but finite
    # An indefinite matrix: the negative direction has no RKHS norm.
    indefinite = np.diag([1.0, -0.5])
    assert rkhs_norm_complexity(indefinite, np.array([1.0, 1.0])) == math.inf
    assert rkhs_norm_complexity(indefinite, np.array([2.0, 0.0])) == pytest.approx(2.0)


def test_rkhs_norm_complexity_rtol_for_noisy_kernels():
    # A float32 rank-one kernel: its null space carries ~1e-7 relative noise.
    v = np.random.default_rng(20).normal(size=6)
    K32 = np.outer(v, v).astype(np.float32)
    assert rkhs_norm_complexity(K32, v, rtol=1e-5) == pytest.approx(1 / 6, rel=1e-5)


# --- drift and distance --------------------------------------------------------------------

def test_relative_drift_of_scaled_kernel_is_epsilon():
    K0, _ = _random_psd(5, np.array([5.0, 4.0, 3.0, 2.0, 1.0]))
    assert relative_drift(1.03 * K0, K0) == pytest.approx(0.03, rel=1e-12)
    assert relative_drift(0.9 * K0, K0) == pytest.approx(0.1, rel=1e-12)
    assert relative_drift(K0, K0) == 0.0
    assert math.isnan(relative_drift(K0, np.zeros_like(K0)))


def test_kernel_distance_scale_invariance_and_identity():
    K1, _ = _random_psd(5, np.array([5.0, 4.0, 3.0, 2.0, 1.0]), seed=1)
    K2, _ = _random_psd(5, np.array([5.0, 4.0, 3.0, 2.0, 1.0]), seed=2)
    d = kernel_distance(K1, K2)
    assert 0.0 < d < 2.0
    assert kernel_distance(3.0 * K1, 0.2 * K2) == pytest.approx(d, rel=1e-12)
    assert kernel_distance(K1, K1) == pytest.approx(0.0, abs=1e-15)
    assert kernel_distance(K1, 7.0 * K1) == pytest.approx(0.0, abs=1e-15)


def test_kernel_distance_hand_computed_and_rectangular():
    # I vs the all-ones 2×2: ⟨I, 11ᵀ⟩ = 2, ‖I‖ = √2, ‖11ᵀ‖ = 2 → 1 − 2/(2√2) = 1 − 1/√2.
    assert kernel_distance(np.eye(2), np.ones((2, 2))) == pytest.approx(1 - 1 / math.sqrt(2))
    # Orthogonal and opposite cross-kernels (n1 × n2 = 2 × 3): distances 1 and 2.
    A = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    B = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert kernel_distance(A, B) == 1.0
    assert kernel_distance(A, -A) == 2.0


# --- summary -------------------------------------------------------------------------------

def test_summary_keys_types_and_json():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(25, 3))
    K = X @ X.T + 0.1 * np.eye(25)
    y = rng.normal(size=(25, 2))
    summary = ntk_summary(K, y)
    assert set(summary) == SUMMARY_KEYS
    assert all(type(v) is float for v in summary.values())
    assert json.loads(json.dumps(summary)) == summary
    assert summary["kernel_target_alignment"] == kernel_target_alignment(K, y)
    assert summary["centered_alignment"] == centered_alignment(K, y)
    assert summary["top1_alignment"] == top_k_alignment(K, y, 1)
    assert summary["top10_alignment"] == top_k_alignment(K, y, 10)
    # 10 % of 25 is 2.5, rounded half up to 3 (Python's round() would give 2).
    assert summary["top10pct_alignment"] == top_k_alignment(K, y, 3)
    assert summary["top10pct_alignment"] != top_k_alignment(K, y, 2)
    assert summary["lambda_max"] == lambda_max(K)
    assert summary["lambda_min"] == lambda_min(K)
    assert summary["condition_number"] == condition_number(K)
    assert summary["effective_rank"] == effective_rank(K)
    assert summary["trace"] == pytest.approx(np.trace(K), rel=1e-15)
    assert summary["trace"] == pytest.approx(np.sum(spectrum(K).eigenvalues), rel=1e-12)
    assert summary["stable_rank"] == stable_rank(K)
    assert summary["power_law_exponent"] == power_law_exponent(K)
    assert summary["loss_decrease_rate"] == loss_decrease_rate(K, y)
    assert summary["rkhs_norm_complexity"] == rkhs_norm_complexity(K, y)
    assert summary["rkhs_norm_complexity"] == pytest.approx(
        np.trace(y.T @ np.linalg.solve(K, y)) / 25, rel=1e-10)
    assert 1.0 < summary["stable_rank"] < 3.0  # rank 3 plus a small ridge


def test_summary_of_small_singular_kernel_clips_k_and_serialises_inf():
    summary = ntk_summary(np.diag([3.0, 2.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    assert set(summary) == SUMMARY_KEYS
    assert summary["top1_alignment"] == 0.0
    assert summary["top10_alignment"] == pytest.approx(1.0)  # k = 10 clipped to n = 3
    assert summary["top10pct_alignment"] == 0.0  # k = max(1, 0) = 1
    assert summary["condition_number"] == math.inf
    assert summary["lambda_min"] == 0.0
    assert summary["trace"] == 5.0
    assert summary["stable_rank"] == pytest.approx(13 / 9)
    assert math.isnan(summary["power_law_exponent"])  # only two positive eigenvalues
    assert summary["loss_decrease_rate"] == 0.0  # y lies in the null space
    assert summary["rkhs_norm_complexity"] == math.inf
    json.dumps(summary)  # inf is allowed (allow_nan=True is json's default)


def test_summary_of_diverged_kernel_is_all_nan():
    K = np.array([[1.0, np.inf], [np.inf, 1.0]])
    summary = ntk_summary(K, np.array([1.0, -1.0]))
    assert set(summary) == SUMMARY_KEYS
    assert all(math.isnan(v) for v in summary.values())


def test_ntk_summary_ridge_regularises_only_the_complexity():
    rng = np.random.default_rng(5)
    A = rng.normal(size=(8, 3))
    K, y = A @ A.T, rng.normal(size=8)  # rank 3: the exact complexity of generic y is inf
    plain, ridged = ntk_summary(K, y), ntk_summary(K, y, ridge=1e-3)
    assert plain["rkhs_norm_complexity"] == math.inf
    lam_max = np.linalg.eigvalsh(K).max()
    assert ridged["rkhs_norm_complexity"] == pytest.approx(
        float(y @ np.linalg.solve(K + 1e-3 * lam_max * np.eye(8), y)) / 8, rel=1e-9)
    assert {k: v for k, v in ridged.items() if k != "rkhs_norm_complexity"} == pytest.approx(
        {k: v for k, v in plain.items() if k != "rkhs_norm_complexity"})
    with pytest.raises(ValueError, match="ridge"):
        ntk_summary(K, y, ridge=-1.0)


def test_spectral_energy_splits_the_norm_over_octave_bands_of_eigenvectors():
    from ntkbench.ntk.metrics import band_edges, spectral_energy, spectrum

    assert band_edges(20).tolist() == [0, 1, 2, 4, 8, 16, 20]
    assert band_edges(1).tolist() == [0, 1] and band_edges(2).tolist() == [0, 1, 2]
    rng = np.random.default_rng(0)
    A = rng.normal(size=(20, 20))
    spec = spectrum(A @ A.T)
    phi = rng.normal(size=(20, 3))
    energy = spectral_energy(spec, phi)
    assert energy.sum() == pytest.approx(np.sum(phi ** 2), rel=1e-12)
    # An eigenvector lands wholly in its band: rank 5 (0-based 4) is in band [4, 8).
    np.testing.assert_allclose(spectral_energy(spec, 2 * spec.eigenvectors[:, 4]),
                               [0, 0, 0, 4, 0, 0], atol=1e-12)
    # Gradient descent on a fixed kernel: r ← (I − ηK/n) r multiplies coefficient i by
    # (1 − ηλ_i/n) per step, so each band's energy is Σ_i c_i² (1 − ηλ_i/n)^(2t).
    K, r0, eta, t = A @ A.T / 20, rng.normal(size=20), 0.5, 7
    spec = spectrum(K)
    r = r0.copy()
    for _ in range(t):
        r = r - eta * K @ r / 20
    c2 = (spec.eigenvectors.T @ r0) ** 2 * (1 - eta * spec.eigenvalues / 20) ** (2 * t)
    edges = band_edges(20)
    np.testing.assert_allclose(spectral_energy(spec, r),
                               [c2[a:b].sum() for a, b in zip(edges[:-1], edges[1:], strict=True)],
                               rtol=1e-9, atol=1e-12)


def test_wide_network_residual_bands_decay_at_the_kernel_rate(backend):
    # Width 4096 under NTK parameterization: the kernel barely moves, so the residual's
    # energy on the top eigenvector of K_0 (and the next) decays as (1 − ηλ/n)^(2t).
    from conftest import tiny_trial

    from ntkbench.config import MeasureConfig, ModelConfig, TrainingConfig
    from ntkbench.runner import run_trial

    eta = 0.5
    rec = run_trial(tiny_trial(
        model=ModelConfig(width=4096, depth=1, activation="relu", parameterization="ntk"),
        training=TrainingConfig(lr=eta, steps=40, dtype="float64"),
        measure=MeasureConfig(checkpoints=5, ntk_checkpoints=3), backend=backend))
    lam, n = np.array(rec["ntk_init_spectrum"]), rec["ntk_n"]
    energy = np.array(rec["ntk_residual_band_energy"])
    t = rec["ntk_step"][1]
    assert rec["ntk_band_edges"][:3] == [0, 1, 2] and t > 0
    for band in (0, 1):  # ranks 1 and 2, one eigenvector each
        expected = energy[0, band] * (1 - eta * lam[band] / n) ** (2 * t)
        assert energy[1, band] == pytest.approx(expected, rel=0.05)
    assert len(rec["ntk_target_alignment"]) == len(rec["ntk_output_alignment"]) == 3
