"""The empirical NTK in PyTorch, chunked over examples: structured for MLPs, per-example
Jacobians for everything else (convolutions).

For a dense layer ``z = s_W·W a + s_b·b`` the gradient of output ``o`` for one example is the
outer product ``s_W·δ_o aᵀ`` (and ``s_b·δ_o`` for the bias), where ``δ_o = ∂f_o/∂z``. The
layer's contribution to the kernel summed over outputs is therefore::

    Θ_l(x1, x2) = (s_W² A1 A2ᵀ + s_b²) ⊙ Σ_o Δ1_o Δ2_oᵀ

with ``A`` the layer inputs ``(n, fan_in)`` and ``Δ_o`` the sensitivities ``(n, fan_out)``.
Summed over layers this is the exact NTK, at the cost of one forward pass, one backward sweep
of per-example sensitivities and two Gram products per layer. For the readout ``Δ`` is the
identity, so its second factor is the constant ``out_dim`` (or ``I`` in the full block).

Large kernels are computed block by block (:func:`ntkbench.ntk.blocks.assemble`):
sensitivities are kept for all examples (they are ``n × out_dim × Σ widths``, usually far
smaller than the ``n × n`` kernel), and the Gram products of one square block at a time go
straight into a float64 numpy output, so the temporaries stay within a fixed memory budget.

A convolution's weight gradient sums outer products over positions, so it has no such
factorisation; :func:`jacobian_ntk` forms per-example Jacobians ``J_l (n, O, P_l)`` of each
layer with ``torch.func`` (``vmap`` of ``jacrev``), a block of examples at a time, and
contracts them: ``Θ_l = J1_l J2_lᵀ`` over parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ntkbench.ntk.blocks import DEFAULT_BLOCK_BYTES, assemble, default_chunk, jacobian_fetcher

__all__ = ["DEFAULT_BLOCK_BYTES", "jacobian_ntk", "layer_diagonals", "structured_ntk"]


@dataclass
class Sensitivities:
    """Per-layer inputs ``A_l`` (n, fan_in) and sensitivities ``Δ_l`` (n, out_dim, fan_out)
    of one set of examples; the readout's ``Δ`` (the identity) is ``None``."""

    inputs: list[torch.Tensor]
    deltas: list[torch.Tensor | None]


def sensitivities(params: list[torch.Tensor], scales: list[tuple[float, float]], act, dact,
                  x: torch.Tensor, *, bias: bool) -> Sensitivities:
    """One forward pass keeping layer inputs and pre-activations, then one backward sweep
    ``Δ_{l-1} = (Δ_l · s_W W_l) ⊙ φ′(z_{l-1})`` of per-example output sensitivities."""
    n_layers = len(scales)
    inputs, pre = [], []
    h = x
    for i, (sw, sb) in enumerate(scales):
        W, b = params[2 * i], params[2 * i + 1]
        inputs.append(h)
        if i == n_layers - 1:
            break
        if bias and sw == 1.0 and sb == 1.0:
            z = torch.addmm(b, h, W.T)
        else:
            z = h @ W.T
            if sw != 1.0:
                z.mul_(sw)
            if bias:
                z.add_(b, alpha=sb)
        pre.append(z)
        h = act(z)
    n = x.shape[0]
    deltas: list[torch.Tensor | None] = [None] * n_layers
    if n_layers > 1:
        sw, _ = scales[-1]
        W = params[-2]
        out_dim, width = W.shape
        # Readout sensitivities are the identity, so the last hidden layer's are s_W·W_L ⊙ φ′.
        delta = (sw * W).unsqueeze(0) * dact(pre[-1]).unsqueeze(1)
        deltas[-2] = delta
        for i in range(n_layers - 2, 0, -1):
            sw, _ = scales[i]
            W = params[2 * i]
            back = delta.reshape(n * out_dim, -1) @ W
            if sw != 1.0:
                back = back * sw
            delta = back.reshape(n, out_dim, -1).mul_(dact(pre[i - 1]).unsqueeze(1))
            deltas[i - 1] = delta
    return Sensitivities(inputs, deltas)


