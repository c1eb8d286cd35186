"""Residual energy per Fourier band (ntkbench.ntk.fourier): closed forms, unbiasedness by Monte
Carlo (where the plain periodogram is biased), Parseval, and the spectral bias of a trained
network (low frequencies fitted first)."""

from __future__ import annotations

import numpy as np
import pytest

from ntkbench.ntk.fourier import fourier_band_edges, fourier_energy


def test_band_edges_keep_the_frequencies_within_the_sample_count():
    for n, d in ((205, 1), (512, 2), (2, 1), (10_000, 2), (10_000, 1)):
        edges = fourier_band_edges(n, d)
        k_max = edges[-1] - 1
        assert list(edges[:2]) == [0, 1] and np.all(np.diff(edges) > 0)
        assert (2 * k_max + 1) ** d <= max(min(n, 4096), 3 ** d), (n, d, edges)
    assert list(fourier_band_edges(205, 1)) == [0, 1, 2, 4, 8, 16, 32, 64, 103]
    with pytest.raises(ValueError, match="n >= 2"):
        fourier_band_edges(1, 1)


def test_closed_form_energies_in_one_and_two_dimensions():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, size=(6000, 1))
    e = fourier_energy(x, np.sin(6 * np.pi * x), [(-1.0, 1.0)])  # 6 cycles over the box
    edges = fourier_band_edges(6000, 1)
    band = np.searchsorted(edges, 6, side="right") - 1  # the band 4–7
    assert e[band] == pytest.approx(0.5, abs=0.03)
    assert np.abs(np.delete(e, band)).max() < 0.03
    x2 = rng.uniform(0.0, 1.0, size=(4000, 2))
    r = 0.5 + np.cos(2 * np.pi * (2 * x2[:, 0] + 5 * x2[:, 1]))  # mean, and |k|_∞ = 5
    e2 = fourier_energy(x2, r, [(0.0, 1.0), (0.0, 1.0)])
    assert e2[0] == pytest.approx(0.25, abs=0.03) and e2[3] == pytest.approx(0.5, abs=0.05)
    # two output columns add their energies
    both = fourier_energy(x2, np.stack([r, r], axis=1), [(0.0, 1.0), (0.0, 1.0)])
    np.testing.assert_allclose(both, 2 * e2, rtol=1e-12, atol=1e-15)


def test_estimate_is_unbiased_where_the_plain_periodogram_is_not():
    # r(u) = cos(2π·3u) on [0, 1]: |c_{±3}|² = 1/4, every other coefficient 0, ∫r² = 1/2.
    rng = np.random.default_rng(1)
    n, draws = 40, 600
    edges = np.array([0, 1, 2, 4, 8, 16])
    est, plain = [], []
    ks = np.arange(-15, 16)
    for _ in range(draws):
        x = rng.uniform(0.0, 1.0, size=(n, 1))
        r = np.cos(6 * np.pi * x[:, 0])
        est.append(fourier_energy(x, r, [(0.0, 1.0)], edges))
        S = np.exp(-2j * np.pi * np.outer(ks, x[:, 0])) @ r
        plain.append(np.sum(np.abs(S / n) ** 2))
    est = np.array(est)
    truth = np.array([0.0, 0.0, 0.5, 0.0, 0.0])
    se = est.std(axis=0, ddof=1) / np.sqrt(draws)
    assert np.all(np.abs(est.mean(axis=0) - truth) < 4 * se + 1e-12), (est.mean(axis=0), se)
    # The periodogram adds ∫r²/n = 1/80 per coefficient: 31 · 1/80 ≈ 0.39 over the bands.
    assert np.mean(plain) - 0.5 == pytest.approx(31 / (2 * n), rel=0.1)


def test_parseval_for_a_band_limited_residual():
    rng = np.random.default_rng(2)
    x = rng.uniform(-2.0, 3.0, size=(3000, 1))
    u = (x[:, 0] + 2.0) / 5.0
    r = 0.3 + np.sin(2 * np.pi * u) - 0.7 * np.cos(2 * np.pi * 9 * u)  # ∫r² = 0.09+0.5+0.245
    edges = [0, 1, 2, 4, 8, 16, 17]  # |k| ≤ 16 holds it all; the sum of 33 estimates
    assert fourier_energy(x, r, [(-2.0, 3.0)], edges).sum() == pytest.approx(0.835, abs=0.03)


def test_bad_domain_is_rejected():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="domain must be 2 pairs"):
        fourier_energy(x, np.ones(5), [(0.0, 1.0)])
    with pytest.raises(ValueError, match="lo < hi"):
        fourier_energy(x, np.ones(5), [(0.0, 1.0), (1.0, 1.0)])


def test_trained_network_fits_low_frequencies_first():
    # A wide ReLU network under NTK parameterization on 8 cycles of a sine: after 200 GD steps
    # the residual's lowest non-constant band (|k| = 1) has lost most of its energy, while the
    # band that holds the target (|k| 8–15) has barely moved — the spectral bias.
    from conftest import tiny_trial

    from ntkbench.config import DataConfig, MeasureConfig, ModelConfig, TrainingConfig
    from ntkbench.runner import run_trial

    rec = run_trial(tiny_trial(
        data=DataConfig(generator="oscillatory_1d",
                        params={"frequency": 8.0, "n_samples": 300, "train_fraction": 0.5}),
        model=ModelConfig(width=256, depth=2, activation="relu", parameterization="ntk"),
        training=TrainingConfig(lr=1.0, steps=200, dtype="float64"),
        measure=MeasureConfig(checkpoints=4, ntk_checkpoints=2)))
    assert rec["status"] == "ok", rec.get("error")
    edges = rec["fourier_band_edges"]
    energy = np.array(rec["fourier_residual_band_energy"])
    assert energy.shape == (len(rec["curve_step"]), len(edges) - 1)
    low, target = edges.index(1), edges.index(8)
    assert energy[-1, low] < 0.6 * energy[0, low]
    assert energy[-1, target] > 0.85 * energy[0, target]
    assert energy[0, target] > 5 * abs(energy[0, low])  # the target's band holds the energy


def test_tasks_without_a_uniform_box_record_no_fourier_bands():
    from conftest import tiny_trial

    from ntkbench.config import DataConfig, ModelConfig, TrainingConfig
    from ntkbench.runner import run_trial

    rec = run_trial(tiny_trial(data=DataConfig(generator="digits",
                                               params={"n_train": 30, "n_test": 30}),
                               model=ModelConfig(width=16, depth=1), metric="test_accuracy",
                               training=TrainingConfig(lr=0.1, steps=5, loss="cross_entropy")))
    assert rec["status"] == "ok", rec.get("error")
    assert "fourier_band_edges" not in rec and "fourier_residual_band_energy" not in rec
