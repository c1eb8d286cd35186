"""A standalone SVG line plot with a logarithmic y axis, written without a plotting library.

Enough for the figures of :mod:`ntkbench.analysis`: a few series drawn as lines or markers
against a shared x axis, decade ticks (and 2·10^k, 5·10^k labels on short axes), axis labels, a
title and a legend. Values that are not finite or not positive cannot sit on a log axis; they
are left out (a line breaks there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 44, 52  # margins around the plotting area
LEGEND_WIDTH = 200
MAX_TICKS = 10
MIN_DECADES = 1.0  # the y axis spans at least one decade, so a flat curve stays readable
PAD = 0.05  # of the y span, above and below the data
MINOR_LABELS = (2, 5)  # labelled between the decades when the axis spans at most 2.5 of them
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


@dataclass(frozen=True)
class Series:
    """One curve: ``label`` in the legend, ``y`` per x value, drawn as a ``"line"`` or as
    ``"markers"``."""

    label: str
    y: Sequence[float]
    style: str = "line"


def log_plot_svg(x: Sequence[float], series: Sequence[Series], *, title: str, xlabel: str,
                 ylabel: str) -> str:
    """The SVG document (a string) of ``series`` against ``x`` on a log₁₀ y axis."""
    for s in series:
        if s.style not in ("line", "markers"):
            raise ValueError(f"series style must be 'line' or 'markers', got {s.style!r}")
        if len(s.y) != len(x):
            raise ValueError(f"series {s.label!r} has {len(s.y)} values for {len(x)} x values")
    x = [float(v) for v in x]
    logs = [math.log10(v) for s in series for v in map(float, s.y) if math.isfinite(v) and v > 0]
    y_lo, y_hi = (min(logs), max(logs)) if logs else (-1.0, 1.0)
    widen = max(MIN_DECADES - (y_hi - y_lo), 0.0) / 2
    pad = PAD * (y_hi - y_lo + 2 * widen)
    y_lo, y_hi = y_lo - widen - pad, y_hi + widen + pad
    x_lo, x_hi = (min(x), max(x)) if x else (0.0, 1.0)
    if x_lo == x_hi:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(v: float) -> float:
        return LEFT + (v - x_lo) / (x_hi - x_lo) * plot_w

    def py(log_v: float) -> float:
        return TOP + (y_hi - log_v) / (y_hi - y_lo) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<text x="{WIDTH / 2:.1f}" y="{TOP / 2 + 4:.1f}" text-anchor="middle" '
           f'font-size="14">{escape(title)}</text>']
    out += _y_axis(y_lo, y_hi, py)
    out += _x_axis(x_lo, x_hi, px, HEIGHT - BOTTOM)
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
               'stroke="black"/>')
    out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 12}" text-anchor="middle">'
               f'{escape(xlabel)}</text>')
    mid = TOP + plot_h / 2
    out.append(f'<text x="16" y="{mid:.1f}" text-anchor="middle" '
               f'transform="rotate(-90 16 {mid:.1f})">{escape(ylabel)}</text>')
    if not logs:
        out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{mid:.1f}" text-anchor="middle">'
                   'no positive finite values to plot</text>')
    dropped = sum(1 for s in series for v in map(float, s.y) if not (math.isfinite(v) and v > 0))
    if dropped:
        out.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 12}" text-anchor="end" '
                   f'font-size="10">{dropped} value(s) ≤ 0 or not finite not drawn</text>')
    drawn = [[(px(xv), py(math.log10(yv))) if math.isfinite(yv) and yv > 0 else None
              for xv, yv in zip(x, map(float, s.y), strict=True)] for s in series]
    # The legend goes in the top right corner unless the curves end up there.
    right = [p[1] for points in drawn for p in points if p and p[0] > WIDTH - RIGHT - LEGEND_WIDTH]
    legend_top = TOP + 16 if not right or sum(right) / len(right) > mid \
        else HEIGHT - BOTTOM - 12 - 18 * (len(series) - 1)
    for k, (s, points) in enumerate(zip(series, drawn, strict=True)):
        color = COLORS[k % len(COLORS)]
        out += _draw(points, s.style, color)
        lx, ly = WIDTH - RIGHT - LEGEND_WIDTH, legend_top + 18 * k
        out += _draw([(lx + 6, ly), (lx + 26, ly)] if s.style == "line" else [(lx + 16, ly)],
                     s.style, color)
        out.append(f'<text x="{lx + 32}" y="{ly + 4}">{escape(s.label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _y_axis(y_lo: float, y_hi: float, py) -> list[str]:
    """Decade grid lines labelled 10^k, minor ticks at 2..9·10^k on axes of up to 6 decades."""
    out = []
    span = y_hi - y_lo
    step = max(1, math.ceil(span / MAX_TICKS))
    for d in range(math.ceil(y_lo), math.floor(y_hi) + 1):
        if d % step:
            continue
        y = py(d)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                   'stroke="#dddddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">10'
                   f'<tspan dy="-6" font-size="9">{d}</tspan></text>')
    if span > 6:
        return out
    for d in range(math.floor(y_lo), math.ceil(y_hi)):
        for m in range(2, 10):
            log_v = d + math.log10(m)
            if not y_lo <= log_v <= y_hi:
                continue
            y = py(log_v)
            out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + 4}" y2="{y:.1f}" '
                       'stroke="black"/>')
            if m in MINOR_LABELS and span <= 2.5:
                out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
                           f'font-size="10">{m * 10.0**d:g}</text>')
    return out


def _x_axis(x_lo: float, x_hi: float, px, bottom: float) -> list[str]:
    out = []
    step = _nice_step((x_hi - x_lo) / MAX_TICKS)
    for i in range(math.ceil(x_lo / step), math.floor(x_hi / step) + 1):
        x = px(i * step)
        out.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 5}" '
                   'stroke="black"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">'
                   f'{i * step:g}</text>')
    return out


def _nice_step(raw: float) -> float:
    """The smallest of 1, 2, 5 × 10^k that is at least ``raw`` (and at least 1)."""
    if raw <= 1:
        return 1.0
    base = 10.0 ** math.floor(math.log10(raw))
    return next(m * base for m in (1, 2, 5, 10) if m * base >= raw)


def _draw(points: list[tuple[float, float] | None], style: str, color: str) -> list[str]:
    if style == "markers":
        return [f'<circle cx="{p[0]:.1f}" cy="{p[1]:.1f}" r="3.5" fill="none" '
                f'stroke="{color}" stroke-width="1.5"/>' for p in points if p is not None]
    runs: list[list[tuple[float, float]]] = [[]]
    for p in points:
        if p is None:
            runs.append([])
        else:
            runs[-1].append(p)
    out = []
    for run in runs:
        if len(run) == 1:  # a point with no finite neighbour: a dot, as no segment can show it
            out.append(f'<circle cx="{run[0][0]:.1f}" cy="{run[0][1]:.1f}" r="2" '
                       f'fill="{color}"/>')
        elif run:
            out.append(f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in run)}" '
                       f'fill="none" stroke="{color}" stroke-width="2"/>')
    return out
