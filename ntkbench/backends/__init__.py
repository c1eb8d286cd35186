"""Backends materialise neutral weights and run models, training and the empirical NTK.

The backend contract (a module or object with these functions; see ``torch_backend``)::

    name: str
    def resolve_device(device: str) -> str                 # "auto" → "cpu" / "cuda:0"
    def device_name(device: str) -> str                    # human-readable, for the record
    def forward(model, weights, x, *, dtype, device) -> np.ndarray            # (n, out_dim)
    def empirical_ntk(model, weights, x1, x2=None, *, dtype, device) -> np.ndarray  # (n1, n2)
    def train(model, weights, data, training, *, device, callback) -> TrainOutcome

Backends are registered by name with a zero-argument factory so that importing ntkbench never
imports torch or jax; the factory runs on first use.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ntkbench import registry


@registry.backends.register("torch")
def _torch() -> ModuleType:
    """PyTorch (CPU and CUDA)."""
    try:
        return importlib.import_module("ntkbench.backends.torch_backend")
    except ImportError as exc:
        if exc.name == "torch":
            raise ImportError(
                "the torch backend needs PyTorch: pip install 'torch>=2.1' "
                "(CPU-only: pip install torch==2.13.0)"
            ) from exc
        raise


@registry.backends.register("jax")
def _jax() -> ModuleType:
    """JAX with optax (CPU and CUDA)."""
    try:
        return importlib.import_module("ntkbench.backends.jax_backend")
    except ImportError as exc:
        if exc.name in ("jax", "jaxlib", "optax"):
            raise ImportError("the jax backend needs JAX and optax: pip install 'ntkbench[jax]' "
                              "(or pip install jax optax)") from exc
        raise


def get_backend(name: str) -> ModuleType:
    """The backend module registered as ``name`` (imports it on first use)."""
    return registry.backends.get(name).obj()
