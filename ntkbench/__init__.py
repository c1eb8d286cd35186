"""ntkbench: benchmark weight initializers through the Neural Tangent Kernel.

Public API::

    import ntkbench as nb
    model = nb.MLP(in_dim=1, width=256, depth=2, out_dim=1, activation="relu")
    # or nb.CNN(input_shape=(1, 8, 8), channels=(16, 32), head=(64,), out_dim=10)
    weights = nb.initialize(model, "he_normal", seed=0)
    K = nb.empirical_ntk(model, weights, x1, x2=None, backend="torch", device="cpu")
    nngp, ntk = nb.analytic_kernels(x1, x2=None, depth=2, activation="relu", w_std=1.0)
    df = nb.load_results("results/default")
    nb.report.tables(df); nb.report.figures.learning_curves(df, task)  # see ntkbench.report

Heavy backends (torch, jax) are imported only when a backend is used.
"""

from __future__ import annotations

from typing import Any

from ntkbench._version import __version__
from ntkbench.initializers import initialize
from ntkbench.models import CNN, MLP, LayerInfo
from ntkbench.ntk.analytic import analytic_kernels
from ntkbench.registry import register_initializer

__all__ = [
    "CNN",
    "MLP",
    "LayerInfo",
    "__version__",
    "analytic_kernels",
    "empirical_ntk",
    "initialize",
    "load_results",
    "register_initializer",
    "report",
]


def __getattr__(name: str) -> Any:
    # Lazy so that `import ntkbench` stays fast (pandas and torch load on first use).
    if name == "empirical_ntk":
        from ntkbench.ntk.empirical import empirical_ntk

        return empirical_ntk
    if name == "load_results":
        from ntkbench.store import load_results

        return load_results
    if name == "report":
        import ntkbench.report

        return ntkbench.report
    raise AttributeError(f"module 'ntkbench' has no attribute {name!r}")
