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
}
