"""The two defaults users actually get: what a PyTorch and a Flax layer do when nobody picks an
initializer.

``torch_default`` is ``nn.Linear`` / ``nn.Conv2d``'s ``reset_parameters`` (weights *and* biases
non-zero); ``flax_default`` is ``flax.linen.Dense`` / ``Conv``'s ``lecun_normal`` kernel with a
zero bias. Weights are in torch layout ``(out, in, *kernel)``; Flax stores conv kernels as HWIO,
but ``fan_in = in · kh · kw`` is the same in both layouts, so the distributions agree.
"""

from __future__ import annotations

import math

import numpy as np

from ntkbench import registry
from ntkbench.initializers.classical import Shape, compute_fans, he_uniform, truncated_normal
from ntkbench.models import LayerInfo

#: The standard deviation of N(0, 1) truncated to [-2, 2], the constant in
#: ``jax.nn.initializers.variance_scaling`` (``√(1 − 4φ(2) / (Φ(2) − Φ(−2)))``).
TRUNCATED_STD = 0.87962566103423978


@registry.initializers.register("torch_default")
def torch_default(shape: Shape, rng: np.random.Generator, *, layer: LayerInfo) -> np.ndarray:
    """PyTorch's nn.Linear/nn.Conv2d default: W_ij, b_i ~ U(±1/√fan_in).

    ``reset_parameters`` calls ``kaiming_uniform_(W, a=√5)``: the leaky-ReLU gain with slope
    ``a = √5`` is ``√(2 / (1 + a²)) = √(1/3)``, and He uniform's bound ``√3 · gain / √fan_in``
    becomes ``√3 · √(1/3) / √fan_in = 1/√fan_in`` (variance ``1 / (3 fan_in)``, a third of
    LeCun's). The bias is ``U(±1/√fan_in)`` with the weight's ``fan_in`` (``in_channels·kh·kw``
    for convolutions), drawn after the weight from the same ``rng``. References:
    ``torch.nn.Linear.reset_parameters`` and ``torch.nn.Conv2d.reset_parameters`` (the ``a=√5``
    choice is discussed in pytorch/pytorch issue #57109).
    """
    return he_uniform(shape, rng, layer=layer, mode="fan_in", nonlinearity="leaky_relu",
                      negative_slope=math.sqrt(5.0))


def torch_default_bias(shape: Shape, rng: np.random.Generator, *, layer: LayerInfo) -> np.ndarray:
    """The bias of :func:`torch_default`: b_i ~ U(±1/√fan_in), ``fan_in`` from ``layer``."""
    bound = 1.0 / math.sqrt(layer.fan_in)
    return rng.uniform(-bound, bound, size=shape)


torch_default.bias = torch_default_bias  # type: ignore[attr-defined]


@registry.initializers.register("flax_default")
def flax_default(shape: Shape, rng: np.random.Generator, *, layer: LayerInfo) -> np.ndarray:
    """Flax's Dense/Conv default (lecun_normal): N(0, 1) truncated to ±2, rescaled to var 1/fan_in.

    ``jax.nn.initializers.lecun_normal`` is ``variance_scaling(1.0, "fan_in",
    "truncated_normal")``: ``W = T · √(1 / fan_in) / 0.87962566103423978`` with ``T ~ N(0, 1)``
    truncated to ``[-2, 2]`` and ``0.8796…`` the standard deviation of ``T``, so ``Var W =
    1 / fan_in`` exactly and ``|W| ≤ 2 / (0.8796… √fan_in)``. Biases are zero (Flax's
    ``bias_init`` is ``zeros``). Unlike ntkbench's ``lecun_normal`` it is truncated.
    References: ``flax.linen.Dense`` (``default_kernel_init``); LeCun et al. 1998, "Efficient
    BackProp"; Klambauer et al. 2017, "Self-Normalizing Neural Networks", NeurIPS.
    """
    fan_in, _ = compute_fans(shape)
    t = truncated_normal(shape, rng, layer=layer, mean=0.0, std=1.0, a=-2.0, b=2.0)
    return t * (math.sqrt(1.0 / fan_in) / TRUNCATED_STD)
