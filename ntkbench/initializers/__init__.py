"""Weight initializers and :func:`initialize`.

The initializer contract (what a plugin author writes)::

    def my_init(shape, rng, *, layer, scale: float = 1.0) -> np.ndarray:
        '''One line that `ntkbench list initializers` shows. Formula and reference below.'''
        return rng.normal(0.0, scale / np.sqrt(layer.fan_in), size=shape)

- ``shape`` is the weight shape: ``(fan_out, fan_in)`` for dense layers,
  ``(out_channels, in_channels, kh, kw)`` for convolutions (torch layout; ``layer.kind`` says
  which).
- ``rng`` is a ``numpy.random.Generator`` private to this (seed, layer): draw only from it,
  so the same seed gives the same weights on every backend and machine.
- ``layer`` is a :class:`ntkbench.models.LayerInfo` (index, depth, fan_in, fan_out, activation,
  is_readout, input_shape, kind, shape).
- Keyword-only arguments after ``layer`` are the initializer's parameters; their defaults are
  the declared defaults and they can be set and swept from YAML. Raise ``ValueError`` with a
  clear message for invalid values.
- Return a float array of exactly ``shape``. Biases are zero unless the function carries a
  ``bias`` attribute with the same signature (called with the bias shape ``(shape[0],)``).
- A data-dependent initializer also carries a ``calibrate`` attribute, which adjusts the
  drawn weights on the training data through the trial's backend; see
  :mod:`ntkbench.initializers.calibration`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ntkbench import registry
from ntkbench.initializers.calibration import (
    Batch,
    Probe,
    backend_probe,
    is_data_dependent,
    run_calibration,
)
from ntkbench.models import Model

Weights = list[dict[str, np.ndarray]]


class InitialWeights(list):
    """The weights :func:`initialize` returns: a list of ``{"W", "b"}`` dicts, with
    ``calibration`` set to what a data-dependent initializer chose (``None`` otherwise)."""

    calibration: dict[str, Any] | None = None


def layer_rng(seed: int, layer_index: int) -> np.random.Generator:
    """The generator for one layer: independent streams per (seed, layer)."""
    return np.random.default_rng(np.random.SeedSequence([seed, layer_index]))


def initialize(
    model: Model,
    init: str | Callable = "he_normal",
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    *,
    data: tuple[Any, Any] | Any | None = None,
    backend: str = "torch",
    device: str = "cpu",
    loss: str | None = None,
    calibrate: bool = True,
) -> InitialWeights:
    """Initial weights of ``model``: a list of ``{"W": layer.weight_shape, "b": (units,)}``.

    Args:
        model: the architecture.
        init: a registered initializer name or an initializer function.
        seed: the seed; layer ``i`` draws from ``SeedSequence([seed, i])``.
        params: initializer parameters (validated against its declared parameters).
        data: training data for a data-dependent initializer (LSUV, GO, MetaInit,
            ``structured_rf_ntk``): ``(x, y)`` or inputs ``x`` alone (targets then 0). Integer
            ``y`` of one dimension means class labels (cross-entropy), otherwise regression
            targets (MSE). Ignored by data-independent initializers.
        backend, device: where the calibration evaluates the network (float64).
        loss: the training loss the calibration sees; inferred from ``y`` when ``None``.
        calibrate: ``False`` returns a data-dependent initializer's pre-init (no data needed).

    Returns:
        float64 numpy arrays (backends cast them to the training dtype); ``.calibration``
        holds what a data-dependent initializer chose.
    """
    entry = registry.initializers.get(init) if isinstance(init, str) else \
        registry.initializers.make_entry(getattr(init, "__name__", "init"), init, "function")
    batch = probe = None
    if calibrate and data is not None and is_data_dependent(entry.obj):
        batch = make_batch(model, data)
        loss = loss or ("cross_entropy" if batch.kind == "classification" else "mse")
        probe = backend_probe(model, backend, device, loss)
    return initialize_with(model, entry, seed, params or {}, batch=batch, probe=probe,
                           calibrate=calibrate)


def make_batch(model: Model, data: tuple[Any, Any] | Any) -> Batch:
    """A calibration :class:`Batch` from ``(x, y)`` or ``x`` (see :func:`initialize`)."""
    x, y = data if isinstance(data, tuple) else (data, None)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1 or len(x) == 0 or x[0].size != model.in_dim:
        raise ValueError(f"data x must hold examples of {model.in_dim} inputs each (shape "
                         f"(n, {model.in_dim})), got shape {x.shape}")
    x = x.reshape(len(x), -1)
    if y is None:
        y = np.zeros((len(x), model.out_dim))
    y = np.asarray(y)
    if len(y) != len(x):
        raise ValueError(f"data y has {len(y)} rows but x has {len(x)}")
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        if y.min() < 0 or y.max() >= model.out_dim:
            raise ValueError(f"data y looks like class labels (1-D integers) but holds values "
                             f"outside 0..{model.out_dim - 1} for a model with out_dim "
                             f"{model.out_dim}; pass float targets for regression")
        return Batch(x, np.eye(model.out_dim)[y], y, "classification")
    targets = y.astype(np.float64).reshape(len(x), -1)
    if targets.shape[1] != model.out_dim:
        raise ValueError(f"data y has {targets.shape[1]} targets per example, the model "
                         f"{model.out_dim} outputs")
    return Batch(x, targets, targets, "regression")


def check_params(entry: registry.Entry, params: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` for unknown or missing initializer parameters."""
    known = {p.name for p in entry.params}
    for key in params:
        if key not in known:
            hint = registry.suggest(key, sorted(known)) if known else \
                f" ({entry.name!r} takes no parameters)"
            raise ValueError(f"unknown parameter {key!r} for initializer {entry.name!r}{hint}")
    for p in entry.params:
        if p.required and p.name not in params:
            raise ValueError(f"initializer {entry.name!r} needs parameter {p.name!r}")


