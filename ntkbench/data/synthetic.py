"""Synthetic regression tasks with known ground truth: a 1-D oscillation and 2-D targets.

Both families probe the *spectral bias* of a network through its Neural Tangent Kernel: under
(linearised) gradient descent the residual along the NTK eigenvector with eigenvalue λ decays as
``exp(-η λ t)``, and high-frequency functions sit in the small-λ part of the spectrum, so how fast
an initializer lets a network fit an oscillatory target is a direct read-out of its kernel.

- :func:`oscillatory_1d` — a multi-component sinusoid on ``[-1, 1]`` whose frequency can be tied
  to the number of samples (the oscillatory 1-D benchmark of the GO-initialization study, where
  denser sampling comes with a more oscillatory target). The exact formula is ntkbench's own.
- :func:`targets_2d` — named functions on the unit square (:data:`TARGETS`), in the spirit of the
  2-D experiments of Kopitkov & Indelman, "Neural Spectrum Alignment: Empirical Study",
  ICANN 2020 (arXiv:1910.08720), which track how the NTK's top eigenfunctions align with targets
  of different frequency content.

Every random draw comes from ``np.random.default_rng(seed)``; arrays are float64; targets have
shape ``(n, 1)``. Noise, when asked for, is added to the *training* targets only, so the test
metric always measures the distance to the clean ground truth.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ntkbench.checks import integer, nonnegative, positive, real
from ntkbench.data.base import Dataset, register_task
from ntkbench.registry import suggest

# Amplitudes of the three components of the 1-D ground truth; the normaliser makes the
# long-run variance Σ a_i²/2 of the sum equal to one.
_OSC_AMPLITUDES = (1.0, 0.5, 0.25)
_OSC_SCALE = 1.0 / np.sqrt(sum(a * a for a in _OSC_AMPLITUDES) / 2.0)


def oscillatory_1d_target(x: np.ndarray, frequency: float) -> np.ndarray:
    """Ground truth of :func:`oscillatory_1d`, elementwise on any array ``x``.

    .. math::

        f(x) = c\\,\\big[\\sin(\\pi F x) + 0.5 \\sin(2.3\\,\\pi F x + 0.5)
               + 0.25 \\cos(4.1\\,\\pi F x)\\big],
        \\qquad c = (1.3125 / 2)^{-1/2} = 1/\\sqrt{0.65625},

    with ``F = frequency``. The dominant component ``sin(πFx)`` completes exactly ``F`` cycles
    over ``[-1, 1]`` (an interval of length 2); the two weaker ones have the incommensurate
    frequencies ``2.3 F`` and ``4.1 F`` so the sum never repeats on the interval. ``c`` makes the
    variance over many cycles ``c² · (1 + 0.25 + 0.0625) / 2 = 1``.

    Args:
        x: inputs of any shape.
        frequency: ``F > 0``, cycles of the dominant component over ``[-1, 1]``.

    Returns:
        ``f(x)``, same shape as ``x``, float64.
    """
    t = np.pi * float(frequency) * np.asarray(x, dtype=np.float64)
    a0, a1, a2 = _OSC_AMPLITUDES
    return _OSC_SCALE * (a0 * np.sin(t) + a1 * np.sin(2.3 * t + 0.5) + a2 * np.cos(4.1 * t))


def oscillatory_1d_frequency(n_train: int, samples_per_cycle: float) -> float:
    """Frequency giving ``samples_per_cycle`` training points per dominant cycle:
    ``F = n_train / samples_per_cycle``.

    ``n_train`` points drawn uniformly on ``[-1, 1]`` spread over ``F`` cycles of ``sin(πFx)``,
    so on average each cycle holds ``n_train / F = samples_per_cycle`` of them; doubling the
    data doubles the frequency. Nyquist: below 2 samples per cycle the dominant component is
    aliased even on a regular grid.
    """
    return float(n_train) / float(samples_per_cycle)


@register_task("oscillatory_1d")
def oscillatory_1d(
    *,
    seed: int,
    frequency: float = 4.0,
    n_samples: int = 256,
    train_fraction: float = 0.8,
    noise: float = 0.0,
    samples_per_cycle: float | None = None,
) -> Dataset:
    """Highly oscillatory 1-D regression on [-1, 1]; frequency can grow with the sample count.

    Ground truth: :func:`oscillatory_1d_target`,
    ``f(x) = c·[sin(πFx) + 0.5·sin(2.3πFx + 0.5) + 0.25·cos(4.1πFx)]``, ``c = 1/√0.65625``.

    Sampling: ``n_samples`` inputs are drawn i.i.d. uniform on ``[-1, 1]`` (not a grid, so the
    test points are not interleaved at a fixed offset with the training points); a random
    permutation puts the first ``n_train = round(train_fraction · n_samples)`` into the training
    set and the rest into the test set. Train and test targets are ``f(x)``; the training
    targets additionally get i.i.d. ``N(0, noise²)`` noise.

    Frequency: ``F = frequency`` unless ``samples_per_cycle`` is given, in which case it
    *replaces* ``frequency`` with ``F = n_train / samples_per_cycle``
    (:func:`oscillatory_1d_frequency`): a fixed number of training points per dominant cycle, so
    more samples mean a more oscillatory target, and sweeping ``n_samples`` alone sweeps both.

    Draw order from ``default_rng(seed)``: inputs, permutation, noise (always drawn, then scaled,
    so ``noise`` changes nothing but the training targets).

    Args:
        seed: trial seed.
        frequency: ``F > 0``, cycles of the dominant component over ``[-1, 1]``.
        n_samples: total number of points, ``≥ 4``.
        train_fraction: share of points used for training, in ``(0, 1)``.
        noise: standard deviation ``σ ≥ 0`` of the noise on training targets.
        samples_per_cycle: if set (``> 0``), training points per dominant cycle; overrides
            ``frequency``.

    Returns:
        Dataset with ``x`` of shape ``(n, 1)`` and ``y`` of shape ``(n, 1)``, float64.
    """
    n_samples = integer("n_samples", n_samples, minimum=4)
    train_fraction = real("train_fraction", train_fraction)
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be strictly between 0 and 1, got {train_fraction}")
    n_train = int(round(train_fraction * n_samples))
    if not 1 <= n_train <= n_samples - 1:
        raise ValueError(
            f"train_fraction={train_fraction} with n_samples={n_samples} leaves "
            f"{n_train} training and {n_samples - n_train} test points; both need at least one"
        )
    noise = nonnegative("noise", noise)
    if samples_per_cycle is None:
        freq = positive("frequency", frequency)
    else:
        freq = oscillatory_1d_frequency(
            n_train, positive("samples_per_cycle", samples_per_cycle))

    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n_samples, 1))
    order = rng.permutation(n_samples)
    eps = rng.standard_normal((n_train, 1))
    x_train, x_test = x[order[:n_train]], x[order[n_train:]]
    return Dataset(
        x_train=x_train,
        y_train=oscillatory_1d_target(x_train, freq) + noise * eps,
        x_test=x_test,
        y_test=oscillatory_1d_target(x_test, freq),
        kind="regression",
        input_shape=None,
        domain=((-1.0, 1.0),),
    )


def _smooth(x: np.ndarray) -> np.ndarray:
    """``sin(2π x₁) + sin(2π x₂)`` — one cycle per axis; variance 1 on the unit square."""
    return np.sin(2 * np.pi * x[:, 0]) + np.sin(2 * np.pi * x[:, 1])


def _multi_frequency(x: np.ndarray) -> np.ndarray:
    """``½ Σ_{k∈{1,2,4,8}} [sin(2πk x₁) + cos(2πk x₂)]`` — octave-spaced frequencies, variance 1."""
    ks = np.array([1.0, 2.0, 4.0, 8.0])
    phase = 2 * np.pi * x[:, :, None] * ks
    return 0.5 * (np.sin(phase[:, 0]).sum(axis=1) + np.cos(phase[:, 1]).sum(axis=1))


def _discontinuous(x: np.ndarray) -> np.ndarray:
    """4×4 checkerboard: ``+1`` where ``⌊4x₁⌋ + ⌊4x₂⌋`` is even, else ``−1`` (jumps of 2)."""
    cells = np.floor(4 * x[:, 0]) + np.floor(4 * x[:, 1])
    return np.where(cells % 2 == 0, 1.0, -1.0)


def _radial_chirp(x: np.ndarray) -> np.ndarray:
    """``sin(2π · 10 · r²)``, ``r = ‖x − (½, ½)‖`` — local frequency ``20 r`` grows with radius."""
    r2 = (x[:, 0] - 0.5) ** 2 + (x[:, 1] - 0.5) ** 2
    return np.sin(2 * np.pi * 10.0 * r2)


def _gaussian_bump(x: np.ndarray) -> np.ndarray:
    """``exp(−‖x − (0.35, 0.6)‖² / (2 · 0.15²))`` — one smooth, off-centre, localised bump."""
    d2 = (x[:, 0] - 0.35) ** 2 + (x[:, 1] - 0.6) ** 2
    return np.exp(-d2 / (2 * 0.15**2))


TARGETS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "smooth": _smooth,
    "multi_frequency": _multi_frequency,
    "discontinuous": _discontinuous,
    "radial_chirp": _radial_chirp,
    "gaussian_bump": _gaussian_bump,
}
"""Named ground truths of :func:`targets_2d`: ``f(x)`` maps inputs ``(n, 2)`` to values ``(n,)``.

