"""Classical data-independent initializers: constants, i.i.d. normal/uniform/truncated normal,
Glorot, He, LeCun, orthogonal, sparse and identity.

Fans and gains follow ``torch.nn.init`` exactly, so ``he_normal`` here and
``torch.nn.init.kaiming_normal_`` draw from the same distribution. For a weight of shape
``(fan_out, fan_in, *kernel)`` with receptive field ``k = prod(kernel)`` (1 for dense layers)::

    fan_in  = shape[1] · k
    fan_out = shape[0] · k

Fans are computed from ``shape`` (not from ``layer``), so the same functions fill conv kernels.
Every function draws only from ``rng`` (``identity`` uses none); biases stay zero (no ``bias``
attribute).
"""

from __future__ import annotations

import math

import numpy as np

from ntkbench import registry
from ntkbench.checks import nonnegative, positive, real
from ntkbench.models import LayerInfo

Shape = tuple[int, ...]

#: Nonlinearities whose gain is 1 in ``torch.nn.init.calculate_gain``.
UNIT_GAIN = (
    "linear", "conv1d", "conv2d", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid",
)
NONLINEARITIES = (*UNIT_GAIN, "tanh", "relu", "leaky_relu", "selu")
FAN_MODES = ("fan_in", "fan_out")


def compute_fans(shape: Shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape ``(fan_out, fan_in, *kernel)``.

    ``fan_in = shape[1] · prod(shape[2:])`` and ``fan_out = shape[0] · prod(shape[2:])``, as in
    ``torch.nn.init`` (the receptive field multiplies both fans).
    """
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(
            f"fans need a weight shape (fan_out, fan_in, *kernel) with at least 2 dimensions, "
            f"got {shape}"
        )
    if any(d < 1 for d in shape):
        raise ValueError(f"fans need a weight shape with positive dimensions, got {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, negative_slope: float = 0.0) -> float:
    """The recommended gain of ``torch.nn.init.calculate_gain`` for ``nonlinearity``.

    ========================  ==========================
    linear, conv*, sigmoid    1
    tanh                      5/3
    relu                      √2
    leaky_relu                √(2 / (1 + negative_slope²))
    selu                      3/4
    ========================  ==========================

    Unlike torch (whose stand-alone default slope is 0.01), the default slope is 0, as in
    ``kaiming_normal_(a=0)``. Reference: He et al. 2015 (relu), Klambauer et al. 2017 (selu).
    """
    if nonlinearity in UNIT_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = real("negative_slope", negative_slope)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"unknown nonlinearity {nonlinearity!r}; valid: {', '.join(NONLINEARITIES)}"
    )


def he_scale(shape: Shape, mode: str, nonlinearity: str, negative_slope: float) -> float:
    """``gain / √fan`` for :func:`he_normal` / :func:`he_uniform`, with checked parameters."""
    if mode not in FAN_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(FAN_MODES)}")
    if nonlinearity != "leaky_relu" and real("negative_slope", negative_slope) != 0:
        raise ValueError(
            f"negative_slope only applies to nonlinearity='leaky_relu', got "
            f"nonlinearity={nonlinearity!r} with negative_slope={negative_slope!r}"
        )
    fan_in, fan_out = compute_fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, negative_slope) / math.sqrt(fan)


def xavier_std(shape: Shape, gain: float) -> float:
    """``gain · √(2 / (fan_in + fan_out))``, the Glorot standard deviation."""
    fan_in, fan_out = compute_fans(shape)
    return nonnegative("gain", gain) * math.sqrt(2.0 / (fan_in + fan_out))


@registry.initializers.register("zeros")
def zeros(shape: Shape, rng: np.random.Generator, *, layer: LayerInfo) -> np.ndarray:
    """All weights zero: W = 0.

    A degenerate baseline (every unit identical, so hidden-layer gradients vanish under ReLU).
    """
    return np.zeros(shape)


@registry.initializers.register("ones")
def ones(shape: Shape, rng: np.random.Generator, *, layer: LayerInfo) -> np.ndarray:
    """All weights one: W = 1.

    A degenerate baseline (perfectly symmetric units).
    """
    return np.ones(shape)


@registry.initializers.register("constant")
def constant(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo, value: float = 0.0
) -> np.ndarray:
    """Every weight the same constant: W = value.

    As ``torch.nn.init.constant_``.
    """
    return np.full(shape, real("value", value))


@registry.initializers.register("normal")
def normal(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo,
    mean: float = 0.0, std: float = 1.0,
) -> np.ndarray:
    """I.i.d. Gaussian with a fixed scale: W_ij ~ N(mean, std²).

    As ``torch.nn.init.normal_``; the scale does not adapt to the fans.
    """
    return rng.normal(real("mean", mean), nonnegative("std", std), size=shape)


@registry.initializers.register("uniform")
def uniform(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo,
    a: float = -1.0, b: float = 1.0,
) -> np.ndarray:
    """I.i.d. uniform on a fixed interval: W_ij ~ U(a, b).

    As ``torch.nn.init.uniform_`` (with torch's default interval [-1, 1] rather than [0, 1)).
    """
    lo, hi = real("a", a), real("b", b)
    if not lo < hi:
        raise ValueError(f"uniform needs a < b, got a={a!r}, b={b!r}")
    return rng.uniform(lo, hi, size=shape)


@registry.initializers.register("xavier_normal")
@registry.initializers.register("glorot_normal")
def xavier_normal(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo, gain: float = 1.0
) -> np.ndarray:
    """Glorot/Xavier normal (Glorot & Bengio 2010): W_ij ~ N(0, 2 gain² / (fan_in + fan_out)).

    ``W_ij ~ N(0, σ²)`` with ``σ = gain · √(2 / (fan_in + fan_out))``, which balances the
    forward and backward variances of linear/tanh-like units.
    Reference: Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward
    neural networks", AISTATS. As ``torch.nn.init.xavier_normal_``.
    """
    return rng.normal(0.0, xavier_std(shape, gain), size=shape)


@registry.initializers.register("xavier_uniform")
@registry.initializers.register("glorot_uniform")
def xavier_uniform(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo, gain: float = 1.0
) -> np.ndarray:
    """Glorot/Xavier uniform (Glorot & Bengio 2010): W_ij ~ U(±gain·√(6/(fan_in+fan_out))).

    ``W_ij ~ U(-B, B)`` with ``B = gain · √(6 / (fan_in + fan_out))``: the same variance as
    :func:`xavier_normal` (``B = √3 σ``).
    Reference: Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward
    neural networks", AISTATS. As ``torch.nn.init.xavier_uniform_``.
    """
    bound = math.sqrt(3.0) * xavier_std(shape, gain)
    return rng.uniform(-bound, bound, size=shape)


@registry.initializers.register("he_normal")
@registry.initializers.register("kaiming_normal")
def he_normal(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo,
    mode: str = "fan_in", nonlinearity: str = "relu", negative_slope: float = 0.0,
) -> np.ndarray:
    """He/Kaiming normal (He et al. 2015): W_ij ~ N(0, gain² / fan).

    ``W_ij ~ N(0, σ²)`` with ``σ = gain / √fan``; ``fan`` is ``fan_in`` (preserves the forward
    variance) or ``fan_out`` (the backward variance); ``gain`` is :func:`calculate_gain` of
    ``nonlinearity`` (``√2`` for relu, ``√(2 / (1 + negative_slope²))`` for leaky_relu).
    Reference: He et al. 2015, "Delving Deep into Rectifiers", ICCV.
    As ``torch.nn.init.kaiming_normal_(a=negative_slope, mode=mode, nonlinearity=nonlinearity)``.
    """
    return rng.normal(0.0, he_scale(shape, mode, nonlinearity, negative_slope), size=shape)


@registry.initializers.register("he_uniform")
@registry.initializers.register("kaiming_uniform")
def he_uniform(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo,
    mode: str = "fan_in", nonlinearity: str = "relu", negative_slope: float = 0.0,
) -> np.ndarray:
    """He/Kaiming uniform (He et al. 2015): W_ij ~ U(-B, B), B = gain · √(3 / fan).

    The same variance as :func:`he_normal` (``B = √3 σ``); ``fan`` and ``gain`` as there.
    Reference: He et al. 2015, "Delving Deep into Rectifiers", ICCV.
    As ``torch.nn.init.kaiming_uniform_(a=negative_slope, mode=mode, nonlinearity=nonlinearity)``.
    """
    bound = math.sqrt(3.0) * he_scale(shape, mode, nonlinearity, negative_slope)
    return rng.uniform(-bound, bound, size=shape)


@registry.initializers.register("lecun_normal")
def lecun_normal(shape: Shape, rng: np.random.Generator, *, layer: LayerInfo) -> np.ndarray:
    """LeCun normal (LeCun et al. 1998): W_ij ~ N(0, 1 / fan_in), untruncated.

    ``W_ij ~ N(0, σ²)`` with ``σ = 1 / √fan_in``: unit forward variance for linear units, the
    initializer self-normalizing (SELU) networks assume.
    References: LeCun et al. 1998, "Efficient BackProp"; Klambauer et al. 2017,
    "Self-Normalizing Neural Networks", NeurIPS. Equals
    ``torch.nn.init.kaiming_normal_(nonlinearity="linear")``; unlike
    ``jax.nn.initializers.lecun_normal`` it is not truncated.
    """
    fan_in, _ = compute_fans(shape)
    return rng.normal(0.0, 1.0 / math.sqrt(fan_in), size=shape)


CONV_MODES = ("delta", "flatten")


def _haar(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed ``(rows, cols)`` matrix with orthonormal columns (``rows >= cols``) or
    rows (``rows < cols``): QR of a Gaussian matrix with the signs of ``diag R`` fixed."""
    flat = rng.standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    # sign(0) would zero a column; a zero diagonal has probability 0, so treat it as positive.
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    return q.T if rows < cols else q


def centre_tap(shape: Shape, matrix: np.ndarray, what: str, hint: str = "") -> np.ndarray:
    """A ``shape`` kernel ``(out, in, *kernel)`` that is ``matrix`` ``(out, in)`` at the
    kernel's centre tap and zero elsewhere (``shape`` itself for dense weights); ``ValueError``
    naming ``what`` for even kernel sizes, which have no centre."""
    if any(k % 2 == 0 for k in shape[2:]):
        raise ValueError(f"{what} kernels need odd kernel sizes (a centre tap), got "
                         f"{shape[2:]}{hint}")
    out = np.zeros(shape)
    out[(slice(None), slice(None), *(k // 2 for k in shape[2:]))] = matrix
    return out


def _delta(shape: Shape, rng: np.random.Generator, gain: float) -> np.ndarray:
    """``gain · Q`` at the kernel's centre tap, zero elsewhere (Xiao et al. 2018)."""
    return centre_tap(shape, gain * _haar(shape[0], shape[1], rng), "delta-orthogonal",
                      "; use orthogonal with conv: flatten for even kernels")


@registry.initializers.register("orthogonal")
def orthogonal(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo, gain: float = 1.0,
    conv: str = "delta",
) -> np.ndarray:
    """Haar (semi-)orthogonal weights (Saxe et al. 2014): W = gain · Q, QᵀQ = I or QQᵀ = I;
    delta-orthogonal for convolutions.

    Dense ``(rows, cols)`` weights: draw ``A ~ N(0, 1)`` (transposed when ``rows < cols``),
    factor ``A = QR`` and take ``Q · diag(sign(diag R))``, which makes the factorisation unique
    and ``Q`` Haar-distributed (Mezzadri 2007). Then ``WᵀW = gain² I`` (tall/square) or
    ``WWᵀ = gain² I`` (wide).

    Convolution kernels ``(out, in, kh, kw)``: with ``conv="delta"`` (default) the
    delta-orthogonal kernel of Xiao et al. 2018 — ``gain · Q`` (``out × in``, as above) at the
    centre tap and zeros elsewhere; with stride 1, "same" padding and ``out >= in`` channels
    the layer is then an isometry (times gain) of every input image, so signals propagate
    isometrically through deep CNNs. With ``out < in`` ``Q`` has orthonormal rows and the layer
    is a projection; odd kernel sizes are required. ``conv="flatten"`` orthogonalises the
    kernel flattened to ``(out, in·kh·kw)`` instead, as ``torch.nn.init.orthogonal_`` does.
    References: Saxe et al. 2014, "Exact solutions to the nonlinear dynamics of learning in deep
    linear neural networks", ICLR; Xiao et al. 2018, "Dynamical Isometry and a Mean Field Theory
    of CNNs", ICML.
    """
    scale = nonnegative("gain", gain)
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"orthogonal needs a weight shape with at least 2 dimensions, got {shape}")
    if conv not in CONV_MODES:
        raise ValueError(f"conv must be one of {', '.join(CONV_MODES)}, got {conv!r}")
    if len(shape) > 2 and conv == "delta":
        return _delta(shape, rng, scale)
    return scale * _haar(shape[0], math.prod(shape[1:]), rng).reshape(shape)


@registry.initializers.register("scaled_orthogonal")
def scaled_orthogonal(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo, gain: float = 1.0
) -> np.ndarray:
    """Orthogonal weights with entries of variance gain², the counterpart of normal(std=gain).

    ``W = gain · √max(rows, cols) · Q`` with ``Q`` Haar (semi-)orthogonal as in
    :func:`orthogonal` (convolutions: flattened to ``(out, in·kh·kw)``), so ``WᵀW`` or ``WWᵀ``
    is ``gain² · max(rows, cols) · I`` and the mean squared entry is exactly ``gain²``. Under
    NTK parameterization (forward multiplier ``w_std/√fan_in``) this is the orthogonal
    initialization of Huang, Du & Xu 2021, "On the Neural Tangent Kernel of Deep Networks with
    Orthogonal Initialization" (IJCAI), beside the Gaussian ``normal(std=1)`` of Jacot et al.
    """
    scale = nonnegative("gain", gain)
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"scaled_orthogonal needs a weight shape with at least 2 dimensions, "
                         f"got {shape}")
    rows, cols = shape[0], math.prod(shape[1:])
    return (scale * math.sqrt(max(rows, cols)) * _haar(rows, cols, rng)).reshape(shape)


@registry.initializers.register("delta_orthogonal")
def delta_orthogonal(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo, gain: float = 1.0
) -> np.ndarray:
    """Delta-orthogonal (Xiao et al. 2018): an orthogonal matrix at the kernel's centre tap.

    ``W[:, :, kh//2, kw//2] = gain · Q`` with ``Q`` Haar (semi-)orthogonal ``(out, in)`` and all
    other taps zero; dense layers get ``gain · Q`` (the same as :func:`orthogonal`).
    Reference: Xiao et al. 2018, "Dynamical Isometry and a Mean Field Theory of CNNs: How to
    Train 10,000-Layer Vanilla Convolutional Neural Networks", ICML.
    """
    return orthogonal(shape, rng, layer=layer, gain=gain, conv="delta")


def _standard_truncnorm(alpha: float, beta: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of N(0, 1) truncated to ``[alpha, beta]``, exactly, by rejection (Robert 1995).

    The proposal is whichever of three accepts more often, so every draw costs O(1) however far
    the interval lies in a tail: N(0, 1) itself (rate ``Z = Φ(β) − Φ(α)``); U(α, β), accepted
    with probability ``exp((ρ² − z²)/2)`` where ``ρ`` is the point of ``[α, β]`` nearest 0
    (rate ``Z √(2π) e^{ρ²/2} / (β − α)``); and, for ``α ≥ 0``, ``α + Exp(λ)`` with
    ``λ = (α + √(α² + 4))/2``, accepted with probability ``exp(−(z − λ)²/2)`` when ``z ≤ β``
    (rate ``λ e^{λα − λ²/2} √(2π) Z``). The rates share ``Z``, so the choice needs no ``Φ``.
    """
    if beta <= 0:  # the left tail is the mirror image of the right one
        return -_standard_truncnorm(-beta, -alpha, n, rng)
    lam = (alpha + math.sqrt(alpha * alpha + 4.0)) / 2.0
    if alpha < 0:
        proposal = "uniform" if beta - alpha < math.sqrt(2 * math.pi) else "normal"
    else:  # log rates of uniform and exponential, without the common factor √(2π) Z
        uniform_wins = alpha * alpha / 2 - math.log(beta - alpha) > (
            math.log(lam) + lam * alpha - lam * lam / 2)
        proposal = "uniform" if uniform_wins else "exponential"
    rho2 = max(alpha, 0.0) ** 2
    accepted: list[np.ndarray] = []
    remaining = n
    while remaining > 0:
        size = 2 * remaining + 16  # every proposal accepts more than ~40% of its draws
        if proposal == "normal":
            z = rng.standard_normal(size)
            keep = (z >= alpha) & (z <= beta)
        elif proposal == "uniform":
            z = rng.uniform(alpha, beta, size)
            keep = rng.random(size) <= np.exp((rho2 - z * z) / 2)
        else:
            z = alpha + rng.exponential(1.0 / lam, size)
            keep = (z <= beta) & (rng.random(size) <= np.exp(-((z - lam) ** 2) / 2))
        accepted.append(z[keep][:remaining])
        remaining -= accepted[-1].size
    return np.concatenate(accepted) if accepted else np.empty(0)


@registry.initializers.register("truncated_normal")
def truncated_normal(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo,
    mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
) -> np.ndarray:
    """Truncated Gaussian: W_ij ~ N(mean, std²) conditioned on a ≤ W_ij ≤ b.

    ``a`` and ``b`` are absolute bounds (not in units of ``std``), as in
    ``torch.nn.init.trunc_normal_``; with ``α = (a − mean)/std``, ``β = (b − mean)/std`` and
    ``Z = Φ(β) − Φ(α)`` the draws have density ``φ((w − mean)/std) / (std · Z)`` on ``[a, b]``,
    mean ``mean + std (φ(α) − φ(β)) / Z`` and variance
    ``std² [1 + (α φ(α) − β φ(β)) / Z − ((φ(α) − φ(β)) / Z)²]``. Sampled exactly by rejection
    (Robert 1995, "Simulation of truncated normal variables", Statistics and Computing), so it
    stays exact however far ``[a, b]`` lies in a tail, where inverse-CDF sampling loses precision.
    """
    mu, sigma = real("mean", mean), positive("std", std)
    lo, hi = real("a", a), real("b", b)
    if not lo < hi:
        raise ValueError(f"truncated_normal needs a < b, got a={a!r}, b={b!r}")
    z = _standard_truncnorm((lo - mu) / sigma, (hi - mu) / sigma, math.prod(shape), rng)
    # mean + std·z can round past a bound by an ulp
    return np.clip(mu + sigma * z, lo, hi).reshape(shape)


@registry.initializers.register("lecun_uniform")
def lecun_uniform(shape: Shape, rng: np.random.Generator, *, layer: LayerInfo) -> np.ndarray:
    """LeCun uniform (LeCun et al. 1998): W_ij ~ U(±√(3 / fan_in)), variance 1 / fan_in.

    The uniform counterpart of :func:`lecun_normal` (``B = √3 σ``, ``σ = 1/√fan_in``).
    Reference: LeCun et al. 1998, "Efficient BackProp". Equals
    ``torch.nn.init.kaiming_uniform_(nonlinearity="linear")`` and
    ``jax.nn.initializers.lecun_uniform``.
    """
    fan_in, _ = compute_fans(shape)
    bound = math.sqrt(3.0 / fan_in)
    return rng.uniform(-bound, bound, size=shape)


@registry.initializers.register("sparse")
def sparse(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo,
    sparsity: float = 0.1, std: float = 0.01,
) -> np.ndarray:
    """Sparse (Martens 2010): ⌈sparsity·rows⌉ zeros in each column, the other weights N(0, std²).

    For a dense ``(rows, cols)`` weight every column (the outgoing weights of one input) gets
    ``⌈sparsity · rows⌉`` zeros at rows chosen uniformly at random, independently per column;
    the other entries are i.i.d. ``N(0, std²)``. Convolution kernels are rejected, as in torch.
    Reference: Martens 2010, "Deep learning via Hessian-free optimization", ICML.
    As ``torch.nn.init.sparse_(sparsity=sparsity, std=std)``.
    """
    shape = tuple(shape)
    if len(shape) != 2:
        raise ValueError(f"sparse fills dense 2-D weights only (as torch.nn.init.sparse_), "
                         f"got shape {shape}")
    frac, sigma = real("sparsity", sparsity), nonnegative("std", std)
    if not 0.0 <= frac <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity!r}")
    rows, _ = shape
    n_zeros = math.ceil(frac * rows)  # torch's count, floating-point rounding included
    w = rng.normal(0.0, sigma, size=shape)
    # The first n_zeros rows of an independent random permutation of each column.
    zero_rows = np.argsort(rng.random(shape), axis=0)[:n_zeros]
    np.put_along_axis(w, zero_rows, 0.0, axis=0)
    return w


@registry.initializers.register("identity")
@registry.initializers.register("eye")
def identity(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo, gain: float = 1.0
) -> np.ndarray:
    """Identity: W = gain · I (ones on the main diagonal); the Dirac kernel for convolutions.

    Dense ``(rows, cols)`` weights: ``W_ij = gain`` if ``i = j``, else 0, for rectangular
    shapes too, as ``torch.nn.init.eye_`` (times ``gain``); the layer passes its first
    ``min(rows, cols)`` inputs through. Convolution kernels ``(out, in, kh, kw)``:
    ``W[i, i, kh//2, kw//2] = gain`` for ``i < min(out, in)`` and zero elsewhere, as
    ``torch.nn.init.dirac_`` (times ``gain``), so a stride-1 convolution with "same" padding
    copies its first ``min(out, in)`` channels; odd kernel sizes are required. Deterministic:
    ``rng`` is not used.
    """
    scale = nonnegative("gain", gain)
    shape = tuple(shape)
    compute_fans(shape)  # validates the shape
    return centre_tap(shape, scale * np.eye(*shape[:2]), "identity")
