"""The structured empirical NTK of an MLP in PyTorch, chunked over examples.

For a dense layer ``z = s_W·W a + s_b·b`` the gradient of output ``o`` for one example is the
outer product ``s_W·δ_o aᵀ`` (and ``s_b·δ_o`` for the bias), where ``δ_o = ∂f_o/∂z``. The
layer's contribution to the kernel summed over outputs is therefore::

    Θ_l(x1, x2) = (s_W² A1 A2ᵀ + s_b²) ⊙ Σ_o Δ1_o Δ2_oᵀ

with ``A`` the layer inputs ``(n, fan_in)`` and ``Δ_o`` the sensitivities ``(n, fan_out)``.
Summed over layers this is the exact NTK, at the cost of one forward pass, one backward sweep
of per-example sensitivities and two Gram products per layer. For the readout ``Δ`` is the
identity, so its second factor is the constant ``out_dim`` (or ``I`` in the full block).

Large kernels are computed block by block: sensitivities are kept for all examples (they are
``n × out_dim × Σ widths``, usually far smaller than the ``n × n`` kernel), and the Gram
products of one square block at a time go straight into a float64 numpy output, so the
temporaries stay within a fixed memory budget. For ``x2 = x1`` only blocks on or above the
diagonal are computed and mirrored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

# Bytes of block temporaries (Gram products and their accumulator) when no chunk size is given.
DEFAULT_BLOCK_BYTES = 512 * 2**20


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
    n_layers = len(scales)
    with torch.no_grad():
        s1 = sensitivities(params, scales, act, dact, x1, bias=bias)
        symmetric = x2 is None
        s2 = s1 if symmetric else sensitivities(params, scales, act, dact, x2, bias=bias)
        n1, n2 = x1.shape[0], (x1 if symmetric else x2).shape[0]
        tail = (out_dim, out_dim) if full else ()
        if chunk_size is None:  # square blocks whose three temporaries fit in the budget
            per_entry = x1.element_size() * (out_dim * out_dim if full else 1) * 3
            chunk_size = max(1, math.isqrt(DEFAULT_BLOCK_BYTES // per_entry))
        chunk_size = max(1, int(chunk_size))
        shape = ((n_layers,) if per_layer else ()) + (n1, n2) + tail
        out = np.empty(shape, dtype=np.float64)
        for r0 in range(0, n1, chunk_size):
            r = slice(r0, min(r0 + chunk_size, n1))
            for c0 in range(r0 if symmetric else 0, n2, chunk_size):
                c = slice(c0, min(c0 + chunk_size, n2))
                terms = _layer_terms(s1, s2, r, c, scales, bias=bias, out_dim=out_dim, full=full)
                if per_layer:
                    for i, term in enumerate(terms):
                        _store(out[i], r, c, term, mirror=symmetric and c0 != r0, full=full)
                else:
                    block = next(terms)
                    for term in terms:
                        block.add_(term)
                    _store(out, r, c, block, mirror=symmetric and c0 != r0, full=full)
        return out


def _store(out: np.ndarray, r: slice, c: slice, block: torch.Tensor, *, mirror: bool,
           full: bool) -> None:
    out[r, c] = block.cpu().numpy()  # numpy widens to float64 while copying
    if mirror:
        # Θ(x2, x1) is Θ(x1, x2) transposed over examples and over the output pair.
        out[c, r] = out[r, c].transpose(1, 0, 3, 2) if full else out[r, c].T


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