Each function's docstring gives its exact formula. With ``x`` uniform on ``[0, 1]²``:
``smooth`` is low-frequency; ``multi_frequency`` mixes 1, 2, 4 and 8 cycles per axis;
``discontinuous`` has jumps that no finite frequency band captures; ``radial_chirp`` sweeps from
near-constant at the centre to about 14 cycles per unit length at the corners; ``gaussian_bump``
is smooth but localised.
"""


@register_task("targets_2d")
def targets_2d(
    *,
    seed: int,
    target: str = "smooth",
    n_train: int = 512,
    n_test: int = 1024,
    noise: float = 0.0,
) -> Dataset:
    """Regression of a named 2-D function on X ~ Uniform([0, 1]²) (Kopitkov & Indelman).

    ``n_train + n_test`` inputs are drawn i.i.d. uniform on the unit square from
    ``default_rng(seed)``, the first ``n_train`` for training; then the training noise is drawn.
    Targets are ``f(x)`` with ``f = TARGETS[target]`` (formulas in :data:`TARGETS`); the
    training targets additionally get i.i.d. ``N(0, noise²)`` noise, the test targets stay clean.
    The inputs do not depend on ``target`` or ``noise``, so every target of one seed is fitted
    on the same points.

    Reference: D. Kopitkov and V. Indelman, "Neural Spectrum Alignment: Empirical Study",
    ICANN 2020, arXiv:1910.08720.

    Args:
        seed: trial seed.
        target: a key of :data:`TARGETS`.
        n_train: number of training points, ``≥ 1``.
        n_test: number of test points, ``≥ 1``.
        noise: standard deviation ``σ ≥ 0`` of the noise on training targets.

    Returns:
        Dataset with ``x`` of shape ``(n, 2)`` and ``y`` of shape ``(n, 1)``, float64.
    """
    if not isinstance(target, str) or target not in TARGETS:
        hint = suggest(str(target), list(TARGETS))
        if "did you mean" in hint:  # otherwise suggest() already lists the valid names
            hint += f" (valid: {', '.join(sorted(TARGETS))})"
        raise ValueError(f"unknown 2-D target {target!r}{hint}")
    n_train = integer("n_train", n_train, minimum=1)
    n_test = integer("n_test", n_test, minimum=1)
    noise = nonnegative("noise", noise)
    fn = TARGETS[target]

    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(n_train + n_test, 2))
    eps = rng.standard_normal((n_train, 1))
    x_train, x_test = x[:n_train], x[n_train:]
    return Dataset(
        x_train=x_train,
        y_train=fn(x_train)[:, None] + noise * eps,
        x_test=x_test,
        y_test=fn(x_test)[:, None],
        kind="regression",
        input_shape=None,
        domain=((0.0, 1.0), (0.0, 1.0)),
    )
