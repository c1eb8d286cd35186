"""Parameter checks for plugins: turn a YAML value into a number or raise a clear ``ValueError``.

Initializers and task loaders validate their parameters with these, so that
``ntkbench validate`` can report a bad value at its YAML line with the same wording everywhere.
Plugin authors may use them too.
"""

from __future__ import annotations

import math
from numbers import Real


def real(name: str, value: object) -> float:
    """``value`` as a finite float (bools and strings are rejected)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def positive(name: str, value: object) -> float:
    """``value`` as a finite float ``> 0``."""
    out = real(name, value)
    if out <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return out


def nonnegative(name: str, value: object) -> float:
    """``value`` as a finite float ``>= 0``."""
    out = real(name, value)
    if out < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return out


def integer(name: str, value: object, *, minimum: int) -> int:
    """``value`` as an int ``>= minimum``; whole floats (``512.0`` from YAML) are accepted."""
    if (isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value)
            or not float(value).is_integer() or value < minimum):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
