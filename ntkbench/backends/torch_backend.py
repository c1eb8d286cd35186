"""PyTorch backend: materialises neutral weights, trains, and computes the empirical NTK.

The network is evaluated functionally from a list of ``(W, b)`` tensors (no ``nn.Module``), so
the forward pass is exactly the one documented in :mod:`ntkbench.models` and the NTK engine can
reuse its intermediate values.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable

import numpy as np
import torch

from ntkbench.backends import DeviceNotFound
from ntkbench.backends.torch_ntk import (
    jacobian_diagonals,
    jacobian_ntk,
    layer_diagonals,
    structured_ntk,
)
from ntkbench.backends.training import (
    TrainLog,
    check_tv,
    is_full_batch,
    run_training,
    total_variation,
)
from ntkbench.config import TrainingConfig
from ntkbench.data.base import PixelGrid
from ntkbench.models import CNN, MLP, Model
from ntkbench.ntk.blocks import default_chunk

name = "torch"

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
_SQRT_2_OVER_PI = 2.0 / math.sqrt(math.pi)


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without a GPU raises."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceNotFound(f"device {device!r} requested but PyTorch sees no CUDA GPU "
                           f"(torch {torch.__version__}); use device: cpu or auto")
    return device


def device_name(device: str) -> str:
    """A human-readable name of the device, for the trial record."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine() or "cpu"


def library_versions() -> dict[str, str]:
    return {"torch": torch.__version__}


def _activation(name_: str) -> tuple[Callable, Callable]:
    """``(φ, φ′)`` for an activation name."""
    if name_ == "relu":
        return torch.relu, lambda z: (z > 0).to(z.dtype)
    if name_ == "tanh":
        return torch.tanh, lambda z: 1.0 - torch.tanh(z) ** 2
    if name_ == "erf":
        return torch.special.erf, lambda z: _SQRT_2_OVER_PI * torch.exp(-z * z)
    if name_ == "gelu":
        # Exact GELU z·Φ(z); derivative Φ(z) + z·φ(z).
        return (torch.nn.functional.gelu,
                lambda z: 0.5 * (1 + torch.special.erf(z / math.sqrt(2)))
                + z * torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))
    if name_ == "sin":
        return torch.sin, torch.cos
    if name_ == "linear":
        return (lambda z: z), torch.ones_like
    raise ValueError(f"unknown activation {name_!r}")


