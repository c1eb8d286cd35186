"""NTK measurements inside a trial: per-layer shares, analytic distance, linearized gap."""

import math

import numpy as np
import pytest
from conftest import tiny_trial

from ntkbench.config import MeasureConfig, ModelConfig, TrainingConfig
from ntkbench.execute import run_trial
from ntkbench.ntk.metrics import top_k_alignment
from ntkbench.ntk.probes import kernel_checkpoint, layer_shares, residual


def test_trial_records_layer_shares_analytic_distance_and_linearized_gap():
    rec = run_trial(tiny_trial())
    assert rec["status"] == "ok", rec.get("error")
    shares = rec["ntk_init_layer_share"]
    assert len(shares) == 2 and all(s > 0 for s in shares)  # depth 1: hidden + readout
    assert sum(shares) == pytest.approx(1.0, rel=1e-9)
    assert rec["ntk_analytic_method"] == "quadrature"  # tanh
    assert 0 < rec["ntk_init"]["analytic_distance"] < 1
    assert len(rec["curve_lin_gap_train"]) == len(rec["curve_step"])
    assert rec["curve_lin_gap_train"][0] == pytest.approx(0.0, abs=1e-6)  # f_lin(0) = f_0
    lin = rec["linearized"]
    assert lin["gap_train"] == rec["curve_lin_gap_train"][-1] > 0
    assert lin["n"] == rec["n_train"] and math.isfinite(lin["final_test_metric"])
    assert 0 < lin["lr_lambda_max_over_n"] < 2
    assert len(rec["ntk_residual_alignment"]) == len(rec["ntk_step"])


def test_wider_networks_are_closer_to_their_infinite_width_kernel_and_linearization():
    def measure(width):
        # NTK parameterization with N(0, 1) weights, so one learning rate suits every width.
        model = ModelConfig(width=width, depth=1, activation="relu", parameterization="ntk",
                            w_std=2**0.5, b_std=0.1)
        recs = [run_trial(tiny_trial("normal", seed=s, model=model,  # std 1 by default
                                     training=TrainingConfig(lr=0.5, steps=30,
                                                             dtype="float64")))
                for s in range(3)]
        return (np.mean([r["ntk_init"]["analytic_distance"] for r in recs]),
                np.mean([r["linearized"]["gap_test"] for r in recs]))

    (dist_narrow, gap_narrow), (dist_wide, gap_wide) = measure(8), measure(512)
    # Both shrink like 1/√width: 64× the width should cut them well below a half.
    assert dist_wide < 0.4 * dist_narrow, (dist_narrow, dist_wide)
    assert gap_wide < 0.4 * gap_narrow, (gap_narrow, gap_wide)


def test_linearized_and_analytic_can_be_switched_off_and_skip_with_a_reason():
    rec = run_trial(tiny_trial(measure=MeasureConfig(checkpoints=5, ntk_checkpoints=3,
                                                     linearized=False, analytic=False)))
    assert "linearized" not in rec and "curve_lin_gap_train" not in rec
    assert "analytic_distance" not in rec["ntk_init"]
    rec = run_trial(tiny_trial(training=TrainingConfig(optimizer="adam", lr=0.01, steps=10)))
    assert rec["status"] == "ok"
    assert "adam" in rec["linearized"]["skipped"]
    rec = run_trial(tiny_trial(measure=MeasureConfig(checkpoints=5, ntk_checkpoints=3,
                                                     linearized_max_n=5)))
    assert "linearized_max_n" in rec["linearized"]["skipped"]


def test_residual_is_minus_the_loss_gradient_in_the_outputs():
    rng = np.random.default_rng(0)
    f, y = rng.normal(size=(6, 3)), np.eye(3)[rng.integers(0, 3, 6)]
    np.testing.assert_allclose(residual(y, f, "regression"), y - f)
    p = np.exp(f) / np.exp(f).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(residual(y, f, "classification"), y - p, rtol=1e-12)


def test_kernel_checkpoint_adds_output_and_residual_alignment():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(20, 20))
    K = A @ A.T
    y, f = rng.normal(size=(20, 1)), rng.normal(size=(20, 1))
    out = kernel_checkpoint(K, y, f, "regression")
    assert out["output_top10pct_alignment"] == pytest.approx(top_k_alignment(K, f, 2))
    assert out["residual_top10pct_alignment"] == pytest.approx(top_k_alignment(K, y - f, 2))
    bad = kernel_checkpoint(K, y, np.full((20, 1), np.nan), "regression")
    assert math.isnan(bad["residual_top10pct_alignment"])


def test_layer_shares_are_trace_fractions():
    layers = np.stack([np.diag([1.0, 1.0]), np.diag([2.0, 4.0])])
    assert layer_shares(layers) == pytest.approx([0.25, 0.75])


def test_complexity_is_finite_for_a_float32_kernel_and_uses_the_round_off_ridge():
    rng = np.random.default_rng(2)
    # A power-law spectrum down to 1e-12·λ_max: below float32 round-off, so reg = 0 is
    # dominated by noise in the smallest eigenvalues; the ridge n·ε·λ_max is the reference.
    n = 40
    U = np.linalg.qr(rng.normal(size=(n, n)))[0]
    lam = np.logspace(0, -12, n)
    K = (U * lam) @ U.T
    y = rng.normal(size=(n, 1))
    eps = float(np.finfo(np.float32).eps)
    out = kernel_checkpoint(K, y, np.zeros((n, 1)), "regression", eps=eps)
    reg = n * eps * lam.max()
    expected = float(y[:, 0] @ np.linalg.solve(K + reg * np.eye(n), y[:, 0])) / n
    assert out["rkhs_norm_complexity"] == pytest.approx(expected, rel=1e-6)
    rec = run_trial(tiny_trial())
    assert math.isfinite(rec["ntk_init"]["rkhs_norm_complexity"])
