"""NTK measurements inside a trial: per-layer shares, analytic distance, linearized gap."""

import math

import numpy as np
import pytest
from conftest import network_class, tiny_trial

from ntkbench.config import MeasureConfig, ModelConfig, TrainingConfig
from ntkbench.execute import run_trial
from ntkbench.ntk.metrics import top_k_alignment
from ntkbench.ntk.probes import kernel_checkpoint, layer_shares, residual


def test_trial_records_layer_shares_analytic_distance_and_linearized_gap(backend):
    rec = run_trial(tiny_trial(backend=backend))
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


def test_wider_networks_are_closer_to_their_infinite_width_kernel_and_linearization(backend):
    def measure(width):
        # NTK parameterization with N(0, 1) weights, so one learning rate suits every width.
        model = ModelConfig(width=width, depth=1, activation="relu", parameterization="ntk",
                            w_std=2**0.5, b_std=0.1)
        recs = [run_trial(tiny_trial("normal", seed=s, model=model,  # std 1 by default
                                     training=TrainingConfig(lr=0.5, steps=30,
                                                             dtype="float64"),
                                     backend=backend))
                for s in range(3)]
        return (np.mean([r["ntk_init"]["analytic_distance"] for r in recs]),
                np.mean([r["linearized"]["gap_test"] for r in recs]))

    (dist_narrow, gap_narrow), (dist_wide, gap_wide) = measure(8), measure(512)
    # Both shrink like 1/√width: 64× the width should cut them well below a half.
    assert dist_wide < 0.4 * dist_narrow, (dist_narrow, dist_wide)
    assert gap_wide < 0.4 * gap_narrow, (gap_narrow, gap_wide)


def test_linearized_and_analytic_can_be_switched_off_and_skip_with_a_reason(backend):
    rec = run_trial(tiny_trial(measure=MeasureConfig(checkpoints=5, ntk_checkpoints=3,
                                                     linearized=False, analytic=False),
                               backend=backend))
    assert "linearized" not in rec and "curve_lin_gap_train" not in rec
    assert "analytic_distance" not in rec["ntk_init"]
    # With the probe on, the kernel at init is taken from it: the same numbers.
    on = run_trial(tiny_trial(backend=backend))
    assert on["ntk_init"]["lambda_max"] == rec["ntk_init"]["lambda_max"]
    assert on["ntk_drift"] == rec["ntk_drift"]
    rec = run_trial(tiny_trial(training=TrainingConfig(optimizer="adam", lr=0.01, steps=10),
                               backend=backend))
    assert rec["status"] == "ok"
    assert "adam" in rec["linearized"]["skipped"]
    rec = run_trial(tiny_trial(measure=MeasureConfig(checkpoints=5, ntk_checkpoints=3,
                                                     linearized_max_n=5), backend=backend))
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


def test_layer_shares_are_trace_fractions_of_the_per_layer_kernels(backend):
    assert layer_shares(np.array([[1.0, 1.0], [2.0, 4.0]])) == pytest.approx([0.25, 0.75])
    assert all(math.isnan(v) for v in layer_shares(np.array([[np.inf, 1.0], [0.0, 0.0]])))
    import ntkbench as nb

    Network = network_class(backend)
    rng = np.random.default_rng(3)
    for model in (nb.MLP(in_dim=3, width=6, depth=2, out_dim=2, activation="gelu"),
                  nb.MLP(in_dim=3, width=6, depth=0, out_dim=1, bias=False),
                  nb.MLP(in_dim=3, width=6, depth=1, parameterization="ntk", b_std=0.3)):
        weights = [{"W": rng.normal(size=(i.fan_out, i.fan_in)), "b": rng.normal(size=i.fan_out)}
                   for i in model.layers()]
        x = rng.normal(size=(7, 3))
        layers = nb.empirical_ntk(model, weights, x, per_layer=True)
        diagonals = Network(model, weights, dtype="float64").ntk_layer_diagonals(x)
        np.testing.assert_allclose(diagonals, np.einsum("lii->li", layers), rtol=1e-12)


def test_complexity_is_finite_for_a_float32_kernel_and_uses_the_round_off_ridge(backend):
    rng = np.random.default_rng(2)
    # A power-law spectrum down to 1e-12·λ_max: below float32 round-off, so reg = 0 is
    # dominated by noise in the smallest eigenvalues; the ridge n·ε₃₂·λ_max is the reference.
    n = 40
    U = np.linalg.qr(rng.normal(size=(n, n)))[0]
    lam = np.logspace(0, -12, n)
    K = (U * lam) @ U.T
    y = rng.normal(size=(n, 1))
    out = kernel_checkpoint(K, y, np.zeros((n, 1)), "regression")
    reg = n * float(np.finfo(np.float32).eps) * lam.max()
    expected = float(y[:, 0] @ np.linalg.solve(K + reg * np.eye(n), y[:, 0])) / n
    assert out["rkhs_norm_complexity"] == pytest.approx(expected, rel=1e-6)
    rec = run_trial(tiny_trial(backend=backend))
    assert math.isfinite(rec["ntk_init"]["rkhs_norm_complexity"])


