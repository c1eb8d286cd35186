"""The NTK-optimisation objective ``J_λ`` and its minimisation over one kernel hyper-parameter.

An initializer with a scalar hyper-parameter ``l`` (a receptive-field length-scale, a depth
mixing coefficient) induces a family of kernels ``K(l)`` on the training inputs. A pure scale
``K(c) = c·K_0`` is not a useful ``l``: ``J_λ = (1−λ)a/c − λbc`` then decreases without bound
in ``c``, so normalise the kernel (e.g. to unit trace) when ``l`` also changes its size.
Two metrics of :mod:`ntkbench.ntk.metrics` pull ``l`` in different directions: a small
``yᵀK⁻¹y`` promises good generalisation
(:func:`~ntkbench.ntk.metrics.rkhs_norm_complexity`, Arora et al. 2019), a large ``yᵀKy`` a
fast initial decrease of the training loss (:func:`~ntkbench.ntk.metrics.loss_decrease_rate`).
The objective trades them off:

    ``J_λ(K, y) = (1 − λ) · tr(Yᵀ (K + reg·I)⁻¹ Y) − λ · tr(YᵀKY)``,  ``λ ∈ [0, 1]``,

with ``Y`` the targets as an ``(n, k)`` matrix (``yᵀK⁻¹y − …`` for a 1-D ``y``). The ridge
``reg`` enters the inverse only: it regularises the generalisation term, while the training
speed is that of the kernel itself. No ``1/n`` is applied, so
``J_λ = n · ((1 − λ) · rkhs_norm_complexity(K, y, reg=reg) − λ · loss_decrease_rate(K, y))``;
the factor changes no minimiser.

:func:`minimize_j_lambda` minimises ``l ↦ J_λ(K(l), y)`` by a safeguarded Newton method, using
``K'(l)`` and ``K''(l)`` when the caller has them (:func:`j_lambda_derivatives`) and central
finite differences of ``J`` otherwise. Linear algebra uses a Cholesky factor of
``K + reg·I`` and solves with it, never an explicit inverse (a failed factorisation is how a
kernel that is not positive definite is detected); all arithmetic is float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from ntkbench.checks import integer, nonnegative, positive, real
from ntkbench.ntk.metrics import _square_kernel, _targets

__all__ = ["NewtonResult", "j_lambda", "j_lambda_derivatives", "minimize_j_lambda"]

_EPS = float(np.finfo(np.float64).eps)
# Central-difference step relative to |l|: ε^(1/4) balances the O(h²) truncation and O(ε/h²)
# round-off errors of J″, whose sign picks the kind of step; J′ is then good to about √ε.
_FD_STEP = _EPS ** (1 / 4)
_ARMIJO = 1e-4  # sufficient-decrease constant of the backtracking line search
_MAX_STEP = 10.0  # longest step, relative to max(1, |l|)


class NewtonResult(NamedTuple):
    """Outcome of :func:`minimize_j_lambda`.

    Attributes:
        value: the last iterate ``l*``, the minimiser when ``converged``.
        objective: ``J_λ(K(l*), y)``.
        iterations: number of steps taken (accepted iterates after ``l0``).
        converged: whether a stopping test was met (see :func:`minimize_j_lambda`); ``False``
            after ``max_iter`` steps or when no step could decrease ``J``.
        history: ``(l, J)`` for ``l0`` and every accepted iterate, in order; ``J`` decreases
            along it (the last, converged step may change it by round-off).
        message: why the method stopped, in words.
    """

    value: float
    objective: float
    iterations: int
    converged: bool
    history: tuple[tuple[float, float], ...]
    message: str


def j_lambda(K: ArrayLike, y: ArrayLike, lam: float, *, reg: float = 0.0) -> float:
    """The objective ``J_λ(K, y) = (1 − λ) · tr(Yᵀ (K + reg·I)⁻¹ Y) − λ · tr(YᵀKY)``.

    ``λ = 0`` is the generalisation proxy ``yᵀK⁻¹y`` alone, ``λ = 1`` minus the training-speed
    term ``yᵀKy`` alone (see the module docstring for both and their normalisation).

    Args:
        K: kernel ``(n, n)``, symmetric (it is symmetrised to ``(K + Kᵀ)/2``).
        y: targets ``(n,)`` or ``(n, k)``.
        lam: trade-off weight ``λ ∈ [0, 1]``.
        reg: ridge ``≥ 0`` added to the diagonal of ``K`` in the inverse term.

    Returns:
        ``J_λ``; ``inf`` when ``λ < 1`` and ``K + reg·I`` is not numerically positive definite
        (its Cholesky factorisation fails; pass ``reg > 0``); ``nan`` if ``K`` has NaN or inf
        entries.
    """
    K, Y, lam, reg = _checked(K, y, lam, reg)
    return _j(_evaluate(K, Y, lam, reg)[0], lam)


def j_lambda_derivatives(K: ArrayLike, dK: ArrayLike, d2K: ArrayLike, y: ArrayLike, lam: float,
                         *, reg: float = 0.0) -> tuple[float, float, float]:
    """``J_λ`` and its first two derivatives along a kernel family ``K(l)``.

    With ``A = (K + reg·I)⁻¹ Y`` and primes for ``d/dl``:

    - ``d tr(YᵀK⁻¹Y)/dl = −tr(Aᵀ K' A)``,
    - ``d² tr(YᵀK⁻¹Y)/dl² = 2 tr((K'A)ᵀ K⁻¹ (K'A)) − tr(Aᵀ K'' A)``
      (from ``(K⁻¹)' = −K⁻¹K'K⁻¹``),
    - ``d tr(YᵀKY)/dl = tr(YᵀK'Y)`` and ``d² tr(YᵀKY)/dl² = tr(YᵀK''Y)``,

    combined with the weights ``1 − λ`` and ``−λ``. One Cholesky factor ``K + reg·I = LLᵀ``
    gives ``tr(YᵀK⁻¹Y) = ‖L⁻¹Y‖_F²``, ``A = L⁻ᵀL⁻¹Y`` and ``tr((K'A)ᵀK⁻¹K'A) = ‖L⁻¹K'A‖_F²``
    by three solves with the factor.

    Args:
        K: kernel ``K(l)``, ``(n, n)``.
        dK: its derivative ``K'(l)``, the same shape.
        d2K: its second derivative ``K''(l)``, the same shape.
        y: targets ``(n,)`` or ``(n, k)``.
        lam: trade-off weight ``λ ∈ [0, 1]``.
        reg: ridge ``≥ 0`` in the inverse term, as in :func:`j_lambda`.

    Returns:
        ``(J, dJ/dl, d²J/dl²)``; ``(inf, nan, nan)`` when ``λ < 1`` and ``K + reg·I`` is not
        numerically positive definite; ``nan`` everywhere if an input has NaN or inf entries.
    """
    K, Y, lam, reg = _checked(K, y, lam, reg)
    dK, d2K = (_symmetric(_same_as(K, D, name)) for D, name in ((dK, "dK"), (d2K, "d2K")))
    if not all(np.all(np.isfinite(M)) for M in (K, dK, d2K)):
        return math.nan, math.nan, math.nan
    (inverse, linear), _, factor = _evaluate(K, Y, lam, reg)
    d_linear, d2_linear = float(np.sum(Y * (dK @ Y))), float(np.sum(Y * (d2K @ Y)))
    if lam == 1.0:
        return -linear, -d_linear, -d2_linear
    if factor is None:
        return _j((inverse, linear), lam), math.nan, math.nan
    A = np.linalg.solve(factor.T, np.linalg.solve(factor, Y))
    dK_A = dK @ A
    d_inverse = -float(np.sum(A * dK_A))
    d2_inverse = (2.0 * float(np.sum(np.linalg.solve(factor, dK_A) ** 2))
                  - float(np.sum(A * (d2K @ A))))
    return (_j((inverse, linear), lam), (1 - lam) * d_inverse - lam * d_linear,
            (1 - lam) * d2_inverse - lam * d2_linear)


def minimize_j_lambda(kernel: Callable[[float], ArrayLike], y: ArrayLike, lam: float, l0: float,
                      *, derivatives: Callable[[float], tuple[ArrayLike, ArrayLike, ArrayLike]]
                      | None = None, bounds: tuple[float, float] = (0.0, math.inf),
                      tol: float = 1e-8, max_iter: int = 50, reg: float = 0.0) -> NewtonResult:
    """Minimise ``J(l) = J_λ(K(l), y)`` over a scalar kernel hyper-parameter by Newton's method.

    Each iteration proposes a step from the current ``l``:

    - ``J'' > 0``: the Newton step ``−J'/J''``.
    - ``J'' ≤ 0`` (a non-convex region, where the Newton step would climb): a downhill step
      ``−sign(J') · r``, with ``r`` twice the previous step's length (``|l|/10``, or ``0.1`` at
      ``l = 0``, on the first iteration), so that a long concave stretch is crossed in a few
      steps. ``J' = 0`` there is a maximum or an inflection point: the method stops
      (``converged=False``).

    The step is capped at ``10 · max(1, |l|)``, and a step that would leave the open interval
    ``bounds`` is cut to half the distance to the bound, so every iterate stays strictly
    inside. Converged if that step is short, ``|Δl| ≤ tol · max(1, |l|)``, or if ``J'' > 0`` and
    ``J'`` is so small that the Newton model predicts a decrease ``J'² / (2J'')`` below the
    round-off of ``J`` (``64 · n · ε`` times the magnitudes of its two terms): the step is then
    taken as it is and the method stops. Otherwise the step is halved (backtracking) until it
    gives the sufficient decrease ``J(l + s) ≤ J(l) + 10⁻⁴ · s · J'(l)``; if no step longer
    than ``tol · max(1, |l|)`` does, the method stops (``converged=False``) with ``l``
    unchanged. So ``J`` decreases at every iterate but the converged one, which moves ``l``
    by less than the tolerance or ``J`` by less than its round-off. A minimum on a bound is
    approached by the halving and reported as converged "at the lower/upper bound".

    Derivatives: with ``derivatives`` given, ``J'`` and ``J''`` come from
    :func:`j_lambda_derivatives`, exactly. With ``derivatives=None`` they are central finite
    differences ``J' ≈ (J(l+h) − J(l−h)) / 2h`` and ``J'' ≈ (J(l+h) − 2J(l) + J(l−h)) / h²``
    with the relative step ``h = ε^(1/4) · |l|`` (``≈ 1.2·10⁻⁴ · |l|``; ``ε^(1/4)`` at
    ``l = 0``), shrunk to stay inside ``bounds``. That step balances truncation against
    round-off in ``J''``, keeping its sign reliable even where ``|J|`` is much larger than
    ``J'' l²``; the price is an ``O(h²)`` bias in ``J'``, which moves the minimiser by about
    ``10⁻⁹`` relative on a smooth family, more where ``J``'s own round-off is large. It costs
    two extra kernel evaluations per iteration.

    Args:
        kernel: ``l ↦ K(l)``, a symmetric ``(n, n)`` kernel; it is evaluated at trial points.
        y: targets ``(n,)`` or ``(n, k)``.
        lam: trade-off weight ``λ ∈ [0, 1]`` of :func:`j_lambda`.
        l0: starting point, strictly inside ``bounds``.
        derivatives: ``l ↦ (K(l), K'(l), K''(l))``, or ``None`` for finite differences.
        bounds: open interval ``(lower, upper)`` for ``l``; either end may be infinite. The
            default ``(0, inf)`` suits scales and length-scales.
        tol: step tolerance ``> 0``, relative to ``max(1, |l|)``.
        max_iter: maximum number of steps, ``≥ 1``.
        reg: ridge ``≥ 0`` of the inverse term, as in :func:`j_lambda`.

    Returns:
        :class:`NewtonResult`.

    Raises:
        ValueError: for ``λ`` outside ``[0, 1]``, bounds that are not an interval, ``l0`` not
            strictly inside them, a kernel whose shape does not fit ``y``, or a ``J`` that is
            not finite at ``l0``.
    """
    lam = _weight(lam)
    reg = nonnegative("reg", reg)
    tol = positive("tol", tol)
    max_iter = integer("max_iter", max_iter, minimum=1)
    lower, upper = _interval(bounds)
    x = real("l0", l0)
    if not lower < x < upper:
        raise ValueError(f"l0 must lie strictly inside bounds ({lower:g}, {upper:g}), got {l0!r}")
    targets: list[np.ndarray] = []  # y, checked against the first kernel's size

    def objective(at: float) -> tuple[float, float]:
        """``J(at)`` and the round-off level of ``J`` there."""
        K = _kernel_value(kernel(at), at, "kernel")
        if not targets:
            targets.append(_targets(y, K.shape[0]))
        if K.shape[0] != targets[0].shape[0]:
            raise ValueError(f"kernel({at!r}) has shape {K.shape}, but y has "
                             f"{targets[0].shape[0]} rows")
        terms, noise, _ = _evaluate(K, targets[0], lam, reg)
        return _j(terms, lam), noise

    def slope_and_curvature(at: float, value: float) -> tuple[float, float]:
        if derivatives is not None:
            K, dK, d2K = _derivative_values(derivatives, at)
            return j_lambda_derivatives(K, dK, d2K, targets[0], lam, reg=reg)[1:]
        h = min(_FD_STEP * abs(at) if at != 0.0 else _FD_STEP, (at - lower) / 2,
                (upper - at) / 2)
        above, below = objective(at + h)[0], objective(at - h)[0]
        return (above - below) / (2 * h), (above - 2 * value + below) / (h * h)

    J, noise = objective(x)
    if not math.isfinite(J):
        raise ValueError(f"J_λ is not finite at l0={l0!r} (J={J}): K(l0) + reg·I must be "
                         f"positive definite (try reg > 0 or another l0)")
    history = [(x, J)]
    last_step = 0.0
    for _ in range(max_iter):
        slope, curvature = slope_and_curvature(x, J)
        if not (math.isfinite(slope) and math.isfinite(curvature)):
            return _result(history, False, f"J' or J'' is not finite at l={x:.17g} "
                           f"(J'={slope}, J''={curvature}); is K(l) singular near there?")
        limit = tol * max(1.0, abs(x))
        round_off = curvature > 0 and slope * slope / (2 * curvature) <= noise
        if curvature > 0:
            step = -slope / curvature
        elif slope == 0.0:
            return _result(history, False, f"J' = 0 and J'' = {curvature:.3g} ≤ 0 at "
                           f"l={x:.17g}: a maximum or an inflection point, not a minimum; "
                           f"start from another l0")
        else:
            length = 2 * abs(last_step) if last_step else (0.1 * abs(x) if x else 0.1)
            step = -math.copysign(length, slope)
        # Cap the step: a Newton step is unbounded where J'' is tiny.
        step = _inside(x, math.copysign(min(abs(step), _MAX_STEP * max(1.0, abs(x))), step),
                       lower, upper)
        if abs(step) <= limit or round_off:
            J_new = objective(x + step)[0]
            if not math.isfinite(J_new):
                return _result(history, False, f"J is not finite at l={x + step:.17g}, a step "
                               f"within tolerance of l={x:.17g}")
            x += step
            history.append((x, J_new))
            reason = ("the Newton decrease J'²/(2J'') is below the round-off of J" if round_off
                      else f"|Δl| = {abs(step):.3g} ≤ tol · max(1, |l|)")
            return _result(history, True, _converged_message(reason, x, lower, upper, limit))
        t = 1.0
        while True:
            J_new, noise_new = objective(x + t * step)
            if J_new <= J + _ARMIJO * t * step * slope:  # False for nan
                break
            t /= 2
            if t * abs(step) <= limit:
                return _result(history, False, f"no step longer than tol · max(1, |l|) "
                               f"decreases J from l={x:.17g} (J'={slope:.3g}, "
                               f"J''={curvature:.3g}): l is optimal to round-off (loosen tol) "
                               f"or the derivatives do not match J")
        last_step = t * step
        x, J, noise = x + last_step, J_new, noise_new
        history.append((x, J))
    return _result(history, False, f"not converged after max_iter={max_iter} steps "
                   f"(last |Δl| = {abs(last_step):.3g}, tolerance {tol * max(1.0, abs(x)):.3g})")


def _evaluate(K: np.ndarray, Y: np.ndarray, lam: float, reg: float
              ) -> tuple[tuple[float, float], float, np.ndarray | None]:
    """``((tr YᵀK̃⁻¹Y, tr YᵀKY), round-off level of J, Cholesky factor of K̃ or None)``."""
    if not np.all(np.isfinite(K)):
        return (math.nan, math.nan), math.nan, None
    linear = float(np.sum(Y * (K @ Y)))
    factor = None
    inverse = 0.0
    if lam < 1.0:  # λ = 1 needs no inverse; skipping it also avoids 0 · inf = nan
        try:
            factor = np.linalg.cholesky(K + reg * np.eye(K.shape[0]))
        except np.linalg.LinAlgError:
            inverse = math.inf
        else:
            inverse = float(np.sum(np.linalg.solve(factor, Y) ** 2))
    noise = 64 * K.shape[0] * _EPS * ((1 - lam) * inverse + lam * abs(linear))
    return (inverse, linear), noise, factor


def _j(terms: tuple[float, float], lam: float) -> float:
    inverse, linear = terms
    return (1 - lam) * inverse - lam * linear


def _checked(K: ArrayLike, y: ArrayLike, lam: float, reg: float
             ) -> tuple[np.ndarray, np.ndarray, float, float]:
    K = _symmetric(_square_kernel(K))
    return K, _targets(y, K.shape[0]), _weight(lam), nonnegative("reg", reg)


def _weight(lam: float) -> float:
    lam = real("lam", lam)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1] (0: generalisation term yᵀK⁻¹y only, "
                         f"1: training-speed term yᵀKy only), got {lam!r}")
    return lam


def _interval(bounds: tuple[float, float]) -> tuple[float, float]:
    try:
        lower, upper = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a pair (lower, upper) of numbers, got {bounds!r}"
                         ) from None
    if not lower < upper:  # also rejects nan
        raise ValueError(f"bounds must satisfy lower < upper, got {bounds!r}")
    return lower, upper


def _symmetric(K: np.ndarray) -> np.ndarray:
    return (K + K.T) / 2


def _same_as(K: np.ndarray, D: ArrayLike, name: str) -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    if D.shape != K.shape:
        raise ValueError(f"{name} must have the kernel's shape {K.shape}, got {D.shape}")
    return D


def _kernel_value(K: ArrayLike, at: float, source: str) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] == 0:
        raise ValueError(f"{source}({at!r}) must return a non-empty square matrix (n, n), "
                         f"got shape {K.shape}")
    return _symmetric(K)


def _derivative_values(derivatives: Callable[[float], tuple[ArrayLike, ArrayLike, ArrayLike]],
                       at: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = derivatives(at)
    if len(values) != 3:
        raise ValueError(f"derivatives({at!r}) must return (K, dK, d2K), got {len(values)} "
                         f"values")
    K = _kernel_value(values[0], at, "derivatives")
    return K, _same_as(K, values[1], "dK"), _same_as(K, values[2], "d2K")


def _inside(x: float, step: float, lower: float, upper: float) -> float:
    """``step``, or half the way to the bound it would reach or cross."""
    if x + step >= upper:
        return (upper - x) / 2
    if x + step <= lower:
        return (lower - x) / 2
    return step


def _converged_message(reason: str, x: float, lower: float, upper: float, limit: float) -> str:
    for side, bound in (("lower", lower), ("upper", upper)):
        if abs(x - bound) <= 2 * limit:  # where halving toward a bound stops
            return f"converged at the {side} bound {bound:g}: {reason}"
    return f"converged: {reason}"


def _result(history: list[tuple[float, float]], converged: bool, message: str) -> NewtonResult:
    x, J = history[-1]
    return NewtonResult(float(x), float(J), len(history) - 1, converged,
                        tuple((float(a), float(b)) for a, b in history), message)
