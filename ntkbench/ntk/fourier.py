"""Residual energy per Fourier band, for inputs drawn uniformly from a box (1-D / 2-D targets).

The spectral bias of neural networks (Rahaman et al. 2019, "On the Spectral Bias of Neural
Networks", ICML; Basri et al. 2020) is usually shown in the Fourier basis: low frequencies of
the target are fitted first. For a function ``r`` on the box ``[lo, hi]ᵈ`` with
``u = (x − lo)/(hi − lo) ∈ [0, 1]ᵈ``, its Fourier coefficients are
``c_k = ∫ r(u) e^{−2πi k·u} du`` for integer vectors ``k`` (cycles over the box), and
Parseval gives ``Σ_k |c_k|² = ∫ r²``. From ``n`` points drawn i.i.d. uniformly from the box,

    ``|c_k|² ≈ (|S_k|² − Σ_i |r_i|²) / (n (n − 1))``,  ``S_k = Σ_i r_i e^{−2πi k·u_i}``,

is **unbiased** (it is the U-statistic ``Σ_{i≠j} r_i r_j e^{−2πi k·(u_i − u_j)} / (n(n−1))``,
whose every term has expectation ``|c_k|²``); the plain ``|S_k/n|²`` would add
``∫ r² / n`` to every coefficient, a floor that swamps the high bands. A single estimate can be
negative, and its noise (about ``∫ r² / n`` per coefficient) makes the wide high bands the
noisiest. :func:`fourier_energy` sums the estimates over octave bands of ``|k|_∞`` (band 0 is
the mean, then ``|k|_∞ = 1``, ``2–3``, ``4–7``, …) and over output columns. Only points
sampled uniformly from the box (the generator declares it: ``Dataset.domain``) make it
unbiased; on other designs it is a weighted transform and should not be read as Fourier energy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

MAX_FREQUENCIES = 4096  # at most this many frequency vectors k (the transform is n × K)


def fourier_band_edges(n: int, dim: int) -> np.ndarray:
    """Octave edges of ``|k|_∞`` for ``n`` points in ``dim`` dimensions: band ``b`` holds the
    ``k`` with ``edges[b] ≤ |k|_∞ < edges[b+1]``. The highest frequency ``k_max`` keeps the
    number of frequency vectors ``(2 k_max + 1)^dim`` near ``n`` (no more can be told apart
    from ``n`` samples) and at most :data:`MAX_FREQUENCIES`."""
    if n < 2 or dim < 1:
        raise ValueError(f"fourier_band_edges needs n >= 2 points and dim >= 1, got {n}, {dim}")
    k_max = max(1, int(min(n, MAX_FREQUENCIES) ** (1.0 / dim) - 1) // 2)
    edges = [0, 1] + [2 ** b for b in range(1, int(math.log2(k_max)) + 1)] + [k_max + 1]
    return np.array(sorted(set(edges)))


def fourier_energy(x: ArrayLike, phi: ArrayLike, domain: Sequence[tuple[float, float]],
                   edges: ArrayLike | None = None) -> np.ndarray:
    """Energy of ``phi`` per octave band of Fourier frequencies (module docstring).

    Args:
        x: points ``(n, d)``, drawn uniformly from ``domain``.
        phi: values at the points, ``(n,)`` or ``(n, m)`` (energies are summed over columns).
        domain: ``d`` pairs ``(lo, hi)``, the box the points were drawn from.
        edges: band edges of ``|k|_∞`` (default :func:`fourier_band_edges`).

    Returns:
        One unbiased estimate of ``Σ_{k ∈ band} |c_k|²`` per band; with all frequencies up to
        ``k_max`` they add up to the mean of ``phi²`` over the box minus what lies above
        ``k_max``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must be (n, d), got shape {x.shape}")
    n, d = x.shape
    values = np.asarray(phi, dtype=np.float64).reshape(n, -1)
    box = np.asarray(domain, dtype=np.float64)
    if box.shape != (d, 2) or not np.all(box[:, 1] > box[:, 0]):
        raise ValueError(f"domain must be {d} pairs (lo, hi) with lo < hi, got {domain!r}")
    edges = fourier_band_edges(n, d) if edges is None else np.asarray(edges, dtype=int)
    k_max = int(edges[-1]) - 1
    axis = np.arange(-k_max, k_max + 1)
    ks = np.stack(np.meshgrid(*([axis] * d), indexing="ij"), axis=-1).reshape(-1, d)
    u = (x - box[:, 0]) / (box[:, 1] - box[:, 0])
    S = np.exp(-2j * np.pi * (u @ ks.T)).T @ values  # (K, m)
    c2 = (np.sum(np.abs(S) ** 2, axis=1) - np.sum(values ** 2)) / (n * (n - 1))
    band = np.searchsorted(edges, np.abs(ks).max(axis=1), side="right") - 1
    return np.bincount(band, weights=c2, minlength=len(edges) - 1)[:len(edges) - 1]
