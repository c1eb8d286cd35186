"""Metrics of a Neural Tangent Kernel: alignment with the targets, spectrum, and drift.

Every function is a pure function of numpy arrays and returns a plain Python ``float``.
Notation shared by all of them:

- ``K``: a kernel Gram matrix ``(n, n)``, symmetric positive semi-definite (an NTK on ``n``
  training inputs); the distances also accept ``(n1, n2)`` cross-kernels.
- ``y``: targets ``(n,)`` or ``(n, k)``; a 1-D ``y`` is treated as the column ``Y`` of shape
  ``(n, 1)``, so ``yyᵀ`` below means ``Y Yᵀ``.
- ``⟨A, B⟩_F = Σ_ij A_ij B_ij`` and ``‖A‖_F = √⟨A, A⟩_F``.
- ``H = I − 11ᵀ/n``, the centring matrix.
- ``λ_1 ≥ … ≥ λ_n`` the eigenvalues of ``K`` and ``u_1, …, u_n`` their unit eigenvectors.

All arithmetic is in float64 whatever the input dtype. Metrics that need eigenvalues first
symmetrise ``K`` to ``(K + Kᵀ)/2``; :func:`spectrum` computes the eigendecomposition once, and
every spectral metric accepts either a kernel or that :class:`Spectrum`, so one ``eigh`` per
kernel serves all of them (:func:`ntk_summary` does exactly that).

A metric whose formula divides by zero (a zero kernel, zero targets, a centred matrix that
vanishes) returns ``nan``; a condition number of a singular kernel is ``inf``, and so is the
complexity ``yᵀK⁻¹y`` of targets that reach the kernel's null space.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from ntkbench.checks import integer, nonnegative

__all__ = [
    "Spectrum",
    "centered_alignment",
    "condition_number",
    "effective_rank",
    "kernel_distance",
    "kernel_target_alignment",
    "lambda_max",
    "lambda_min",
    "loss_decrease_rate",
    "ntk_summary",
    "power_law_exponent",
    "relative_drift",
    "rkhs_norm_complexity",
    "spectrum",
    "stable_rank",
    "top_k_alignment",
]


class Spectrum(NamedTuple):
    """Eigendecomposition ``K = U diag(λ) Uᵀ`` of a symmetric kernel, largest eigenvalue first.

    Attributes:
        eigenvalues: ``(n,)`` float64, non-increasing; round-off is zeroed (see :func:`spectrum`).
        eigenvectors: ``(n, n)`` float64, orthonormal; column ``i`` belongs to ``eigenvalues[i]``.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray


def spectrum(K: ArrayLike) -> Spectrum:
    """Eigendecomposition of the symmetrised kernel ``(K + Kᵀ)/2``, eigenvalues descending.

    Eigenvalues with ``|λ_i| ≤ n · ε · max_j |λ_j|`` (``ε`` the float64 machine epsilon) are set
    to exactly ``0``. That is the backward-error scale of a symmetric eigensolver (the same
    tolerance ``numpy.linalg.matrix_rank`` uses), so a rank-deficient PSD kernel reports
    ``λ_min = 0`` rather than ``±1e-17``. Negative eigenvalues larger than that are kept: they
    mean ``K`` is not PSD, and hiding them would hide the fact.

    Args:
        K: kernel ``(n, n)``, any real dtype, finite.

    Returns:
        :class:`Spectrum` with ``eigenvalues (n,)`` and ``eigenvectors (n, n)``.

    Raises:
        ValueError: if ``K`` is not a non-empty square matrix or has NaN / inf entries.
    """
    K = _square_kernel(K)
    if not np.all(np.isfinite(K)):
        raise ValueError("kernel K has NaN or inf entries (did the network diverge?); "
                         "its spectrum is undefined")
    eigenvalues, eigenvectors = np.linalg.eigh((K + K.T) / 2)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    tol = K.shape[0] * np.finfo(np.float64).eps * np.max(np.abs(eigenvalues))
    eigenvalues = np.where(np.abs(eigenvalues) <= tol, 0.0, eigenvalues)
    return Spectrum(np.ascontiguousarray(eigenvalues), np.ascontiguousarray(eigenvectors))


