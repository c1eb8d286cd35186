"""The task contract: what a data loader or generator returns.

A task loader is a function registered in :data:`ntkbench.registry.tasks`::

    @register_task("my_task")
    def my_task(*, seed: int, n_train: int = 256, noise: float = 0.0) -> Dataset:
        '''One line shown by `ntkbench list tasks`.'''

- ``seed`` is supplied by ntkbench (the trial seed); every random draw must come from it.
- Keyword-only arguments after ``seed`` are the task's parameters, set from YAML
  (``data.params`` in ``tasks/*.yaml`` or ``params:`` in the suite). Raise ``ValueError`` with
  a clear message for invalid values.
- Return a :class:`Dataset`. Inputs are float arrays ``(n, d)``; regression targets are float
  ``(n, out_dim)``; classification targets are integer labels ``(n,)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ntkbench import registry


@dataclass(frozen=True, eq=False)
class PixelGrid:
    """Every pixel of an image-valued task: the network inputs of all ``H·W`` pixels in raster
    order, ``x`` of shape ``(H·W, d)``, and ``shape = (H, W)``. Training can then regularise
    the predicted full image (``training.tv_weight``)."""

    x: np.ndarray
    shape: tuple[int, int]

    def __post_init__(self) -> None:
        h, w = self.shape
        if h < 2 or w < 2:
            raise ValueError(f"a pixel grid needs at least 2×2 pixels, got {h}×{w}")
        if self.x.ndim != 2 or len(self.x) != h * w:
            raise ValueError(f"a pixel grid of shape {self.shape} needs {h * w} input rows, "
                             f"got an array of shape {self.x.shape}")


@dataclass(frozen=True)
class Dataset:
    """Train/test arrays of one task instance (``grid``: every pixel, for image tasks)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    kind: str = "regression"  # or "classification"
    n_classes: int | None = None
    input_shape: tuple[int, ...] | None = None
    grid: PixelGrid | None = None
    # The box ((lo, hi) per input dimension) the inputs are drawn from uniformly, when they
    # are: it enables the residual's Fourier bands (ntkbench.ntk.fourier).
    domain: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("regression", "classification"):
            raise ValueError(f"kind must be 'regression' or 'classification', got {self.kind!r}")
        for name in ("x_train", "x_test"):
            if getattr(self, name).ndim != 2:
                raise ValueError(f"{name} must be 2-D (n, d), got {getattr(self, name).shape}")
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError("inputs and targets must have the same number of samples")
        if self.kind == "classification" and not self.n_classes:
            raise ValueError("classification datasets need n_classes")
        if self.domain is not None and (
                len(self.domain) != self.x_train.shape[1]
                or not all(len(b) == 2 and b[0] < b[1] for b in self.domain)):
            raise ValueError(f"domain must give (lo, hi), lo < hi, for each of the "
                             f"{self.x_train.shape[1]} input dimensions, got {self.domain!r}")
        if self.grid is not None and self.grid.x.shape[1] != self.x_train.shape[1]:
            raise ValueError(f"the pixel grid has inputs of dimension {self.grid.x.shape[1]}, "
                             f"the data {self.x_train.shape[1]}")

    @property
    def in_dim(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def out_dim(self) -> int:
        if self.kind == "classification":
            return int(self.n_classes)  # type: ignore[arg-type]
        return int(self.y_train.shape[1])

    @property
    def n_train(self) -> int:
        return int(len(self.x_train))

    def target_matrix(self, y: np.ndarray) -> np.ndarray:
        """Targets ``y`` of this task as an ``(n, out_dim)`` float matrix (one-hot rows for
        classification), as kernels, probes and calibrations take them."""
        if self.kind == "classification":
            return np.eye(self.out_dim)[np.asarray(y, dtype=int)]
        return np.asarray(y, dtype=np.float64).reshape(len(y), -1)


def register_task(name: str | None = None) -> Callable[[Callable], Callable]:
    """Decorator that registers ``fn(*, seed, **params) -> Dataset`` as a task loader."""
    return registry.tasks.register(name)
