"""Backends materialise neutral weights and run models, training and the empirical NTK.

The backend contract (a module; see ``torch_backend`` and ``jax_backend``)::

    name: str
    def resolve_device(device: str) -> str       # "auto" → "cpu" / "cuda"; raises without a GPU
    def device_name(device: str) -> str          # human-readable, for the record
    def library_versions() -> dict[str, str]
    class Network:                               # an MLP or CNN with weights on a device
        def __init__(self, model, weights, *, dtype, device)
        def predict(self, x) -> np.ndarray                       # (n, out_dim) float64
        def ntk(self, x1, x2=None, *, full, per_layer, chunk_size) -> np.ndarray
        def ntk_layer_diagonals(self, x) -> np.ndarray           # (layers, n)
        def train(self, x, y, training, *, seed, checkpoints, on_checkpoint) -> TrainLog
        def weights(self) -> list[dict[str, np.ndarray]]         # neutral format
        def peak_memory_mb(self) -> float | None

Backends are registered by name with a zero-argument factory so that importing ntkbench never
imports torch or jax; the factory runs on first use.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ntkbench import registry


class Unavailable(Exception):
    """This machine cannot run the trial: its backend is not installed or its device is absent.

    Not an outcome of the trial: its record has status ``unavailable``, and a later run on a
    machine that has what it needs runs it (see :func:`ntkbench.runner.pending`).
    """


class BackendNotInstalled(Unavailable, ImportError):
    """The backend's libraries are not installed."""


class DeviceNotFound(Unavailable, RuntimeError):
    """The requested device (``cuda``) is not present."""


@registry.backends.register("torch")
def _torch() -> ModuleType:
    """PyTorch (CPU and CUDA)."""
    try:
        return importlib.import_module("ntkbench.backends.torch_backend")
    except ImportError as exc:
        if exc.name == "torch":
            raise BackendNotInstalled(
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
            raise BackendNotInstalled("the jax backend needs JAX and optax: pip install "
                                      "'ntkbench[jax]' (or pip install jax optax)") from exc
        raise


def get_backend(name: str) -> ModuleType:
    """The backend module registered as ``name`` (imports it on first use)."""
    return registry.backends.get(name).obj()