def _layer_terms(s1: Sensitivities, s2: Sensitivities, r: slice, c: slice,
                 scales: list[tuple[float, float]], *, bias: bool, out_dim: int, full: bool):
    """Yield each layer's contribution to the block ``K[r, c]``."""
    for (sw, sb), A1, A2, D1, D2 in zip(scales, s1.inputs, s2.inputs, s1.deltas, s2.deltas,
                                        strict=True):
        gram = A1[r] @ A2[c].T
        if sw != 1.0:
            gram.mul_(sw * sw)
        if bias:
            gram.add_(sb * sb)
        if D1 is None:  # readout: Σ_o δ_o·δ_o′ = out_dim, or the identity block
            if full:
                eye = torch.eye(out_dim, dtype=gram.dtype, device=gram.device)
                yield gram[:, :, None, None] * eye
            else:
                yield gram.mul_(out_dim) if out_dim != 1 else gram
        elif full:
            yield gram[:, :, None, None] * torch.einsum("iok,jpk->ijop", D1[r], D2[c])
        else:
            yield gram.mul_(D1[r].flatten(1) @ D2[c].flatten(1).T)


def structured_ntk(params: list[torch.Tensor], scales: list[tuple[float, float]], act, dact,
                   x1: torch.Tensor, x2: torch.Tensor | None, *, bias: bool, out_dim: int,
                   full: bool = False, per_layer: bool = False,
                   chunk_size: int | None = None) -> np.ndarray:
    """The empirical NTK as a float64 numpy array, computed block by block.

    Returns ``(n1, n2)`` (traced over outputs), ``(n1, n2, O, O)`` if ``full``, and with
    ``per_layer`` a leading layer axis ``(L, ...)`` whose sum over axis 0 is the kernel.
    ``chunk_size`` is the number of rows (and columns) per block; ``None`` picks the largest
    block whose temporaries fit in :data:`DEFAULT_BLOCK_BYTES`.
    """
    with torch.no_grad():
        s1 = sensitivities(params, scales, act, dact, x1, bias=bias)
        symmetric = x2 is None
        s2 = s1 if symmetric else sensitivities(params, scales, act, dact, x2, bias=bias)
        if chunk_size is None:
            chunk_size = default_chunk(x1.element_size(), out_dim, full,
                                       n=max(x1.shape[0], (x1 if symmetric else x2).shape[0]))

        def block(r: slice, c: slice):
            terms = _layer_terms(s1, s2, r, c, scales, bias=bias, out_dim=out_dim, full=full)
            if per_layer:
                return terms
            total = next(terms)
            for term in terms:
                total.add_(term)
            return total

        return assemble(x1.shape[0], (x1 if symmetric else x2).shape[0], block,
                        symmetric=symmetric, chunk_size=chunk_size,
                        tail=(out_dim, out_dim) if full else (),
                        n_layers=len(scales) if per_layer else None, to_numpy=_numpy)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.cpu().numpy()


Forward = Callable[[Sequence[torch.Tensor], torch.Tensor], torch.Tensor]


def layer_jacobians(forward: Forward, params: Sequence[torch.Tensor], groups: list[list[int]],
                    x: torch.Tensor) -> list[list[torch.Tensor]]:
    """Per-example Jacobians of the outputs: per parameter group (``groups[l]`` lists the
    indices into ``params`` of layer ``l``) one ``(n, O, P)`` tensor per parameter."""
    wanted = sorted({i for g in groups for i in g})
    fixed = [p.detach() for p in params]

    def single(ps: tuple[torch.Tensor, ...], xi: torch.Tensor) -> torch.Tensor:
        full = list(fixed)
        for i, p in zip(wanted, ps, strict=True):
            full[i] = p
        return forward(full, xi.unsqueeze(0))[0]

    jac = torch.func.vmap(torch.func.jacrev(single), in_dims=(None, 0))(
        tuple(fixed[i] for i in wanted), x)
    by_index = {i: j.flatten(2) for i, j in zip(wanted, jac, strict=True)}
    return [[by_index[i] for i in g] for g in groups]