def kernel_target_alignment(K: ArrayLike, y: ArrayLike) -> float:
    """Kernel-target alignment ``A(K, y) = ⟨K, yyᵀ⟩_F / (‖K‖_F ‖yyᵀ‖_F)``, in ``[-1, 1]``.

    Cristianini, Shawe-Taylor, Elisseeff & Kandola, "On kernel-target alignment", NeurIPS 2002.
    It is the cosine between ``K`` and the ideal kernel ``yyᵀ``; ``1`` when ``K ∝ yyᵀ``.

    Args:
        K: kernel ``(n, n)``.
        y: targets ``(n,)`` or ``(n, k)``.

    Returns:
        The alignment; ``nan`` if ``K`` or ``y`` is zero.
    """
    K = _square_kernel(K)
    Y = _targets(y, K.shape[0])
    # ⟨K, YYᵀ⟩ = Σ Y ⊙ KY and ‖YYᵀ‖_F = ‖YᵀY‖_F: O(n²k), never forming the n×n target kernel.
    return _cosine(float(np.sum(Y * (K @ Y))), np.linalg.norm(K), np.linalg.norm(Y.T @ Y))


def centered_alignment(K: ArrayLike, y: ArrayLike) -> float:
    """Centred kernel alignment ``A_c = ⟨HKH, HyyᵀH⟩_F / (‖HKH‖_F ‖HyyᵀH‖_F)``.

    Cortes, Mohri & Rostamizadeh, "Algorithms for learning kernels based on centered alignment",
    JMLR 13, 2012. ``H = I − 11ᵀ/n`` removes the mean of the features and of the targets, so
    ``A_c`` is unchanged by ``K → K + c·11ᵀ`` and ``y → y + d`` (a constant offset that
    inflates the uncentred :func:`kernel_target_alignment`).

    Args:
        K: kernel ``(n, n)``.
        y: targets ``(n,)`` or ``(n, k)``.

    Returns:
        The alignment in ``[-1, 1]``; ``nan`` if ``HKH`` or ``HyyᵀH`` is zero, that is, if ``K``
        is a constant matrix or every target column is constant (a centred norm at or below
        ``n · ε`` times the uncentred one counts as zero: it is round-off).
    """
    K = _square_kernel(K)
    n = K.shape[0]
    Y = _targets(y, n)
    Kc = K - K.mean(axis=0, keepdims=True) - K.mean(axis=1, keepdims=True) + K.mean()
    Yc = Y - Y.mean(axis=0, keepdims=True)
    tol = n * np.finfo(np.float64).eps
    norm_k, norm_y = np.linalg.norm(Kc), np.linalg.norm(Yc.T @ Yc)
    if norm_k <= tol * np.linalg.norm(K) or norm_y <= tol * np.linalg.norm(Y.T @ Y):
        return math.nan
    # HYYᵀH = Yc Ycᵀ, so the same O(n²k) contraction as the uncentred alignment.
    return _cosine(float(np.sum(Yc * (Kc @ Yc))), norm_k, norm_y)


def top_k_alignment(K: ArrayLike | Spectrum, phi: ArrayLike, k: int) -> float:
    """Alignment of ``phi`` with the top-``k`` eigenspace: ``cos α = ‖U_kᵀ φ‖_F / ‖φ‖_F``.

    Kopitkov & Indelman, "Neural Spectrum Alignment: Empirical Study", ICANN 2020. ``U_k`` is the
    ``(n, k)`` matrix of eigenvectors of the ``k`` largest eigenvalues of ``K``; ``cos α`` is the
    fraction of ``φ``'s norm that lies in the directions gradient descent on the linearised
    network fits fastest. It is ``1`` when ``φ`` lies in that span and ``0`` when orthogonal.
    When ``λ_k = λ_{k+1}`` the span is not unique and the value depends on the eigensolver.

    Kopitkov & Indelman track three choices of ``φ``: the targets ``y`` (how well the kernel
    suits the task), the network outputs ``f`` (what the network has learnt so far) and the
    residual ``y − f`` (what is left to fit; its top-``k`` share falling during training means
    the easy directions are fitted first). The function accepts any of them.

    Args:
        K: kernel ``(n, n)`` or its precomputed :class:`Spectrum`.
        phi: targets ``y``, network outputs ``f`` or residuals ``y − f``; ``(n,)`` or ``(n, m)``.
        k: number of leading eigenvectors, ``≥ 1``; ``k > n`` is clipped to ``n`` (giving ``1``).

    Returns:
        ``cos α`` in ``[0, 1]``; ``nan`` if ``phi`` is zero.
    """
    spec = _as_spectrum(K)
    n = spec.eigenvalues.shape[0]
    if int(k) != k or k < 1:
        raise ValueError(f"top_k_alignment needs an integer k ≥ 1, got k={k!r}")
    Phi = _targets(phi, n)
    norm_phi = float(np.linalg.norm(Phi))
    if norm_phi == 0.0:
        return math.nan
    projected = float(np.linalg.norm(spec.eigenvectors[:, : min(int(k), n)].T @ Phi))
    return min(projected / norm_phi, 1.0)  # ‖U_kᵀφ‖ ≤ ‖φ‖ exactly; only round-off exceeds it