@pytest.mark.parametrize("w_std", [1e30, 1e40])  # s_W² or s_W itself past float32's range
def test_overflowing_init_is_diverged_not_failed_and_skips_the_linearized_probe(backend, w_std):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        rec = run_trial(tiny_trial(model=ModelConfig(width=16, depth=3, activation="relu",
                                                     parameterization="ntk", w_std=w_std),
                                   backend=backend))
    assert rec["status"] == "diverged", rec.get("error")
    assert "not finite" in rec["linearized"]["skipped"]
    # The kernel limit is computed in float64: s_W² = 1e60 still fits (and ReLU kernel
    # regression is scale-free, so it is a real number); 1e80 over three layers does not.
    limit = rec["kernel_regression"]
    if w_std == 1e30:
        assert math.isfinite(limit["ntk_test_metric"])
    else:
        assert "not finite" in limit["skipped"]


def test_complexity_uses_one_ridge_so_float32_and_float64_trials_agree(backend):
    model = ModelConfig(width=64, depth=1, activation="relu")
    values = {dtype: run_trial(tiny_trial(model=model, training=TrainingConfig(
        lr=0.1, steps=5, dtype=dtype), backend=backend))["ntk_init"]["rkhs_norm_complexity"]
        for dtype in ("float32", "float64")}
    assert math.isfinite(values["float64"])
    assert values["float32"] == pytest.approx(values["float64"], rel=0.05)


def test_analytic_distance_uses_enough_quadrature_points_or_none(backend):
    from ntkbench.ntk.analytic import converged_quadrature_points

    # tanh at moderate variance converges; a huge variance does not within 128 points.
    rec = run_trial(tiny_trial(backend=backend))
    assert rec["ntk_analytic_converged"] and rec["ntk_analytic_quadrature_points"] <= 64
    big = run_trial(tiny_trial(model=ModelConfig(width=16, depth=1, activation="tanh",
                                                 parameterization="ntk", w_std=30.0),
                               backend=backend))
    assert big["ntk_analytic_converged"] is False
    assert math.isnan(big["ntk_init"]["analytic_distance"])
    # The kernel limit makes the same check (it once scored GO's tanh nets at MSE 1e5 from an
    # unconverged rule); the moderate network keeps a finite limit.
    assert "did not converge" in big["kernel_regression"]["skipped"]
    assert math.isfinite(rec["kernel_regression"]["ntk_test_metric"])
    import ntkbench as nb
    from ntkbench.ntk.analytic import matched_analytic_ntk
    m = nb.MLP(in_dim=1, width=8, depth=1, activation="tanh", parameterization="ntk", w_std=1.5)
    w = [{"W": np.ones((i.fan_out, i.fan_in)), "b": np.ones(i.fan_out)} for i in m.layers()]
    x = np.linspace(-1, 1, 20)[:, None]
    points, converged = converged_quadrature_points(m, w, x, rtol=1e-5)
    assert converged and points < 256
    # The doubling test estimates the error: against 256 points it is within 2× rtol.
    ref = matched_analytic_ntk(m, w, x, quadrature_points=256)
    got = matched_analytic_ntk(m, w, x, quadrature_points=points)
    assert np.abs(got - ref).max() <= 2e-5 * np.abs(ref).max()
    coarser = matched_analytic_ntk(m, w, x, quadrature_points=points // 2)
    assert np.abs(coarser - ref).max() > 1e-5 * np.abs(ref).max()  # fewest points that pass


def test_spectrum_ranks_are_log_spaced_and_cover_both_ends():
    from ntkbench.ntk.probes import spectrum_ranks

    assert list(spectrum_ranks(5)) == [1, 2, 3, 4, 5]
    ranks = spectrum_ranks(1000, points=48)
    assert ranks[0] == 1 and ranks[-1] == 1000 and len(ranks) <= 48
    assert np.all(np.diff(ranks) > 0)
    ratios = ranks[-10:][1:] / ranks[-10:][:-1]  # geometric towards the tail
    assert np.allclose(ratios, ratios.mean(), rtol=0.05)
