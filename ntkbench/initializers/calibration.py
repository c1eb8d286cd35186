"""Calibration of data-dependent initializers (LSUV, GO, MetaInit, NTK-optimised receptive
fields): the contract, the calibration batch and the probe into the trial's backend.

A data-dependent initializer is an ordinary initializer function (its draws are the
data-independent *pre-init*) that also carries a ``calibrate`` attribute::

    def my_init(shape, rng, *, layer, tol: float = 0.1) -> np.ndarray:
        '''Pre-init draw of one layer.'''
        ...

    def _calibrate(model, weights, batch, probe, *, rng, tol):
        ...                        # forward passes / gradients through ``probe``
        return new_weights, {"scales": [...], "iterations": 3}

    my_init.calibrate = _calibrate

``calibrate(model, weights, batch, probe, *, rng, **params) -> (weights, chosen)`` receives

- ``model``: the :class:`~ntkbench.models.MLP` or :class:`~ntkbench.models.CNN`;
- ``weights``: the pre-init weights of every layer (float64 ``{"W", "b"}`` dicts);
- ``batch``: a :class:`Batch`, the whole training set — a method that works on a minibatch
  draws it with ``rng`` (and declares a ``batch_size`` parameter);
- ``probe``: a :class:`Probe`, the trial's backend evaluating the network at any weights;
- ``rng``: a generator private to the calibration (:func:`calibration_rng`);
- the initializer's parameters, all of them, defaults filled in.

It returns the calibrated weights (same shapes) and a JSON-serialisable dict of what it chose,
which the trial record keeps as ``initializer_calibration``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Weights = list[dict[str, np.ndarray]]

#: The second word of the calibration's seed sequence; layers use ``[seed, layer_index]``.
CALIBRATION_STREAM = 0xCA11B


@dataclass(frozen=True, eq=False)
class Batch:
    """The data a calibration may look at: the training set.

    Attributes:
        x: inputs ``(n, in_dim)``, float64.
        y: targets ``(n, out_dim)``, float64 (one-hot rows for classification).
        labels: the targets as the training loss takes them (integer class labels for
            classification, ``y`` for regression); pass these to :class:`Probe` methods.
        kind: ``"regression"`` or ``"classification"``.
    """

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    kind: str

    def __len__(self) -> int:
        return len(self.x)

    def sample(self, size: int, rng: np.random.Generator) -> Batch:
        """``size`` rows drawn without replacement (all rows, in order, if ``size >= n``)."""
        if size >= len(self):
            return self
        rows = np.sort(rng.choice(len(self), size, replace=False))
        return Batch(self.x[rows], self.y[rows], self.labels[rows], self.kind)


class Probe:
    """The trial's backend as a calibration sees it: a network evaluated at given weights.

    Every method builds the backend's network with ``weights`` (float64, on the trial's device)
    and returns float64 numpy; none keeps state, so a calibration may call them with any
    candidate weights. ``evaluations`` counts the networks built.

    Args:
        network: ``weights -> backend Network`` (see :mod:`ntkbench.backends`).
        loss: the trial's training loss, ``"mse"`` or ``"cross_entropy"``.
    """

    def __init__(self, network: Callable[[Weights], Any], loss: str) -> None:
        self._network = network
        self.loss = loss
        self.evaluations = 0

    def _net(self, weights: Weights) -> Any:
        self.evaluations += 1
        return self._network(weights)

    def layer_outputs(self, weights: Weights, x: np.ndarray) -> list[tuple[np.ndarray,
                                                                            np.ndarray]]:
        """Per layer ``(z, h)``: pre-activation and activation (``h = z`` for the readout)."""
        return self._net(weights).layer_outputs(x)

    def outputs(self, weights: Weights, x: np.ndarray) -> np.ndarray:
        """Network outputs ``(n, out_dim)``."""
        return self._net(weights).predict(x)

    def loss_gradients(self, weights: Weights, x: np.ndarray, labels: np.ndarray) -> Weights:
        """``∇_θ L(x, labels)`` of the training loss, in the weights' format."""
        return self._net(weights).loss_gradients(x, labels, self.loss)

    def loss_hvp(self, weights: Weights, x: np.ndarray, labels: np.ndarray,
                 v: Weights) -> Weights:
        """The Hessian-vector product ``(∇²_θ L) v``."""
        return self._net(weights).loss_hvp(x, labels, self.loss, v)


def backend_probe(model: Any, backend: str = "torch", device: str = "cpu",
                  loss: str = "mse") -> Probe:
    """A :class:`Probe` on a registered backend (``device`` already resolved or ``"cpu"``)."""
    from ntkbench.backends import get_backend

    module = get_backend(backend)
    device = module.resolve_device(device)
    return Probe(lambda w: module.Network(model, w, dtype="float64", device=device), loss)


def calibration_rng(seed: int) -> np.random.Generator:
    """The calibration's generator, independent of every layer's ``[seed, index]`` stream."""
    return np.random.default_rng(np.random.SeedSequence([seed, CALIBRATION_STREAM]))


def is_data_dependent(fn: Callable) -> bool:
    """Whether the initializer function carries a ``calibrate`` step."""
    return callable(getattr(fn, "calibrate", None))


def run_calibration(fn: Callable, model: Any, weights: Weights, batch: Batch, probe: Probe,
                    *, seed: int, params: Mapping[str, Any],
                    defaults: Mapping[str, Any]) -> tuple[Weights, dict[str, Any]]:
    """Run ``fn.calibrate`` and check what it returns.

    Returns the calibrated weights and the chosen values, with ``calibration_time_s`` and
    ``probe_evaluations`` added.
    """
    t0 = time.perf_counter()
    out = fn.calibrate(model, weights, batch, probe, rng=calibration_rng(seed),
                       **{**defaults, **params})
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
        raise TypeError(f"{getattr(fn, '__name__', fn)!r}.calibrate must return "
                        f"(weights, chosen: dict), got {type(out).__name__}")
    new, chosen = out
    if len(new) != len(weights):
        raise ValueError(f"calibration returned {len(new)} layers, expected {len(weights)}")
    checked = []
    for i, (old, layer) in enumerate(zip(weights, new, strict=True)):
        pair = {}
        for key in ("W", "b"):
            arr = np.asarray(layer[key], dtype=np.float64)
            if arr.shape != old[key].shape:
                raise ValueError(f"calibration returned {key} of shape {arr.shape} for layer "
                                 f"{i}, expected {old[key].shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"calibration returned non-finite {key} for layer {i}")
            pair[key] = arr
        checked.append(pair)
    chosen = {**_plain(chosen), "calibration_time_s": time.perf_counter() - t0,
              "probe_evaluations": probe.evaluations}
    return checked, chosen


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into JSON types (non-finite → None)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