def lambda_max(K: ArrayLike | Spectrum) -> float:
    """Largest eigenvalue ``λ_1`` of the symmetrised kernel.

    It bounds the usable step size: gradient descent on the linearised network with the loss
    ``‖f − y‖² / (2n)`` converges iff ``η < 2n / λ_1`` (Jacot, Gabriel & Hongler, "Neural
    Tangent Kernel", NeurIPS 2018; Lee et al., NeurIPS 2019).

    Args:
        K: kernel ``(n, n)`` or its precomputed :class:`Spectrum`.
    """
    return float(_as_spectrum(K).eigenvalues[0])


def lambda_min(K: ArrayLike | Spectrum) -> float:
    """Smallest eigenvalue ``λ_n`` of the symmetrised kernel, round-off zeroed (:func:`spectrum`).

    It sets the slowest convergence rate of the linearised dynamics (Jacot et al. 2018); ``0``
    means a direction of the targets the kernel cannot fit.

    Args:
        K: kernel ``(n, n)`` or its precomputed :class:`Spectrum`.
    """
    return float(_as_spectrum(K).eigenvalues[-1])


def condition_number(K: ArrayLike | Spectrum) -> float:
    """Condition number ``κ = λ_1 / λ_n`` of the symmetrised kernel.

    Eigenvalues are first zeroed below ``n · ε · max|λ|`` (:func:`spectrum`), so a
    rank-deficient kernel gives ``inf`` rather than a huge number made of round-off.

    Args:
        K: kernel ``(n, n)`` or its precomputed :class:`Spectrum`.

    Returns:
        ``κ ≥ 1``; ``inf`` if ``λ_n ≤ 0 < λ_1`` (singular or indefinite); ``nan`` if
        ``λ_1 ≤ 0`` (a zero or negative semi-definite matrix is no kernel to condition).
    """
    eigenvalues = _as_spectrum(K).eigenvalues
    top, bottom = float(eigenvalues[0]), float(eigenvalues[-1])
    if top <= 0.0:
        return math.nan
    if bottom <= 0.0:
        return math.inf
    return top / bottom


def effective_rank(K: ArrayLike | Spectrum) -> float:
    """Effective rank ``erank(K) = exp(−Σ_i p_i log p_i)`` with ``p_i = |λ_i| / Σ_j |λ_j|``.

    Roy & Vetterli, "The effective rank: a measure of effective dimensionality", EUSIPCO 2007.
    They define it on singular values; for a symmetric ``K`` those are ``|λ_i|``, which equal
    ``λ_i`` for a PSD kernel. ``0 · log 0 = 0``. It lies in ``[1, rank K]``: ``n`` for ``c·I_n``,
    ``1`` for a rank-one kernel.

    Args:
        K: kernel ``(n, n)`` or its precomputed :class:`Spectrum`.

    Returns:
        The effective rank; ``nan`` for the zero matrix.
    """
    magnitudes = np.abs(_as_spectrum(K).eigenvalues)
    total = magnitudes.sum()
    if total == 0.0:
        return math.nan
    p = magnitudes[magnitudes > 0] / total
    return float(np.exp(-np.sum(p * np.log(p))))


def stable_rank(K: ArrayLike | Spectrum) -> float:
    """Stable rank ``srank(K) = ‖K‖_F² / ‖K‖_2² = Σ_i λ_i² / max_i λ_i²``.

    Rudelson & Vershynin, "Sampling from large matrices: an approach through geometric
    functional analysis", J. ACM 54(4), 2007. A rank that ignores small eigenvalues smoothly
    and never exceeds ``rank K``: ``n`` for ``c·I_n``, ``1`` for a rank-one kernel, and close to
    ``1`` whenever ``λ_1`` dominates. The squares use ``|λ_i|`` (singular values), so an
    indefinite matrix is measured like its absolute value.

    Args:
        K: kernel ``(n, n)`` or its precomputed :class:`Spectrum`.

    Returns:
        The stable rank in ``[1, rank K]``; ``nan`` for the zero matrix.
    """
    magnitudes = np.abs(_as_spectrum(K).eigenvalues)
    top = float(magnitudes.max())
    if top == 0.0:
        return math.nan
    # Divide before squaring: λ_i / λ_max ≤ 1 cannot overflow where λ_i² could.
    return float(np.sum((magnitudes / top) ** 2))


