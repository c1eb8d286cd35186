"""Backend-neutral architecture specs.

A model here is a small frozen value that says *what* network to build; backends turn it into
something that runs. Weights live outside the model, as a list of ``{"W": ..., "b": ...}`` numpy
arrays (one dict per layer, torch layout ``W: (fan_out, fan_in)``), so the same initial weights
can be materialised by any backend.

Forward pass of :class:`MLP` with ``depth`` hidden layers and a linear readout::

    h_0 = x
    z_l = s_W(l) · W_l h_{l-1} + s_b · b_l,     h_l = act(z_l)     for l = 1..depth
    f(x) = s_W(L) · W_L h_depth + s_b · b_L                          (readout, no activation)

with ``s_W = 1, s_b = 1`` under ``parameterization="standard"`` (the initializer sets the scale)
and ``s_W = w_std / sqrt(fan_in), s_b = b_std`` under ``parameterization="ntk"`` (Jacot et al.
2018), where weights are usually drawn N(0, 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

ACTIVATIONS = ("relu", "tanh", "erf", "gelu", "sin", "linear")
PARAMETERIZATIONS = ("standard", "ntk")


@dataclass(frozen=True)
class LayerInfo:
    """What an initializer knows about the layer it fills.

    Attributes:
        index: 0-based position of the layer in the network (0 = first layer).
        depth: number of weight layers in the network (hidden layers + readout).
        fan_in: number of inputs of one unit (``W.shape[1] * prod(kernel)``).
        fan_out: number of units (``W.shape[0] * prod(kernel)`` as in torch.nn.init).
        activation: nonlinearity applied to this layer's output (``"linear"`` for the readout).
        is_readout: True for the last (linear) layer.
        input_shape: grid of the network input, e.g. ``(28, 28)`` for images or ``(n,)`` for
            1-D signals; ``None`` when the input has no spatial structure. Only meaningful for
            ``index == 0``.
    """

    index: int
    depth: int
    fan_in: int
    fan_out: int
    activation: str
    is_readout: bool = False
    input_shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class MLP:
    """A fully connected network: ``depth`` hidden layers of ``width`` units and a linear readout.

    Args:
        in_dim: input dimension.
        width: units per hidden layer.
        depth: number of hidden layers (0 gives a linear model).
        out_dim: output dimension.
        activation: one of ``relu``, ``tanh``, ``erf``, ``gelu``, ``sin``, ``linear``.
        parameterization: ``"standard"`` or ``"ntk"`` (see module docstring).
        w_std, b_std: NTK-parameterization scales; unused under ``"standard"``.
        bias: whether layers carry a bias.
        input_shape: optional grid of the input (for initializers with receptive fields).
    """

    in_dim: int
    width: int = 256
    depth: int = 2
    out_dim: int = 1
    activation: str = "relu"
    parameterization: str = "standard"
    w_std: float = 1.0
    b_std: float = 1.0
    bias: bool = True
    input_shape: tuple[int, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.parameterization not in PARAMETERIZATIONS:
            raise ValueError(
                f"parameterization must be one of {PARAMETERIZATIONS}, "
                f"got {self.parameterization!r}"
            )
        for name in ("in_dim", "width", "out_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.depth < 0:
            raise ValueError(f"depth must be >= 0, got {self.depth}")

    @property
    def dims(self) -> list[int]:
        """Layer widths from input to output: ``[in_dim, width, ..., width, out_dim]``."""
        return [self.in_dim] + [self.width] * self.depth + [self.out_dim]

    def layers(self) -> list[LayerInfo]:
        """One :class:`LayerInfo` per weight layer, input to readout."""
        dims = self.dims
        n = len(dims) - 1
        return [
            LayerInfo(
                index=i,
                depth=n,
                fan_in=dims[i],
                fan_out=dims[i + 1],
                activation="linear" if i == n - 1 else self.activation,
                is_readout=i == n - 1,
                input_shape=self.input_shape if i == 0 else None,
            )
            for i in range(n)
        ]

    def scales(self, layer: LayerInfo) -> tuple[float, float]:
        """Multipliers ``(s_W, s_b)`` of ``W`` and ``b`` of ``layer`` in the forward pass."""
        if self.parameterization == "ntk":
            return self.w_std / math.sqrt(layer.fan_in), self.b_std
        return 1.0, 1.0

    def n_params(self) -> int:
        dims = self.dims
        return sum(dims[i] * dims[i + 1] + (dims[i + 1] if self.bias else 0)
                   for i in range(len(dims) - 1))