def forward(model: Model, scales: list[tuple[float, float]], act: Callable,
            params: list[torch.Tensor], x: torch.Tensor,
            trace: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
    """The forward pass of :mod:`ntkbench.models` for an MLP or a CNN (differentiable).

    ``trace``, when given, receives each layer's ``(z, h)``: its pre-activation and its
    activation (``h = z`` for the readout; before pooling for conv layers).
    """
    h, first = x, 0
    if isinstance(model, CNN):
        h = x.reshape(x.shape[0], *model.input_shape)
        for i in range(model.n_conv):
            sw, sb = scales[i]
            z = torch.nn.functional.conv2d(h, params[2 * i], stride=model.stride,
                                           padding=model.pad)
            if sw != 1.0:
                z = sw * z
            if model.bias:
                z = z + sb * params[2 * i + 1].reshape(1, -1, 1, 1)
            h = act(z)
            if trace is not None:
                trace.append((z, h))
            if model.pool > 1:
                h = torch.nn.functional.avg_pool2d(h, model.pool)
        h = h.mean(dim=(2, 3)) if model.global_pool else h.flatten(1)
        first = model.n_conv
    last = len(scales) - 1
    for i in range(first, len(scales)):
        sw, sb = scales[i]
        z = sw * (h @ params[2 * i].T)
        if model.bias:
            z = z + sb * params[2 * i + 1]
        h = act(z) if i < last else z
        if trace is not None:
            trace.append((z, h))
    return h


class Network:
    """An :class:`~ntkbench.models.MLP` or :class:`~ntkbench.models.CNN` with concrete weights
    on a device.

    Args:
        model: the architecture.
        weights: neutral weights, a list of ``{"W", "b"}`` numpy arrays.
        dtype: ``"float32"`` or ``"float64"``.
        device: a torch device string (already resolved, see :func:`resolve_device`).
    """

    def __init__(self, model: Model, weights: list[dict[str, np.ndarray]], *,
                 dtype: str = "float32", device: str = "cpu") -> None:
        self.model = model
        self.dtype = _DTYPES[dtype]
        self.device = torch.device(device)
        self.params: list[torch.Tensor] = []
        for layer in weights:
            self.params.append(self._tensor(layer["W"]).requires_grad_(True))
            self.params.append(self._tensor(layer["b"]).requires_grad_(model.bias))
        self.scales = [model.scales(info) for info in model.layers()]
        self.act, self.dact = _activation(model.activation)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            if isinstance(model, CNN):
                # cuDNN may pick non-deterministic convolution algorithms (and autotune them
                # differently from run to run); pin deterministic ones.
                torch.backends.cudnn.deterministic = True
                torch.backends.cudnn.benchmark = False

    def peak_memory_mb(self) -> float | None:
        """Peak GPU memory allocated since construction (``None`` on the CPU)."""
        if self.device.type != "cuda":
            return None
        return torch.cuda.max_memory_allocated(self.device) / 2**20

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        """A fresh tensor of this network's dtype on its device (never a view of ``x``)."""
        # Cast on the host first: the copy to a GPU then moves the narrow type.
        x = np.array(x, dtype=_NUMPY_DTYPES[self.dtype], order="C", copy=True)
        return torch.from_numpy(x).to(self.device)

    def weights(self) -> list[dict[str, np.ndarray]]:
        """Current weights in the neutral format (float64 numpy)."""
        out = []
        for W, b in zip(self.params[::2], self.params[1::2], strict=True):
            out.append({"W": W.detach().cpu().double().numpy(),
                        "b": b.detach().cpu().double().numpy()})
        return out

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The forward pass of :mod:`ntkbench.models` (differentiable, used for training)."""
        return forward(self.model, self.scales, self.act, self.params, x)

    def _forward(self, params, x: torch.Tensor) -> torch.Tensor:
        return forward(self.model, self.scales, self.act, params, x)

    @property
    def structured(self) -> bool:
        """Whether the NTK uses the layer-structured engine (MLPs) rather than Jacobians."""
        return isinstance(self.model, MLP)

    def _groups(self) -> list[list[int]]:
        """Indices into ``params`` of each weight layer's trainable tensors."""
        return [[2 * i, 2 * i + 1] if self.model.bias else [2 * i]
                for i in range(len(self.scales))]

    def ntk_layer_diagonals(self, x: np.ndarray) -> np.ndarray:
        """Each weight layer's contribution to the NTK diagonal ``Θ_l(x_i, x_i)``, ``(L, n)``
        float64 — the per-layer breakdown without the ``L × n × n`` kernels."""
        t = self._tensor(x)
        if self.structured:
            return layer_diagonals(self.params, self.scales, self.act, self.dact, t,
                                   bias=self.model.bias)
        row_bytes = t.element_size() * self.model.out_dim * self.model.n_params()
        return jacobian_diagonals(self._forward, self.params, self._groups(), t,
                                  chunk_size=default_chunk(t.element_size(), 1, False,
                                                           row_bytes=row_bytes))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Network outputs ``(n, out_dim)`` as float64 numpy."""
        with torch.no_grad():
            return self.apply(self._tensor(x)).double().cpu().numpy()

    def ntk(self, x1: np.ndarray, x2: np.ndarray | None = None, *, full: bool = False,
            per_layer: bool = False, chunk_size: int | None = None) -> np.ndarray:
        """Empirical NTK ``Θ(x1, x2) = Σ_p ∂f(x1)/∂θ_p · ∂f(x2)/∂θ_p``.

        For an MLP each dense layer contributes ``(s_W² A1 A2ᵀ + s_b²) ⊙ Σ_o Δ1_o Δ2_oᵀ`` and no
        per-example Jacobian is formed; a CNN's kernel contracts per-example Jacobians, a block
        of examples at a time (see :mod:`ntkbench.backends.torch_ntk`).

        Returns:
            float64 ``(n1, n2)`` kernel summed over outputs, ``(n1, n2, O, O)`` if ``full``;
            ``per_layer`` adds a leading axis with one contribution per weight layer.
        """
        t1 = self._tensor(x1)
        t2 = None if x2 is None else self._tensor(x2)
        if not self.structured:
            return jacobian_ntk(self._forward, self.params, self._groups(), t1, t2,
                                out_dim=self.model.out_dim, full=full, per_layer=per_layer,
                                chunk_size=chunk_size)
        return structured_ntk(self.params, self.scales, self.act, self.dact, t1, t2,
                              bias=self.model.bias, out_dim=self.model.out_dim, full=full,
                              per_layer=per_layer, chunk_size=chunk_size)

    def layer_outputs(self, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each layer's pre-activation ``z`` and activation ``h`` on ``x`` (float64 numpy;
        ``h`` is ``z`` for the readout), for data-dependent initializers."""
        trace: list[tuple[torch.Tensor, torch.Tensor]] = []
        with torch.no_grad():
            forward(self.model, self.scales, self.act, self.params, self._tensor(x), trace)
        return [(z.double().cpu().numpy(), h.double().cpu().numpy()) for z, h in trace]

    def _targets(self, y: np.ndarray, kind: str) -> torch.Tensor:
        if kind == "cross_entropy":
            return torch.as_tensor(np.asarray(y), dtype=torch.long, device=self.device)
        return self._tensor(y).reshape(len(y), -1)

    def _numpy_pairs(self, tensors: list[torch.Tensor | None]) -> list[dict[str, np.ndarray]]:
        out = [np.zeros(tuple(p.shape)) if t is None else t.detach().double().cpu().numpy()
               for p, t in zip(self.params, tensors, strict=True)]
        return [{"W": W, "b": b} for W, b in zip(out[::2], out[1::2], strict=True)]

    def loss_gradients(self, x: np.ndarray, y: np.ndarray,
                       kind: str) -> list[dict[str, np.ndarray]]:
        """``∇_θ L`` of the training loss ``kind`` on ``(x, y)``, in the weights' format
        (bias gradients are 0 without a bias)."""
        trainable = [p for p in self.params if p.requires_grad]
        loss = self.loss(self.apply(self._tensor(x)), self._targets(y, kind), kind)
        grads = iter(torch.autograd.grad(loss, trainable))
        return self._numpy_pairs([next(grads) if p.requires_grad else None for p in self.params])

    def loss_hvp(self, x: np.ndarray, y: np.ndarray, kind: str,
                 v: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """The Hessian-vector product ``(∇²_θ L) v`` (double backward)."""
        trainable = [p for p in self.params if p.requires_grad]
        loss = self.loss(self.apply(self._tensor(x)), self._targets(y, kind), kind)
        grads = torch.autograd.grad(loss, trainable, create_graph=True)
        flat_v = [self._tensor(layer[k]) for layer in v for k in ("W", "b")]
        vs = [t for p, t in zip(self.params, flat_v, strict=True) if p.requires_grad]
        dot = sum((g * t).sum() for g, t in zip(grads, vs, strict=True))
        hv = iter(torch.autograd.grad(dot, trainable, allow_unused=True))  # None: a zero block
        return self._numpy_pairs([next(hv) if p.requires_grad else None for p in self.params])

    def loss(self, out: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
        """``mse``: ``1/(2n) Σ_i ‖f_i − y_i‖²``; ``cross_entropy``: mean over samples."""
        if kind == "mse":
            return 0.5 * ((out - y) ** 2).sum() / out.shape[0]
        return torch.nn.functional.cross_entropy(out, y)

    def train(self, x: np.ndarray, y: np.ndarray, training: TrainingConfig, *, seed: int,
              checkpoints: list[int], on_checkpoint: Callable[[int, float], None],
              grid: PixelGrid | None = None) -> TrainLog:
        """Train in place for ``training.steps`` steps (see
        :func:`ntkbench.backends.training.run_training` for checkpoints, minibatches and
        divergence); ``grid`` is the task's pixel grid, needed when ``training.tv_weight``."""
        check_tv(training, grid)
        xt = self._tensor(x)
        classification = training.loss == "cross_entropy"
        yt = (torch.as_tensor(np.asarray(y), dtype=torch.long, device=self.device)
              if classification else self._tensor(y).reshape(len(x), -1))
        params = [p for p in self.params if p.requires_grad]
        if training.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=training.lr)
        else:
            opt = torch.optim.SGD(params, lr=training.lr, momentum=training.momentum)
        tv = None if not training.tv_weight else (training.tv_weight, self._tensor(grid.x),
                                                  grid.shape)
        stepper = _TorchStepper(self, xt, yt, training.loss, opt,
                                full_batch=is_full_batch(training, len(x)), tv=tv)
        return run_training(stepper, len(x), training, seed=seed, checkpoints=checkpoints,
                            on_checkpoint=on_checkpoint)


class _TorchStepper:
    """Loss and optimizer step of :class:`Network` for the shared training loop."""

    def __init__(self, net: Network, x: torch.Tensor, y: torch.Tensor, loss: str,
                 opt: torch.optim.Optimizer, *, full_batch: bool,
                 tv: tuple[float, torch.Tensor, tuple[int, int]] | None = None) -> None:
        self.net, self.x, self.y, self.kind, self.opt = net, x, y, loss, opt
        self.full_batch, self.tv = full_batch, tv
        self._loss: torch.Tensor | None = None

    def _objective(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The data loss (what is logged) and the objective (what is minimised)."""
        data = self.net.loss(self.net.apply(x), y, self.kind)
        if self.tv is None:
            return data, data
        weight, grid, shape = self.tv
        return data, data + weight * total_variation(self.net.apply(grid), shape)

    def full_loss(self) -> float:
        # Full-batch training keeps the graph: the step reuses this forward pass.
        if not self.full_batch:  # only the logged data term: the step draws its own batch
            with torch.no_grad():
                return self.net.loss(self.net.apply(self.x), self.y, self.kind).item()
        data, self._loss = self._objective(self.x, self.y)
        return data.detach().item()

    def step(self, batch: np.ndarray | None) -> float | None:
        value = None
        if batch is None:
            loss = self._loss
        else:
            idx = torch.as_tensor(batch, device=self.net.device)
            data, loss = self._objective(self.x[idx], self.y[idx])
            value = data.detach().item()
            if not math.isfinite(value):
                return value
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return value

