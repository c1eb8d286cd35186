"""The empirical Neural Tangent Kernel of a finite network."""

from __future__ import annotations

import numpy as np

from ntkbench.backends import get_backend
from ntkbench.models import Model


def empirical_ntk(model: Model, weights: list[dict[str, np.ndarray]], x1: np.ndarray,
                  x2: np.ndarray | None = None, *, backend: str = "torch", device: str = "cpu",
                  dtype: str = "float64", full: bool = False, per_layer: bool = False,
                  chunk_size: int | None = None) -> np.ndarray:
    """Empirical NTK ``Θ(x1, x2)_ij = Σ_o ⟨∂f_o(x1_i)/∂θ, ∂f_o(x2_j)/∂θ⟩`` (Jacot et al. 2018).

    Args:
        model: the architecture (:class:`ntkbench.MLP` or :class:`ntkbench.CNN`).
        weights: neutral weights, e.g. from :func:`ntkbench.initialize`.
        x1: inputs ``(n1, in_dim)`` (a CNN's inputs flattened in C order).
        x2: inputs ``(n2, in_dim)``; ``None`` means ``x1`` (the Gram matrix).
        backend: registered backend name (``"torch"`` or ``"jax"``).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        dtype: precision of the computation, ``"float64"`` (default) or ``"float32"``.
        full: return the ``(n1, n2, out_dim, out_dim)`` block instead of the trace over outputs.
        per_layer: return each weight layer's contribution separately, stacked on a leading
            axis with one entry per weight layer (first layer first); their sum is the kernel.
        chunk_size: examples per block of rows/columns. ``None`` sizes blocks so that their
            temporaries stay near 512 MiB; the float64 result itself is ``8·n1·n2`` bytes.

    Returns:
        float64 numpy array ``(n1, n2)``, ``(n1, n2, O, O)`` if ``full``, with a leading layer
        axis if ``per_layer``.

    An MLP's kernel is computed from the layer structure (see
    :mod:`ntkbench.backends.torch_ntk`): each dense layer contributes
    ``(s_W² A1 A2ᵀ + s_b²) ⊙ Σ_o Δ1_o Δ2_oᵀ`` with ``A`` its inputs and ``Δ`` the per-example
    output sensitivities — exact, with no per-example Jacobian. A CNN's kernel contracts
    per-example Jacobians ``(n, O, P_l)`` of each layer, a block of examples at a time; all of
    them are kept when they fit in 2 GiB (each is then computed once), otherwise only the
    current row block's (column blocks are recomputed).
    """
    x1 = np.asarray(x1, dtype=np.float64)
    if x1.ndim != 2 or x1.shape[1] != model.in_dim:
        raise ValueError(f"x1 must have shape (n, {model.in_dim}), got {x1.shape}")
    if x2 is not None:
        x2 = np.asarray(x2, dtype=np.float64)
        if x2.ndim != 2 or x2.shape[1] != model.in_dim:
            raise ValueError(f"x2 must have shape (n, {model.in_dim}), got {x2.shape}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of examples, got {chunk_size}")
    impl = get_backend(backend)
    net = impl.Network(model, weights, dtype=dtype, device=impl.resolve_device(device))
    return net.ntk(x1, x2, full=full, per_layer=per_layer, chunk_size=chunk_size)
