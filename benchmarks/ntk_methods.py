"""Reference ways of computing the empirical NTK of an MLP, shared by the benchmarks.

``scripts/bench_ntk.py`` and the asv suite in this folder compare ``ntkbench.empirical_ntk``
against three hand-written computations that work on torch tensors already on the device:

``floor_ntk``
    The least work the layer-structured kernel needs, with no framework around it: one forward
    pass keeping every layer's input ``A_l`` and pre-activation ``z_l``, one backward sweep of
    per-example output sensitivities ``Δ_l = ∂f/∂z_l`` and, per dense layer, the Gram products
    ``(A1 A2ᵀ + 1) ⊙ Σ_o Δ1_o Δ2_oᵀ`` accumulated in place. Any out_dim is handled: ``Δ`` is
    ``(n, out_dim, fan_out)`` and the readout's ``Δ`` is the identity, so its term is just
    ``out_dim · (A1 A2ᵀ + 1)``.

``jacobian_contraction_ntk``
    torch.func: per-example Jacobians ``vmap(jacrev(f))`` of an equivalent ``nn.Sequential``
    evaluated with ``functional_call``, contracted over parameters and summed over outputs.
    Memory grows as ``n · out_dim · n_params``.

``ntk_vector_products_ntk``
    torch.func NTK-vector products: pull each output basis vector back to parameter space with
    a VJP at ``x1_i`` and push it through a JVP at ``x2`` (``vmap`` over the basis and the
    examples of ``x1``). No Jacobian of ``x2`` is stored, but the work grows as
    ``n1 · n2 · n_params``. ``pairwise=True`` is the tutorial's literal double ``vmap`` over
    example pairs, which needs far more memory (see the function).

All three assume the standard parameterization (``s_W = s_b = 1``) with biases, which is what
``ntkbench.MLP`` builds by default, and return the kernel traced over outputs, ``(n1, n2)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.func import functional_call, jacrev, jvp, vjp, vmap

Params = list[tuple[torch.Tensor, torch.Tensor]]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _relu_slope(z: torch.Tensor) -> torch.Tensor:
    return (z > 0).to(z.dtype)


def _tanh_slope(z: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.tanh(z).square()


# activation name → (φ, φ′, module); the module is used by the nn.Sequential of torch.func.
ACTIVATIONS: dict[str, tuple[Callable, Callable, Callable[[], torch.nn.Module]]] = {
    "relu": (torch.relu, _relu_slope, torch.nn.ReLU),
    "tanh": (torch.tanh, _tanh_slope, torch.nn.Tanh),
    "linear": (lambda z: z, torch.ones_like, torch.nn.Identity),
}


def check_supported(model) -> None:
    """Raise ``ValueError`` if ``model`` is outside what these reference methods implement."""
    if model.parameterization != "standard" or not model.bias:
        raise ValueError("the reference methods implement the standard parameterization with "
                         "biases only")
    if model.activation not in ACTIVATIONS:
        raise ValueError(f"activation {model.activation!r} not implemented here; "
                         f"use one of {sorted(ACTIVATIONS)}")


def to_torch(weights: Sequence[dict[str, np.ndarray]], dtype: str = "float32",
             device: str = "cpu") -> Params:
    """``ntkbench`` weights (list of ``{"W", "b"}`` numpy arrays) as ``(W, b)`` tensors."""
    tdtype = DTYPES[dtype]
    return [(torch.as_tensor(layer["W"], dtype=tdtype, device=device).contiguous(),
             torch.as_tensor(layer["b"], dtype=tdtype, device=device).contiguous())
            for layer in weights]


# ------------------------------------------------------------------------------------ floor


def _sweep(params: Params, x: torch.Tensor, activation: str
           ) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """Layer inputs ``A_l`` and flattened sensitivities ``Δ_l`` (``n, out_dim·fan_out``).

    The readout's sensitivity is the identity and is returned as ``None``.
    """
    act, slope, _ = ACTIVATIONS[activation]
    inputs: list[torch.Tensor] = []
    pre: list[torch.Tensor] = []
    h = x
    last = len(params) - 1
    for i, (W, b) in enumerate(params):
        inputs.append(h)
        z = torch.addmm(b, h, W.t())
        if i < last:
            pre.append(z)
            h = act(z)
    n = x.shape[0]
    deltas: list[torch.Tensor | None] = [None]
    W_out = params[last][0]                                  # (out_dim, fan_in)
    if last > 0:
        # Δ_L W_L with Δ_L = I is W_L itself: no matmul for the first step.
        delta = W_out.unsqueeze(0) * slope(pre[last - 1]).unsqueeze(1)   # (n, O, k)
        deltas.append(delta)
        for i in range(last - 1, 0, -1):
            W = params[i][0]
            delta = (delta.reshape(-1, W.shape[0]) @ W).view(n, -1, W.shape[1])
            delta.mul_(slope(pre[i - 1]).unsqueeze(1))
            deltas.append(delta)
    deltas.reverse()
    return inputs, [d if d is None else d.reshape(n, -1) for d in deltas]


@torch.no_grad()
def floor_ntk(params: Params, x1: torch.Tensor, x2: torch.Tensor | None = None,
              activation: str = "relu") -> torch.Tensor:
    """The empirical NTK ``(n1, n2)`` by layer structure with the fewest operations.

    ``params`` are ``(W, b)`` tensors (``W: (fan_out, fan_in)``) on the device of ``x1``.
    """
    a1, d1 = _sweep(params, x1, activation)
    a2, d2 = (a1, d1) if x2 is None else _sweep(params, x2, activation)
    out_dim = params[-1][0].shape[0]
    K: torch.Tensor | None = None
    for A1, A2, D1, D2 in zip(a1, a2, d1, d2, strict=True):
        G = A1 @ A2.t()
        G += 1.0
        if D1 is None:
            if K is None:                      # a linear model: the readout is the only layer
                K = G.mul_(out_dim)
            else:
                K.add_(G, alpha=out_dim)
            continue
        G.mul_(D1 @ D2.t())
        if K is None:
            K = G
        else:
            K += G
    assert K is not None
    return K


# ------------------------------------------------------------------------------- torch.func


def sequential(params: Params, activation: str) -> tuple[torch.nn.Sequential,
                                                        dict[str, torch.Tensor]]:
    """An ``nn.Sequential`` equivalent to the MLP and the parameter dict for ``functional_call``.

    The module's own parameters are placeholders; the returned dict (detached copies of
    ``params``) is what the torch.func recipes differentiate.
    """
    make_act = ACTIVATIONS[activation][2]
    layers: list[torch.nn.Module] = []
    values: dict[str, torch.Tensor] = {}
    for i, (W, b) in enumerate(params):
        lin = torch.nn.Linear(W.shape[1], W.shape[0], device=W.device, dtype=W.dtype)
        idx = len(layers)
        layers.append(lin)
        values[f"{idx}.weight"] = W.detach().clone()
        values[f"{idx}.bias"] = b.detach().clone()
        if i < len(params) - 1:
            layers.append(make_act())
    net = torch.nn.Sequential(*layers).requires_grad_(False)
    return net, values


def _single(net: torch.nn.Module) -> Callable:
    """``f(params, x) → (out_dim,)`` for one example ``x`` of shape ``(in_dim,)``."""
    def f(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(net, p, (x.unsqueeze(0),)).squeeze(0)
    return f


def jacobian_contraction_ntk(net: torch.nn.Module, params: dict[str, torch.Tensor],
                             x1: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
    """``Σ_p Σ_o J_o(x1)_p J_o(x2)_p`` from per-example Jacobians ``(n, out_dim, *param)``."""
    per_example_jacobian = vmap(jacrev(_single(net)), in_dims=(None, 0))
    j1 = per_example_jacobian(params, x1)
    j2 = j1 if x2 is None else per_example_jacobian(params, x2)
    K: torch.Tensor | None = None
    for name, block1 in j1.items():
        term = torch.einsum("iop,jop->ij", block1.flatten(2), j2[name].flatten(2))
        K = term if K is None else K.add_(term)
    assert K is not None
    return K


def ntk_vector_products_ntk(net: torch.nn.Module, params: dict[str, torch.Tensor],
                            x1: torch.Tensor, x2: torch.Tensor | None = None,
                            *, pairwise: bool = False) -> torch.Tensor:
    """The traced NTK from NTK-vector products: ``Θ(a, b) e_o = J(b) J(a)ᵀ e_o``.

    For an example ``a`` of ``x1`` the VJP at ``a`` maps each output basis vector ``e_o`` to
    the parameter-space vector ``J(a)ᵀ e_o``; a JVP along it at the examples of ``x2`` gives
    ``Θ(a, x2) e_o``, and the trace over ``o`` is the kernel row. ``vmap`` runs this over the
    basis and the examples of ``x1``.

    ``pairwise=True`` is the literal form of the PyTorch tutorial recipe: one more ``vmap``
    over the examples of ``x2`` with a single-example JVP inside. It computes the same numbers,
    but the batching rule of ``F.linear`` then expands the weight tangent to every ``(a, b)``
    pair: about ``n1 · n2 · out_dim · (largest layer's parameter count)`` floats (105 GB for
    n = 256 and a 784 → 512 first layer in float32). The default batches ``x2`` inside the
    JVP instead, which keeps the tangents at ``n1 · n2 · out_dim · width``.
    """
    f = _single(net)
    x2 = x1 if x2 is None else x2

    def rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``Θ(a, b)`` traced over outputs; ``b`` is one example if ``pairwise`` else a batch."""
        out_a, pull_back = vjp(lambda p: f(p, a), params)
        if pairwise:
            def at_b(p: dict[str, torch.Tensor]) -> torch.Tensor:
                return f(p, b)                                    # (O,)
        else:
            def at_b(p: dict[str, torch.Tensor]) -> torch.Tensor:
                return functional_call(net, p, (b,)).t()          # (O, n2)

        def block_column(e: torch.Tensor) -> torch.Tensor:
            (direction,) = pull_back(e)
            return jvp(at_b, (params,), (direction,))[1]

        basis = torch.eye(out_a.numel(), dtype=out_a.dtype, device=out_a.device)
        block = vmap(block_column)(basis)          # (O, O) or (O, O, n2): [e, o, ...]
        return torch.diagonal(block, dim1=0, dim2=1).sum(-1)

    if pairwise:
        return vmap(vmap(rows, in_dims=(None, 0)), in_dims=(0, None))(x1, x2)
    return vmap(rows, in_dims=(0, None))(x1, x2)