def power_law_exponent(K: ArrayLike | Spectrum, *, index_range: tuple[int, int] | None = None,
                       rel_floor: float = 1e-10) -> float:
    """Decay exponent ``α`` of the eigen-spectrum, fitted as ``λ_i ≈ C · i^(−α)``.

    ``α`` is minus the least-squares slope of ``log λ_i`` against ``log i`` (``i = 1, …, n``
    counts eigenvalues from the largest). It is the exponent of the power-law spectra studied in
    neural-kernel analyses: Bietti & Mairal, "On the inductive bias of neural tangent kernels",
    NeurIPS 2019 (decay of the NTK eigenvalues on the sphere); Bordelon, Canatar & Pehlevan,
    "Spectrum dependent learning curves in kernel regression and wide neural networks", ICML
    2020, and Canatar, Bordelon & Pehlevan, Nature Communications 12, 2021 (learning curves set
    by the spectral decay). A larger ``α`` means a kernel concentrated on fewer directions.

    Indices used: ``i`` runs over ``index_range = (i_min, i_max)`` (1-based, inclusive; default
    all of ``1 … n``; an ``i_max`` past ``n`` is clipped to ``n``) and keeps only the
    eigenvalues ``λ_i > rel_floor · λ_1``. Eigenvalues are sorted, so by default the fit runs
    from ``i = 1`` to the last eigenvalue above the floor: the floor drops the null space and
    round-off (and negative eigenvalues), whose logarithms would otherwise dominate the fit.
    The fit is exact, ``α`` recovered to round-off, when the spectrum is an exact power law.

    Args:
        K: kernel ``(n, n)`` or its precomputed :class:`Spectrum`.
        index_range: ``(i_min, i_max)`` with ``1 ≤ i_min ≤ i_max``; ``None`` means ``(1, n)``.
            Restrict it to fit one regime of a spectrum that is a power law only in part.
        rel_floor: relative floor ``≥ 0``; eigenvalues at or below ``rel_floor · λ_1`` are left
            out. ``0`` keeps every positive eigenvalue.

    Returns:
        ``α``; ``nan`` if fewer than 3 eigenvalues are usable (or ``λ_1 ≤ 0``).
    """
    rel_floor = nonnegative("power_law_exponent rel_floor", rel_floor)
    eigenvalues = _as_spectrum(K).eigenvalues
    n = eigenvalues.shape[0]
    if index_range is None:
        i_min, i_max = 1, n
    else:
        if len(index_range) != 2:
            raise ValueError(f"power_law_exponent index_range must be (i_min, i_max), "
                             f"got {index_range!r}")
        i_min = integer("power_law_exponent index_range i_min", index_range[0], minimum=1)
        i_max = integer("power_law_exponent index_range i_max", index_range[1], minimum=i_min)
    top = float(eigenvalues[0])
    if top <= 0.0:
        return math.nan
    index = np.arange(1, n + 1)
    usable = (index >= i_min) & (index <= i_max) & (eigenvalues > rel_floor * top)
    if np.count_nonzero(usable) < 3:
        return math.nan
    x, z = np.log(index[usable]), np.log(eigenvalues[usable])
    x_c = x - x.mean()
    return float(-np.sum(x_c * (z - z.mean())) / np.sum(x_c * x_c))


