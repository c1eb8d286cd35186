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
