"""The J_λ-optimal receptive-field length scale as the trade-off λ varies.

:func:`~ntkbench.initializers.receptive.structured_rf_ntk` picks the length scale ``l`` of its
receptive fields (size ``s = l``, smoothness ``f = f_over_s · l``) that minimises

    ``J_λ(l) = (1 − λ) · G(l) − λ · S(l)``,  ``G = tr(Yᵀ (H(l) + reg·I)⁻¹ Y)``,
    ``S = tr(Yᵀ H(l) Y)``,

on the training data, where ``H(l)`` is the unit-mean-diagonal two-layer ReLU Gram of those
receptive fields (:func:`~ntkbench.initializers.receptive.length_scale_gram`): a small ``G``
promises generalisation, a large ``S`` fast initial training (Pandey, Sholokhov et al. 2022;
:mod:`ntkbench.ntk.objectives`). Because ``J_λ`` is linear in λ given ``G(l)`` and ``S(l)``,
one scan of ``l`` gives the whole landscape for every λ. :func:`length_scale_curve` returns, per
λ, the minimiser the calibration finds (Newton from ``l0``, as a trial does) and the global
one (Newton from the best point of a log-spaced scan), with ``G`` and ``S`` there.

The global minimisers obey a revealed-preference law that needs no model of ``H``: for
``λ₁ < λ₂`` with minimisers ``l₁, l₂``, adding the two optimality inequalities gives
``(λ₂ − λ₁)(S(l₂) − S(l₁)) ≥ 0`` and ``(λ₂ − λ₁)(G(l₂) − G(l₁)) ≥ 0`` — as λ grows, the chosen
kernel trains faster and generalises (by the proxy) worse, never the reverse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ntkbench.initializers.receptive import (
    DEFAULT_F,
    DEFAULT_S,
    LENGTH_SCALE_SPAN,
    draw_centres,
    length_scale_gram,
)
from ntkbench.ntk.objectives import j_lambda, minimize_j_lambda

COLUMNS = ("lam", "length_scale", "j_lambda", "inverse_term", "speed_term",
           "calibrated_length_scale", "calibrated_j_lambda", "calibration_is_global")
SCAN_COLUMNS = ("length_scale", "inverse_term", "speed_term")


def length_scale_curve(x: np.ndarray, y: np.ndarray, grid: Sequence[int], lams: Sequence[float],
                       *, channels: int = 1, f_over_s: float = DEFAULT_F / DEFAULT_S,
                       l0: float = DEFAULT_S, centres: int = 64, reg: float = 1e-6,
                       seed: int = 0, n_scan: int = 24) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(per-λ table, scan)`` of the J_λ-optimal length scale (module docstring).

    Args:
        x: inputs ``(n, channels · prod(grid))``.
        y: targets ``(n, k)`` (one-hot rows for classification), float.
        grid: the input grid, e.g. ``(28, 28)``.
        lams: the trade-off weights, each in ``[0, 1]``.
        channels, f_over_s, l0, centres, reg: as :func:`structured_rf_ntk`'s parameters.
        seed: seed of the receptive-field centres (fixed over ``l``, so ``J`` is smooth in it).
        n_scan: scan points, log-spaced over ``(0, 10 · longest grid side)`` as the
            calibration's bounds.

    Returns:
        The table has one row per λ (:data:`COLUMNS`): ``length_scale``, ``j_lambda``,
        ``inverse_term`` (G), ``speed_term`` (S) at the global minimiser; the calibration's
        ``calibrated_length_scale`` / ``calibrated_j_lambda``; ``calibration_is_global`` when
        its J is within 1e-6 or its l within 1e-3 (relative) of the global one's. The scan
        has G and S per scanned ``l``
        (:data:`SCAN_COLUMNS`; G is ``inf`` where ``H + reg·I`` is not positive definite).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)
    if n_scan < 3:
        raise ValueError(f"n_scan must be >= 3, got {n_scan}")
    points = draw_centres(tuple(grid), centres, np.random.default_rng(seed))
    gram = length_scale_gram(x, tuple(grid), f_over_s, points, channels=channels)
    upper = LENGTH_SCALE_SPAN * max(grid)
    scan_l = np.geomspace(upper / 1000.0, upper * 0.95, n_scan)
    terms = [_terms(gram(float(ell)), y, reg) for ell in scan_l]
    scan = pd.DataFrame({"length_scale": scan_l, "inverse_term": [g for g, _ in terms],
                         "speed_term": [s for _, s in terms]}, columns=list(SCAN_COLUMNS))
    rows = []
    for lam in lams:
        lam = float(lam)
        j_scan = objective(lam, scan["inverse_term"].to_numpy(), scan["speed_term"].to_numpy())
        start = float(scan_l[int(np.argmin(j_scan))])
        best = minimize_j_lambda(gram, y, lam, start, bounds=(0.0, upper), reg=reg)
        calibrated = minimize_j_lambda(gram, y, lam, l0, bounds=(0.0, upper), reg=reg)
        if calibrated.objective < best.objective:  # the scan missed a narrower basin
            best = calibrated
        inverse, speed = _terms(gram(best.value), y, reg)
        rows.append({
            "lam": lam, "length_scale": best.value, "j_lambda": best.objective,
            "inverse_term": inverse, "speed_term": speed,
            "calibrated_length_scale": calibrated.value,
            "calibrated_j_lambda": calibrated.objective,
            "calibration_is_global": bool(
                calibrated.objective <= best.objective + 1e-6 * abs(best.objective)
                or abs(calibrated.value - best.value) <= 1e-3 * best.value),
        })
    return pd.DataFrame(rows, columns=list(COLUMNS)), scan


def objective(lam: float, inverse: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """``J_λ = (1 − λ)·G − λ·S`` from the two terms; at ``λ = 1`` the inverse term drops out
    even where it is infinite (a Gram matrix that is not positive definite)."""
    inverse, speed = np.asarray(inverse, dtype=float), np.asarray(speed, dtype=float)
    return -speed if lam == 1.0 else (1 - lam) * inverse - lam * speed


def _terms(H: np.ndarray, y: np.ndarray, reg: float) -> tuple[float, float]:
    """``(G, S)``: ``J_0`` is G and ``−J_1`` is S."""
    return j_lambda(H, y, 0.0, reg=reg), -j_lambda(H, y, 1.0, reg=reg)


def monotone_violations(table: pd.DataFrame, rtol: float = 1e-6) -> list[str]:
    """Where G or S at the global minimisers decrease as λ grows (module docstring: they
    cannot, for exact global minimisers); an empty list when the law holds."""
    out = []
    ordered = table.sort_values("lam")
    for column in ("inverse_term", "speed_term"):
        values = ordered[column].to_numpy()
        for a, b, lam in zip(values[:-1], values[1:], ordered["lam"].to_numpy()[1:], strict=True):
            if math.isfinite(a) and b < a - rtol * max(abs(a), abs(b)):
                out.append(f"{column} falls from {a:.6g} to {b:.6g} at λ = {lam:g}")
    return out
