"""Structured random receptive fields (Pandey et al. 2022) and their NTK-optimised length scale.

A first-layer unit of a sensory network is modelled as a random receptive field: its incoming
weights over the input grid (pixels ``t = (row, col)`` of an image, indices of a 1-D signal)
are a Gaussian vector ``w ~ N(0, C)`` with

    ``C(t, t') = exp(−‖t − t'‖² / (2f²)) · exp(−(‖t − c‖² + ‖t' − c‖²) / (2s²))``,

a smooth (length scale ``f``, in grid units) random pattern under a Gaussian envelope of size
``s`` around the unit's centre ``c``. Writing ``e(t) = exp(−‖t − c‖² / (2s²))`` and
``K(t, t') = exp(−‖t − t'‖² / (2f²))``, ``C = diag(e) K diag(e)``: the stationary part ``K`` is
shared by all units, so one square root ``K = AAᵀ`` gives every unit's draw as
``w = e ⊙ (Az)``, ``z ~ N(0, I)``. Both factors are products over the grid's axes, so on a 2-D
grid (flattened in C order) ``C = C_row ⊗ C_col`` and ``A = A_row ⊗ A_col``; a draw is
``e_row e_colᵀ ⊙ (A_row Z A_colᵀ)`` and the ``d × d`` matrix is never formed.

Initializers (dense first layers take the grid from ``layer.input_shape``; see
:func:`structured_rf`):

- ``structured_rf``: the first layer as above, centres uniform over the grid;
- ``structured_rf_incompatible``: the paper's "incompatible" control, ``f = s = 0.5``;
- ``structured_rf_ntk``: data-dependent; chooses the length scale by minimising the NTK
  objective ``J_λ`` of :mod:`ntkbench.ntk.objectives` on the training data.

Reference: B. Pandey, M. Pachitariu, B. W. Brunton, K. D. Harris, "Structured random receptive
fields enable informative sensory encodings", PLoS Computational Biology 18(10): e1010484, 2022.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ntkbench import registry
from ntkbench.checks import integer, nonnegative, positive, real
from ntkbench.initializers.calibration import Batch, Probe, Weights
from ntkbench.initializers.classical import NONLINEARITIES, calculate_gain, compute_fans
from ntkbench.models import LayerInfo, Model
from ntkbench.ntk.objectives import minimize_j_lambda

Shape = tuple[int, ...]

#: Smoothness and size, in pixels, of :func:`structured_rf` (see its docstring).
DEFAULT_F, DEFAULT_S = 2.0, 5.0
#: ``f = s`` of the "incompatible" control: rougher and smaller than any image structure.
INCOMPATIBLE_F = INCOMPATIBLE_S = 0.5
#: The NTK-optimised length scale ``l`` is searched in ``(0, LENGTH_SCALE_SPAN · longest grid
#: side)``: beyond it the envelope is flat and ``K`` nearly constant over the grid, so ``J_λ``
#: no longer changes with ``l``.
LENGTH_SCALE_SPAN = 10.0


def receptive_field_covariance(grid_shape: Sequence[int], f: float, s: float,
                               centre: ArrayLike) -> np.ndarray:
    """The receptive-field covariance ``C`` of one unit, ``(d, d)`` with ``d = prod(grid_shape)``.

    ``C(t, t') = exp(−‖t − t'‖² / (2f²)) · exp(−(‖t − c‖² + ‖t' − c‖²) / (2s²))`` over the grid
    points ``t`` (integer coordinates, flattened in C order: row-major for ``(H, W)``), computed
    directly from the definition. ``C`` is positive semi-definite (a Gaussian kernel between
    two diagonal scalings); its diagonal is ``exp(−‖t − c‖² / s²)``, so
    ``tr C = Σ_t exp(−‖t − c‖² / s²)``, and its correlations
    ``C(t, t') / √(C(t, t) C(t', t')) = exp(−‖t − t'‖² / (2f²))`` do not depend on ``c`` or ``s``.

    Args:
        grid_shape: sizes of the grid's axes, e.g. ``(8, 8)`` or ``(64,)``.
        f: smoothness ``> 0``: the correlation length of the weights, in grid units.
        s: size ``> 0``: the width of the Gaussian envelope, in grid units.
        centre: the envelope's centre ``c``, one coordinate per axis (any real point).

    Returns:
        float64 ``(d, d)``.
    """
    grid = _grid(grid_shape)
    f, s = positive("f", f), positive("s", s)
    c = _centres(centre, len(grid), "centre")[0]
    points = np.indices(grid).reshape(len(grid), -1).T.astype(np.float64)
    distances = np.sum((points[:, None, :] - points[None, :, :]) ** 2, axis=-1)
    envelope = np.exp(-np.sum((points - c) ** 2, axis=-1) / (2 * s * s))
    return np.exp(-distances / (2 * f * f)) * envelope[:, None] * envelope[None, :]


def receptive_field_weights(grid_shape: Sequence[int], f: float, s: float, centres: ArrayLike,
                            rng: np.random.Generator, *, channels: int = 1,
                            gain: float = 1.0) -> np.ndarray:
    """Weights of units with the given centres: row ``i`` is ``N(0, gain² C_i / tr C_i)``.

    ``C_i`` is :func:`receptive_field_covariance` at ``centres[i]``, repeated independently over
    ``channels`` (the covariance of a row is block-diagonal, ``I_channels ⊗ C_i`` in the
    channels-first layout), and scaled so that ``E‖w_i‖² = gain²`` over all channels: the
    expected squared norm of i.i.d. ``N(0, gain² / fan_in)`` weights. Sampled as
    ``w = gain · e ⊙ (Az) / √(channels · Σ_t e(t)²)`` with ``AAᵀ = K`` the separable stationary
    factor (see the module docstring); ``A`` is the eigen-square-root of each axis factor, with
    round-off negative eigenvalues clipped to 0, because ``K`` is numerically singular for
    ``f`` of a few grid units.

    Args:
        grid_shape: sizes of the grid's axes.
        f, s: smoothness and size ``> 0``, in grid units.
        centres: ``(units, len(grid_shape))`` centres (a single centre is one unit).
        rng: the generator to draw from.
        channels: input channels sharing the grid, ``≥ 1``.
        gain: ``≥ 0``, the root of each unit's expected squared norm.

    Returns:
        float64 ``(units, channels · prod(grid_shape))``, channels first, each grid flattened in
        C order.
    """
    grid = _grid(grid_shape)
    f, s = positive("f", f), positive("s", s)
    gain = nonnegative("gain", gain)
    channels = integer("channels", channels, minimum=1)
    c = _centres(centres, len(grid), "centres")
    z = rng.standard_normal((len(c), channels, *grid))
    for axis, n in enumerate(grid):
        z = _along(z, _smoothness(n, f, root=True), 2 + axis)
    envelopes = _envelopes(grid, s, c)
    envelope = _outer(envelopes)
    squared_norm = channels * np.prod([np.sum(e * e, axis=1) for e in envelopes], axis=0)
    scale = gain / np.sqrt(squared_norm)
    weights = z * envelope[:, None] * scale.reshape(-1, *[1] * (1 + len(grid)))
    return weights.reshape(len(c), -1)


def receptive_field_gram(x: ArrayLike, grid_shape: Sequence[int], f: float, s: float,
                         centres: ArrayLike, *, channels: int = 1) -> np.ndarray:
    """The two-layer ReLU Gram matrix of receptive-field units, averaged over their centres.

    ``H = (1/m) Σ_c H(C_c)`` with ``H(C)_ij = x_iᵀx_j (π − arccos ρ_ij) / (2π)`` and
    ``ρ_ij = x_iᵀC x_j / √(x_iᵀC x_i · x_jᵀC x_j)`` — the Gram matrix of
    :func:`ntkbench.ntk.analytic.relu_gram_two_layer` with ``C = I_channels ⊗ C_c``
    (:func:`receptive_field_covariance`), i.e. the expected first-layer NTK of a wide layer whose
    units have their centres drawn from the ``m`` given ones. ``ρ`` does not change when ``C``
    is scaled, so the trace normalisation of the weights does not enter. ``x C xᵀ`` uses the
    separable structure: ``(e ⊙ x)`` with each grid axis multiplied by its factor of ``K``,
    ``O(n · d · Σ_k n_k)`` per centre instead of forming ``C`` (``O(d²)``).

    Args:
        x: inputs ``(n, channels · prod(grid_shape))``, each row channels first, C order.
        grid_shape: sizes of the grid's axes.
        f, s: smoothness and size ``> 0``, in grid units.
        centres: ``(m, len(grid_shape))`` centres.
        channels: input channels sharing the grid.

    Returns:
        float64 ``(n, n)``.
    """
    grid = _grid(grid_shape)
    f, s = positive("f", f), positive("s", s)
    channels = integer("channels", channels, minimum=1)
    c = _centres(centres, len(grid), "centres")
    x = np.asarray(x, dtype=np.float64)
    d = channels * math.prod(grid)
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"x must have shape (n, {d}) for {channels} channel(s) of a "
                         f"{'×'.join(map(str, grid))} grid, got {x.shape}")
    images = x.reshape(len(x), channels, *grid)
    smoothness = [_smoothness(n, f, root=False) for n in grid]
    inner = x @ x.T
    total = np.zeros_like(inner)
    for envelope in _outer(_envelopes(grid, s, c)):
        u = images * envelope
        v = u
        for axis, factor in enumerate(smoothness):
            v = _along(v, factor, 2 + axis)
        u, v = u.reshape(len(x), -1), v.reshape(len(x), -1)
        covariance = u @ v.T
        variance = np.maximum(np.einsum("ij,ij->i", u, v), 0.0)
        scale = np.sqrt(np.outer(variance, variance))
        active = scale > 0  # wᵀx_i = 0 almost surely when x_iᵀC x_i = 0
        rho = np.clip(np.divide(covariance, scale, out=np.zeros_like(scale), where=active),
                      -1.0, 1.0)
        np.fill_diagonal(rho, 1.0)  # exact; arccos turns a 1-ulp error at ρ = 1 into 1e-8
        total += np.where(active, inner * (np.pi - np.arccos(rho)) / (2 * np.pi), 0.0)
    return total / len(c)


def draw_centres(grid_shape: Sequence[int], units: int, rng: np.random.Generator) -> np.ndarray:
    """``(units, len(grid_shape))`` centres uniform (continuous) over the grid's bounding box
    ``[0, n_k − 1]`` on each axis."""
    grid = _grid(grid_shape)
    return rng.uniform(0.0, np.asarray(grid, dtype=np.float64) - 1.0, size=(units, len(grid)))


@registry.initializers.register("structured_rf")
def structured_rf(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo,
    f: float = DEFAULT_F, s: float = DEFAULT_S, gain: float = 1.0,
) -> np.ndarray:
    """Structured random receptive fields (Pandey et al. 2022): first-layer w_i ~ N(0, C_i).

    First layer (``layer.index == 0``): unit ``i`` gets ``w_i ~ N(0, gain² C_i / tr C_i)`` with
    ``C_i(t, t') = exp(−‖t − t'‖² / (2f²)) · exp(−(‖t − c_i‖² + ‖t' − c_i‖²) / (2s²))``
    (:func:`receptive_field_covariance`) and its centre ``c_i`` uniform over the grid's bounding
    box. The trace normalisation gives ``E‖w_i‖² = gain²``, the expected squared norm of i.i.d.
    ``N(0, gain² / fan_in)`` weights (LeCun normal at ``gain = 1``; ``gain = √2`` matches He
    normal for relu), so only the structure differs from that i.i.d. draw. The grid is
    ``layer.input_shape``: ``(C, H, W)`` → an ``H × W`` grid, the same covariance
    independently per channel, normalised over all channels; ``(H, W)`` → one channel;
    ``(n,)`` → a 1-D grid; ``None`` → a 1-D grid of ``fan_in`` points. A convolution
    ``(out, in, kh, kw)`` uses its ``kh × kw`` kernel window as the grid, its input channels
    as the channels.

    Later layers: i.i.d. ``N(0, g² / fan_in)`` with ``g`` = :func:`calculate_gain` of the
    layer's activation (He normal, ``√2``, for relu; ``5/3`` for tanh; ``1`` for the linear
    readout and for erf, gelu and sin, which torch's gain table does not list).

    Defaults ``f = 2``, ``s = 5`` (pixels) suit 8×8 to 28×28 images: a weight's variance
    ``∝ exp(−‖t − c‖² / s²)`` falls to ``1/e`` at 5 pixels from the centre, a field about 10
    pixels across (most of an 8×8 digit, a third of a 28×28 image), and neighbouring weights
    correlate by ``exp(−1/(2f²)) ≈ 0.88``, smooth over about a stroke's width.

    Reference: Pandey, Pachitariu, Brunton & Harris 2022, "Structured random receptive fields
    enable informative sensory encodings", PLoS Computational Biology 18(10): e1010484.
    """
    f, s = positive("f", f), positive("s", s)
    gain = nonnegative("gain", gain)
    if layer.index != 0:
        return _later_layer(shape, rng, layer)
    channels, grid = _layer_grid(shape, layer)
    centres = draw_centres(grid, shape[0], rng)
    weights = receptive_field_weights(grid, f, s, centres, rng, channels=channels, gain=gain)
    return weights.reshape(shape)


@registry.initializers.register("structured_rf_incompatible")
def structured_rf_incompatible(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo, gain: float = 1.0
) -> np.ndarray:
    """Incompatible receptive fields (Pandey et al. 2022's control): structured_rf, f = s = 0.5.

    :func:`structured_rf` with fixed ``f = s = 0.5`` pixels: each unit covers about one pixel
    around its centre and neighbouring weights are nearly uncorrelated (correlation
    ``exp(−1/(2f²)) = e⁻² ≈ 0.14``), a receptive field that mismatches the structure of images,
    which the paper uses to show that the structure must fit the data to help.
    """
    return structured_rf(shape, rng, layer=layer, f=INCOMPATIBLE_F, s=INCOMPATIBLE_S, gain=gain)


@registry.initializers.register("structured_rf_ntk")
def structured_rf_ntk(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo,
    lam: float = 0.5, f_over_s: float = DEFAULT_F / DEFAULT_S, l0: float = DEFAULT_S,
    batch_size: int = 256, centres: int = 64, gain: float = 1.0, reg: float = 1e-6,
) -> np.ndarray:
    """NTK-optimised structured receptive fields: length scale l minimising J_λ on the data.

    One length scale ``l`` sets both receptive-field parameters of :func:`structured_rf`:
    size ``s = l`` and smoothness ``f = f_over_s · l``. Calibration (data-dependent) picks ``l``
    minimising

        ``J_λ(l) = (1 − λ) · tr(Yᵀ (H(l) + reg·I)⁻¹ Y) − λ · tr(Yᵀ H(l) Y)``

    (:func:`ntkbench.ntk.objectives.j_lambda`: generalisation vs. training speed) on
    ``batch_size`` training rows drawn with the calibration's generator, where ``H(l)`` is the
    two-layer ReLU Gram matrix (Du et al. 2019) of first-layer units ``N(0, C(l))``, averaged
    over ``centres`` centres drawn uniformly over the grid (:func:`receptive_field_gram`) and
    scaled to unit mean diagonal, ``H ← n · H / tr H``, since a pure scale of the kernel would
    make ``J_λ`` unbounded. The ReLU Gram is used for every activation, as the paper's
    proxy for the first layer's kernel (recorded as ``"gram": "relu_two_layer"``). ``l`` is
    found by :func:`~ntkbench.ntk.objectives.minimize_j_lambda` (Newton with finite-difference
    derivatives) from ``l0`` in ``(0, 10 · longest grid side)``. Then the first layer is drawn
    as :func:`structured_rf` with the chosen ``(f, s)`` and ``gain``; later layers keep their
    pre-init. The calibration's generator draws, in this order, the rows
    (:meth:`~ntkbench.initializers.calibration.Batch.sample`, no draw when ``batch_size ≥ n``),
    the ``centres`` (:func:`draw_centres`) and the first layer. One evaluation of ``H(l)``
    costs ``O(centres · batch_size² · fan_in)``: about 0.5 s for 28×28 images at the defaults.

    Uncalibrated (called as a plain initializer) it is :func:`structured_rf` with ``s = l0``,
    ``f = f_over_s · l0`` (the defaults give ``s = 5``, ``f = 2``). Dense first layers only.
    Larger ``λ`` rewards a Gram matrix concentrated along the targets (faster initial training)
    and tends to pick larger, smoother receptive fields.

    Parameters: ``lam ∈ [0, 1]``; ``f_over_s > 0``; ``l0 > 0``; ``batch_size ≥ 2``;
    ``centres ≥ 1``; ``gain ≥ 0``; ``reg ≥ 0``, the ridge of the inverse term relative to the
    unit mean diagonal. The default 1e-6 sits above the rounding noise of ``H`` (``arccos`` near
    ``ρ = ±1`` turns ε into √(2ε) ≈ 2e-8), which otherwise leaves a rank-deficient ``H`` (e.g.
    1-D inputs, where ``H`` has rank 2) with negative eigenvalues and no Cholesky factor.
    """
    _check_ntk_params(lam, f_over_s, l0, batch_size, centres, reg)
    return structured_rf(shape, rng, layer=layer, f=f_over_s * l0, s=l0, gain=gain)


def length_scale_gram(x: np.ndarray, grid: Shape, f_over_s: float, centres: np.ndarray, *,
                      channels: int = 1) -> Callable[[float], np.ndarray]:
    """``l ↦ H(l)``, the kernel family :func:`structured_rf_ntk` minimises ``J_λ`` over: the
    two-layer ReLU Gram of receptive fields with ``s = l``, ``f = f_over_s · l`` averaged over
    the fixed ``centres`` (:func:`receptive_field_gram`), scaled to unit mean diagonal
    ``H ← n · H / tr H``."""
    def gram(length_scale: float) -> np.ndarray:
        H = receptive_field_gram(x, grid, f_over_s * length_scale, length_scale, centres,
                                 channels=channels)
        return len(x) * H / np.trace(H)

    return gram


def _calibrate_ntk(model: Model, weights: Weights, batch: Batch, probe: Probe | None, *,
                   rng: np.random.Generator, lam: float, f_over_s: float, l0: float,
                   batch_size: int, centres: int, gain: float, reg: float
                   ) -> tuple[Weights, dict[str, Any]]:
    """``structured_rf_ntk.calibrate``: see :func:`structured_rf_ntk`. ``probe`` is unused."""
    lam, f_over_s, l0, batch_size, centres, reg = _check_ntk_params(
        lam, f_over_s, l0, batch_size, centres, reg)
    gain = nonnegative("gain", gain)
    first = model.layers()[0]
    if first.kind != "dense":
        raise ValueError("structured_rf_ntk calibrates dense first layers only (its objective "
                         "uses the two-layer ReLU Gram matrix); use structured_rf for a CNN")
    channels, grid = _layer_grid(first.weight_shape, first)
    sample = batch.sample(batch_size, rng)
    x, y = np.asarray(sample.x, dtype=np.float64), np.asarray(sample.y, dtype=np.float64)
    points = draw_centres(grid, centres, rng)  # fixed over l, so J(l) is smooth

    gram = length_scale_gram(x, grid, f_over_s, points, channels=channels)
    result = minimize_j_lambda(gram, y, lam, l0, bounds=(0.0, LENGTH_SCALE_SPAN * max(grid)),
                               reg=reg)
    length_scale = result.value
    f, s = f_over_s * length_scale, length_scale
    W = receptive_field_weights(grid, f, s, draw_centres(grid, first.n_units, rng), rng,
                                channels=channels, gain=gain)
    calibrated = [dict(layer) for layer in weights]
    calibrated[0]["W"] = W.reshape(first.weight_shape)
    return calibrated, {
        "length_scale": float(length_scale), "f": float(f), "s": float(s),
        "j_lambda": float(result.objective), "newton_iterations": int(result.iterations),
        "converged": bool(result.converged), "message": result.message, "lam": float(lam),
        "gram": "relu_two_layer",
    }


structured_rf_ntk.calibrate = _calibrate_ntk


def _check_ntk_params(lam: float, f_over_s: float, l0: float, batch_size: int, centres: int,
                      reg: float) -> tuple[float, float, float, int, int, float]:
    lam = real("lam", lam)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam!r}")
    return (lam, positive("f_over_s", f_over_s), positive("l0", l0),
            integer("batch_size", batch_size, minimum=2), integer("centres", centres, minimum=1),
            nonnegative("reg", reg))


def _later_layer(shape: Shape, rng: np.random.Generator, layer: LayerInfo) -> np.ndarray:
    """I.i.d. ``N(0, g² / fan_in)``, ``g`` the activation's gain (1 where torch lists none)."""
    fan_in, _ = compute_fans(shape)
    gain = calculate_gain(layer.activation) if layer.activation in NONLINEARITIES else 1.0
    return rng.normal(0.0, gain / math.sqrt(fan_in), size=shape)


def _layer_grid(shape: Shape, layer: LayerInfo) -> tuple[int, Shape]:
    """``(channels, grid)`` of a first layer: the kernel window of a convolution, else the input
    grid of ``layer.input_shape`` (``None``: a 1-D grid of ``fan_in`` points)."""
    shape = tuple(shape)
    if len(shape) > 2:
        return shape[1], shape[2:]
    return input_grid(shape[1], layer.input_shape)


def input_grid(fan_in: int, input_shape: Sequence[int] | None) -> tuple[int, Shape]:
    """``(channels, grid)`` of ``fan_in`` flat inputs laid out as ``input_shape`` (``(n,)``,
    ``(H, W)`` or ``(C, H, W)``; ``None``: a 1-D grid of ``fan_in`` points)."""
    if input_shape is None:
        return 1, (fan_in,)
    spec = tuple(int(n) for n in input_shape)
    if len(spec) not in (1, 2, 3) or math.prod(spec) != fan_in:
        raise ValueError(f"input_shape {tuple(input_shape)} does not describe the {fan_in} "
                         f"inputs of the first layer; use (n,), (H, W) or (C, H, W) with "
                         f"n = H·W·C = {fan_in}")
    return (spec[0], spec[1:]) if len(spec) == 3 else (1, spec)


def _grid(grid_shape: Sequence[int]) -> Shape:
    grid = tuple(grid_shape)
    if not grid:
        raise ValueError("grid_shape needs at least one axis, got ()")
    return tuple(integer("grid_shape", n, minimum=1) for n in grid)


def _centres(centres: ArrayLike, ndim: int, name: str) -> np.ndarray:
    c = np.asarray(centres, dtype=np.float64)
    c = c.reshape(1, -1) if c.ndim <= 1 else c
    if c.ndim != 2 or c.shape[1] != ndim or len(c) == 0 or not np.all(np.isfinite(c)):
        raise ValueError(f"{name} must be finite points with {ndim} coordinate(s) each, got "
                         f"shape {np.shape(centres)}")
    return c


def _smoothness(n: int, f: float, *, root: bool) -> np.ndarray:
    """The ``(n, n)`` axis factor ``exp(−(t − t')² / (2f²))`` of ``K``, or its square root."""
    t = np.arange(n, dtype=np.float64)
    factor = np.exp(-((t[:, None] - t[None, :]) ** 2) / (2 * f * f))
    if not root:
        return factor
    values, vectors = np.linalg.eigh(factor)
    return vectors * np.sqrt(np.clip(values, 0.0, None))


def _envelopes(grid: Shape, s: float, centres: np.ndarray) -> list[np.ndarray]:
    """Per axis ``(units, n_k)``: ``exp(−(t − c_k)² / (2s²))`` divided by its maximum over the
    axis, which only rescales a unit (normalised away) but keeps far centres from underflowing."""
    out = []
    for axis, n in enumerate(grid):
        exponent = -((np.arange(n) - centres[:, axis, None]) ** 2) / (2 * s * s)
        out.append(np.exp(exponent - exponent.max(axis=1, keepdims=True)))
    return out


def _outer(envelopes: list[np.ndarray]) -> np.ndarray:
    """``(units, *grid)``: the product of the per-axis envelopes."""
    out = envelopes[0]
    for e in envelopes[1:]:
        out = out[..., None] * e.reshape(len(e), *[1] * (out.ndim - 1), -1)
    return out


def _along(array: np.ndarray, matrix: np.ndarray, axis: int) -> np.ndarray:
    """``M`` applied along ``axis``: ``out[.., t, ..] = Σ_a M[t, a] · array[.., a, ..]``."""
    return np.moveaxis(np.tensordot(array, matrix, axes=([axis], [1])), -1, axis)
