"""Task loaders and generators (one module per family); importing registers them."""

from ntkbench.data import digits, synthetic  # noqa: F401
from ntkbench.data.base import Dataset, register_task

__all__ = ["Dataset", "register_task"]
