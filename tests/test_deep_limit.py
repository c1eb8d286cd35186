"""The deep-limit classifier against closed forms: the ReLU NTK's normalised off-diagonal tends
to 1/4 with depth, a kernel c·11ᵀ + (1 − c)·I predicts the majority vote, and on a separable
task the deep classifier falls from well above the majority vote to it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ntkbench.analysis.deep_limit import deep_limit_curve, normalized_offdiagonal, pm1
from ntkbench.ntk.analytic import analytic_kernels
from ntkbench.ntk.regression import kernel_predict


def _task(n_train=80, n_test=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_train + n_test, 10))
    y = np.where(x[:, 0] + 0.3 > 0, 1, 0)  # a half-space: about 60% positives
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def test_relu_ntk_normalised_off_diagonal_tends_to_one_quarter():
    # θ_l ≈ 3π/l gives Π_{k>l}(1 − θ_k/π) ≈ (l/L)³ and (1/L)Σ (l/L)³ → 1/4, with an O(1/L) gap.
    x = np.random.default_rng(1).normal(size=(6, 4))
    gaps = []
    for depth in (64, 512, 4096):
        _, ntk = analytic_kernels(x, depth=depth, activation="relu", w_std=math.sqrt(2.0))
        gaps.append(np.max(np.abs(normalized_offdiagonal(ntk) - 0.25)))
    assert gaps[2] < 2e-3
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[1] / gaps[2] > 4  # about 1/L: 8 times the depth, about 8 times closer
    # The NNGP's correlation goes to 1 instead.
    nngp, _ = analytic_kernels(x, depth=4096, activation="relu", w_std=math.sqrt(2.0))
    assert np.all(normalized_offdiagonal(nngp) > 0.9999)


@pytest.mark.parametrize("c", [0.25, 0.9])
def test_a_constant_off_diagonal_kernel_predicts_the_majority_vote(c):
    # (c 11ᵀ + (1−c) I)⁻¹ 1 = 1/(1 − c + c n), so f = c Σy / (1 − c + c n) at every test point.
    n = 9
    y = np.array([1, 1, -1, 1, -1, 1, 1, -1, 1], dtype=float)
    K = c * np.ones((n, n)) + (1 - c) * np.eye(n)
    pred = kernel_predict(K, c * np.ones((3, n)), y, ridge=0.0 + 1e-15)
    np.testing.assert_allclose(pred[:, 0], c * y.sum() / (1 - c + c * n), rtol=1e-10)


def test_unequal_norms_make_the_deep_limit_a_norm_weighted_vote():
    # ReLU without biases is homogeneous: K = D κ D, and a constant κ predicts
    # sign Σ y_i/‖x_i‖. Shrink the minority class's inputs 3× so that its weighted vote wins.
    x, y, x_test, y_test = _task(n_train=60, n_test=40)
    minority = 1 if (y == 1).sum() < (y == 0).sum() else 0
    x = np.where((y == minority)[:, None], x / 3.0, x)
    curve = deep_limit_curve(x, y, x_test, y_test, [4096])
    deep = curve.iloc[0]
    assert deep["weighted_vote_agreement"] == 1.0 and deep["majority_agreement"] == 0.0


def test_deep_classifier_falls_to_the_majority_vote():
    curve = deep_limit_curve(*_task(), [1, 2048])
    shallow, deep = curve.iloc[0], curve.iloc[1]
    majority = curve["majority_accuracy"].iloc[0]
    assert shallow["test_accuracy"] > majority + 0.25
    assert deep["majority_agreement"] == 1.0
    assert deep["test_accuracy"] == majority
    assert abs(deep["offdiag_mean"] - 0.25) < 2e-3 and deep["offdiag_std"] < 1e-3


def test_pm1_maps_two_classes_and_rejects_more():
    np.testing.assert_array_equal(pm1(np.array([3, 8, 8, 3])), [-1, 1, 1, -1])
    np.testing.assert_array_equal(pm1(np.array([-1.0, 1.0])), [-1, 1])
    with pytest.raises(ValueError, match="binary task"):
        pm1(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="kernel must be"):
        deep_limit_curve(*_task(), [1], kernel="rbf")


def test_too_many_points_for_memory_are_refused_before_any_work(monkeypatch):
    import os

    from ntkbench.analysis import deep_limit as dl

    pages = {"SC_AVPHYS_PAGES": 100, "SC_PAGE_SIZE": 4096}  # 400 kB available
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name])
    with pytest.raises(ValueError, match=r"points need about .* GiB"):
        dl.deep_limit_curve(*_task(), [1])
    pages["SC_AVPHYS_PAGES"] = 10**6  # 4 GB: any depth fits, the depth costs only time
    assert len(dl.deep_limit_curve(*_task(), [4096])) == 1
