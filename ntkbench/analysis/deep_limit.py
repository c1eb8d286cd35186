"""The deep-limit classifier: infinite-width kernel regression as the depth grows.

For a ReLU MLP at the critical scale (``σ_w² = 2``, no biases), the correlation of two inputs
after ``l`` layers follows the arc-cosine map ``ρ_{l+1} = (√(1−ρ_l²) + (π − arccos ρ_l) ρ_l)/π``,
whose only fixed point is ``ρ = 1``: deep enough, every pair of inputs looks alike. The NTK
``Θ_L`` does not become constant — its diagonal grows as ``L`` and, because the derivative
kernel ``ρ̇ = (π − arccos ρ)/π`` damps the early layers' terms, its normalised off-diagonal
``Θ_L(x, x′) / √(Θ_L(x, x) Θ_L(x′, x′))`` tends to **1/4** for every pair with ``ρ_0 < 1``
(``θ_l ≈ 3π/l`` gives ``Π_{k>l} ρ̇_k ≈ (l/L)³`` and ``(1/L) Σ_l (l/L)³ → 1/4``; Hayou et al.
2019; Xiao, Pennington & Schoenholz 2020, "Disentangling trainability and generalization in
deep neural networks", ICML). A kernel ``c 11ᵀ + (1 − c) I`` predicts
``c 1ᵀ(c 11ᵀ + (1 − c) I)⁻¹ Y ∝ Σ_i y_i`` at every test point: the kernel-regression classifier
degenerates to the **majority vote** of the training labels — for inputs of one norm. ReLU
without biases is positively homogeneous, ``Θ(x, x′) = ‖x‖ ‖x′‖ κ(x̂, x̂′)``, so with
``K = D κ D`` (``D = diag ‖x_i‖``) the prediction at ``x*`` is
``‖x*‖ κ*ᵀ κ⁻¹ D⁻¹ y``, and a constant ``κ`` turns it into the **norm-weighted vote**
``sign Σ_i y_i / ‖x_i‖``: on MNIST 0 vs 1, where the ones have less ink, that is the class of
the ones even when the zeros are the majority. (The NNGP's normalised kernel
tends to the constant 1 faster, but exact regression keeps reading the shrinking spread around
it, so its classifier can stay accurate to larger depths; on MNIST 0 vs 1 it does.)

:func:`deep_limit_curve` measures this on a real binary task: per depth, the test accuracy of
the NTK (or NNGP) regression classifier ``sign f(x)`` on ±1 targets, its agreement with the
majority vote, and the mean and spread of the normalised off-diagonal train kernel. Kernels
are the closed forms of :func:`ntkbench.ntk.analytic.analytic_kernels` under NTK
parameterization (standard parameterization drops the input-layer term from the NTK, an
``O(1/L)`` change of the normalised kernel; the limit 1/4 is the same), the solve
:func:`ntkbench.ntk.regression.kernel_predict`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ntkbench.ntk.analytic import analytic_kernels
from ntkbench.ntk.regression import kernel_predict

# The recursion accumulates the NTK forward (analytic_kernels): about this many (n × n)
# float64 arrays are alive at once, whatever the depth.
ARRAYS_ALIVE = 16

COLUMNS = ("depth", "test_accuracy", "majority_agreement", "majority_accuracy",
           "weighted_vote_agreement", "offdiag_mean", "offdiag_std")


def pm1(y: np.ndarray) -> np.ndarray:
    """Binary labels as ±1: already ±1 stays; two classes ``a < b`` map to −1, +1."""
    y = np.asarray(y).reshape(-1)
    classes = np.unique(y)
    if len(classes) > 2:
        raise ValueError(f"a binary task is needed, got {len(classes)} classes")
    if set(classes.tolist()) <= {-1.0, 1.0}:
        return y.astype(np.float64)
    return np.where(y == classes[-1], 1.0, -1.0)


def normalized_offdiagonal(K: np.ndarray) -> np.ndarray:
    """The entries ``K_ij / √(K_ii K_jj)``, ``i < j``."""
    d = np.sqrt(np.diag(K))
    C = K / np.outer(d, d)
    return C[np.triu_indices(len(K), k=1)]


def deep_limit_curve(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                     y_test: np.ndarray, depths: Sequence[int], *, kernel: str = "ntk",
                     activation: str = "relu", w_std: float = math.sqrt(2.0),
                     b_std: float = 0.0) -> pd.DataFrame:
    """One row per depth (columns :data:`COLUMNS`): the kernel-regression classifier
    ``sign f(x)`` of a binary task as the depth grows (module docstring), with the share of
    test points it gives the majority class and the class of the norm-weighted vote
    ``sign Σ_i y_i / ‖x_i‖``.

    Args:
        x_train, x_test: inputs ``(n, d)``; the inputs are flattened per row.
        y_train, y_test: binary labels (two classes, or ±1).
        depths: hidden-layer counts (each ``>= 1``).
        kernel: ``"ntk"`` or ``"nngp"``.
        activation, w_std, b_std: of :func:`ntkbench.ntk.analytic.analytic_kernels`.
    """
    if kernel not in ("ntk", "nngp"):
        raise ValueError(f"kernel must be 'ntk' or 'nngp', got {kernel!r}")
    x_train = np.asarray(x_train, dtype=np.float64).reshape(len(x_train), -1)
    x_test = np.asarray(x_test, dtype=np.float64).reshape(len(x_test), -1)
    y_all = pm1(np.concatenate([np.asarray(y_train).reshape(-1),
                                np.asarray(y_test).reshape(-1)]))
    y, y_star = y_all[:len(x_train)], y_all[len(x_train):]
    majority = 1.0 if y.sum() >= 0 else -1.0
    norms = np.linalg.norm(x_train, axis=1)
    weighted = 1.0 if np.sum(y / np.where(norms > 0, norms, np.inf)) >= 0 else -1.0
    x = np.concatenate([x_train, x_test])
    n = len(x_train)
    _check_memory(len(x))
    rows = []
    for depth in depths:
        if int(depth) < 1:
            raise ValueError(f"depths must be >= 1, got {depth}")
        K = getattr(analytic_kernels(x, depth=int(depth), activation=activation, w_std=w_std,
                                     b_std=b_std), kernel)
        pred = kernel_predict(K[:n, :n], K[n:, :n], y)
        off = normalized_offdiagonal(K[:n, :n])
        label = np.where(pred[:, 0] >= 0, 1.0, -1.0) if pred is not None else None
        rows.append({
            "depth": int(depth),
            "test_accuracy": math.nan if label is None else float(np.mean(label == y_star)),
            "majority_agreement": math.nan if label is None else float(np.mean(label == majority)),
            "majority_accuracy": float(np.mean(y_star == majority)),
            "weighted_vote_agreement": math.nan if label is None
            else float(np.mean(label == weighted)),
            "offdiag_mean": float(off.mean()), "offdiag_std": float(off.std()),
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _check_memory(n: int) -> None:
    """``ValueError`` with the estimate, before the kernels on ``n`` points would take more
    than 60% of the available memory (the depth costs time, not memory)."""
    import os

    need = ARRAYS_ALIVE * n * n * 8
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no check
        return
    if need > 0.6 * available:
        raise ValueError(f"the kernels on {n} points need about {need / 2**30:.1f} GiB, more "
                         f"than 60% of the {available / 2**30:.1f} GiB available; use fewer "
                         "points (--param n_train=..., n_test=...)")
