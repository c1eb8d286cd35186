"""Task loaders and generators (one module per family); importing registers them."""

from ntkbench.data import cifar, digits, images, mnist, synthetic  # noqa: F401
from ntkbench.data.base import Dataset, register_task

__all__ = ["Dataset", "register_task"]
