"""Data-dependent classics: LSUV, GO initialization and MetaInit.

Each is a registered initializer whose draws are the pre-init and whose ``calibrate`` step
(see :mod:`ntkbench.initializers.calibration`) adjusts them on training data through the
trial's backend. What each chose goes into the trial record as ``initializer_calibration``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ntkbench import registry
from ntkbench.checks import integer, nonnegative, positive
from ntkbench.initializers.calibration import Batch, Probe, Weights
from ntkbench.initializers.classical import orthogonal
from ntkbench.models import LayerInfo

Shape = tuple[int, ...]


# --------------------------------------------------------------------------------------------
# LSUV


def _lsuv_params(tol: float, max_iter: int, batch_size: int) -> tuple[float, int, int]:
    return (positive("tol", tol), integer("max_iter", max_iter, minimum=1),
            integer("batch_size", batch_size, minimum=2))


@registry.initializers.register("lsuv")
def lsuv(shape: Shape, rng: np.random.Generator, *, layer: LayerInfo, tol: float = 0.1,
         max_iter: int = 10, batch_size: int = 256) -> np.ndarray:
    """LSUV (Mishkin & Matas 2016): orthonormal weights, each layer rescaled to unit output
    variance on data.

    Pre-init: Haar orthonormal weights (:func:`~ntkbench.initializers.classical.orthogonal`
    with ``conv="flatten"``, as the paper orthonormalises flattened kernels), zero biases.
    Calibration, layer by layer from the input: forward a batch of ``batch_size`` training
    inputs, take the variance ``v`` of the layer's output ``z_l`` (pre-activation, over
    examples and units), and set ``W_l ← W_l / √v``; repeat until ``|v − 1| < tol`` or
    ``max_iter`` rescalings. The readout is rescaled too, as in the paper. Records the total factor
    of each layer (``scales``), the rescalings (``passes``), the final variances and whether
    each layer met ``tol`` (``layer_converged``).
    Reference: Mishkin & Matas 2016, "All you need is a good init", ICLR.
    """
    _lsuv_params(tol, max_iter, batch_size)
    return orthogonal(shape, rng, layer=layer, conv="flatten")


def _lsuv_calibrate(model: Any, weights: Weights, batch: Batch, probe: Probe, *,
                    rng: np.random.Generator, tol: float, max_iter: int,
                    batch_size: int) -> tuple[Weights, dict[str, Any]]:
    tol, max_iter, batch_size = _lsuv_params(tol, max_iter, batch_size)
    x = batch.sample(batch_size, rng).x
    weights = [dict(layer) for layer in weights]
    scales, passes, variances, met = [], [], [], []

    def output_variance(i: int) -> float:
        var = float(np.var(probe.layer_outputs(weights, x)[i][0]))
        if not math.isfinite(var) or var <= 0:
            raise ValueError(f"LSUV cannot rescale layer {i}: its output variance on the "
                             f"batch is {var!r}")
        return var

    for i in range(len(weights)):
        total, count, var = 1.0, 0, output_variance(i)
        while abs(var - 1.0) >= tol and count < max_iter:
            weights[i]["W"] = weights[i]["W"] / math.sqrt(var)
            total /= math.sqrt(var)
            count += 1
            var = output_variance(i)
        scales.append(total)
        passes.append(count)
        variances.append(var)
        met.append(abs(var - 1.0) < tol)
    return weights, {"scales": scales, "passes": passes, "output_variance": variances,
                     "layer_converged": met, "batch_size": len(x)}


lsuv.calibrate = _lsuv_calibrate


# --------------------------------------------------------------------------------------------
# GO initialization


def _go_params(c0: float, b0: float, lam: float, batch_size: int,
               max_iter: int) -> tuple[float, float, float, int, int]:
    return (positive("c0", c0), positive("b0", b0), nonnegative("lam", lam),
            integer("batch_size", batch_size, minimum=3), integer("max_iter", max_iter, minimum=1))


@registry.initializers.register("go")
def go(shape: Shape, rng: np.random.Generator, *, layer: LayerInfo, c0: float = 1.0,
       b0: float = 0.1, lam: float = 0.01, batch_size: int = 128,
       max_iter: int = 60) -> np.ndarray:
    """GO (Wang & Perdikaris 2021): per-layer scales fitted on data to decorrelate the last
    hidden layer's features.

    "Globally orthogonal" initialization: each hidden layer's weight scale ``c_l`` and bias
    scale ``β_l`` are chosen so that last-hidden-layer features of a data batch are as far
    from collinear as possible.

    Hidden layer ``l``: ``W_l = c_l · G_l / √fan_in``, ``b_l = β_l · ξ_l`` with ``G_l, ξ_l``
    i.i.d. N(0, 1) drawn once (the pre-init has ``c_l = c0``, ``β_l = b0``); the readout is
    N(0, 1/fan_in) with zero bias. Calibration minimises over ``(c, β)``

        ``J(c, β) = −1/(d(d−1)) Σ_{i≠j} log(1 − cos²θ_ij) + lam · ‖c‖²``

    where ``θ_ij`` is the angle between the last hidden layer's features of examples ``i`` and
    ``j`` of a batch of ``d = batch_size`` training inputs (pairs of identical inputs are left
    out of the mean). Without biases only ``c`` is fitted. Under ``parameterization: ntk`` the
    scales are those of the effective weights ``s_W·W`` (the weights are divided by ``s_W``).
    The log barrier pushes features apart; ``lam`` keeps the scales from growing into the
    chaotic regime. It targets deep tanh MLPs, whose Glorot-initialised features collapse
    to one direction with depth. Optimiser: L-BFGS-B on ``(log c, log β)`` with bounds
    ``c ∈ [0.05, 20]``, ``β ∈ [1e-4, 10]`` and ``max_iter`` iterations, the gradient by finite
    differences of backend forward passes. Records ``c``, ``b`` (per hidden layer), the
    objective before and after, and the mean ``cos²θ`` before and after.
    Reference: Wang & Perdikaris 2021, "Enhancing the trainability and expressivity of deep
    MLPs with globally orthogonal initialization", NeurIPS workshop on the Symbiosis of Deep
    Learning and Differential Equations.
    """
    c0, b0, *_ = _go_params(c0, b0, lam, batch_size, max_iter)
    std = (1.0 if layer.is_readout else c0) / math.sqrt(layer.fan_in)
    return rng.normal(0.0, std, size=shape)


def _go_bias(shape: Shape, rng: np.random.Generator, *, layer: LayerInfo, c0: float = 1.0,
             b0: float = 0.1, lam: float = 0.01, batch_size: int = 128,
             max_iter: int = 60) -> np.ndarray:
    return np.zeros(shape) if layer.is_readout else rng.normal(0.0, positive("b0", b0), shape)


go.bias = _go_bias


def collinearity(features: np.ndarray, keep: np.ndarray | None = None) -> tuple[float, float]:
    """``(−mean log sin²θ_ij, mean cos²θ_ij)`` over the pairs ``i < j`` of feature rows
    ``features`` ``(d, m)`` (``keep``: a boolean mask over those pairs, in
    ``scipy.spatial.distance.pdist`` order; all pairs when ``None``).

    ``sin²θ = ‖u_i − u_j‖² (4 − ‖u_i − u_j‖²) / 4`` for unit vectors ``u``, from the
    differences themselves: ``1 − cos²θ`` would lose every digit once features nearly collapse
    (``cos²θ`` within 1e-16 of 1), and with them the slope the optimiser follows.
    """
    from scipy.spatial.distance import pdist

    f = features.reshape(len(features), -1)
    norms = np.linalg.norm(f, axis=1)
    unit = f / np.where(norms > 0, norms, 1.0)[:, None]
    chord = pdist(unit, "sqeuclidean")
    sin2 = np.clip(chord * (4.0 - chord) / 4.0, 0.0, 1.0)
    # A zero feature vector has no direction: count it as collinear with everything.
    dead = np.flatnonzero(norms == 0)
    if dead.size:
        pair_i, pair_j = np.triu_indices(len(f), 1)
        sin2[np.isin(pair_i, dead) | np.isin(pair_j, dead)] = 0.0
    if keep is not None:
        sin2 = sin2[keep]
    tiny = np.finfo(np.float64).tiny
    return float(-np.mean(np.log(np.maximum(sin2, tiny)))), float(np.mean(1.0 - sin2))


def model_scaled(model: Any, weights: Weights) -> Weights:
    """Weights whose *effective* values ``s_W·W``, ``s_b·b`` in ``model``'s forward pass are
    the given ones: divides by the parameterization's multipliers (no-op under
    ``"standard"``), so a calibration means the same network under ``"ntk"``."""
    out = []
    for layer, w in zip(model.layers(), weights, strict=True):
        sw, sb = model.scales(layer)
        out.append({"W": w["W"] / sw if sw else w["W"], "b": w["b"] / sb if sb else w["b"]})
    return out


def _go_calibrate(model: Any, weights: Weights, batch: Batch, probe: Probe, *,
                  rng: np.random.Generator, c0: float, b0: float, lam: float, batch_size: int,
                  max_iter: int) -> tuple[Weights, dict[str, Any]]:
    from scipy.optimize import minimize
    from scipy.spatial.distance import pdist

    c0, b0, lam, batch_size, max_iter = _go_params(c0, b0, lam, batch_size, max_iter)
    x = batch.sample(batch_size, rng).x
    hidden = len(weights) - 1
    if hidden == 0:
        return model_scaled(model, weights), {"c": [], "b": [], "batch_size": len(x),
                                              "skipped": "no hidden layer to scale"}
    keep = pdist(x, "sqeuclidean") > 0  # pairs of identical inputs say nothing
    if not keep.any():
        raise ValueError("GO needs at least two distinct inputs in its batch")
    n_b = hidden if model.bias else 0  # without biases only the weight scales are free

    def scaled(u: np.ndarray) -> Weights:
        c, beta = np.exp(u[:hidden]), np.exp(u[hidden:]) if n_b else np.full(hidden, b0)
        out = [dict(layer) for layer in weights]
        for i in range(hidden):
            out[i] = {"W": weights[i]["W"] * (c[i] / c0), "b": weights[i]["b"] * (beta[i] / b0)}
        return model_scaled(model, out)

    def objective(u: np.ndarray) -> float:
        features = probe.layer_outputs(scaled(u), x)[hidden - 1][1]
        return collinearity(features, keep)[0] + lam * float(np.sum(np.exp(2 * u[:hidden])))

    bounds = [(math.log(0.05), math.log(20.0))] * hidden + [(math.log(1e-4), math.log(10.0))] * n_b
    start = np.clip(np.log(np.r_[np.full(hidden, c0), np.full(n_b, b0)]),
                    [b[0] for b in bounds], [b[1] for b in bounds])
    before = objective(start)
    res = minimize(objective, start, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": max_iter})
    best = res.x if res.fun <= before else start
    new = scaled(best)
    feats = [probe.layer_outputs(w, x)[hidden - 1][1] for w in (scaled(start), new)]
    cos_before, cos_after = (collinearity(f, keep)[1] for f in feats)
    return new, {"c": np.exp(best[:hidden]),
                 "b": np.exp(best[hidden:]) if n_b else [],
                 "objective_initial": before, "objective": min(res.fun, before),
                 "mean_cos2_initial": cos_before, "mean_cos2": cos_after,
                 "lbfgs_iterations": int(res.nit), "optimizer_message": str(res.message),
                 "batch_size": len(x)}


go.calibrate = _go_calibrate


# --------------------------------------------------------------------------------------------
# MetaInit


def _metainit_params(steps: int, lr: float, momentum: float, eps: float,
                     batch_size: int) -> tuple[int, float, float, float, int]:
    m = nonnegative("momentum", momentum)
    if m >= 1:
        raise ValueError(f"momentum must be < 1, got {momentum!r}")
    return (integer("steps", steps, minimum=1), positive("lr", lr), m, positive("eps", eps),
            integer("batch_size", batch_size, minimum=1))


@registry.initializers.register("metainit")
def metainit(shape: Shape, rng: np.random.Generator, *, layer: LayerInfo, steps: int = 100,
             lr: float = 0.1, momentum: float = 0.9, eps: float = 1e-5,
             batch_size: int = 64) -> np.ndarray:
    """MetaInit (Dauphin & Schoenholz 2019): per-layer weight norms tuned on data to minimise
    the gradient quotient.

    LeCun-normal weights whose per-layer norms are tuned by signSGD.

    Pre-init: ``W ~ N(0, 1/fan_in)``, zero biases. With ``g = ∇L(θ)`` and the Hessian-vector
    product ``Hg`` on a batch, the gradient quotient is

        ``GQ(θ) = 1/N Σ_p |(g_p − (Hg)_p) / (g_p + eps·sign(g_p)) − 1|``

    (``N`` trainable parameters); it is 0 when one gradient step would leave the gradient
    unchanged, i.e. the curvature along ``g`` is flat, the property MetaInit asks of a good
    init. On a batch of ``batch_size`` training examples, drawn once, each step takes, for
    every weight tensor ``W_j`` at the same ``θ``, the sign of ``∂GQ/∂‖W_j‖`` (forward
    difference over a relative norm change of 1e-3; ``Hg`` is the backend's exact
    Hessian-vector product); then
    ``m_j ← momentum·m_j − lr·sign``, ``‖W_j‖ ← ‖W_j‖ + m_j`` (rescaling ``W_j``, never below a
    tenth of its norm). Biases are not tuned. The paper meta-trains on fresh Gaussian noise
    at every step; a fixed batch of real data keeps the sign estimates of successive steps
    consistent (with a fresh minibatch per step, small networks' norms random-walk upwards).
    SignSGD need not descend monotonically on this non-smooth objective, so the weights
    returned are those of the step with the lowest ``GQ`` (``best_step``; step 0 is the
    pre-init, ``steps`` the end). Under ``parameterization: ntk`` the LeCun
    scale is that of the effective weights ``s_W·W``. Records the initial and returned norms,
    ``GQ`` every 10 steps and at the end, and the lowest ``GQ`` with its step.
    Reference: Dauphin & Schoenholz 2019, "MetaInit: Initializing learning by learning to
    initialize", NeurIPS.
    """
    _metainit_params(steps, lr, momentum, eps, batch_size)
    fan_in = math.prod(shape[1:])
    return rng.normal(0.0, 1.0 / math.sqrt(fan_in), size=shape)


def gradient_quotient(probe: Probe, weights: Weights, x: np.ndarray, labels: np.ndarray,
                      eps: float, *, bias: bool = True) -> float:
    """``GQ(θ)`` of :func:`metainit` on ``(x, labels)``, with ``g`` and ``Hg`` from the
    backend; biases count among the ``N`` parameters only when they are trainable."""
    g = probe.loss_gradients(weights, x, labels)
    hg = probe.loss_hvp(weights, x, labels, g)
    total, count = 0.0, 0
    for gl, hl in zip(g, hg, strict=True):
        for key in ("W", "b") if bias else ("W",):
            gp, hp = gl[key], hl[key]
            guard = eps * np.where(gp >= 0, 1.0, -1.0)
            total += float(np.abs((gp - hp) / (gp + guard) - 1.0).sum())
            count += gp.size
    return total / count


def _metainit_calibrate(model: Any, weights: Weights, batch: Batch, probe: Probe, *,
                        rng: np.random.Generator, steps: int, lr: float, momentum: float,
                        eps: float, batch_size: int) -> tuple[Weights, dict[str, Any]]:
    steps, lr, momentum, eps, batch_size = _metainit_params(steps, lr, momentum, eps,
                                                            batch_size)
    weights = model_scaled(model, weights)
    norms0 = [float(np.linalg.norm(layer["W"])) for layer in weights]
    memory = np.zeros(len(weights))
    history = []
    delta = 1e-3

    def quotient(w: Weights, mb: Batch) -> float:
        return gradient_quotient(probe, w, mb.x, mb.labels, eps, bias=model.bias)

    mb = batch.sample(batch_size, rng)
    best = (math.inf, 0, weights)
    for step in range(steps):
        here = quotient(weights, mb)
        if step % 10 == 0:
            history.append(here)
        if here < best[0]:
            best = (here, step, list(weights))  # the loop rebinds entries in place
        # Every sign is taken at the same θ, then every norm moves (as in the paper).
        signs = np.zeros(len(weights))
        for j, layer in enumerate(weights):
            if np.any(layer["W"]):
                trial = list(weights)
                trial[j] = {"W": layer["W"] * (1 + delta), "b": layer["b"]}
                signs[j] = np.sign(quotient(trial, mb) - here)
        memory = momentum * memory - lr * signs
        for j, layer in enumerate(weights):
            norm = float(np.linalg.norm(layer["W"]))
            if norm > 0:
                new_norm = max(norm + memory[j], 0.1 * norm)
                weights[j] = {"W": layer["W"] * (new_norm / norm), "b": layer["b"]}
    final = quotient(weights, mb)
    if final < best[0]:
        best = (final, steps, weights)
    gq, best_step, weights = best
    return weights, {"norms_initial": norms0,
                     "norms": [float(np.linalg.norm(layer["W"])) for layer in weights],
                     "gradient_quotient": history + [final], "gq_every": 10,
                     "gradient_quotient_best": gq, "best_step": best_step, "steps": steps,
                     "batch_size": len(mb)}


metainit.calibrate = _metainit_calibrate
