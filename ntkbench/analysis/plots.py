"""Figures of :mod:`ntkbench.analysis`, drawn with matplotlib's object-oriented API (a
:class:`~matplotlib.figure.Figure`, no ``pyplot`` state)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure


def variance_flow_figure(activation: str, init: str, width: int, theory: Sequence[float],
                         measured: Sequence[float]) -> Figure:
    """RMS ``s_l`` of the post-activations per layer on a log y axis: the infinite-width
    variance map (line) and a finite network of ``width`` (markers). Values that are not
    finite and positive cannot sit on a log axis and are left out."""
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for values, label, style in ((theory, "theory (infinite width)", {"lw": 1.8}),
                                 (measured, f"measured (width {width})",
                                  {"ls": "none", "marker": "o", "ms": 5})):
        y = np.asarray(values, dtype=float)
        x = np.arange(len(y))
        keep = np.isfinite(y) & (y > 0)
        ax.plot(x[keep], y[keep], label=label, **style)
    ax.set_yscale("log")
    ax.set_xlabel("layer l")
    ax.set_ylabel("RMS s_l of the post-activations")
    ax.set_title(f"variance flow: {activation}, {init}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    return fig


def isometry_figure(activation: str, init: str, width: int, measured,
                    theory: tuple[np.ndarray, np.ndarray] | None = None) -> Figure:
    """Two panels per depth ``l``: the mean ``m₁`` and the variance ``σ²`` of the squared
    singular values of the input–output Jacobian (markers: measured at ``width``; line: the
    free-probability prediction, when given), and a histogram of the singular values of the
    deepest layer. ``measured`` is a :class:`ntkbench.analysis.isometry.JacobianSpectrum`."""
    fig = Figure(figsize=(9.6, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    depth = np.arange(1, len(measured.mean_sq) + 1)
    for ax, values, predicted, name in (
            (axes[0], measured.mean_sq, None if theory is None else theory[0], "mean m₁"),
            (axes[1], measured.var_sq, None if theory is None else theory[1], "variance σ²")):
        y = np.asarray(values, dtype=float)
        keep = np.isfinite(y)
        ax.plot(depth[keep], y[keep], ls="none", marker="o", ms=4,
                label=f"measured (width {width})")
        if predicted is not None:
            ax.plot(depth, predicted, lw=1.6, label="free probability")
        ax.set_xlabel("depth l")
        ax.set_title(f"{name} of the squared singular values", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(frameon=False, fontsize=7)
    axes[0].axhline(1.0, color="0.5", lw=0.8, ls=":")
    sv = np.asarray(measured.singular_values, dtype=float).ravel()
    sv = sv[np.isfinite(sv)]
    if sv.size:
        lo, hi = float(sv.min()), float(sv.max())
        if hi - lo <= 1e-9 * max(abs(hi), 1.0):  # all equal (orthogonal linear): one bar
            pad = 0.05 * max(abs(hi), 1e-3)
            lo, hi = lo - pad, hi + pad
        axes[2].hist(sv, bins=60, range=(lo, hi), color="C2")
    axes[2].set_xlabel(f"singular value of J at depth {len(depth)}")
    axes[2].set_ylabel("count")
    axes[2].set_title("singular values, deepest layer", fontsize=9)
    fig.suptitle(f"dynamical isometry: {activation}, {init}", fontsize=10)
    return fig


def deep_limit_figure(curve, title: str, kernel: str = "ntk") -> Figure:
    """The deep-limit classifier against depth (log x): test accuracy, agreement with the
    majority vote and the majority vote's own accuracy (left); the normalised off-diagonal
    kernel, mean and spread, with the NTK's limit 1/4 (right). ``curve`` is a
    :func:`ntkbench.analysis.deep_limit.deep_limit_curve` table."""
    fig = Figure(figsize=(9.0, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    d = curve["depth"].to_numpy()
    left.plot(d, curve["test_accuracy"], marker="o", ms=4, label="test accuracy")
    left.plot(d, curve["majority_agreement"], marker="s", ms=4,
              label="share classified as the majority class")
    if "weighted_vote_agreement" in curve:
        left.plot(d, curve["weighted_vote_agreement"], marker="^", ms=6, ls="--", mfc="none",
                  label="share given the norm-weighted vote's class")
    left.axhline(float(curve["majority_accuracy"].iloc[0]), color="0.4", ls="--", lw=1,
                 label="majority vote's accuracy")
    left.set_ylim(0, 1.02)
    right.plot(d, curve["offdiag_mean"], marker="o", ms=4, color="C2", label="mean")
    right.fill_between(d, curve["offdiag_mean"] - curve["offdiag_std"],
                       curve["offdiag_mean"] + curve["offdiag_std"], color="C2", alpha=0.25,
                       label="± std")
    if kernel == "ntk":
        right.axhline(0.25, color="0.4", ls=":", lw=1, label="deep limit 1/4")
    right.set_ylabel("K_ij / √(K_ii K_jj)")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("hidden layers")
        ax.grid(True, alpha=0.3)
        ax.legend(frameon=False, fontsize=7)
    left.set_title(f"{kernel.upper()} regression classifier", fontsize=9)
    right.set_title("normalised off-diagonal train kernel", fontsize=9)
    fig.suptitle(f"deep limit: {title}", fontsize=10)
    return fig


def length_scale_figure(table, scan, title: str, upper: float | None = None) -> Figure:
    """The J_λ landscape over the receptive-field length scale ``l`` (log x), one line per λ,
    each shifted and scaled to ``[0, 1]`` over the scan so that all fit one axis, with the
    global minimiser marked (left); the minimiser against λ, the calibration's beside it when
    it stopped elsewhere, and the search's ``upper`` bound (right). ``table`` and ``scan`` are
    the two tables of
    :func:`ntkbench.analysis.length_scale.length_scale_curve`."""
    fig = Figure(figsize=(9.0, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    from ntkbench.analysis.length_scale import objective

    ell = scan["length_scale"].to_numpy()
    G, S = scan["inverse_term"].to_numpy(), scan["speed_term"].to_numpy()
    for i, row in enumerate(table.itertuples()):
        j = objective(row.lam, G, S)
        keep = np.isfinite(j)
        if not keep.any():
            continue
        lo, hi = float(j[keep].min()), float(j[keep].max())
        scale = hi - lo if hi > lo else 1.0
        line, = left.plot(ell[keep], (j[keep] - lo) / scale, lw=1.4, color=f"C{i % 10}",
                          label=f"λ = {row.lam:g}")
        j_best = (row.j_lambda - lo) / scale
        left.plot([row.length_scale], [j_best], marker="o", ms=5, color=line.get_color())
    left.set_xlabel("length scale l (s = l, f ∝ l)")
    left.set_ylabel("J_λ(l), rescaled to [0, 1]")
    left.set_title("J_λ over the length scale (dot: minimum)", fontsize=9)
    lam = table["lam"].to_numpy()
    right.plot(lam, table["length_scale"], marker="o", ms=5, label="global minimiser")
    off = ~table["calibration_is_global"].to_numpy(dtype=bool)
    if off.any():
        right.plot(lam[off], table["calibrated_length_scale"].to_numpy()[off], ls="none",
                   marker="x", ms=7, color="C3", label="calibration (Newton from l0)")
    if upper is not None:
        right.axhline(upper, color="0.5", ls=":", lw=1, label="upper bound of l")
    right.set_yscale("log")
    right.set_xlabel("λ (0: generalisation term only, 1: training speed only)")
    right.set_ylabel("J_λ-optimal length scale l*")
    right.set_title("optimal length scale vs λ", fontsize=9)
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(frameon=False, fontsize=7)
    left.set_xscale("log")
    fig.suptitle(f"J_λ-optimal receptive fields: {title}", fontsize=10)
    return fig
