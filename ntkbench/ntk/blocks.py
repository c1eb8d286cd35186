"""Assemble a kernel from square blocks: the backend-neutral loop of every NTK engine.

A backend supplies ``block(rows, cols)``, the kernel restricted to two slices of examples (one
array, or one per layer with ``per_layer``), as any array ``to_numpy`` converts. This module
writes the blocks straight into a float64 numpy output, so temporaries stay within one block.
For a symmetric kernel (``x2 = x1``) only blocks on or above the diagonal are computed and the
rest is mirrored: ``Θ(x2, x1)`` is ``Θ(x1, x2)`` transposed over examples and, in the full
``(n1, n2, O, O)`` block, over the output pair.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np

J = TypeVar("J")

#: Bytes of block temporaries (products and their accumulator) when no chunk size is given.
DEFAULT_BLOCK_BYTES = 512 * 2**20
#: Per-example Jacobians (CNN kernels) up to this many bytes in all are computed once and kept;
#: beyond it a column block's Jacobians are recomputed for every row block.
JACOBIAN_CACHE_BYTES = 2 * 2**30


def default_chunk(itemsize: int, out_dim: int, full: bool, *, row_bytes: int = 0,
                  n: int | None = None, budget: int = DEFAULT_BLOCK_BYTES) -> int:
    """The side of the largest square block whose temporaries fit in ``budget`` bytes.

    A block holds three ``c × c`` (× ``O²`` when ``full``) arrays of ``itemsize`` bytes, plus
    ``row_bytes`` per example on each side (e.g. per-example Jacobians). Given the number of
    examples ``n``, the blocks are made equal (``n = 256`` in blocks of at most 63 gives five
    of 52 rather than four of 63 and one of 4).
    """
    per_entry = 3 * itemsize * (out_dim * out_dim if full else 1)
    c = math.isqrt(budget // per_entry)
    if row_bytes:
        c = min(c, budget // (2 * row_bytes))
    c = max(1, c)
    if n:
        c = -(-n // -(-n // c))  # ceil(n / number of blocks)
    return c


def assemble(n1: int, n2: int, block: Callable[[slice, slice], Any], *, symmetric: bool,
             chunk_size: int, tail: tuple[int, ...] = (), n_layers: int | None = None,
             to_numpy: Callable[[Any], np.ndarray] = np.asarray) -> np.ndarray:
    """The ``(n1, n2, *tail)`` kernel (``(n_layers, n1, n2, *tail)`` when ``n_layers`` is given
    and ``block`` returns one array per layer) as float64 numpy.

    ``tail`` is ``()`` for kernels traced over outputs or ``(O, O)`` for full output blocks.
    """
    chunk_size = max(1, int(chunk_size))
    lead = () if n_layers is None else (n_layers,)
    out = np.empty(lead + (n1, n2) + tail, dtype=np.float64)
    for r0 in range(0, n1, chunk_size):
        r = slice(r0, min(r0 + chunk_size, n1))
        for c0 in range(r0 if symmetric else 0, n2, chunk_size):
            c = slice(c0, min(c0 + chunk_size, n2))
            result = block(r, c)
            # Per layer, the terms may come from a generator: write each before the next.
            pairs: Iterable = zip(out, result, strict=True) if n_layers is not None \
                else [(out, result)]
            for target, values in pairs:
                target[r, c] = to_numpy(values)  # numpy widens to float64 while copying
                if symmetric and c0 != r0:
                    target[c, r] = (target[r, c].transpose(1, 0, 3, 2) if tail
                                    else target[r, c].T)
                del values
            del result, pairs  # free this block before computing the next
    return out


def jacobian_fetcher(compute: Callable[[int, slice], J], *, symmetric: bool,
                     total_bytes: int) -> Callable[[int, slice], J]:
    """``fetch(which, s)``: the per-example Jacobians of block ``s`` of the rows
    (``which = 0``, examples of x1) or columns (``which = 1``; x2, or x1 when ``symmetric``),
    from ``compute(which, s)`` with as little recomputation as memory allows.

    A row block is computed once and kept while :func:`assemble` walks its columns; the diagonal
    block of a symmetric kernel reuses it. When all Jacobians (``total_bytes``) fit in
    :data:`JACOBIAN_CACHE_BYTES` every block is kept, so each is computed once; otherwise column
    blocks are recomputed for every row block.
    """
    keep_all = total_bytes <= JACOBIAN_CACHE_BYTES
    rows: dict[tuple[int, int], J] = {}  # the current row block's
    kept: dict[tuple[int, int, int], J] = {}  # every block's, with keep_all

    def cached(which: int, s: slice) -> J:
        key = (0 if symmetric else which, s.start, s.stop)
        if key in kept:
            return kept[key]
        value = compute(which, s)
        if keep_all:
            kept[key] = value
        return value

    def fetch(which: int, s: slice) -> J:
        if which == 0:
            if (s.start, s.stop) not in rows:
                rows.clear()
                rows[s.start, s.stop] = cached(0, s)
            return rows[s.start, s.stop]
        if symmetric and (s.start, s.stop) in rows:  # the diagonal block
            return rows[s.start, s.stop]
        return cached(1, s)

    return fetch
