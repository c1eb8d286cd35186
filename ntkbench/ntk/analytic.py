"""Infinite-width NNGP and NTK kernels of the MLP (the kernels a wide network concentrates around).

The network of :class:`ntkbench.models.MLP` with ``L = depth + 1`` weight layers::

    z_1 = s_1 W_1 x + t_1 b_1,    h_l = φ(z_l),    z_{l+1} = s_{l+1} W_{l+1} h_l + t_{l+1} b_{l+1}

with output ``f = z_L``, entries of ``W_l`` iid with mean 0 and second moment ``v_l`` and biases
with second moment ``u_l``. Write ``σ_l² = s_l² v_l fan_in_l`` and ``β_l² = t_l² u_l`` (forward
variances), ``g_l = s_l² fan_in_l`` and ``c_l = t_l²`` (weight- and bias-gradient multipliers,
``c_l = 0`` without biases). As every width grows, the pre-activations become Gaussian
processes (Neal 1996; Lee et al. 2018, "Deep neural networks as Gaussian processes") with

    Σ_1(x, x') = σ_1² q_1 + β_1²,        q_1 = x·x'/d
    Σ_{l+1}    = σ_{l+1}² q_{l+1} + β_{l+1}²,   q_{l+1} = E[φ(a) φ(b)]
    Ė_{l+1}    = E[φ′(a) φ′(b)]
    (a, b) ~ N(0, [[Σ_l(x, x), Σ_l(x, x')], [Σ_l(x, x'), Σ_l(x', x')]])

and the NTK of one output unit is a sum of layer contributions (Jacot et al. 2018; Lee et al.
2019, "Wide neural networks of any depth evolve as linear models"; Arora et al. 2019, "On exact
computation with an infinitely wide neural net")::

    Θ = Σ_l Θ_l,     Θ_l = (g_l q_l + c_l) B_l,     B_L = 1,   B_l = σ_{l+1}² Ė_{l+1} B_{l+1}.

``g_l q_l + c_l`` is the limit of the inner product of layer ``l``'s parameter gradients through
its inputs, ``B_l`` that of the back-propagated sensitivities ``δ_l·δ_l'``. Under NTK
parameterization with N(0, 1) weights and biases (``s_l = w_std/√fan_in``, ``t_l = b_std``)
``g_l = σ_l² = w_std²`` and ``c_l = β_l² = b_std²``, so ``Θ_l = Σ_l B_l`` and the sum is the usual
recursion ``Θ_1 = Σ_1``, ``Θ_{l+1} = Σ_{l+1} + σ² Ė_{l+1} Θ_l``. Under standard parameterization
(``s = t = 1``) ``g_l = fan_in_l`` and ``c_l = 1``: the kernel then grows with the width, but it
is still the expectation that the empirical NTK of that finite width concentrates around
(:func:`matched_analytic_ntk`).

The two Gaussian expectations are computed in closed form where one exists
(:func:`analytic_method`) and otherwise by 2-D Gauss–Hermite quadrature with the Cholesky
parameterisation ``a = √Σ11 z1``, ``b = √Σ22 (ρ z1 + √(1 − ρ²) z2)``, ``z1, z2`` iid N(0, 1).
A variance ``Σ(x, x) = 0`` (an input ``x = 0`` with no bias) makes that pre-activation the
constant 0, and the expectations are evaluated as such (``E[f(0) g(b)] = f(0) E[g(b)]``, with
``relu′(0) = 0`` as in the backends), never as ``nan``.

Everything is float64 numpy, vectorised over all pairs of inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from numpy.typing import ArrayLike

from ntkbench.checks import integer, nonnegative
from ntkbench.models import ACTIVATIONS, MLP

__all__ = [
    "AnalyticKernels",
    "LayerwiseKernels",
    "analytic_kernels",
    "analytic_method",
    "layerwise_kernels",
    "matched_analytic_ntk",
    "relu_gram_two_layer",
]

DEFAULT_QUADRATURE_POINTS = 64
MAX_QUADRATURE_POINTS = 256
# Bytes of quadrature temporaries (about six (points × points) float64 arrays per kernel entry).
QUADRATURE_BLOCK_BYTES = 128 * 2**20
_QUADRATURE_TEMPORARIES = 6

Expectations = tuple[np.ndarray, np.ndarray]


class AnalyticKernels(tuple):
    """The pair ``(nngp, ntk)`` returned by :func:`analytic_kernels`, plus how it was computed.

    Unpacks like a 2-tuple (``nngp, ntk = analytic_kernels(...)``).

    Attributes:
        nngp: ``(n1, n2)`` float64, the output covariance ``Σ_L(x1_i, x2_j)``.
        ntk: ``(n1, n2)`` float64, the NTK ``Θ(x1_i, x2_j)`` of one output unit.
        method: ``"closed_form"`` or ``"quadrature"``.
    """

    method: str

    def __new__(cls, nngp: np.ndarray, ntk: np.ndarray, method: str) -> AnalyticKernels:
        self = super().__new__(cls, (nngp, ntk))
        self.method = method
        return self

    def __reduce__(self):
        return type(self), (self[0], self[1], self.method)

    @property
    def nngp(self) -> np.ndarray:
        return self[0]

    @property
    def ntk(self) -> np.ndarray:
        return self[1]


class LayerwiseKernels(NamedTuple):
    """Result of :func:`layerwise_kernels`.

    Attributes:
        nngp: ``(n1, n2)`` output covariance ``Σ_L``.
        ntk: ``(n1, n2)`` NTK of one output unit, ``layers.sum(0)``.
        layers: ``(L, n1, n2)`` contributions ``Θ_l = (g_l q_l + c_l) B_l``, first layer first;
            ``None`` when computed with ``per_layer=False``.
        method: ``"closed_form"`` or ``"quadrature"``.
    """

    nngp: np.ndarray
    ntk: np.ndarray
    layers: np.ndarray | None
    method: str


# --- Gaussian expectations E[φ(a)φ(b)] and E[φ′(a)φ′(b)] --------------------------------------
#
# Each closed form takes arrays k11 = Var a, k22 = Var b, k12 = Cov(a, b) of one shape.


def _correlation(k11: np.ndarray, k22: np.ndarray, k12: np.ndarray) -> np.ndarray:
    """``ρ = k12/√(k11 k22)`` clipped to [−1, 1]; 0 where a variance vanishes."""
    with np.errstate(over="ignore"):
        scale = np.sqrt(k11 * k22)  # exactly k11 where k11 = k22 (ρ = 1 on the diagonal)
    # Past √max(float64) the product overflows while each factor is finite: take the roots first.
    scale = np.where(np.isinf(scale), np.sqrt(k11) * np.sqrt(k22), scale)
    positive = scale > 0
    rho = np.divide(k12, scale, out=np.zeros_like(scale), where=positive)
    return np.clip(rho, -1.0, 1.0)


def _relu_expectations(k11, k22, k12) -> Expectations:
    """Arc-cosine kernels of degree 1 and 0 (Cho & Saul 2009, "Kernel methods for deep learning").

    ``E[relu(a) relu(b)] = √(k11 k22)/(2π) (sin θ + (π − θ) cos θ)`` and
    ``E[1{a>0} 1{b>0}] = (π − θ)/(2π)`` with ``θ = arccos ρ``; the latter is 0 when a variance
    vanishes (``relu′(0) = 0``).
    """
    rho = _correlation(k11, k22, k12)
    theta = np.arccos(rho)
    with np.errstate(over="ignore"):
        scale = np.sqrt(k11 * k22)  # exactly k11 where k11 = k22 (ρ = 1 on the diagonal)
    # Past √max(float64) the product overflows while each factor is finite: take the roots first.
    scale = np.where(np.isinf(scale), np.sqrt(k11) * np.sqrt(k22), scale)
    value = scale / (2 * np.pi) * (np.sqrt(1.0 - rho * rho) + (np.pi - theta) * rho)
    slope = np.where(scale > 0, (np.pi - theta) / (2 * np.pi), 0.0)
    return value, slope


def _erf_expectations(k11, k22, k12) -> Expectations:
    """Williams (1997), "Computing with infinite networks".

    ``E[erf(a) erf(b)] = (2/π) arcsin(2 k12 / √((1 + 2 k11)(1 + 2 k22)))`` and, with
    ``erf′(z) = (2/√π) e^{−z²}``,
    ``E[erf′(a) erf′(b)] = (4/π) / √((1 + 2 k11)(1 + 2 k22) − 4 k12²)``.
    """
    product = (1 + 2 * k11) * (1 + 2 * k22)
    value = 2 / np.pi * np.arcsin(np.clip(2 * k12 / np.sqrt(product), -1.0, 1.0))
    # (1+2k11)(1+2k22) − 4k12² = 1 + 2(k11+k22) + 4(k11k22 − k12²) ≥ 1 by Cauchy–Schwarz.
    det = 1 + 2 * (k11 + k22) + 4 * np.maximum(k11 * k22 - k12 * k12, 0.0)
    return value, 4 / np.pi / np.sqrt(det)


def _gelu_expectations(k11, k22, k12) -> Expectations:
    """Exact GELU ``φ(z) = z Φ(z)``, derived here in closed form.

    Write ``Φ(a) = P(u ≤ a)`` with ``u, v`` iid N(0, 1) independent of ``(a, b)``, so that
    ``E[φ(a)φ(b)] = E[a b 1{A>0} 1{B>0}]`` with ``A = a − u``, ``B = b − v``,
    ``Cov(A, B) = S = [[s1, k12], [k12, s2]]``, ``s_i = 1 + k_ii``, ``D = det S = s1 s2 − k12²``.
    Gaussian integration by parts (Stein's lemma, twice) gives
    ``E[ab g] = k12 E[g] + Σ_ij Cov(a, W_i) Cov(b, W_j) E[∂_i ∂_j g]`` for ``g = 1{A>0}1{B>0}``,
    ``W = (A, B)``, and ``E[g] = 1/4 + arcsin(r)/(2π)`` with ``r = k12/√(s1 s2)``,
    ``E[δ(A)δ(B)] = 1/(2π√D)``, ``E[δ′(A)1{B>0}] = −k12/(2π s1 √D)`` (and symmetrically). So::

        E[φ(a)φ(b)]   = k12/4 + k12 arcsin(r)/(2π) + N/(2π√D),
                        N = k11 k22 + k12² m,   m = (1 − k11 k22)/(s1 s2)

    and, by Price's theorem ``∂E[φ(a)φ(b)]/∂k12 = E[φ′(a)φ′(b)]``::

        E[φ′(a)φ′(b)] = 1/4 + arcsin(r)/(2π) + k12 (1 + 2m + N/D)/(2π√D).

    As the variances grow these tend to the ReLU arc-cosine kernels; at ``k11 = k12 = 0`` they
    give ``0`` and ``φ′(0) E[φ′(b)] = 1/4``. Agreement with quadrature is tested to 1e-10.
    """
    s1, s2 = 1 + k11, 1 + k22
    det = 1 + k11 + k22 + np.maximum(k11 * k22 - k12 * k12, 0.0)
    root = np.sqrt(det)
    asin = np.arcsin(np.clip(k12 / np.sqrt(s1 * s2), -1.0, 1.0))
    m = (1 - k11 * k22) / (s1 * s2)
    n = k11 * k22 + k12 * k12 * m
    value = k12 / 4 + k12 * asin / (2 * np.pi) + n / (2 * np.pi * root)
    slope = 0.25 + asin / (2 * np.pi) + k12 * (1 + 2 * m + n / det) / (2 * np.pi * root)
    return value, slope


def _sin_expectations(k11, k22, k12) -> Expectations:
    """From ``E[e^{i(a ± b)}] = e^{−(k11 + k22 ± 2 k12)/2}``.

    ``E[sin a sin b] = e^{−(k11+k22)/2} sinh k12`` and
    ``E[cos a cos b] = e^{−(k11+k22)/2} cosh k12``, written with exponents ``≤ 0``
    (``|k12| ≤ (k11 + k22)/2``) so nothing overflows.
    """
    half = (k11 + k22) / 2
    up, down = np.exp(k12 - half), np.exp(-k12 - half)
    return (up - down) / 2, (up + down) / 2


def _linear_expectations(k11, k22, k12) -> Expectations:
    """``E[ab] = k12`` and ``E[1·1] = 1``."""
    return np.array(k12, dtype=np.float64), np.ones_like(k12, dtype=np.float64)


_CLOSED_FORMS: dict[str, Callable[..., Expectations]] = {
    "relu": _relu_expectations,
    "erf": _erf_expectations,
    "gelu": _gelu_expectations,
    "sin": _sin_expectations,
    "linear": _linear_expectations,
}

_ODD = ("tanh", "erf", "sin", "linear")
_erf_scalar = np.frompyfunc(math.erf, 1, 1)  # numpy has no erf; this is only for quadrature


def _erf(z: np.ndarray) -> np.ndarray:
    return _erf_scalar(z).astype(np.float64)


def _activation_and_slope(activation: str, z: np.ndarray) -> Expectations:
    """``(φ(z), φ′(z))`` elementwise, with the backends' conventions (``relu′(0) = 0``)."""
    if activation == "relu":
        return np.maximum(z, 0.0), (z > 0).astype(np.float64)
    if activation == "tanh":
        t = np.tanh(z)
        return t, 1.0 - t * t
    if activation == "erf":
        return _erf(z), 2 / math.sqrt(math.pi) * np.exp(-z * z)
    if activation == "gelu":
        cdf = 0.5 * (1.0 + _erf(z / math.sqrt(2)))
        return z * cdf, cdf + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    if activation == "sin":
        return np.sin(z), np.cos(z)
    return z.copy(), np.ones_like(z)


def _quadrature_expectations(activation: str, k11, k22, k12, points: int) -> Expectations:
    """Both expectations by a ``points × points`` Gauss–Hermite rule, in blocks of entries.

    ``E[F(a) G(b)] ≈ Σ_i w_i F(√k11 z_i) Σ_j w_j G(√k22 (ρ z_i + √(1−ρ²) z_j))`` with the nodes
    ``z`` and weights ``w`` (normalised to sum 1) of ``hermegauss`` (weight ``e^{−z²/2}``). The
    rule is exact for polynomials of degree ``< 2·points`` in ``(z1, z2)``. Its error grows with
    the variances, since ``φ(√k z)`` varies on the scale ``1/√k`` (about 1e-6 relative for tanh
    with unit variances at 64 points, 1e-3 at variance 4), and for a kinked ``φ`` (relu) it
    converges only algebraically.

    For an odd ``φ`` (tanh, erf, sin, linear) both integrands are even under
    ``(z1, z2) → (−z1, −z2)`` and the nodes are symmetric, so only ``z1 ≥ 0`` is summed (with
    doubled weights): the same sum for half the work.
    """
    z, w = hermegauss(points)
    w = w / math.sqrt(2 * math.pi)
    z1, w1 = z, w
    if activation in _ODD:
        middle = points // 2
        z1, w1 = z[middle:], 2 * w[middle:]
        if points % 2:
            w1[0] = w[middle]  # the node z = 0 is its own mirror image
    k11, k22, k12 = (np.ravel(k) for k in (k11, k22, k12))
    value = np.empty(k12.shape)
    slope = np.empty(k12.shape)
    block = max(1, QUADRATURE_BLOCK_BYTES // (_QUADRATURE_TEMPORARIES * 8 * points * points))
    for start in range(0, k12.size, block):
        part = slice(start, start + block)
        rho = _correlation(k11[part], k22[part], k12[part])
        sd1, sd2 = np.sqrt(k11[part]), np.sqrt(k22[part])
        f_a, df_a = _activation_and_slope(activation, sd1[:, None] * z1)
        along = (sd2 * rho)[:, None] * z1                        # (m, p1): term in z1
        across = (sd2 * np.sqrt(1.0 - rho * rho))[:, None] * z   # (m, p): term in z2
        f_b, df_b = _conditional_means(activation, along[:, :, None] + across[:, None, :], w)
        value[part] = (f_a * f_b) @ w1
        slope[part] = (df_a * df_b) @ w1
    return value, slope


def _conditional_means(activation: str, b: np.ndarray, w: np.ndarray) -> Expectations:
    """``(Σ_j w_j φ(b_j), Σ_j w_j φ′(b_j))`` over the last axis of ``(m, p1, p)``; overwrites
    ``b``. Sums are one matrix-vector product each, not one per entry."""
    m, p1, p = b.shape
    b = b.reshape(m * p1, p)
    if activation == "tanh":
        # The activation that always takes this path: two passes over b instead of four.
        np.tanh(b, out=b)
        mean = b @ w
        np.multiply(b, b, out=b)
        slope = w.sum() - b @ w
    else:
        f_b, df_b = _activation_and_slope(activation, b)
        mean, slope = f_b @ w, df_b @ w
    return mean.reshape(m, p1), slope.reshape(m, p1)


def analytic_method(activation: str) -> str:
    """``"closed_form"`` if the kernels of ``activation`` have one here, else ``"quadrature"``.

    Closed forms: relu (Cho & Saul 2009), erf (Williams 1997), exact gelu (derived in
    :func:`_gelu_expectations`), sin and linear; tanh uses Gauss–Hermite quadrature.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")
    return "closed_form" if activation in _CLOSED_FORMS else "quadrature"


def _expectations(activation: str, k11, k22, k12, *, quadrature: bool, points: int,
                  symmetric: bool) -> Expectations:
    """Both expectations for matrices ``k12 (n1, n2)`` and broadcastable variances ``k11, k22``.

    With ``symmetric`` (``k12`` symmetric, ``k11 = k22ᵀ``) the result is exactly symmetric; the
    quadrature then integrates only the upper triangle.
    """
    k11, k22 = np.broadcast_to(k11, k12.shape), np.broadcast_to(k22, k12.shape)
    if not quadrature:
        value, slope = _CLOSED_FORMS[activation](k11, k22, k12)
        if symmetric:  # the formulas are symmetric, their rounding is not
            value, slope = (value + value.T) / 2, (slope + slope.T) / 2
        return value, slope
    if not symmetric:
        value, slope = _quadrature_expectations(activation, k11, k22, k12, points)
        return value.reshape(k12.shape), slope.reshape(k12.shape)
    rows, cols = np.triu_indices(k12.shape[0])
    upper = _quadrature_expectations(activation, k11[rows, cols], k22[rows, cols],
                                     k12[rows, cols], points)
    out = []
    for half in upper:
        full = np.empty(k12.shape)
        full[rows, cols] = half
        full[cols, rows] = half
        out.append(full)
    return out[0], out[1]


# --- the recursion ----------------------------------------------------------------------------


def _inputs(x1: ArrayLike, x2: ArrayLike | None) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(x1, x2, symmetric)`` as float64 ``(n, d)`` arrays; ``x2=None`` means ``x1``."""
    x1 = np.asarray(x1, dtype=np.float64)
    if x1.ndim != 2 or x1.shape[1] < 1:
        raise ValueError(f"x1 must be a 2-D array (n_samples, in_dim), got shape {x1.shape}"
                         + (" (use x.reshape(-1, 1) for scalar inputs)" if x1.ndim == 1 else ""))
    if not np.all(np.isfinite(x1)):
        raise ValueError("x1 contains nan or inf")
    if x2 is None:
        return x1, x1, True
    x2 = np.asarray(x2, dtype=np.float64)
    if x2.ndim != 2 or x2.shape[1] != x1.shape[1]:
        raise ValueError(f"x2 must have shape (n2, {x1.shape[1]}) to match x1 {x1.shape}, "
                         f"got {x2.shape}")
    if not np.all(np.isfinite(x2)):
        raise ValueError("x2 contains nan or inf")
    return x1, x2, False


def _layer_values(name: str, values: Sequence[float]) -> list[float]:
    """A sequence of finite nonnegative per-layer numbers."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ValueError(f"{name} must be a sequence with one number per layer, got {values!r}")
    if len(values) == 0:
        raise ValueError(f"{name} must have one entry per weight layer (at least the readout)")
    return [nonnegative(f"{name}[{i}]", v) for i, v in enumerate(values)]


def layerwise_kernels(x1: ArrayLike, x2: ArrayLike | None = None, *, activation: str,
                      sigma_w2: Sequence[float], sigma_b2: Sequence[float],
                      grad_w: Sequence[float], grad_b: Sequence[float], quadrature: bool = False,
                      quadrature_points: int = DEFAULT_QUADRATURE_POINTS,
                      per_layer: bool = True) -> LayerwiseKernels:
    """The general infinite-width recursion (module docstring) with per-layer constants.

    Args:
        x1: inputs ``(n1, d)``.
        x2: inputs ``(n2, d)``; ``None`` means ``x1`` (then every result is symmetric).
        activation: one of :data:`ntkbench.models.ACTIVATIONS`, applied after layers 1..L−1.
        sigma_w2: ``σ_l² = s_l² v_l fan_in_l`` for ``l = 1..L`` (layer 1 first, readout last).
        sigma_b2: ``β_l² = t_l² u_l``.
        grad_w: ``g_l = s_l² fan_in_l``, the weight-gradient multiplier.
        grad_b: ``c_l = t_l²`` (0 without biases), the bias-gradient multiplier.
        quadrature: use Gauss–Hermite quadrature even where a closed form exists.
        quadrature_points: nodes per dimension of the quadrature rule (``points²`` in 2-D).
        per_layer: keep each layer's contribution (``L`` arrays of ``(n1, n2)``); ``False``
            accumulates the NTK forward in constant memory (``layers`` is then ``None``), for
            very deep networks.

    Returns:
        :class:`LayerwiseKernels` with ``nngp = Σ_L``, ``layers[l−1] = (g_l q_l + c_l) B_l`` and
        ``ntk = Σ_l layers[l−1]``, all float64 ``(n1, n2)`` (``layers``: ``(L, n1, n2)``).

    Raises:
        ValueError: bad input shapes, unknown activation, sequences of different lengths or
            with negative or non-finite entries.
    """
    method = analytic_method(activation)
    x1, x2, symmetric = _inputs(x1, x2)
    constants = {name: _layer_values(name, values) for name, values in
                 (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2), ("grad_w", grad_w),
                  ("grad_b", grad_b))}
    lengths = {name: len(values) for name, values in constants.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"sigma_w2, sigma_b2, grad_w and grad_b need one entry per weight layer "
                         f"(depth + 1 each), got lengths {lengths}")
    sw, sb, gw, gb = constants.values()
    n_layers = len(sw)
    points = integer("quadrature_points", quadrature_points, minimum=2)
    if points > MAX_QUADRATURE_POINTS:
        # numpy's hermegauss overflows its weights beyond about 370 points.
        raise ValueError(f"quadrature_points must be <= {MAX_QUADRATURE_POINTS}, got {points}")
    use_quadrature = bool(quadrature) or method == "quadrature"

    d = x1.shape[1]
    q = x1 @ x2.T / d  # q_1
    var1 = np.einsum("ij,ij->i", x1, x1) / d
    var2 = var1 if symmetric else np.einsum("ij,ij->i", x2, x2) / d
    if symmetric:
        q = (q + q.T) / 2
        np.fill_diagonal(q, var1)  # so that Σ(x, x) is the same number on both paths
    gram_terms = [q]  # q_l, l = 1..L
    slopes = []  # Ė_{l+1}, l = 1..L−1
    # Without the per-layer split, accumulate forward in O(n1·n2) memory at any depth:
    # Θ ← (g_{l+1} q_{l+1} + c_{l+1}) + σ_{l+1}² Ė_{l+1} Θ, which unrolls to Σ_l Θ_l.
    ntk = gw[0] * q + gb[0]
    for layer in range(n_layers - 1):
        cov = sw[layer] * q + sb[layer]
        var1 = sw[layer] * var1 + sb[layer]
        var2 = var1 if symmetric else sw[layer] * var2 + sb[layer]
        q, slope = _expectations(activation, var1[:, None], var2[None, :], cov,
                                 quadrature=use_quadrature, points=points, symmetric=symmetric)
        if symmetric:
            var1 = var2 = np.diagonal(q).copy()
        else:
            var1, var2 = (
                _expectations(activation, v[:, None], v[:, None], v[:, None],
                              quadrature=use_quadrature, points=points, symmetric=False)[0][:, 0]
                for v in (var1, var2))
        if per_layer:
            gram_terms.append(q)
            slopes.append(slope)
        else:
            ntk = (gw[layer + 1] * q + gb[layer + 1]) + sw[layer + 1] * slope * ntk
    method = "quadrature" if use_quadrature else "closed_form"
    nngp = sw[-1] * q + sb[-1]
    if not per_layer:
        return LayerwiseKernels(nngp=nngp, ntk=ntk, layers=None, method=method)
    layers = np.empty((n_layers,) + q.shape)
    backward = np.ones(q.shape)  # B_L
    for layer in range(n_layers - 1, -1, -1):
        layers[layer] = (gw[layer] * gram_terms[layer] + gb[layer]) * backward
        if layer > 0:
            backward = sw[layer] * slopes[layer - 1] * backward
    return LayerwiseKernels(nngp=nngp, ntk=layers.sum(0), layers=layers, method=method)


def analytic_kernels(x1: ArrayLike, x2: ArrayLike | None = None, *, depth: int,
                     activation: str = "relu", w_std: float = 1.0, b_std: float = 0.0,
                     quadrature: bool = False,
                     quadrature_points: int = DEFAULT_QUADRATURE_POINTS) -> AnalyticKernels:
    """Infinite-width NNGP and NTK of an MLP under NTK parameterization (Jacot et al. 2018).

    The network is ``z_1 = (w_std/√d) W_1 x + b_std b_1``,
    ``z_{l+1} = (w_std/√n) W_{l+1} φ(z_l) + b_std b_{l+1}`` with ``depth`` hidden layers, a linear
    readout and all weights and biases N(0, 1). Then ``σ² = g = w_std²`` and ``β² = c = b_std²``
    for every layer, and::

        Σ_1 = w_std² x·x'/d + b_std²,    Σ_{l+1} = w_std² E[φ(a)φ(b)] + b_std²
        Θ_1 = Σ_1,                       Θ_{l+1} = Σ_{l+1} + w_std² E[φ′(a)φ′(b)] Θ_l

    with ``(a, b)`` distributed by ``Σ_l`` (Lee et al. 2019; Arora et al. 2019). ``depth = 0`` is
    the linear model, ``Σ = Θ = w_std² x·x'/d + b_std²``.

    Args:
        x1: inputs ``(n1, d)``.
        x2: inputs ``(n2, d)``; ``None`` means ``x1``.
        depth: number of hidden layers (``>= 0``).
        activation: one of :data:`ntkbench.models.ACTIVATIONS`.
        w_std, b_std: the parameterization's weight and bias scales (``>= 0``).
        quadrature: force Gauss–Hermite quadrature even where a closed form exists.
        quadrature_points: nodes per dimension of the quadrature rule.

    Returns:
        :class:`AnalyticKernels` ``(nngp, ntk)``: float64 ``(n1, n2)`` output covariance and NTK
        of one output unit, with ``.method`` ``"closed_form"`` or ``"quadrature"``.
    """
    depth = integer("depth", depth, minimum=0)
    w2 = nonnegative("w_std", w_std) ** 2
    b2 = nonnegative("b_std", b_std) ** 2
    per_layer = [w2] * (depth + 1), [b2] * (depth + 1)
    result = layerwise_kernels(x1, x2, activation=activation, sigma_w2=per_layer[0],
                               sigma_b2=per_layer[1], grad_w=per_layer[0], grad_b=per_layer[1],
                               quadrature=quadrature, quadrature_points=quadrature_points,
                               per_layer=False)
    return AnalyticKernels(result.nngp, result.ntk, result.method)


def matched_analytic_ntk(model: MLP, weights: list[dict[str, np.ndarray]], x1: ArrayLike,
                         x2: ArrayLike | None = None, *,
                         quadrature_points: int = DEFAULT_QUADRATURE_POINTS) -> np.ndarray:
    """Infinite-width NTK moment-matched to ``model`` with ``weights``, traced over outputs.

    Each layer's weights are summarised by their second moments ``v_l = mean(W_l²)`` and
    ``u_l = mean(b_l²)`` (0 without biases); with ``(s_l, t_l) = model.scales(layer)``::

        σ_l² = s_l² v_l fan_in_l,   β_l² = t_l² u_l,   g_l = s_l² fan_in_l,   c_l = t_l²

    go into :func:`layerwise_kernels`. This is the kernel that the empirical NTK of iid weights
    with these variances concentrates around, for either parameterization (under ``"standard"``
    it scales with the width). Weights that are not iid per layer (orthogonal, structured) keep
    only their second moments here.

    Args:
        model: an :class:`ntkbench.MLP`.
        weights: ``[{"W": (fan_out, fan_in), "b": (fan_out,)}, ...]``, one dict per layer, as
            from :func:`ntkbench.initialize`.
        x1: inputs ``(n1, in_dim)``.
        x2: inputs ``(n2, in_dim)``; ``None`` means ``x1``.
        quadrature_points: Gauss–Hermite nodes per dimension for activations without a closed
            form (see :func:`layerwise_kernels`).

    Returns:
        float64 ``(n1, n2)``: ``model.out_dim ×`` the per-output kernel, the quantity that
        :func:`ntkbench.empirical_ntk` returns.
    """
    ntk = matched_analytic_kernels(model, weights, x1, x2,
                                   quadrature_points=quadrature_points).ntk
    return model.out_dim * ntk


def matched_analytic_kernels(model: MLP, weights: list[dict[str, np.ndarray]], x1: ArrayLike,
                             x2: ArrayLike | None = None, *,
                             quadrature_points: int = DEFAULT_QUADRATURE_POINTS
                             ) -> LayerwiseKernels:
    """The infinite-width NNGP and NTK of one output of ``model``, moment-matched to
    ``weights`` as in :func:`matched_analytic_ntk` (which is ``out_dim ×`` this ``ntk``).

    Returns:
        :class:`LayerwiseKernels` (``nngp``, ``ntk``, ``layers``), float64 ``(n1, n2)``.
    """
    if not isinstance(model, MLP):
        raise ValueError("matched analytic kernels need an ntkbench.MLP, got "
                         f"{type(model).__name__}")
    layers = model.layers()
    if len(weights) != len(layers):
        raise ValueError(f"weights has {len(weights)} layers but the model has {len(layers)} "
                         f"(depth {model.depth} + readout)")
    constants: dict[str, list[float]] = {"sigma_w2": [], "sigma_b2": [], "grad_w": [],
                                         "grad_b": []}
    for layer, params in zip(layers, weights, strict=True):
        W = np.asarray(params["W"], dtype=np.float64)
        if W.shape != (layer.fan_out, layer.fan_in):
            raise ValueError(f"weights[{layer.index}]['W'] must have shape "
                             f"{(layer.fan_out, layer.fan_in)}, got {W.shape}")
        s, t = model.scales(layer)
        v = float(np.vdot(W, W)) / W.size
        if model.bias:
            b = np.asarray(params["b"], dtype=np.float64)
            if b.shape != (layer.fan_out,):
                raise ValueError(f"weights[{layer.index}]['b'] must have shape "
                                 f"{(layer.fan_out,)}, got {b.shape}")
            u, c = float(np.vdot(b, b)) / b.size, t * t
        else:
            u, c = 0.0, 0.0
        constants["sigma_w2"].append(s * s * v * layer.fan_in)
        constants["sigma_b2"].append(t * t * u)
        constants["grad_w"].append(s * s * layer.fan_in)
        constants["grad_b"].append(c)
    x1 = np.asarray(x1, dtype=np.float64)
    if x1.ndim != 2 or x1.shape[1] != model.in_dim:
        raise ValueError(f"x1 must have shape (n, {model.in_dim}), got {x1.shape}")
    return layerwise_kernels(x1, x2, activation=model.activation,
                             quadrature_points=quadrature_points, **constants)


def relu_gram_two_layer(x1: ArrayLike, x2: ArrayLike | None = None,
                        C: ArrayLike | None = None) -> np.ndarray:
    """The Gram matrix ``H∞`` of a two-layer ReLU network (Du et al. 2019, "Gradient descent
    provably optimizes over-parameterized neural networks"), with a first-layer covariance ``C``.

    ``H_ij = E_{w~N(0, C)}[x_iᵀx_j 1{wᵀx_i > 0} 1{wᵀx_j > 0}] = x_iᵀx_j (π − arccos ρ_ij)/(2π)``
    with ``ρ_ij = x_iᵀC x_j / √(x_iᵀC x_i · x_jᵀC x_j)`` clipped to [−1, 1] (``(wᵀx_i, wᵀx_j)`` is a
    centred Gaussian pair with that correlation, and ``P(both > 0) = (π − arccos ρ)/(2π)``).
    If ``x_iᵀC x_i = 0`` then ``wᵀx_i = 0`` almost surely, so row ``i`` is 0.

    With ``C = I`` and inputs of dimension ``d``, ``H/d`` is the first-layer contribution
    ``layers[0]`` of :func:`layerwise_kernels` for a depth-1 ReLU network under NTK
    parameterization with ``w_std = 1, b_std = 0`` (``Σ_1 · Ė_2``).

    Args:
        x1: inputs ``(n1, d)``.
        x2: inputs ``(n2, d)``; ``None`` means ``x1``.
        C: symmetric positive semi-definite ``(d, d)``; ``None`` means the identity.

    Returns:
        float64 ``(n1, n2)``.
    """
    x1, x2, _ = _inputs(x1, x2)
    d = x1.shape[1]
    if C is None:
        cx1, cx2 = x1, x2
    else:
        C = np.asarray(C, dtype=np.float64)
        if C.shape != (d, d):
            raise ValueError(f"C must have shape ({d}, {d}) to match the inputs, got {C.shape}")
        if not np.all(np.isfinite(C)) or not np.allclose(C, C.T, rtol=1e-10, atol=1e-12):
            raise ValueError("C must be a finite symmetric matrix (a covariance)")
        lowest = np.linalg.eigvalsh(C)[0]
        if lowest < -1e-10 * max(1.0, float(np.abs(C).max())):
            raise ValueError(f"C must be positive semi-definite, its smallest eigenvalue is "
                             f"{lowest:.3g}")
        cx1, cx2 = x1 @ C, x2 @ C
    k12 = cx1 @ x2.T
    k11 = np.einsum("ij,ij->i", cx1, x1)[:, None]
    k22 = np.einsum("ij,ij->i", cx2, x2)[None, :]
    rho = _correlation(np.maximum(k11, 0.0), np.maximum(k22, 0.0), k12)
    both_positive = np.where((k11 > 0) & (k22 > 0), (np.pi - np.arccos(rho)) / (2 * np.pi), 0.0)
    return (x1 @ x2.T) * both_positive


def converged_quadrature_points(model: MLP, weights: list[dict[str, np.ndarray]], x: ArrayLike,
                                *, rtol: float = 1e-6, start: int = 16, sample: int = 16,
                                max_points: int = MAX_QUADRATURE_POINTS) -> tuple[int, bool]:
    """Fewest Gauss–Hermite points (``start`` doubled up to ``max_points``) at
    which :func:`matched_analytic_ntk` on up to ``sample`` of the inputs ``x`` changes by at
    most ``rtol`` (relative to its largest entry) when the points are doubled.

    Quadrature converges more slowly as the pre-activation variances grow (the integrand of a
    tanh network varies on a scale ``1/√Σ``), so a fixed rule can be far off for large inits.

    Returns:
        ``(points, converged)``; ``points`` is ``max_points`` when no doubling converged.
    """
    max_points = min(integer("max_points", max_points, minimum=start), MAX_QUADRATURE_POINTS)
    x = np.asarray(x, dtype=np.float64)
    x = x[np.linspace(0, len(x) - 1, min(sample, len(x))).astype(int)]
    points = start
    previous = matched_analytic_ntk(model, weights, x, quadrature_points=points)
    while points < max_points:
        finer = min(2 * points, max_points)
        current = matched_analytic_ntk(model, weights, x, quadrature_points=finer)
        scale = np.abs(current).max()
        if not np.isfinite(scale) or np.abs(current - previous).max() <= rtol * scale:
            return points, True
        points, previous = finer, current
    return points, False
