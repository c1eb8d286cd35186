"""Outputs of the linearized network under full-batch gradient descent on the MSE loss.

Around its initial parameters ``θ_0`` a network is approximated by its first-order Taylor
expansion ``f_lin(x; θ) = f(x; θ_0) + J(x)(θ − θ_0)``, whose tangent kernel is the NTK at
init, ``Θ = J Jᵀ``, for all time (Lee et al. 2019, "Wide neural networks of any depth evolve
as linear models under gradient descent"). ntkbench trains with the loss
``L = 1/(2n) Σ_i ‖f(x_i) − y_i‖²`` (see ``Network.loss``), so one gradient-descent step with
learning rate ``η`` moves the linearized training outputs by ``−(η/n) Θ (f − y)``:

- discrete gradient descent (what the trainer does)::

    f_t(X) − y = (I − ηΘ/n)^t (f_0(X) − y)
    f_t(x)     = f_0(x) − Θ(x, X) Θ⁻¹ (I − (I − ηΘ/n)^t) (f_0(X) − y)

- gradient flow, ``t`` counted in steps of size ``η``::

    f_t(x) = f_0(x) − Θ(x, X) Θ⁻¹ (I − exp(−ηΘt/n)) (f_0(X) − y)

Both are evaluated in the eigenbasis ``Θ = U diag(λ) Uᵀ`` as
``Θ(x, X) U diag(g(λ)) Uᵀ (f_0 − y)`` with ``g(λ) = (1 − (1 − ηλ/n)^t)/λ`` (or
``(1 − e^{−ηλt/n})/λ``), whose limit at ``λ = 0`` is ``ηt/n``, so a singular kernel needs no
inverse. With ``out_dim = O > 1`` the kernel is the full ``(n, n, O, O)`` block, treated as an
``(nO, nO)`` matrix over (example, output) pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["LinearizedOutputs", "linearization_gap", "linearized_outputs"]

DYNAMICS = ("gd", "flow")


class LinearizedOutputs(NamedTuple):
    """Predicted outputs of the linearized network at each requested step.

    Attributes:
        steps: ``(T,)`` the steps.
        train: ``(T, n, O)`` predicted outputs on the training inputs.
        test: ``(T, m, O)`` predicted outputs on the test inputs, or ``None``.
        eigenvalues: ``(n·O,)`` eigenvalues of the training kernel, ascending; the linearized
            model diverges under GD when ``η·λ_max/n > 2``.
    """

    steps: np.ndarray
    train: np.ndarray
    test: np.ndarray | None
    eigenvalues: np.ndarray


def linearized_outputs(kernel: ArrayLike, f0: ArrayLike, y: ArrayLike, *, lr: float,
                       steps: Sequence[int], cross_kernel: ArrayLike | None = None,
                       f0_test: ArrayLike | None = None,
                       dynamics: str = "gd") -> LinearizedOutputs:
    """Outputs of the linearized network after each of ``steps`` gradient-descent steps.

    Args:
        kernel: NTK at init on the training inputs, ``(n, n)`` for one output or the full
            block ``(n, n, O, O)`` (``empirical_ntk(..., full=True)``).
        f0: network outputs at init on the training inputs, ``(n,)`` or ``(n, O)``.
        y: training targets, same shape as ``f0``.
        lr: learning rate ``η`` of the trainer (loss ``1/(2n) Σ ‖f − y‖²``).
        steps: steps ``t ≥ 0`` at which to predict.
        cross_kernel: ``Θ(x_test, X)``, ``(m, n)`` or ``(m, n, O, O)``; with ``f0_test``.
        f0_test: outputs at init on the test inputs, ``(m,)`` or ``(m, O)``.
        dynamics: ``"gd"`` (discrete steps, default) or ``"flow"`` (gradient flow).

    Returns:
        :class:`LinearizedOutputs`; outputs are ``(T, n, O)`` even for one output.
    """
    if dynamics not in DYNAMICS:
        raise ValueError(f"dynamics must be one of {DYNAMICS}, got {dynamics!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr}")
    t = np.asarray(steps, dtype=np.float64)
    if t.ndim != 1 or np.any(t < 0):
        raise ValueError("steps must be a list of non-negative step counts")
    F0 = _outputs(f0, "f0")
    n, n_out = F0.shape
    Y = _outputs(y, "y")
    if Y.shape != F0.shape:
        raise ValueError(f"y has shape {np.shape(y)} but f0 has shape {np.shape(f0)}")
    K = _flat_kernel(kernel, n, n, n_out, "kernel")
    Kx = F0t = None
    if cross_kernel is not None or f0_test is not None:
        if cross_kernel is None or f0_test is None:
            raise ValueError("cross_kernel and f0_test must be given together")
        F0t = _outputs(f0_test, "f0_test")
        if F0t.shape[1] != n_out:
            raise ValueError(f"f0_test has {F0t.shape[1]} outputs, f0 has {n_out}")
        Kx = _flat_kernel(cross_kernel, F0t.shape[0], n, n_out, "cross_kernel")
    lam, U = np.linalg.eigh((K + K.T) / 2)
    lam = np.clip(lam, 0.0, None)  # round-off below zero; an NTK is PSD
    coef = U.T @ (F0 - Y).reshape(n * n_out)  # initial residual in the eigenbasis
    rate = lr * lam / n
    # With ηλ_max/n > 2 the linear model diverges under GD: its outputs overflow to inf/nan,
    # which is the honest prediction, so numpy's warnings about it are silenced.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if dynamics == "gd":
            decay = (1.0 - rate)[None, :] ** t[:, None]
        else:
            decay = np.exp(-rate[None, :] * t[:, None])
        train = Y[None] + ((decay * coef) @ U.T).reshape(len(t), n, n_out)
        test = None
        if Kx is not None:
            # g(λ) = (1 − decay)/λ, with its limit ηt/n where λ = 0.
            g = np.where(lam > 0, (1.0 - decay) / np.where(lam > 0, lam, 1.0),
                         lr * t[:, None] / n)
            test = F0t[None] - ((g * coef) @ (Kx @ U).T).reshape(len(t), len(F0t), n_out)
    return LinearizedOutputs(t.astype(np.int64), train, test, lam)


def linearization_gap(f: ArrayLike, f_lin: ArrayLike) -> float:
    """Relative distance ``‖f − f_lin‖_F / ‖f‖_F`` of real outputs from linearized ones.

    ``nan`` when ``f`` is zero or either array has non-finite entries (a diverged run).
    """
    f, f_lin = np.asarray(f, dtype=np.float64), np.asarray(f_lin, dtype=np.float64)
    f_lin = f_lin.reshape(f.shape)
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(f_lin))):
        return math.nan
    with np.errstate(over="ignore"):  # finite but huge outputs give an inf gap, not a warning
        norm = np.linalg.norm(f)
        return float(np.linalg.norm(f - f_lin) / norm) if norm > 0 else math.nan


def _outputs(f: ArrayLike, name: str) -> np.ndarray:
    F = np.asarray(f, dtype=np.float64)
    if F.ndim == 1:
        F = F[:, None]
    if F.ndim != 2:
        raise ValueError(f"{name} must have shape (n,) or (n, O), got {np.shape(f)}")
    return F


def _flat_kernel(K: ArrayLike, n1: int, n2: int, n_out: int, name: str) -> np.ndarray:
    """``(n1, n2)`` or ``(n1, n2, O, O)`` → ``(n1·O, n2·O)`` indexed by (example, output)."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape == (n1, n2, n_out, n_out):
        return K.transpose(0, 2, 1, 3).reshape(n1 * n_out, n2 * n_out)
    if K.shape == (n1, n2) and n_out == 1:
        return K
    expected = f"({n1}, {n2}, {n_out}, {n_out})" + (f" or ({n1}, {n2})" if n_out == 1 else "")
    raise ValueError(f"{name} must have shape {expected}, got {K.shape}")
