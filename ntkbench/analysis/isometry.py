"""Dynamical isometry: the singular values of an MLP's input–output Jacobian at initialization.

For the :class:`ntkbench.models.MLP` forward pass ``h_l = s_W W_l x_{l−1} + s_b b_l``,
``x_l = φ(h_l)``, ``x_0`` the input, the Jacobian of layer ``l``'s post-activations with respect
to the input is the product

    J_l = ∂x_l/∂x_0 = D_l (s_W W_l) D_{l−1} (s_W W_{l−1}) ··· D_1 (s_W W_1),   D_k = diag φ′(h_k).

A network is *dynamically isometric* when every singular value of ``J_L`` is close to 1, so a
gradient keeps its norm and its direction through the depth (Saxe et al. 2014). The squared
singular values are the eigenvalues ``λ`` of ``J Jᵀ``; this module measures, per depth ``l``,
their mean ``m₁ = E λ`` and variance ``σ² = Var λ``, pooled over the inputs, and the mean of the
largest singular value.

Free-probability prediction (Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid
in deep learning through dynamical isometry", NeurIPS; the same paper's eq. for ``σ²_{JJᵀ}``).
At large width the factors ``(s_W W_k)ᵀ(s_W W_k)`` and ``D_k²`` are asymptotically free, and for
free elements the *normalised* variances ``v = m₂/m₁² − 1`` of a product add while the means
multiply:

    m₁(L) = Π_{k≤L} χ_k,     σ²(L) / m₁(L)² = Σ_{k≤L} (v_{W,k} + v_{D,k}),

with ``χ_k = m₁(W_k) · E[φ′(h_k)²]``, ``v_{D,k} = E[φ′(h_k)⁴] / E[φ′(h_k)²]² − 1`` for
``h_k ~ N(0, q_k)``, and ``q_k`` the pre-activation variance of the infinite-width variance map
(:mod:`ntkbench.analysis.variance_flow`, zero biases). ``m₁(W)`` and ``v_W`` are taken from the
drawn weights (the eigenvalue moments of ``s_W² W Wᵀ``): a square Gaussian layer has ``v_W → 1``
(Marchenko–Pastur at ratio 1), a square orthogonal one ``v_W = 0``. Closed cases: linear
Gaussian ``σ² = L`` (at ``m₁ = 1``), linear orthogonal ``σ² = 0`` (every singular value is
exactly the gain to the power L), ReLU at He scale: Gaussian ``σ² = 2L``, orthogonal ``σ² = L``
— orthogonal weights cannot make a ReLU network isometric, while tanh near ``q → 0`` can.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ntkbench.analysis import variance_flow as vf
from ntkbench.models import MLP

__all__ = ["JacobianSpectrum", "jacobian_spectrum", "free_probability_prediction",
           "weight_moments"]


@dataclass(frozen=True)
class JacobianSpectrum:
    """Per depth ``l = 1..L`` (index ``l − 1``): statistics of the squared singular values of
    ``J_l`` pooled over the inputs.

    Attributes:
        mean_sq: ``m₁``, the mean squared singular value.
        var_sq: ``σ²``, their (population) variance.
        max_sv: the largest singular value, averaged over the inputs.
        singular_values: those of ``J_L``, ``(n_inputs, min(width, in_dim))``, descending.
    """

    mean_sq: np.ndarray
    var_sq: np.ndarray
    max_sv: np.ndarray
    singular_values: np.ndarray


def _check(model: MLP, weights: Sequence[dict[str, np.ndarray]]) -> None:
    if not isinstance(model, MLP):
        raise ValueError(f"the Jacobian spectrum needs an MLP, got {type(model).__name__}")
    if len(weights) < model.depth:
        raise ValueError(f"{len(weights)} weight layers for an MLP of depth {model.depth}")


def jacobian_spectrum(model: MLP, weights: Sequence[dict[str, np.ndarray]],
                      x: np.ndarray) -> JacobianSpectrum:
    """Measure the singular values of ``J_l`` at every hidden layer (float64, exact Jacobians
    built layer by layer: cost ``O(n · L · width² · in_dim)``).

    Args:
        model: the MLP; its readout is not used.
        weights: its weights, as from :func:`ntkbench.initializers.initialize`.
        x: inputs ``(n, in_dim)``.
    """
    _check(model, weights)
    h = np.asarray(x, dtype=np.float64)
    if h.ndim != 2 or h.shape[1] != model.in_dim:
        raise ValueError(f"x must have shape (n, {model.in_dim}), got {h.shape}")
    phi, dphi = vf.activation_function(model.activation), vf.activation_derivative(
        model.activation)
    jac = np.broadcast_to(np.eye(model.in_dim), (len(h), model.in_dim, model.in_dim))
    infos = model.layers()
    mean_sq, var_sq, max_sv = [], [], []
    s = np.empty((len(h), 0))
    with np.errstate(over="ignore", invalid="ignore"):
        for layer in range(model.depth):
            s_w, s_b = model.scales(infos[layer])
            W = s_w * np.asarray(weights[layer]["W"], dtype=np.float64)
            pre = h @ W.T + s_b * np.asarray(weights[layer]["b"], dtype=np.float64)
            jac = dphi(pre)[:, :, None] * np.einsum("ij,njk->nik", W, jac)
            h = phi(pre)
            s = (np.linalg.svd(jac, compute_uv=False) if np.all(np.isfinite(jac))
                 else np.full((len(h), min(jac.shape[1:])), np.nan))
            lam = s * s
            mean_sq.append(float(np.mean(lam)))
            var_sq.append(float(np.var(lam)))
            max_sv.append(float(np.mean(s[:, 0])))
    return JacobianSpectrum(np.array(mean_sq), np.array(var_sq), np.array(max_sv), s)


def weight_moments(W: np.ndarray) -> tuple[float, float]:
    """``(m₁, v)`` of the eigenvalues of ``W Wᵀ`` (or ``Wᵀ W``, the smaller): the mean
    ``tr(A)/n`` and the normalised variance ``(tr(A²)/n) / m₁² − 1``."""
    W = np.asarray(W, dtype=np.float64)
    A = W @ W.T if W.shape[0] <= W.shape[1] else W.T @ W
    n = A.shape[0]
    m1 = float(np.trace(A)) / n
    m2 = float(np.sum(A * A)) / n  # tr(A²) = ‖A‖_F² for symmetric A
    return m1, (max(m2 / (m1 * m1) - 1.0, 0.0) if m1 > 0 else math.nan)  # ≥ 0 but for rounding


def free_probability_prediction(model: MLP, weights: Sequence[dict[str, np.ndarray]],
                                s0: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(m₁, σ²)`` per depth predicted by free probability (module docstring) for inputs of
    RMS ``s0``, with each layer's weight moments taken from ``weights``.

    Needs a network without biases (they would add to each pre-activation variance) whose
    first layer does not compress, ``in_dim >= width``: with ``in_dim < width`` the Jacobian
    has rank ``in_dim`` and the later layers' variances enter scaled by ``in_dim/width``,
    which this sum does not model. Raises ``ValueError`` otherwise."""
    _check(model, weights)
    if model.bias:
        raise ValueError("the free-probability prediction assumes zero biases; build the MLP "
                         "with bias=False")
    if model.in_dim < model.width:
        raise ValueError(f"the free-probability prediction needs in_dim >= width (the first "
                         f"layer {model.width}×{model.in_dim} compresses the Jacobian to rank "
                         f"{model.in_dim}); got in_dim {model.in_dim}, width {model.width}")
    infos = model.layers()
    dphi = vf.activation_derivative(model.activation)
    mean, total_v, s = 1.0, 0.0, float(s0)
    out_mean, out_var = [], []
    for layer in range(model.depth):
        s_w, _ = model.scales(infos[layer])
        W = s_w * np.asarray(weights[layer]["W"], dtype=np.float64)
        m_w, v_w = weight_moments(W)
        # Each pre-activation's variance: (1/fan_out) Σ_i ‖row_i‖² s² = m₁(WWᵀ)·s² when the
        # rows are the smaller side; in general the mean squared row norm times s².
        q = float(np.mean(np.sum(W * W, axis=1))) * s * s
        sigma = math.sqrt(q)
        e2 = vf.gaussian_mean(lambda u: dphi(u) ** 2, sigma)
        e4 = vf.gaussian_mean(lambda u: dphi(u) ** 4, sigma)
        mean *= m_w * e2
        total_v += v_w + (e4 / (e2 * e2) - 1.0 if e2 > 0 else math.nan)
        out_mean.append(mean)
        out_var.append(mean * mean * total_v)
        s = math.sqrt(vf.second_moment(model.activation, sigma))
    return np.array(out_mean), np.array(out_var)