def loss_decrease_rate(K: ArrayLike, y: ArrayLike) -> float:
    """Initial rate of decrease of the squared loss under kernel gradient flow, ``tr(YᵀKY) / n``.

    The linearised network (Jacot, Gabriel & Hongler, NeurIPS 2018; Lee et al., NeurIPS 2019)
    trained by gradient flow ``dθ/dt = −η ∇_θ L`` on ``L = ‖f − Y‖_F² / (2n)`` moves its outputs
    on the training set as ``df/dt = −(η/n) K (f − Y)``, so

        ``−dL/dt = (η/n²) · tr((f − Y)ᵀ K (f − Y))``.

    With ``f_0 = 0`` this is ``(η/n) · loss_decrease_rate(K, y)`` at ``t = 0``: the metric is the
    initial rate with the learning-rate factor ``η/n`` taken out, so it compares kernels, not
    step sizes. For a 1-D ``y`` it is ``yᵀKy / n``. For a network whose initial outputs are not
    zero, pass the residual ``y − f_0`` as ``y``.

    Args:
        K: kernel ``(n, n)``.
        y: targets ``(n,)`` or ``(n, k)`` (or residuals ``y − f_0``).

    Returns:
        ``tr(YᵀKY) / n``, ``≥ 0`` for a PSD kernel; ``0`` for zero targets.
    """
    K = _square_kernel(K)
    Y = _targets(y, K.shape[0])
    return float(np.sum(Y * (K @ Y))) / K.shape[0]


def rkhs_norm_complexity(K: ArrayLike | Spectrum, y: ArrayLike, *, reg: float = 0.0,
                         rtol: float | None = None) -> float:
    """Complexity of the targets in the kernel's RKHS, ``tr(Yᵀ (K + reg·I)⁻¹ Y) / n``.

    For a 1-D ``y`` and ``reg = 0`` this is ``yᵀK⁻¹y / n``, the squared RKHS norm of the
    minimum-norm interpolant of the targets, divided by ``n``. Arora, Du, Hu, Li & Wang,
    "Fine-grained analysis of optimization and generalization for overparameterized two-layer
    neural networks", ICML 2019, bound the test error of the trained network by
    ``√(2 yᵀ H⁻¹ y / n) = √(2 · rkhs_norm_complexity)`` (``H`` their NTK Gram matrix, labels in
    ``[−1, 1]``): smaller means targets the kernel finds easier to generalise from.

    Computed from the eigendecomposition, with ``μ_i = λ_i + reg``, as
    ``Σ_i ‖u_iᵀY‖² / μ_i / n`` over the directions with ``μ_i > rtol · max_j |μ_j|``. The
    others (the null space, and negative eigenvalues of an indefinite ``K``) are left out when
    the targets do not reach them, that is, when ``Y = (K + reg·I) W`` holds up to round-off
    for ``W = Σ_{μ_i kept} u_i u_iᵀY / μ_i``: ``‖Y − (K + reg·I) W‖_F ≤ rtol · max_j |μ_j| ·
    ‖W‖_F`` (the pseudo-inverse, so targets in the range of a singular ``K`` are fine).
    Otherwise the result is ``inf``: no function of the RKHS interpolates the targets.
    Pass ``reg > 0`` (kernel ridge) for a finite value.

    Args:
        K: kernel ``(n, n)`` or its precomputed :class:`Spectrum`.
        y: targets ``(n,)`` or ``(n, k)``.
        reg: ridge ``≥ 0`` added to the diagonal.
        rtol: relative tolerance of both tests above; ``None`` means ``10 · n · ε`` (``ε`` the
            float64 machine epsilon), ten times the round-off scale of :func:`spectrum`.
            Raise it (e.g. ``1e-6``) for a kernel computed in float32.

    Returns:
        The complexity ``≥ 0`` (``0`` for zero targets); ``inf`` when the targets reach a null
        direction.
    """
    reg = nonnegative("rkhs_norm_complexity reg", reg)
    spec = _as_spectrum(K)
    n = spec.eigenvalues.shape[0]
    rtol = (10 * n * np.finfo(np.float64).eps if rtol is None
            else nonnegative("rkhs_norm_complexity rtol", rtol))
    Y = _targets(y, n)
    mu = spec.eigenvalues + reg
    scale = float(np.max(np.abs(mu)))
    kept = mu > rtol * scale
    coefficients = spec.eigenvectors.T @ Y  # u_iᵀY, one row per direction
    weights = coefficients[kept] / mu[kept, None]  # coordinates of W in the eigenbasis
    # Y − (K + reg·I)W is exactly Y's part in the dropped directions; compare it with the
    # backward error of the product (K + reg·I)W, so round-off alone never gives inf.
    if np.linalg.norm(coefficients[~kept]) > rtol * scale * np.linalg.norm(weights):
        return math.inf
    return float(np.sum(coefficients[kept] * weights)) / n


