"""An ntkbench initializer plugin, written as any third party would write one."""

from __future__ import annotations

import numpy as np


def spectral_normal(shape, rng, *, layer, sigma: float = 1.0) -> np.ndarray:
    """Gaussian weights rescaled to spectral norm ``sigma`` (largest singular value).

    ``W = sigma · G / ‖G‖₂`` with ``G_ij ~ N(0, 1)``: every layer then has operator norm
    ``sigma``, so signals neither explode nor vanish along the top singular direction
    (cf. Miyato et al. 2018, spectral normalisation, applied once at initialisation).
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    g = rng.standard_normal(shape)
    return sigma * g / np.linalg.norm(g.reshape(shape[0], -1), ord=2)
