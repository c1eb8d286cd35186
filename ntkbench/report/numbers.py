"""How numbers appear in leaderboard tables: few significant digits, scientific when extreme.

The policy, shared by every output format except CSV (which keeps full precision):

- a value is shown with 3 significant digits (``0.0123``, ``1.50``, ``42.1``); integer digits
  are never rounded away (``1234``, not ``1230``);
- magnitudes below ``1e-3`` or from ``1e5`` up use compact scientific notation (``1.23e-4``,
  ``2.50e+6`` is written ``2.50e6``);
- a standard deviation gets 2 significant digits (``0.0123 ± 0.0011``); a confidence interval
  is written ``mean [low, high]``, each with 3;
- missing values (``None``, ``nan``) are an em dash ``—``; infinities are ``inf`` / ``-inf``.
"""

from __future__ import annotations

import math

MISSING = "—"
SIGNIFICANT = 3
SIGNIFICANT_STD = 2
SMALL = 1e-3  # below this magnitude: scientific notation
LARGE = 1e5  # from this magnitude up: scientific notation


def format_number(value: float | None, sig: int = SIGNIFICANT) -> str:
    """``value`` with ``sig`` significant digits, scientific outside ``[1e-3, 1e5)``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    x = float(value)
    if math.isnan(x):
        return MISSING
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    rounded = float(f"{x:.{sig - 1}e}")  # round first: 0.00099996 becomes 0.00100, not 1.00e-4
    if not SMALL <= abs(rounded) < LARGE:
        mantissa, exponent = f"{x:.{sig - 1}e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    exponent = math.floor(math.log10(abs(rounded)))
    if exponent >= sig - 1:
        return f"{x:.0f}"
    return f"{rounded:.{sig - 1 - exponent}f}"


def format_mean_std(mean: float, std: float, n: int) -> str:
    """``mean ± std`` over ``n`` values; just the mean when ``n < 2`` or the std is missing."""
    if n < 2 or std is None or math.isnan(std):
        return format_number(mean)
    return f"{format_number(mean)} ± {format_number(std, SIGNIFICANT_STD)}"


def format_mean_ci(mean: float, low: float, high: float) -> str:
    """``mean [low, high]`` (a confidence interval); just the mean when the CI is missing."""
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return format_number(mean)
    return f"{format_number(mean)} [{format_number(low)}, {format_number(high)}]"


def format_steps(value: float) -> str:
    """A step count (a median of integers, so possibly ``x.5``) without needless decimals."""
    if math.isnan(value):
        return MISSING
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
