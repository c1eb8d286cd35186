"""NTK measurements taken during a trial, on top of the pure metrics of :mod:`.metrics`.

A probe only needs the backend network's ``ntk`` and ``predict`` methods, so it serves every
backend. :func:`kernel_checkpoint` summarises one kernel with the trial's targets and current
outputs; :class:`LinearizedProbe` predicts what the linearized network would output at each
checkpoint and scores the real network against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ntkbench.config import TrainingConfig
from ntkbench.ntk.linearized import linearization_gap, linearized_outputs
from ntkbench.ntk.metrics import Spectrum, ntk_summary, spectrum, top_k_alignment

COMPLEXITY_EPS = float(np.finfo(np.float32).eps)


def residual(y: np.ndarray, f: np.ndarray, kind: str) -> np.ndarray:
    """The signal gradient descent fits next: ``y − f`` for regression; for classification
    with one-hot ``y``, ``y − softmax(f)`` (minus the cross-entropy gradient in the logits)."""
    if kind == "classification":
        z = f - f.max(axis=1, keepdims=True)
        p = np.exp(z)
        return y - p / p.sum(axis=1, keepdims=True)
    return y - f


SPECTRUM_POINTS = 48  # eigenvalues kept per spectrum, at log-spaced ranks


def spectrum_ranks(n: int, points: int = SPECTRUM_POINTS) -> np.ndarray:
    """1-based ranks ``1 .. n``, log-spaced, at most ``points`` of them (all when ``n`` is
    small), always including the first and the last: enough for a log–log spectrum plot."""
    if n <= points:
        return np.arange(1, n + 1)
    return np.unique(np.round(np.geomspace(1, n, points)).astype(int))


def kernel_checkpoint(K: np.ndarray, y: np.ndarray, f: np.ndarray, kind: str,
                      spec: Spectrum | None = None) -> dict[str, float]:
    """:func:`~ntkbench.ntk.metrics.ntk_summary` of ``K`` plus the top-10% eigenvector
    alignment (Kopitkov & Indelman 2020) of the network outputs ``f`` and of the residual.

    The complexity ``yᵀK⁻¹y/n`` gets the ridge ``n·ε·λ_max`` with ``ε`` the float32 unit
    round-off, below which a float32 kernel's eigenvalues are noise; the same ridge in float64
    keeps trials of either precision comparable. ``spec``: the spectrum of ``K`` when the
    caller has it already.
    Keys added: ``output_top10pct_alignment``, ``residual_top10pct_alignment``.
    """
    summary = ntk_summary(K, y, ridge=len(K) * COMPLEXITY_EPS)
    keys = ("output_top10pct_alignment", "residual_top10pct_alignment")
    if not (np.all(np.isfinite(K)) and np.all(np.isfinite(f))):
        return {**summary, **dict.fromkeys(keys, float("nan"))}
    spec = spec if spec is not None else spectrum(K)
    k = max(1, (len(K) + 5) // 10)
    summary["output_top10pct_alignment"] = top_k_alignment(spec, f, k)
    summary["residual_top10pct_alignment"] = top_k_alignment(spec, residual(y, f, kind), k)
    return summary


def layer_shares(diagonals: np.ndarray) -> list[float]:
    """Each weight layer's share ``tr K_l / tr K`` of the kernel's trace, first layer first,
    from the per-layer diagonals ``(L, n)`` (``nan`` if the trace is zero or not finite)."""
    traces = np.asarray(diagonals, dtype=np.float64).sum(axis=1)
    total = traces.sum()
    if not (np.isfinite(total) and total > 0):
        return [float("nan")] * len(traces)
    return [float(t / total) for t in traces]


def linearization_skip_reason(training: TrainingConfig, n_train: int, out_dim: int,
                              max_n: int) -> str | None:
    """Why the linearized prediction does not apply to this training setup (``None``: it does).

    The closed form holds for full-batch gradient descent without momentum on the MSE loss.
    """
    if training.loss != "mse":
        return f"loss is {training.loss}, the closed form needs mse"
    if training.optimizer == "adam":
        return "optimizer is adam, the closed form needs gradient descent"
    if training.optimizer == "sgd" and training.batch_size not in (None, n_train):
        return "minibatch sgd, the closed form needs full-batch gradient descent"
    if training.momentum:
        return "momentum is not zero"
    if training.tv_weight:
        return "a total-variation term (training.tv_weight) is added to the loss"
    if n_train * out_dim > max_n:
        return (f"n_train × out_dim = {n_train} × {out_dim} > "
                f"measure.linearized_max_n = {max_n}")
    return None


class NonFiniteInit(ValueError):
    """The network at init already has non-finite outputs or kernel."""


class LinearizedProbe:
    """Outputs of the linearized network at the trial's checkpoints, from the NTK at init.

    Built before training from the network at init: the NTK on all training inputs, the
    cross kernel test × train and the initial outputs (see :mod:`.linearized`). Raises
    :class:`NonFiniteInit` when those are not finite (weights that overflow at init).
    """

    def __init__(self, net: Any, x_train: np.ndarray, y_train: np.ndarray,
                 x_test: np.ndarray, lr: float, steps: Sequence[int]) -> None:
        full = net.model.out_dim > 1
        f0, f0_test = net.predict(x_train), net.predict(x_test)
        K, Kx = net.ntk(x_train, full=full), net.ntk(x_test, x_train, full=full)
        if not all(np.all(np.isfinite(a)) for a in (K, Kx, f0, f0_test)):
            raise NonFiniteInit("the network's outputs or NTK at init are not finite")
        self.outputs = linearized_outputs(K, f0, y_train, lr=lr, steps=steps, cross_kernel=Kx,
                                          f0_test=f0_test)
        #: The NTK at init on the training inputs, traced over outputs ``(n, n)``.
        self.kernel = np.einsum("ijoo->ij", K) if full else K
        #: ``ηλ_max/n``: above 2 the linearized model diverges under GD (the network may not).
        self.step_sharpness = float(lr * self.outputs.eigenvalues[-1] / len(x_train))
        self._index = {int(s): i for i, s in enumerate(self.outputs.steps)}

    def predictions(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Linearized ``(train, test)`` outputs after ``step`` steps, each ``(n, O)``."""
        i = self._index[step]
        return self.outputs.train[i], self.outputs.test[i]

    def gaps(self, step: int, f_train: np.ndarray, f_test: np.ndarray) -> tuple[float, float]:
        """``‖f − f_lin‖ / ‖f‖`` on the train and on the test inputs after ``step`` steps."""
        lin_train, lin_test = self.predictions(step)
        return linearization_gap(f_train, lin_train), linearization_gap(f_test, lin_test)
