"""A file-based initializer plugin: named in YAML as `plugins/scaled_normal.py:scaled_normal`."""

import numpy as np


def scaled_normal(shape, rng, *, layer, gain: float = 1.0) -> np.ndarray:
    """N(0, gain² / fan_in): LeCun-style scaling with a tunable gain."""
    return rng.normal(0.0, gain / np.sqrt(layer.fan_in), size=shape)
