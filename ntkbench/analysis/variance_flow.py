"""The variance map of a deep MLP at initialization, its fixed points, and a finite network.

Take the :class:`ntkbench.models.MLP` forward pass under standard parameterization with zero
biases, ``h_0 = x``, ``z_{l+1} = W_{l+1} h_l``, ``h_{l+1} = φ(z_{l+1})``, and write ``s_l`` for
the RMS of ``h_l`` over its units — the inputs of layer ``l + 1``; ``s_0`` is the input RMS. If
the entries of ``W_{l+1}`` are i.i.d. with mean 0 and standard deviation ``σ_w``, each
pre-activation of layer ``l + 1`` has variance ``σ_w² |h_l|² = (c s_l)²`` with the *gain*

    c = σ_w · √fan_in                       (1 for xavier_normal on square layers, √2 for he_normal)

and is Gaussian as the width grows. So at infinite width the RMS follows the variance map

    s_{l+1} = g(s_l) = √M(c s_l),      M(σ) = E[φ(σ z)²],  z ~ N(0, 1).

Its fixed points ``s* = g(s*)`` are stable (nearby ``s`` flow to them) when ``|g′(s*)| < 1``.
Every activation of :data:`ntkbench.models.ACTIVATIONS` has ``φ(0) = 0``, so ``s = 0`` is always
a fixed point, with ``g′(0) = c · lim_{σ→0} √M(σ)/σ`` (``c |φ′(0)|`` for smooth ``φ``, ``c/√2``
for relu). ReLU with ``c = √2`` and linear with ``c = 1`` have ``g(s) = s`` for every ``s``: a
line of marginal fixed points (``g′ = 1``), so the variance is preserved at any scale. This is
the length map of Poole et al. 2016, "Exponential expressivity in deep neural networks through
transient chaos" (NeurIPS), and Schoenholz et al. 2017, "Deep Information Propagation" (ICLR),
written for the post-activation RMS: their pre-activation variance is ``q_{l+1} = c² s_l²``.

``M(σ)`` is computed by composite Gauss–Legendre quadrature on ``z ∈ [−10, 10]`` (the normal
density beyond is below 1e-22) with panels no wider than ``2/σ``, so every panel spans at most
2 units of ``φ``'s argument, and a panel edge at ``z = 0`` (where relu has its kink). Plain
Gauss–Hermite (``hermegauss``, 200 nodes) is not enough: its nodes near 0 are about 0.15 apart
while ``φ(σz)`` varies on the scale ``1/σ``, which costs 3 % for erf at ``σ = 10`` and 21 % for
sin at ``σ = 100``. The composite rule matches the closed forms (relu ``σ²/2``, erf
``(2/π) arcsin(2σ²/(1 + 2σ²))``, sin ``(1 − e^{−2σ²})/2``, linear ``σ²``) to 1e-11 relative for
``σ ∈ [1e-6, 1e3]``. Above ``σ = 1e3`` the panel count stays capped: homogeneous and saturating
activations stay accurate to ``O(1/σ)``, but sin is no longer resolved.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from numpy.polynomial.legendre import leggauss

from ntkbench.checks import integer, nonnegative, positive
from ntkbench.models import ACTIVATIONS, MLP

__all__ = [
    "FixedPoint",
    "FixedPoints",
    "Gain",
    "activation_derivative",
    "activation_function",
    "fixed_points",
    "gaussian_mean",
    "iterate",
    "map_slope",
    "measured_flow",
    "second_moment",
    "unit_rms_inputs",
    "variance_map",
    "weight_gain",
]

Z_MAX = 10.0
NODES_PER_PANEL = 10
PANEL_WIDTH = 2.0  # in units of φ's argument σz
MIN_PANELS = 10  # per half-line: panels of width 1 in z when σ is small
MAX_PANELS = 5000  # per half-line: full resolution up to σ = 1e3
SEARCH_SIGMAS = np.logspace(-6, 3, 181)  # pre-activation stds c·s searched for fixed points
BISECTIONS = 60
SLOPE_STEP = 1e-5  # relative step of the central difference for g′
SLOPE_NOISE = 1e-6  # |g′| this close to 1 is marginal however precise c is


def _erf(u: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return erf(u)


def _gelu(u: np.ndarray) -> np.ndarray:
    return 0.5 * u * (1.0 + _erf(u / math.sqrt(2.0)))


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda u: np.maximum(u, 0.0),
    "tanh": np.tanh,
    "erf": _erf,
    "gelu": _gelu,
    "sin": np.sin,
    "linear": lambda u: np.array(u, dtype=np.float64),
}


def activation_function(activation: str) -> Callable[[np.ndarray], np.ndarray]:
    """``φ`` as a float64 numpy function, as the backends define it (gelu is the exact
    ``u Φ(u)``); raises ``ValueError`` for a name not in :data:`ntkbench.models.ACTIVATIONS`."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                         f"got {activation!r}")
    return _ACTIVATIONS[activation]


_DERIVATIVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda u: (np.asarray(u) > 0).astype(np.float64),  # 0 at the kink, as torch
    "tanh": lambda u: 1.0 - np.tanh(u) ** 2,
    "erf": lambda u: (2.0 / math.sqrt(math.pi)) * np.exp(-np.square(u)),
    "gelu": lambda u: (0.5 * (1.0 + _erf(u / math.sqrt(2.0)))
                       + u * np.exp(-0.5 * np.square(u)) / math.sqrt(2.0 * math.pi)),
    "sin": np.cos,
    "linear": lambda u: np.ones_like(u, dtype=np.float64),
}


def activation_derivative(activation: str) -> Callable[[np.ndarray], np.ndarray]:
    """``φ′`` as a float64 numpy function (relu: the step, 0 at 0)."""
    activation_function(activation)
    return _DERIVATIVES[activation]


@lru_cache(maxsize=64)
def _half_line_rule(panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes on ``(0, Z_MAX)`` and weights × the standard normal density there."""
    x, w = leggauss(NODES_PER_PANEL)
    h = Z_MAX / panels
    z = (np.arange(panels)[:, None] * h + (x + 1.0) * (h / 2)).ravel()
    weights = np.tile(w * (h / 2), panels) * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return z, weights


def gaussian_mean(f: Callable[[np.ndarray], np.ndarray], sigma: float) -> float:
    """``E[f(σ z)]`` for ``z ~ N(0, 1)`` by the composite Gauss–Legendre rule of the module
    docstring (panels no wider than 2 units of ``f``'s argument, an edge at 0)."""
    sigma = float(sigma)
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    if sigma == 0:
        return float(f(np.zeros(1))[0])
    panels = int(min(MAX_PANELS, max(MIN_PANELS, np.ceil(Z_MAX * sigma / PANEL_WIDTH))))
    z, w = _half_line_rule(panels)
    u = sigma * z
    with np.errstate(over="ignore", invalid="ignore"):  # σ beyond float range gives inf
        return float(w @ (f(u) + f(-u)))


def second_moment(activation: str, sigma: float) -> float:
    """``M(σ) = E[φ(σ z)²]`` for ``z ~ N(0, 1)`` by composite Gauss–Legendre quadrature.

    Args:
        activation: a name from :data:`ntkbench.models.ACTIVATIONS`.
        sigma: the standard deviation ``σ ≥ 0`` of the pre-activation.

    See the module docstring for the rule and its accuracy.
    """
    phi = activation_function(activation)
    return gaussian_mean(lambda u: phi(u) ** 2, sigma)


def variance_map(activation: str, c: float) -> Callable[[float], float]:
    """The map ``g(s) = √M(c s)`` from the RMS of one layer's inputs to the next one's.

    Args:
        activation: a name from :data:`ntkbench.models.ACTIVATIONS`.
        c: the gain ``σ_w √fan_in ≥ 0`` of the weights.
    """
    activation_function(activation)
    c = nonnegative("c", c)
    return lambda s: math.sqrt(second_moment(activation, c * s))


def iterate(activation: str, c: float, s0: float, depth: int, *,
            c_first: float | None = None) -> np.ndarray:
    """``[s_0, s_1, ..., s_depth]`` with ``s_{l+1} = g(s_l)``: the infinite-width RMS per layer.

    Args:
        activation, c: as in :func:`variance_map`.
        s0: the RMS of the inputs.
        depth: number of hidden layers.
        c_first: the gain of the first layer when it differs from ``c`` (its fan-in is the input
            dimension, not the width); ``None`` means ``c``.
    """
    s0 = nonnegative("s0", s0)
    depth = integer("depth", depth, minimum=0)
    g = variance_map(activation, c)
    first = g if c_first is None else variance_map(activation, c_first)
    out = [s0]
    for layer in range(depth):
        out.append((first if layer == 0 else g)(out[-1]))
    return np.array(out)


def map_slope(activation: str, c: float, s: float) -> float:
    """``g′(s)``: the limit ``g(s)/s`` at ``s = 0`` (``g(0) = 0``), else a central difference."""
    g = variance_map(activation, c)
    s = nonnegative("s", s)
    if s == 0:
        tiny = SEARCH_SIGMAS[0] / c if c > 0 else 1.0
        return g(tiny) / tiny
    step = SLOPE_STEP * s
    return (g(s + step) - g(s - step)) / (2 * step)


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point ``s = g(s)``.

    Attributes:
        s: the RMS at the fixed point.
        slope: ``g′(s)``.
        stable: whether nearby values flow to it: ``|g′| < 1``, or, when ``marginal``, whether
            ``g(t) > t`` just below it and ``g(t) < t`` just above.
        marginal: ``|g′|`` equals 1 within the tolerance; the approach is then a power law in
            the depth rather than exponential.
    """

    s: float
    slope: float
    stable: bool
    marginal: bool


@dataclass(frozen=True)
class FixedPoints:
    """All fixed points of a variance map, smallest first.

    ``every_s`` is True when ``g(s) = s`` for every ``s`` searched (a line of marginal fixed
    points, ``g′ = 1``); ``points`` is then empty.
    """

    points: tuple[FixedPoint, ...]
    every_s: bool = False


def fixed_points(activation: str, c: float, *, rtol: float = 1e-9) -> FixedPoints:
    """Every fixed point ``s* ≥ 0`` of ``g`` with pre-activation std ``c s*`` in ``[1e-6, 1e3]``,
    and ``s* = 0``.

    The excess ``e(s) = g(s)/s − 1`` is evaluated where ``c s`` runs over 181 log-spaced values
    (20 per decade); values ``|e| ≤ rtol`` count as zero, and a change of sign between the
    remaining ones brackets a fixed point, refined by bisection in ``log s``. When every value
    counts as zero, ``g(s) = s`` throughout (:attr:`FixedPoints.every_s`).

    Args:
        activation, c: as in :func:`variance_map`.
        rtol: the relative difference between ``g(s)`` and ``s`` that is not resolved. Pass the
            relative uncertainty of ``c`` when ``c`` is estimated from a sample of weights
            (``g(s)/s`` moves by about as much as ``c`` does), so that ``c = √2 ± 0.1 %`` for
            relu reads as the line of fixed points rather than as a spurious verdict.
    """
    c = nonnegative("c", c)
    rtol = positive("rtol", rtol)
    if c == 0:  # g(s) = |φ(0)| = 0 for every s
        return FixedPoints((FixedPoint(0.0, 0.0, stable=True, marginal=False),))
    moments = [second_moment(activation, sigma) for sigma in SEARCH_SIGMAS]
    excess = c * np.sqrt(moments) / SEARCH_SIGMAS - 1.0
    signs = np.where(np.abs(excess) <= rtol, 0, np.sign(excess)).astype(int)
    resolved = np.flatnonzero(signs)
    if resolved.size == 0:
        return FixedPoints((), every_s=True)

    slope0 = float(excess[0] + 1.0)  # g(s)/s at the smallest s: g′(0), as g(0) = 0
    zero_marginal = abs(slope0 - 1.0) <= max(rtol, SLOPE_NOISE)
    zero_stable = signs[resolved[0]] < 0 if zero_marginal else slope0 < 1.0
    points = [FixedPoint(0.0, slope0, bool(zero_stable), zero_marginal)]

    e = _excess(activation, c)
    for i, j in zip(resolved[:-1], resolved[1:], strict=True):
        if signs[i] == signs[j]:
            continue
        s_star = _bisect(e, SEARCH_SIGMAS[i] / c, SEARCH_SIGMAS[j] / c)
        slope = map_slope(activation, c, s_star)
        marginal = abs(abs(slope) - 1.0) <= max(rtol, SLOPE_NOISE)
        # g(t) > t below and g(t) < t above: the flow runs into s*.
        stable = signs[i] > 0 if marginal else abs(slope) < 1.0
        points.append(FixedPoint(s_star, slope, bool(stable), marginal))
    return FixedPoints(tuple(points))


def _excess(activation: str, c: float) -> Callable[[float], float]:
    g = variance_map(activation, c)
    return lambda s: g(s) / s - 1.0


def _bisect(f: Callable[[float], float], lo: float, hi: float) -> float:
    """A root of ``f`` between ``lo < hi`` where ``f`` changes sign, bisected in ``log s``."""
    f_lo = f(lo)
    for _ in range(BISECTIONS):
        mid = math.sqrt(lo * hi)
        f_mid = f(mid)
        if f_mid == 0:
            return mid
        if (f_mid > 0) == (f_lo > 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


class Gain(NamedTuple):
    """The weight gain ``c = s_W σ_w √fan_in`` estimated from drawn weights.

    Attributes:
        value: ``c`` with ``σ_w`` the standard deviation of the pooled entries.
        stderr: its standard error, ``c · √(m4 − m2²) / (2 m2 √N)`` from the pooled central
            moments ``m2, m4`` of the ``N`` entries (treated as i.i.d.).
        zero_mean: whether the entries' mean is within 5 standard errors of 0, as the variance
            map assumes; a nonzero mean adds a component common to all units that it ignores.
    """

    value: float
    stderr: float
    zero_mean: bool


def weight_gain(model: MLP, weights: Sequence[dict[str, np.ndarray]],
                layers: Sequence[int]) -> Gain:
    """The gain ``c`` of the weight layers ``layers`` (0-based) of ``model``, pooled.

    ``c² = s_W² σ̂² fan_in`` with ``σ̂²`` the variance of all their entries together and ``s_W``
    the forward multiplier of :meth:`ntkbench.models.MLP.scales` (1 under standard
    parameterization); the layers must share one fan-in and multiplier.
    """
    infos = model.layers()
    chosen = [infos[i] for i in layers]
    if not chosen:
        raise ValueError("weight_gain needs at least one layer")
    factors = {(li.fan_in, model.scales(li)[0]) for li in chosen}
    if len(factors) != 1:
        raise ValueError(f"layers {list(layers)} differ in fan-in or weight multiplier: "
                         f"{sorted(factors)}")
    ((fan_in, s_w),) = factors
    entries = [np.asarray(weights[i]["W"], dtype=np.float64).ravel() for i in layers]
    n = sum(w.size for w in entries)
    mean = sum(float(w.sum()) for w in entries) / n
    m2 = sum(float(((w - mean) ** 2).sum()) for w in entries) / n
    m4 = sum(float(((w - mean) ** 4).sum()) for w in entries) / n
    value = abs(s_w) * math.sqrt(m2 * fan_in)
    stderr = value * math.sqrt(max(m4 - m2 * m2, 0.0)) / (2 * m2 * math.sqrt(n)) if m2 > 0 \
        else 0.0
    zero_mean = abs(mean) <= 5 * math.sqrt(m2 / n)
    return Gain(value, stderr, zero_mean)


def unit_rms_inputs(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` Gaussian inputs of dimension ``dim``, each rescaled to RMS exactly 1 (so ``s_0 = 1``
    for every input, as the variance map assumes)."""
    n = integer("n", n, minimum=1)
    dim = integer("dim", dim, minimum=1)
    x = rng.standard_normal((n, dim))
    return x / np.sqrt(np.mean(x * x, axis=1, keepdims=True))


def measured_flow(model: MLP, weights: Sequence[dict[str, np.ndarray]],
                  x: np.ndarray) -> np.ndarray:
    """``[s_0, ..., s_depth]``: the RMS of the inputs ``x`` and of each hidden layer's
    post-activations, over all inputs and units, in a float64 forward pass of ``model``.

    Args:
        model: the MLP (its readout is not used).
        weights: its weights, as from :func:`ntkbench.initializers.initialize`.
        x: inputs of shape ``(n, model.in_dim)``.
    """
    if not isinstance(model, MLP):
        raise ValueError(f"measured_flow needs an MLP, got {type(model).__name__}")
    h = np.asarray(x, dtype=np.float64)
    if h.ndim != 2 or h.shape[1] != model.in_dim:
        raise ValueError(f"x must have shape (n, {model.in_dim}), got {h.shape}")
    phi = activation_function(model.activation)
    infos = model.layers()
    rms = [math.sqrt(float(np.mean(h * h)))]
    with np.errstate(over="ignore", invalid="ignore"):  # an exploding network reaches inf
        for layer in range(model.depth):
            s_w, s_b = model.scales(infos[layer])
            h = phi(s_w * h @ weights[layer]["W"].T + s_b * weights[layer]["b"])
            rms.append(math.sqrt(float(np.mean(h * h))))
    return np.array(rms)
