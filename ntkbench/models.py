"""Backend-neutral architecture specs.

A model here is a small frozen value that says *what* network to build; backends turn it into
something that runs. Weights live outside the model, as a list of ``{"W": ..., "b": ...}`` numpy
arrays (one dict per layer, torch layout: ``W: (fan_out, fan_in)`` for dense layers,
``(out_channels, in_channels, kh, kw)`` for convolutions), so the same initial weights can be
materialised by any backend.

Forward pass of :class:`MLP` with ``depth`` hidden layers and a linear readout::

    h_0 = x
    z_l = s_W(l) · W_l h_{l-1} + s_b · b_l,     h_l = act(z_l)     for l = 1..depth
    f(x) = s_W(L) · W_L h_depth + s_b · b_L                          (readout, no activation)

with ``s_W = 1, s_b = 1`` under ``parameterization="standard"`` (the initializer sets the scale)
and ``s_W = w_std / sqrt(fan_in), s_b = b_std`` under ``parameterization="ntk"`` (Jacot et al.
2018), where weights are usually drawn N(0, 1).

:class:`CNN` is the same with convolutions first (see its docstring); ``fan_in`` of a conv layer
is ``in_channels · kh · kw``.
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
        fan_out: ``W.shape[0] * prod(kernel)``, as in torch.nn.init.
        activation: nonlinearity applied to this layer's output (``"linear"`` for the readout).
        is_readout: True for the last (linear) layer.
        input_shape: shape of one network input, channels first, e.g. ``(1, 28, 28)`` for
            grey images or ``(n,)`` for 1-D signals; ``None`` when the input has no spatial
            structure. Only meaningful for ``index == 0``.
        kind: ``"dense"`` or ``"conv"``.
        shape: the weight shape, ``(fan_out, fan_in)`` for dense layers and
            ``(out_channels, in_channels, kh, kw)`` for convolutions; ``None`` means the dense
            shape (see :attr:`weight_shape`).
    """

    index: int
    depth: int
    fan_in: int
    fan_out: int
    activation: str
    is_readout: bool = False
    input_shape: tuple[int, ...] | None = None
    kind: str = "dense"
    shape: tuple[int, ...] | None = None

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """The shape the initializer fills."""
        return self.shape if self.shape is not None else (self.fan_out, self.fan_in)

    @property
    def n_units(self) -> int:
        """Output units (dense) or output channels (conv): the bias length."""
        return self.weight_shape[0]


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
        _check_common(self)
        for name in ("in_dim", "width"):
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
        return _scales(self, layer)

    def n_params(self) -> int:
        return _n_params(self.layers(), self.bias)


def _scales(model: MLP | CNN, layer: LayerInfo) -> tuple[float, float]:
    """``(w_std/√fan_in, b_std)`` under NTK parameterization, ``(1, 1)`` under standard."""
    if model.parameterization == "ntk":
        return model.w_std / math.sqrt(layer.fan_in), model.b_std
    return 1.0, 1.0


def _n_params(layers: list[LayerInfo], bias: bool) -> int:
    return sum(math.prod(li.weight_shape) + (li.n_units if bias else 0) for li in layers)


def _check_common(model: MLP | CNN) -> None:
    if model.activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {model.activation!r}")
    if model.parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, "
                         f"got {model.parameterization!r}")
    if model.out_dim < 1:
        raise ValueError(f"out_dim must be >= 1, got {model.out_dim}")


