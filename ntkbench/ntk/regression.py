"""Kernel regression: the mean prediction of an infinitely wide network.

``f(x) = K(x, X) (K(X, X) + r I)⁻¹ Y`` with ``r = RIDGE · λ_max(K)``, a jitter that keeps the
solve stable without regularising. The inverse is taken through the eigendecomposition of the
symmetrised ``K`` with negative eigenvalues set to 0: they are round-off of the closed-form
kernels (``arccos`` near ±1 loses about √ε), a few 1e-10 λ_max, and left in they would make
``K + rI`` indefinite. With the NTK this is the network trained to convergence by gradient flow
in the infinite-width limit (Jacot et al. 2018; Lee et al. 2019), up to the random initial
function, whose mean is 0; with the NNGP it is the exact Bayesian posterior mean of the
infinitely wide network (Lee et al. 2018).
"""

from __future__ import annotations

import numpy as np

RIDGE = 1e-8  # × λ_max: a jitter for the solve, not a regulariser


def kernel_predict(K: np.ndarray, K_star: np.ndarray, Y: np.ndarray,
                   ridge: float = RIDGE) -> np.ndarray | None:
    """Predictions ``(n_test, k)`` at the rows of ``K_star`` ``(n_test, n)`` from the train
    kernel ``K`` ``(n, n)`` and targets ``Y`` ``(n, k)``; ``None`` when ``K`` has no positive
    eigenvalue or the predictions are not finite."""
    lam, U = np.linalg.eigh((K + K.T) / 2)
    lam = np.maximum(lam, 0.0)
    r = ridge * float(lam[-1])
    if not r > 0:
        return None
    Y = np.asarray(Y, dtype=np.float64).reshape(len(K), -1)
    pred = K_star @ (U @ ((U.T @ Y) / (lam + r)[:, None]))
    return pred if np.all(np.isfinite(pred)) else None
