"""The width power-law fit against exact power laws, scipy's own regression, and a real
run whose empirical NTK approaches the analytic one at the n^(-1/2) rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ntkbench.report.width import power_law_fit, width_convergence


def test_an_exact_power_law_is_recovered_exactly():
    w = np.array([32, 64, 128, 256, 512], dtype=float)
    fit = power_law_fit(w, 3.0 * w ** -0.5)
    assert fit["exponent"] == pytest.approx(-0.5, abs=1e-12)
    assert fit["prefactor"] == pytest.approx(3.0, rel=1e-12)
    assert fit["r_squared"] == pytest.approx(1.0)


def test_the_ci_covers_the_true_exponent_at_its_nominal_rate():
    # Log-normal scatter: the 95% t-interval should cover p = -0.5 in about 95% of draws.
    rng = np.random.default_rng(0)
    w = np.repeat([32.0, 128.0, 512.0, 2048.0], 3)
    covered = 0
    for _ in range(400):
        fit = power_law_fit(w, 2.0 * w ** -0.5 * np.exp(rng.normal(0, 0.2, len(w))))
        covered += fit["exponent_ci_low"] <= -0.5 <= fit["exponent_ci_high"]
    assert 0.92 <= covered / 400 <= 0.98  # binomial(400, 0.95): ±2.5 standard deviations


def test_fit_matches_scipy_and_skips_unusable_points():
    w = np.array([16, 16, 64, 64, 256, np.nan, 256])
    y = np.array([0.5, 0.4, 0.26, 0.2, 0.11, 0.3, -1.0])  # nan width and y <= 0 are dropped
    fit = power_law_fit(w, y)
    ref = sps.linregress(np.log(w[:5]), np.log(y[:5]))
    assert fit["n_points"] == 5 and fit["exponent"] == pytest.approx(ref.slope, rel=1e-12)
    assert np.isnan(power_law_fit([8, 8, 8], [1, 2, 3])["exponent"])  # one width: no slope


def test_width_convergence_groups_by_task_and_initializer_and_names_missing_columns():
    rows = [{"task": "t", "initializer": init, "backend": "torch", "status": "ok",
             "model.width": w, "ntk_init.analytic_distance": c * w ** p}
            for init, c, p in (("he_normal", 2.0, -0.5), ("orthogonal", 1.0, -0.25))
            for w in (64, 256, 1024)]
    fits = width_convergence(pd.DataFrame(rows)).set_index("initializer")
    assert fits.loc["he_normal", "exponent"] == pytest.approx(-0.5)
    # A real run labels each width as a sweep value; other swept fields still split groups.
    swept = [{**r, "sweep_label": f"model.depth={d}, model.width={r['model.width']}",
              "ntk_init.analytic_distance": r["ntk_init.analytic_distance"] * d}
             for r in rows for d in (2, 4)]
    by_depth = width_convergence(pd.DataFrame(swept)).set_index("initializer")
    assert sorted(by_depth.index) == ["he_normal model.depth=2", "he_normal model.depth=4",
                                      "orthogonal model.depth=2", "orthogonal model.depth=4"]
    assert by_depth.loc["orthogonal model.depth=4", "exponent"] == pytest.approx(-0.25)
    assert by_depth.loc["he_normal model.depth=4", "widths"] == [64, 256, 1024]
    assert fits.loc["orthogonal", "exponent"] == pytest.approx(-0.25)
    assert fits.loc["he_normal", "widths"] == [64, 256, 1024]
    with pytest.raises(ValueError, match="model.width"):
        width_convergence(pd.DataFrame([{"task": "t", "initializer": "x"}]))


@pytest.mark.slow
def test_empirical_ntk_distance_shrinks_as_the_inverse_square_root_of_width(tmp_path):
    # A real run: 1 hidden ReLU layer, NTK parameterization, widths 64..4096, 3 seeds.
    from conftest import tiny_trial

    from ntkbench.config import ModelConfig, TrainingConfig
    from ntkbench.runner import run_trials
    from ntkbench.store import load_results

    trials = [tiny_trial(seed=s, model=ModelConfig(width=w, depth=1, activation="relu",
                                                   parameterization="ntk"),
                         training=TrainingConfig(lr=0.1, steps=1))
              for w in (64, 256, 1024, 4096) for s in range(3)]
    run_trials(trials, tmp_path, progress=False)
    fit = width_convergence(load_results(tmp_path)).iloc[0]
    assert fit["exponent_ci_low"] <= -0.5 <= fit["exponent_ci_high"], fit