def relative_drift(K_t: ArrayLike, K_0: ArrayLike) -> float:
    """Relative kernel drift ``‖K_t − K_0‖_F / ‖K_0‖_F`` from initialisation to time ``t``.

    The quantity the lazy-training regime keeps at ``O(1/√width)`` (Jacot et al. 2018;
    Lee et al., "Wide neural networks of any depth evolve as linear models", NeurIPS 2019).

    Args:
        K_t: kernel at time ``t``, ``(n1, n2)``.
        K_0: kernel at initialisation, the same shape.

    Returns:
        The drift ``≥ 0``; ``nan`` if ``K_0`` is zero.
    """
    K_t, K_0 = _same_shape(K_t, K_0)
    norm_0 = float(np.linalg.norm(K_0))
    if norm_0 == 0.0:
        return math.nan
    return float(np.linalg.norm(K_t - K_0)) / norm_0


def kernel_distance(K1: ArrayLike, K2: ArrayLike) -> float:
    """Kernel distance ``S(K1, K2) = 1 − ⟨K1, K2⟩_F / (‖K1‖_F ‖K2‖_F)``, in ``[0, 2]``.

    Fort, Dziugaite, Paul, Kharaghani, Roy & Ganguli, "Deep learning versus kernel learning: an
    empirical study of loss landscape geometry and the time evolution of the Neural Tangent
    Kernel", NeurIPS 2020. One minus the cosine between the kernels, so it ignores scale:
    ``S(aK1, bK2) = S(K1, K2)`` for ``a, b > 0`` and ``S(K, K) = 0``.

    Args:
        K1: kernel ``(n1, n2)``.
        K2: kernel, the same shape.

    Returns:
        The distance; ``nan`` if either kernel is zero.
    """
    K1, K2 = _same_shape(K1, K2)
    cosine = _cosine(float(np.sum(K1 * K2)), np.linalg.norm(K1), np.linalg.norm(K2))
    return 1.0 - cosine


