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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ntkbench import registry
from ntkbench.models import Model

Weights = list[dict[str, np.ndarray]]


def layer_rng(seed: int, layer_index: int) -> np.random.Generator:
    """The generator for one layer: independent streams per (seed, layer)."""
    return np.random.default_rng(np.random.SeedSequence([seed, layer_index]))


def initialize(
    model: Model,
    init: str | Callable = "he_normal",
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
) -> Weights:
    """Initial weights of ``model``: a list of ``{"W": layer.weight_shape, "b": (units,)}``.

    Args:
        model: the architecture.
        init: a registered initializer name or an initializer function.
        seed: the seed; layer ``i`` draws from ``SeedSequence([seed, i])``.
        params: initializer parameters (validated against its declared parameters).

    Returns:
        float64 numpy arrays; backends cast them to the training dtype.
    """
    entry = registry.initializers.get(init) if isinstance(init, str) else \
        registry.initializers.make_entry(getattr(init, "__name__", "init"), init, "function")
    return initialize_with(model, entry, seed, params or {})


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
                    params: Mapping[str, Any]) -> Weights:
    """:func:`initialize` for an already resolved registry entry."""
    check_params(entry, params)
    fn = entry.obj
    bias_fn = getattr(fn, "bias", None)
    weights: Weights = []
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
from ntkbench.initializers import classical  # noqa: E402, F401

__all__ = ["Weights", "check_params", "initialize", "initialize_with", "layer_rng"]