METHODS = ("ntkbench", "ntkbench_jax", "floor", "floor_jax", "jacobian", "ntk_vp",
           "ntk_vp_pairwise")


# -------------------------------------------------------------------------- cost estimates


def cost_estimate(method: str, n1: int, n2: int, dims: Sequence[int],
                  itemsize: int) -> tuple[float, float]:
    """Rough ``(flop, bytes)`` of one call of ``method`` for layer widths ``dims``.

    Used only to skip cells that would not fit the time or memory budget; the numbers are
    leading-order counts (matrix products and the tensors that grow with ``n``), not a model
    of any library's allocator.
    """
    layers = list(zip(dims[:-1], dims[1:], strict=True))
    out_dim = dims[-1]
    n_params = sum(i * o + o for i, o in layers)
    widest = max(dims[1:])
    sweep = 4.0 * (n1 + n2) * n_params * out_dim           # forward + sensitivities
    grams = sum(2.0 * n1 * n2 * (i + (o * out_dim if k < len(layers) - 1 else 0))
                for k, (i, o) in enumerate(layers))
    acts = (n1 + n2) * sum(dims) * (2 + out_dim) * itemsize
    if method in ("ntkbench", "ntkbench_jax", "floor", "floor_jax"):
        return sweep + grams, acts + 4.0 * n1 * n2 * itemsize
    if method == "jacobian":
        jac = (n1 + (n2 if n2 != n1 else 0)) * out_dim * n_params * itemsize
        flop = 1.5 * sweep + 2.0 * n1 * n2 * out_dim * n_params
        return flop, 1.25 * jac + acts + 2.0 * n1 * n2 * itemsize
    if method in ("ntk_vp", "ntk_vp_pairwise"):
        cotangents = n1 * out_dim * n_params * itemsize
        tangents = 4.0 * n1 * n2 * out_dim * widest * itemsize
        if method == "ntk_vp_pairwise":
            tangents += n1 * n2 * out_dim * max(i * o for i, o in layers) * itemsize
        flop = 1.5 * sweep + 4.0 * n1 * n2 * out_dim * n_params
        return flop, cotangents + tangents + acts
    raise ValueError(f"unknown method {method!r}")
