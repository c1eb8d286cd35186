"""SIREN initialization for sine networks (Sitzmann et al. 2020)."""

from __future__ import annotations

import math

import numpy as np

from ntkbench import registry
from ntkbench.checks import positive
from ntkbench.initializers.classical import Shape, compute_fans
from ntkbench.models import LayerInfo


@registry.initializers.register("siren")
def siren(
    shape: Shape, rng: np.random.Generator, *, layer: LayerInfo,
    omega_0: float = 30.0, fold: bool = True,
) -> np.ndarray:
    """SIREN (Sitzmann et al. 2020): U(±1/fan_in) first, U(±√(6/fan_in)/ω₀) after; ω₀ folded in.

    A SIREN layer computes ``sin(ω₀ (W x + b))`` and is initialized with::

        first layer (index 0):            W_ij ~ U(−1/fan_in, 1/fan_in)
        other layers, the readout too:    W_ij ~ U(−√(6/fan_in)/ω₀, √(6/fan_in)/ω₀)

    so that the first layer's ``sin(ω₀ W x)`` spans several periods over inputs in [−1, 1] and
    every later pre-activation is ≈ N(0, 1) (its input, a sine output, is arcsine-distributed
    with variance 1/2: ``fan_in · (2/(ω₀² fan_in)) · ω₀² · 1/2 = 1``). ntkbench's ``sin``
    activation computes ``sin(W x + b)`` with no ``ω₀``; with ``fold=True`` (default) every
    non-readout weight is multiplied by ``ω₀`` (``W' = ω₀ W``: the first layer becomes
    ``U(±ω₀/fan_in)``, hidden layers ``U(±√(6/fan_in))``), so a network with
    ``activation: sin`` computes exactly SIREN's function at initialization; the readout has no
    sine and is not folded. ``fold=False`` gives the paper's distribution unchanged, for a
    network that applies ``ω₀`` itself.

    Folding changes the parameterization, not just the initial values: the gradient with
    respect to ``W' = ω₀ W`` is ``1/ω₀`` times that with respect to ``W``, so SIREN's
    parameterization trains the effective weights ``ω₀ W`` with an effective learning rate
    ``ω₀²`` times larger than a step on ``W'`` (a step ``η`` on ``W'`` equals ``η/ω₀²`` on
    SIREN's ``W``), and the NTK contribution of the folded layers is ``1/ω₀²`` of SIREN's.
    Trajectories therefore differ from SIREN's even though the initial function is the same.

    Biases stay zero, whereas SIREN's reference code keeps PyTorch's default bias
    ``U(±1/√fan_in)``. ``fan_in`` is ``W.shape[1] · prod(kernel)``.
    Reference: Sitzmann, Martel, Bergman, Lindell & Wetzstein 2020, "Implicit Neural
    Representations with Periodic Activation Functions", NeurIPS.
    """
    omega = positive("omega_0", omega_0)
    if not isinstance(fold, bool):
        raise ValueError(f"fold must be true or false, got {fold!r}")
    fan_in, _ = compute_fans(shape)
    bound = 1.0 / fan_in if layer.index == 0 else math.sqrt(6.0 / fan_in) / omega
    w = rng.uniform(-bound, bound, size=shape)
    return omega * w if fold and not layer.is_readout else w
