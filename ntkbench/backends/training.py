"""The training loop every backend shares: checkpoints, minibatch order and divergence.

A backend supplies a :class:`Stepper` (its loss and its optimizer update); this module decides
when each is called, so every backend logs the same steps, sees the same minibatches and stops
on the same divergence rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np

from ntkbench.config import TrainingConfig


class Stepper(Protocol):
    """One backend's view of a training run.

    ``full_loss()`` returns the loss on the whole training set at the current parameters (and may
    keep what it needs to take a full-batch step from there); ``step(batch)`` updates the
    parameters once, from the gradient of the full loss just evaluated (``batch is None``) or of
    the minibatch ``batch`` (an index array), and returns that minibatch loss (``None`` for a
    full-batch step).
    """

    def full_loss(self) -> float: ...

    def step(self, batch: np.ndarray | None) -> float | None: ...


class TrainLog:
    """What training produced: the train-loss series and whether/when it diverged.

    ``losses`` is the full-batch train loss at every step when ``exact`` (full-batch
    training), otherwise at the checkpoint steps in ``loss_steps``.
    """

    def __init__(self, exact: bool) -> None:
        self.exact = exact
        self.losses: list[float] = []
        self.loss_steps: list[int] = []
        self.diverged_at: int | None = None


#: Smoothing of :func:`total_variation`: differences well above it count as |Δ|, and the
#: gradient exists at a flat region (where |Δ| has none).
TV_EPS = 1e-3


def total_variation(out, shape: tuple[int, int]):
    """Smoothed isotropic total variation of a predicted image, for torch or JAX arrays.

    ``out`` holds the network's outputs on every pixel in raster order, ``(H·W, C)``; with
    ``u = out.reshape(H, W, C)``::

        TV(u) = mean_{i<H−1, j<W−1, c} √((u[i+1,j,c] − u[i,j,c])² + (u[i,j+1,c] − u[i,j,c])² + ε²)

    with ``ε = TV_EPS`` (Rudin, Osher & Fatemi 1992, smoothed as is usual for gradient
    methods). A constant image scores ``ε``.
    """
    h, w = shape
    u = out.reshape(h, w, -1)
    d_row = u[1:, :-1] - u[:-1, :-1]
    d_col = u[:-1, 1:] - u[:-1, :-1]
    return ((d_row * d_row + d_col * d_col + TV_EPS * TV_EPS) ** 0.5).mean()


def check_tv(training: TrainingConfig, grid: object) -> None:
    """``ValueError`` when ``training.tv_weight`` is set for a task without a pixel grid."""
    if training.tv_weight and grid is None:
        raise ValueError(f"training.tv_weight = {training.tv_weight:g} regularises a predicted "
                         f"image, but this task's data is not an image on a pixel grid (use it "
                         f"with image_regression)")


def minibatch_indices(n: int, batch_size: int, steps: int, seed: int) -> list[np.ndarray]:
    """Index arrays of ``steps`` minibatches: shuffled epochs without replacement."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    out: list[np.ndarray] = []
    while len(out) < steps:
        perm = rng.permutation(n)
        out.extend(perm[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size))
    return out[:steps]


def is_full_batch(training: TrainingConfig, n: int) -> bool:
    return training.optimizer == "gd" or training.batch_size in (None, n)


def run_training(stepper: Stepper, n: int, training: TrainingConfig, *, seed: int,
                 checkpoints: list[int],
                 on_checkpoint: Callable[[int, float], None]) -> TrainLog:
    """Run ``training.steps`` updates of ``stepper`` on ``n`` training examples.

    ``on_checkpoint(step, full_train_loss)`` is called at every step listed in ``checkpoints``
    (0 = before any update) with the parameters after ``step`` updates. Training stops as
    diverged when the loss is not finite or exceeds ``diverge_factor`` × the loss at step 0.
    """
    full_batch = is_full_batch(training, n)
    batches = None if full_batch else minibatch_indices(n, training.batch_size,
                                                        training.steps, seed)
    checkpoint_set = set(checkpoints)
    log = TrainLog(exact=full_batch)
    limit = math.inf  # set from the loss at step 0
    for step in range(training.steps + 1):
        if full_batch or step == 0 or step in checkpoint_set:
            # Minibatch steps see only a batch: the full train loss is measured at
            # checkpoints, and at step 0 so that steps-to-fraction has its reference.
            log.losses.append(stepper.full_loss())
            if not full_batch:
                log.loss_steps.append(step)
        if step in checkpoint_set:
            on_checkpoint(step, log.losses[-1])
        if step == 0:
            limit = training.diverge_factor * max(log.losses[0], 1e-30)
        if not math.isfinite(log.losses[-1]) or log.losses[-1] > limit:
            log.diverged_at = step
            return log
        if step == training.steps:
            break
        batch_loss = stepper.step(None if full_batch else batches[step])
        if batch_loss is not None and not math.isfinite(batch_loss):
            log.diverged_at = step
            return log
    return log