@dataclass(frozen=True)
class CNN:
    """A convolutional network: conv layers, optional average pooling, then a dense head.

    Forward pass for an input of shape ``input_shape = (C, H, W)`` (each row of ``x`` is one
    input flattened in C order; ``(H, W)`` means one channel)::

        h_0 = x reshaped to (C, H, W)
        z_l = s_W(l) · conv(h_{l-1}, W_l; stride, padding) + s_b · b_l     (b_l per channel)
        h_l = avgpool_pool(act(z_l))                                      for l = 1..len(channels)
        g   = mean of h over positions (global_pool) or h flattened
        then a dense MLP head: hidden layers of ``head`` widths with ``act``, linear readout

    ``W_l`` has shape ``(channels[l], channels[l-1], kernel_size, kernel_size)``; the scales
    ``(s_W, s_b)`` follow :class:`MLP` with ``fan_in = in_channels · kernel_size²`` for conv
    layers and ``fan_in = len(g)`` for the first dense layer.

    Args:
        input_shape: ``(C, H, W)`` or ``(H, W)``.
        channels: output channels of each conv layer (at least one layer).
        kernel_size: square kernel side.
        stride: convolution stride.
        padding: zero padding on each side; ``None`` = ``kernel_size // 2`` (keeps the size
            for odd kernels and stride 1).
        pool: average-pooling window (and stride) after each conv layer; 1 = no pooling.
        global_pool: average over all positions before the head (CNN-GAP) instead of
            flattening.
        head: widths of the hidden dense layers between the convolutions and the readout.
        out_dim, activation, parameterization, w_std, b_std, bias: as in :class:`MLP`.
    """

    input_shape: tuple[int, ...]
    channels: tuple[int, ...] = (16, 32)
    kernel_size: int = 3
    stride: int = 1
    padding: int | None = None
    pool: int = 1
    global_pool: bool = False
    head: tuple[int, ...] = ()
    out_dim: int = 1
    activation: str = "relu"
    parameterization: str = "standard"
    w_std: float = 1.0
    b_std: float = 1.0
    bias: bool = True

    def __post_init__(self) -> None:
        shape = tuple(int(d) for d in self.input_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"a CNN needs input_shape (C, H, W) or (H, W) with positive sizes, "
                             f"got {self.input_shape}")
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "head", tuple(int(w) for w in self.head))
        _check_common(self)
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be a non-empty list of positive counts, "
                             f"got {list(self.channels)}")
        if self.head and min(self.head) < 1:
            raise ValueError(f"head widths must be positive, got {list(self.head)}")
        for name in ("kernel_size", "stride", "pool"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.padding is not None and self.padding < 0:
            raise ValueError(f"padding must be >= 0, got {self.padding}")
        self.feature_shapes()  # raises when the image shrinks to nothing

    @property
    def pad(self) -> int:
        return self.kernel_size // 2 if self.padding is None else self.padding

    @property
    def in_dim(self) -> int:
        return math.prod(self.input_shape)

    def feature_shapes(self) -> list[tuple[int, int, int]]:
        """``(C, H, W)`` of the input and after each conv layer (and its pooling)."""
        c, h, w = self.input_shape
        shapes = [(c, h, w)]
        for i, ch in enumerate(self.channels):
            h = (h + 2 * self.pad - self.kernel_size) // self.stride + 1
            w = (w + 2 * self.pad - self.kernel_size) // self.stride + 1
            h, w = h // self.pool, w // self.pool
            if h < 1 or w < 1:
                raise ValueError(
                    f"conv layer {i + 1} of {len(self.channels)} leaves no output positions for "
                    f"input_shape {self.input_shape} (kernel_size {self.kernel_size}, stride "
                    f"{self.stride}, padding {self.pad}, pool {self.pool}); use fewer layers, "
                    f"more padding or less pooling")
            shapes.append((ch, h, w))
        return shapes

    @property
    def features(self) -> int:
        """Length of the vector the dense head receives."""
        c, h, w = self.feature_shapes()[-1]
        return c if self.global_pool else c * h * w

    @property
    def n_conv(self) -> int:
        return len(self.channels)

    def layers(self) -> list[LayerInfo]:
        """One :class:`LayerInfo` per weight layer: convolutions, head, readout."""
        k = self.kernel_size
        dense = [self.features, *self.head, self.out_dim]
        n = self.n_conv + len(dense) - 1
        chans = [self.input_shape[0], *self.channels]
        out = [LayerInfo(index=i, depth=n, fan_in=chans[i] * k * k, fan_out=chans[i + 1] * k * k,
                         activation=self.activation, input_shape=self.input_shape if i == 0
                         else None, kind="conv", shape=(chans[i + 1], chans[i], k, k))
               for i in range(self.n_conv)]
        for j in range(len(dense) - 1):
            i = self.n_conv + j
            out.append(LayerInfo(index=i, depth=n, fan_in=dense[j], fan_out=dense[j + 1],
                                 activation="linear" if i == n - 1 else self.activation,
                                 is_readout=i == n - 1))
        return out

    def scales(self, layer: LayerInfo) -> tuple[float, float]:
        """Multipliers ``(s_W, s_b)`` as in :meth:`MLP.scales`."""
        return _scales(self, layer)

    def n_params(self) -> int:
        return _n_params(self.layers(), self.bias)


Model = MLP | CNN
