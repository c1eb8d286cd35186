"""Test metrics: how a trained network is scored on held-out data.

Each metric is a pure function ``(predictions, targets) -> float`` with a goal (``"min"`` or
``"max"``) that the leaderboard ranks by. Predictions are the network outputs ``(n, out_dim)``;
targets are ``(n, out_dim)`` floats for regression or integer labels ``(n,)`` for
classification.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error over samples and outputs: ``mean((f − y)²)``."""
    return float(np.mean((np.asarray(pred) - np.asarray(target).reshape(np.shape(pred))) ** 2))


DB_LIMIT = 200.0
"""Bound of :func:`snr_db` and :func:`psnr_db`: a perfect fit scores ``+200 dB``, not ``+∞``.

Records are strict JSON, where ``inf`` becomes ``null`` and the leaderboard would then drop the
best trials from the mean; 200 dB (an error ``10¹⁰`` times smaller than the signal in
amplitude) is far above what float32 or float64 training reaches, so the bound never ties two
real results.
"""


def _decibels(power: float, noise: float) -> float:
    """``10·log10(power / noise)`` clipped to ``[−DB_LIMIT, DB_LIMIT]``; zero noise gives
    ``+DB_LIMIT`` (also when ``power`` is zero: a perfect fit), zero power ``−DB_LIMIT``."""
    if noise == 0.0:
        return DB_LIMIT
    if power == 0.0:
        return -DB_LIMIT
    with np.errstate(over="ignore"):  # log10(inf) = inf, clipped below
        db = 10.0 * (np.log10(power) - np.log10(noise))
    return float(np.clip(db, -DB_LIMIT, DB_LIMIT))


def snr_db(pred: np.ndarray, target: np.ndarray) -> float:
    """Signal-to-noise ratio in decibels: ``10·log10(Σ y² / Σ (f − y)²)``.

    Sums run over all samples and outputs (every test pixel and colour channel); the signal is
    the targets' power about zero, not about their mean, as in the coordinate-network
    literature (so a constant image's SNR is not ``−∞``). For targets with mean ``μ`` and
    variance ``s²``, predicting the mean scores ``10·log10(1 + μ²/s²)``; ``+3 dB`` halves the
    squared error. Clipped to ``±DB_LIMIT`` (200 dB), which a perfect fit scores.
    """
    f = np.asarray(pred, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64).reshape(f.shape)
    with np.errstate(over="ignore"):
        return _decibels(float(np.sum(y * y)), float(np.sum((f - y) ** 2)))


def psnr_db(pred: np.ndarray, target: np.ndarray) -> float:
    """Peak signal-to-noise ratio in decibels: ``10·log10(MAX² / MSE)`` with ``MAX = 1``.

    ``MSE = mean((f − y)²)`` over all samples and outputs (the joint PSNR of a colour image, not
    a mean of per-channel PSNRs); ``MAX = 1`` is the peak of targets in ``[0, 1]``, as in
    ``skimage.metrics.peak_signal_noise_ratio(y, f, data_range=1)``. For targets of another
    range (e.g. the synthetic tasks) it is simply ``−10·log10(MSE)``. Clipped to ``±DB_LIMIT``
    (200 dB), which a perfect fit scores.
    """
    f = np.asarray(pred, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64).reshape(f.shape)
    with np.errstate(over="ignore"):
        return _decibels(1.0, float(np.mean((f - y) ** 2)))


def accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    """Fraction of samples whose arg-max output equals the label."""
    return float(np.mean(np.argmax(pred, axis=1) == np.asarray(target)))


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    goal: str  # "min" or "max"
    kinds: tuple[str, ...]  # dataset kinds it applies to
    description: str


METRICS: dict[str, Metric] = {
    "test_mse": Metric("test_mse", mse, "min", ("regression",), "test mean squared error"),
    "test_accuracy": Metric("test_accuracy", accuracy, "max", ("classification",),
                            "test accuracy"),
    "test_snr_db": Metric("test_snr_db", snr_db, "max", ("regression",),
                          "test signal-to-noise ratio 10·log10(Σy²/Σ(f−y)²), dB"),
    "test_psnr_db": Metric("test_psnr_db", psnr_db, "max", ("regression",),
                           "test peak SNR 10·log10(1/MSE) for targets in [0, 1], dB"),
}
