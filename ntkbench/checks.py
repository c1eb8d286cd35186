"""Parameter checks for plugins: turn a YAML value into a number or raise a clear ``ValueError``.

Initializers and task loaders validate their parameters with these, so that
``ntkbench validate`` can report a bad value at its YAML line with the same wording everywhere.
Plugin authors may use them too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


def choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else ``ValueError`` with the closest valid name."""
    from ntkbench.registry import suggest

    if not isinstance(value, str) or value not in choices:
        hint = suggest(str(value), list(choices))
        if "did you mean" in hint:  # otherwise suggest() already lists the valid values
            hint += f" (valid: {', '.join(choices)})"
        raise ValueError(f"unknown {name} {value!r}{hint}")
    return value
