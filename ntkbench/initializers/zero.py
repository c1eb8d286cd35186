"""ZerO initialization: deterministic weights made of zeros, ones and Hadamard signs."""

from __future__ import annotations

import numpy as np

from ntkbench import registry
from ntkbench.initializers.classical import Shape, centre_tap, compute_fans
from ntkbench.models import LayerInfo


def sylvester_hadamard(rows: int, cols: int) -> np.ndarray:
    """The leading ``rows × cols`` block of a Sylvester Hadamard matrix.

    ``H_0 = [1]``, ``H_{k+1} = [[H_k, H_k], [H_k, −H_k]]``, so ``H_m`` is ``2^m × 2^m`` with
    ``H_m H_mᵀ = 2^m I`` and entries ``(H_m)_ij = (−1)^{popcount(i AND j)}`` (0-based indices).
    ``H_k`` is the top-left block of ``H_{k+1}``, so the block is the same for every ``m`` with
    ``2^m ≥ max(rows, cols)``; it is built from the bit formula without forming ``H_m``.
    """
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    parity = np.zeros((rows, cols), dtype=np.int64)
    for bit in range(max(rows, cols).bit_length()):
        parity ^= ((i >> bit) & 1) & ((j >> bit) & 1)
    return 1.0 - 2.0 * parity


def zero_matrix(rows: int, cols: int) -> np.ndarray:
    """The ZerO matrix of a ``(rows, cols) = (P_out, P_in)`` layer (Algorithm 1 of the paper)."""
    if rows <= cols:
        return np.eye(rows, cols)
    m = (rows - 1).bit_length()  # ⌈log2(rows)⌉, exact in integers
    return 2.0 ** (-(m - 1) / 2) * sylvester_hadamard(rows, cols)


@registry.initializers.register("zerO")
def zerO(shape: Shape, rng: np.random.Generator, *, layer: LayerInfo) -> np.ndarray:
    """ZerO (Zhao et al. 2022): deterministic identity, partial identity or scaled Hadamard weights.

    For a dense weight of shape ``(P_out, P_in)`` (Algorithm 1 of the paper)::

        P_out = P_in:  W = I
        P_out < P_in:  W = I*                       (ones on the main diagonal: the first
                                                     P_out inputs pass through)
        P_out > P_in:  m = ⌈log2 P_out⌉,  c = 2^(−(m−1)/2),
                       W = c · I*_{P_out×2^m} · H_m · I*_{2^m×P_in} = c · (H_m)[:P_out, :P_in]

    with ``I*`` the partial identity and ``H_m`` the ``2^m × 2^m`` Sylvester Hadamard matrix
    (:func:`sylvester_hadamard`). An expanding layer is then injective (rank ``P_in``) and
    spreads each input over all outputs instead of padding with zeros, which the paper shows
    avoids the rank collapse ("training degeneracy") of partial-identity initialization. Every
    column has norm ``c √P_out``; when ``P_out = 2^m`` the columns are orthogonal and
    ``WᵀW = 2 I``, an isometry times the ReLU gain √2. The authors' released code
    (``example_mnist.ipynb``) scales by ``2^(−m/2)`` instead (an orthonormal Hadamard), √2
    smaller; this follows the paper's algorithm.

    Convolution kernels ``(out, in, kh, kw)``: the same matrix at the centre tap, zeros elsewhere
    (the paper's Algorithm 2); odd kernel sizes are required. Biases are zero and ``rng`` is not
    used, so every seed gives the same weights.
    Reference: Zhao, Schäfer & Anandkumar 2022, "ZerO Initialization: Initializing Neural
    Networks with only Zeros and Ones", TMLR (arXiv:2110.12661).
    """
    shape = tuple(shape)
    compute_fans(shape)  # validates the shape
    return centre_tap(shape, zero_matrix(*shape[:2]), "zerO")