def ntk_summary(K: ArrayLike, y: ArrayLike, *, ridge: float = 0.0) -> dict[str, float]:
    """All per-kernel metrics of one NTK and its targets, from a single eigendecomposition.

    Keys (values are plain ``float``; ``nan`` / ``inf`` where the metric says so):

    - ``"kernel_target_alignment"``: :func:`kernel_target_alignment`.
    - ``"centered_alignment"``: :func:`centered_alignment`.
    - ``"top1_alignment"``, ``"top10_alignment"``: :func:`top_k_alignment` with ``k = 1, 10``
      (clipped to ``n``).
    - ``"top10pct_alignment"``: :func:`top_k_alignment` with ``k = max(1, ⌊n/10 + 1/2⌋)``,
      ten percent of ``n`` rounded to the nearest integer, halves up.
    - ``"lambda_max"``, ``"lambda_min"``, ``"condition_number"``, ``"effective_rank"``.
    - ``"trace"``: ``tr K = Σ_i λ_i``.
    - ``"stable_rank"``: :func:`stable_rank`.
    - ``"power_law_exponent"``: :func:`power_law_exponent` with its defaults (all indices,
      ``rel_floor = 1e-10``).
    - ``"loss_decrease_rate"``: :func:`loss_decrease_rate`.
    - ``"rkhs_norm_complexity"``: :func:`rkhs_norm_complexity` with ``reg = ridge · λ_max``.

    A kernel with NaN or inf entries (a diverged network) gives ``nan`` for every key instead
    of raising, so a checkpoint record stays complete.

    Args:
        K: kernel ``(n, n)``.
        y: targets ``(n,)`` or ``(n, k)``.
        ridge: relative ridge of the complexity ``yᵀ(K + ridge·λ_max·I)⁻¹y/n``. A kernel
            computed with unit round-off ``ε`` cannot resolve eigenvalues below about
            ``n·ε·λ_max``, so ``ridge = n·ε`` keeps the value finite and meaningful for a
            float32 kernel; ``0`` is the exact inverse.

    Returns:
        ``dict[str, float]`` with exactly the keys above.
    """
    ridge = nonnegative("ntk_summary ridge", ridge)
    K = _square_kernel(K)
    n = K.shape[0]
    Y = _targets(y, n)
    keys = ("kernel_target_alignment", "centered_alignment", "top1_alignment",
            "top10_alignment", "top10pct_alignment", "lambda_max", "lambda_min",
            "condition_number", "effective_rank", "trace", "stable_rank",
            "power_law_exponent", "loss_decrease_rate", "rkhs_norm_complexity")
    if not np.all(np.isfinite(K)):
        return dict.fromkeys(keys, math.nan)
    spec = spectrum(K)
    return {
        "kernel_target_alignment": kernel_target_alignment(K, Y),
        "centered_alignment": centered_alignment(K, Y),
        "top1_alignment": top_k_alignment(spec, Y, 1),
        "top10_alignment": top_k_alignment(spec, Y, 10),
        "top10pct_alignment": top_k_alignment(spec, Y, max(1, (n + 5) // 10)),
        "lambda_max": lambda_max(spec),
        "lambda_min": lambda_min(spec),
        "condition_number": condition_number(spec),
        "effective_rank": effective_rank(spec),
        "trace": float(np.trace(K)),
        "stable_rank": stable_rank(spec),
        "power_law_exponent": power_law_exponent(spec),
        "loss_decrease_rate": loss_decrease_rate(K, Y),
        # With a ridge every shifted eigenvalue is positive: nothing is dropped as null.
        "rkhs_norm_complexity": rkhs_norm_complexity(
            spec, Y, reg=ridge * max(lambda_max(spec), 0.0), rtol=0.0 if ridge > 0 else None),
    }


def _square_kernel(K: ArrayLike) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] == 0:
        raise ValueError(f"kernel K must be a non-empty square matrix (n, n), got shape {K.shape}")
    return K


def band_edges(n: int) -> np.ndarray:
    """0-based rank edges ``[0, 1, 2, 4, ..., n]`` of octave bands of eigenvector ranks: band
    ``b`` holds ranks ``edges[b] .. edges[b+1] − 1`` (largest eigenvalue first)."""
    if n < 1:
        raise ValueError(f"band_edges needs n >= 1, got {n}")
    edges = [0] + [2 ** b for b in range(int(math.log2(n)) + 1) if 2 ** b < n] + [n]
    return np.array(sorted(set(edges)))


def spectral_energy(K: ArrayLike | Spectrum, phi: ArrayLike,
                    edges: ArrayLike | None = None) -> np.ndarray:
    """Energy of ``phi`` per band of the kernel's eigenvectors: ``E_b = Σ_{i∈b} ‖u_iᵀ φ‖²``.

    The spectral-bias view of training (Kopitkov & Indelman 2020; Rahaman et al. 2019): with
    ``φ`` the residual ``y − f_t`` projected on the eigenvectors of the kernel at init, a
    linearized network trained by gradient descent at rate ``η`` on ``½‖f − y‖²/n`` shrinks the
    coefficient on ``u_i`` by exactly ``(1 − η λ_i / n)`` per step, so the bands of large
    eigenvalues empty first. The energies sum to ``‖φ‖_F²`` over all bands.

    Args:
        K: kernel ``(n, n)`` or its :class:`Spectrum`.
        phi: ``(n,)`` or ``(n, m)``.
        edges: 0-based band edges (default :func:`band_edges`).
    """
    spec = _as_spectrum(K)
    n = spec.eigenvalues.shape[0]
    edges = band_edges(n) if edges is None else np.asarray(edges, dtype=int)
    coeff = np.sum((spec.eigenvectors.T @ _targets(phi, n)) ** 2, axis=1)
    return np.array([coeff[a:b].sum() for a, b in zip(edges[:-1], edges[1:], strict=True)])


def _targets(y: ArrayLike, n: int) -> np.ndarray:
    Y = np.asarray(y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[0] != n:
        raise ValueError(f"targets must have shape ({n},) or ({n}, k) to match the ({n}, {n}) "
                         f"kernel, got shape {np.shape(y)}")
    return Y


def _same_shape(A: ArrayLike, B: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    if A.shape != B.shape:
        raise ValueError(f"kernels must have the same shape, got {A.shape} and {B.shape}")
    return A, B


def _as_spectrum(K: ArrayLike | Spectrum) -> Spectrum:
    return K if isinstance(K, Spectrum) else spectrum(K)


def _cosine(inner: float, norm_a: float, norm_b: float) -> float:
    if norm_a == 0.0 or norm_b == 0.0:
        return math.nan
    # Cauchy–Schwarz bounds the cosine by 1; only round-off can step outside [-1, 1].
    return float(np.clip(inner / (norm_a * norm_b), -1.0, 1.0))
