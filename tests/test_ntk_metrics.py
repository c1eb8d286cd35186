"""NTK metrics on kernels whose values can be worked out by hand."""

import json
import math

import numpy as np
import pytest

from ntkbench.ntk.metrics import (
    Spectrum,
    centered_alignment,
    condition_number,
    effective_rank,
    kernel_distance,
    kernel_target_alignment,
    lambda_max,
    lambda_min,
    ntk_summary,
    relative_drift,
    spectrum,
    top_k_alignment,
)

SUMMARY_KEYS = {"kernel_target_alignment", "centered_alignment", "top1_alignment",
                "top10_alignment", "top10pct_alignment", "lambda_max", "lambda_min",
                "condition_number", "effective_rank", "trace"}

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


def test_summary_of_small_singular_kernel_clips_k_and_serialises_inf():
    summary = ntk_summary(np.diag([3.0, 2.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    assert set(summary) == SUMMARY_KEYS
    assert summary["top1_alignment"] == 0.0
    assert summary["top10_alignment"] == pytest.approx(1.0)  # k = 10 clipped to n = 3
    assert summary["top10pct_alignment"] == 0.0  # k = max(1, 0) = 1
    assert summary["condition_number"] == math.inf
    assert summary["lambda_min"] == 0.0
    assert summary["trace"] == 5.0
    json.dumps(summary)  # inf is allowed (allow_nan=True is json's default)


def test_summary_of_diverged_kernel_is_all_nan():
    K = np.array([[1.0, np.inf], [np.inf, 1.0]])
    summary = ntk_summary(K, np.array([1.0, -1.0]))
    assert set(summary) == SUMMARY_KEYS
    assert all(math.isnan(v) for v in summary.values())