def jacobian_ntk(forward: Forward, params: Sequence[torch.Tensor], groups: list[list[int]],
                 x1: torch.Tensor, x2: torch.Tensor | None, *, out_dim: int, full: bool = False,
                 per_layer: bool = False, chunk_size: int | None = None) -> np.ndarray:
    """The empirical NTK of any differentiable ``forward(params, x)`` by Jacobian contraction,
    in square blocks; same output contract as :func:`structured_ntk`.

    Jacobians are computed ``chunk_size`` examples at a time and kept as
    :func:`~ntkbench.ntk.blocks.jacobian_fetcher` decides (all of them when they fit in
    :data:`~ntkbench.ntk.blocks.JACOBIAN_CACHE_BYTES`).
    """
    symmetric = x2 is None
    n_params = sum(params[i].numel() for g in groups for i in g)
    row_bytes = x1.element_size() * out_dim * n_params
    if chunk_size is None:
        chunk_size = default_chunk(x1.element_size(), out_dim, full, row_bytes=row_bytes,
                                   n=max(x1.shape[0], (x1 if symmetric else x2).shape[0]))
    n_total = x1.shape[0] + (0 if symmetric else x2.shape[0])
    jac = jacobian_fetcher(
        lambda which, s: layer_jacobians(forward, params, groups,
                                         (x1 if which == 0 or symmetric else x2)[s]),
        symmetric=symmetric, total_bytes=n_total * row_bytes)

    def block(r: slice, c: slice):
        j1, j2 = jac(0, r), jac(1, c)
        with torch.no_grad():
            terms = []
            for a, b in zip(j1, j2, strict=True):  # one weight layer: its W (and b) Jacobians
                if full:
                    parts = [torch.einsum("iop,jqp->ijoq", ja, jb)
                             for ja, jb in zip(a, b, strict=True)]
                else:
                    parts = [ja.flatten(1) @ jb.flatten(1).T
                             for ja, jb in zip(a, b, strict=True)]
                terms.append(parts[0] if len(parts) == 1 else parts[0].add_(parts[1]))
            return terms if per_layer else torch.stack(terms).sum(0)

    return assemble(x1.shape[0], (x1 if symmetric else x2).shape[0], block, symmetric=symmetric,
                    chunk_size=chunk_size, tail=(out_dim, out_dim) if full else (),
                    n_layers=len(groups) if per_layer else None, to_numpy=_numpy)


def jacobian_diagonals(forward: Forward, params: Sequence[torch.Tensor], groups: list[list[int]],
                       x: torch.Tensor, *, chunk_size: int) -> np.ndarray:
    """Per-layer NTK diagonal ``Θ_l(x_i, x_i) = Σ_o ‖J_l(x_i)_o‖²``, ``(L, n)`` float64."""
    rows = []
    for s in range(0, x.shape[0], max(1, chunk_size)):
        jl = layer_jacobians(forward, params, groups, x[s:s + chunk_size])
        rows.append(torch.stack([sum((j * j).sum((1, 2)) for j in layer) for layer in jl])
                    .to(torch.float64).cpu())
    return torch.cat(rows, dim=1).numpy()


def layer_diagonals(params: list[torch.Tensor], scales: list[tuple[float, float]], act, dact,
                    x: torch.Tensor, *, bias: bool) -> np.ndarray:
    """Per-layer NTK diagonal ``Θ_l(x_i, x_i) = (s_W²‖a_i‖² + s_b²)·Σ_o ‖δ_{i,o}‖²``, ``(L, n)``."""
    out_dim = params[-2].shape[0]
    with torch.no_grad():
        s = sensitivities(params, scales, act, dact, x, bias=bias)
        rows = []
        for (sw, sb), A, D in zip(scales, s.inputs, s.deltas, strict=True):
            row = sw * sw * (A * A).sum(1) + (sb * sb if bias else 0.0)
            rows.append(row * (out_dim if D is None else (D * D).sum((1, 2))))
        return torch.stack(rows).to(torch.float64).cpu().numpy()