def initialize_with(model: Model, entry: registry.Entry, seed: int,
                    params: Mapping[str, Any], *, batch: Batch | None = None,
                    probe: Probe | None = None, calibrate: bool = True) -> InitialWeights:
    """:func:`initialize` for an already resolved registry entry; a data-dependent
    initializer is calibrated on ``batch`` through ``probe`` unless ``calibrate`` is False."""
    check_params(entry, params)
    fn = entry.obj
    bias_fn = getattr(fn, "bias", None)
    weights = InitialWeights()
    for layer in model.layers():
        rng = layer_rng(seed, layer.index)
        shape = layer.weight_shape
        W = _checked(fn(shape, rng, layer=layer, **params), shape, entry.name, "W", layer.index)
        if model.bias and bias_fn is not None:
            b = _checked(bias_fn((layer.n_units,), rng, layer=layer, **params),
                         (layer.n_units,), entry.name, "b", layer.index)
        else:
            b = np.zeros(layer.n_units)
        weights.append({"W": W, "b": b})
    if calibrate and is_data_dependent(fn):
        if batch is None or probe is None:
            raise ValueError(f"initializer {entry.name!r} is data-dependent: it calibrates on "
                             f"training data (pass data=(x, y) to nb.initialize)")
        defaults = {p.name: p.default for p in entry.params if not p.required}
        calibrated, chosen = run_calibration(fn, model, weights, batch, probe, seed=seed,
                                             params=params, defaults=defaults)
        weights = InitialWeights(calibrated)
        weights.calibration = chosen
    return weights


def _checked(arr: Any, shape: tuple[int, ...], name: str, what: str, index: int) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(
            f"initializer {name!r} returned {what} of shape {arr.shape} for layer {index}, "
            f"expected {shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"initializer {name!r} returned non-finite values for layer {index}")
    return arr


# Built-in families register themselves on import.
from ntkbench.initializers import (  # noqa: E402, F401
    classical,
    data_dependent,
    defaults,
    receptive,
    siren,
    zero,
)

__all__ = ["Batch", "InitialWeights", "Probe", "Weights", "check_params", "initialize",
           "initialize_with", "layer_rng", "make_batch"]
