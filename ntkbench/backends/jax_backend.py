"""JAX backend: the same networks, training and NTK engines as the torch backend.

Importing this module turns on ``jax_enable_x64`` (JAX computes in float32 only unless 64-bit
mode is on; every array here carries an explicit dtype, so float32 trials stay float32) and
sets ``jax_default_matmul_precision`` to ``highest`` (no TF32 rounding on GPUs).
Optimizers come from optax: ``gd``/``sgd`` are ``optax.sgd`` (with ``momentum``; the same heavy
ball form as ``torch.optim.SGD``), ``adam`` is ``optax.adam`` with torch's defaults.
"""

from __future__ import annotations

import functools
import math
import platform
from collections.abc import Callable
from functools import partial

import jax

jax.config.update("jax_enable_x64", True)
# float32 means float32: on GPUs XLA's default matrix products round inputs to TF32/bf16
# (errors of ~1e-2 in an NTK), while torch keeps full float32 unless asked otherwise.
jax.config.update("jax_default_matmul_precision", "highest")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from ntkbench.backends import DeviceNotFound  # noqa: E402
from ntkbench.backends.training import (  # noqa: E402
    TrainLog,
    check_tv,
    is_full_batch,
    run_training,
    total_variation,
)
from ntkbench.config import TrainingConfig  # noqa: E402
from ntkbench.data.base import PixelGrid  # noqa: E402
from ntkbench.models import CNN, MLP, Model  # noqa: E402
from ntkbench.ntk.blocks import assemble, default_chunk, jacobian_fetcher  # noqa: E402

name = "jax"

_DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
_SQRT_2_OVER_PI = 2.0 / math.sqrt(math.pi)


@functools.cache
def _gpus() -> list:
    try:
        return jax.devices("gpu")
    except RuntimeError:
        return []


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when JAX sees a GPU, else ``cpu``; ``cuda`` without a GPU raises."""
    if device == "auto":
        return "cuda" if _gpus() else "cpu"
    if device.startswith("cuda") and not _gpus():
        raise DeviceNotFound(f"device {device!r} requested but JAX sees no GPU "
                           f"(jax {jax.__version__}); install jax[cuda12] or use device: cpu")
    return device


def _jax_device(device: str):
    if device.startswith("cuda"):
        index = int(device.split(":")[1]) if ":" in device else 0
        return _gpus()[index]
    return jax.devices("cpu")[0]


def device_name(device: str) -> str:
    """A human-readable name of the device, for the trial record."""
    if device.startswith("cuda"):
        return _jax_device(device).device_kind
    return platform.processor() or platform.machine() or "cpu"


def library_versions() -> dict[str, str]:
    import jaxlib

    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "optax": optax.__version__}


def _activation(name_: str) -> tuple[Callable, Callable]:
    """``(φ, φ′)`` for an activation name (the same definitions as the torch backend)."""
    if name_ == "relu":
        return jax.nn.relu, lambda z: (z > 0).astype(z.dtype)
    if name_ == "tanh":
        return jnp.tanh, lambda z: 1.0 - jnp.tanh(z) ** 2
    if name_ == "erf":
        return jax.scipy.special.erf, lambda z: _SQRT_2_OVER_PI * jnp.exp(-z * z)
    if name_ == "gelu":
        return (lambda z: jax.nn.gelu(z, approximate=False),
                lambda z: 0.5 * (1 + jax.scipy.special.erf(z / math.sqrt(2)))
                + z * jnp.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))
    if name_ == "sin":
        return jnp.sin, jnp.cos
    if name_ == "linear":
        return (lambda z: z), jnp.ones_like
    raise ValueError(f"unknown activation {name_!r}")


def _forward(model: Model, params: list[jax.Array], x: jax.Array,
             trace: list[tuple[jax.Array, jax.Array]] | None = None) -> jax.Array:
    """The forward pass of :mod:`ntkbench.models` for an MLP or a CNN (the torch backend's
    ``forward``, with XLA's convolution in NCHW/OIHW layout); ``trace`` as there."""
    scales = [model.scales(info) for info in model.layers()]
    act, _ = _activation(model.activation)
    h, first = x, 0
    if isinstance(model, CNN):
        h = x.reshape(x.shape[0], *model.input_shape)
        for i in range(model.n_conv):
            sw, sb = scales[i]
            z = sw * jax.lax.conv_general_dilated(
                h, params[2 * i], (model.stride, model.stride), [(model.pad, model.pad)] * 2,
                dimension_numbers=("NCHW", "OIHW", "NCHW"))
            if model.bias:
                z = z + sb * params[2 * i + 1].reshape(1, -1, 1, 1)
            h = act(z)
            if trace is not None:
                trace.append((z, h))
            if model.pool > 1:  # non-overlapping windows; a remainder row/column is dropped
                p, (n, c, hh, ww) = model.pool, h.shape
                h = h[:, :, :hh // p * p, :ww // p * p].reshape(n, c, hh // p, p, ww // p, p)
                h = h.mean(axis=(3, 5))
        h = h.mean(axis=(2, 3)) if model.global_pool else h.reshape(h.shape[0], -1)
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


def _loss_value(model: Model, params: list[jax.Array], x: jax.Array, y: jax.Array,
                kind: str) -> jax.Array:
    """``mse``: ``1/(2n) Σ_i ‖f_i − y_i‖²``; ``cross_entropy``: mean over samples."""
    out = _forward(model, params, x)
    if kind == "mse":
        return 0.5 * jnp.sum((out - y) ** 2) / out.shape[0]
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, y))


_jit_forward = jax.jit(_forward, static_argnums=0)


@partial(jax.jit, static_argnames=("model", "kind"))
def _loss_gradients(params: list[jax.Array], x: jax.Array, y: jax.Array, *, model: Model,
                    kind: str) -> list[jax.Array]:
    return jax.grad(_loss_value, argnums=1)(model, params, x, y, kind)


@partial(jax.jit, static_argnames=("model", "kind"))
def _loss_hvp(params: list[jax.Array], x: jax.Array, y: jax.Array, v: list[jax.Array], *,
              model: Model, kind: str) -> list[jax.Array]:
    """``(∇²L) v`` as the forward-mode derivative of the gradient along ``v``."""
    return jax.jvp(lambda p: _loss_gradients.__wrapped__(p, x, y, model=model, kind=kind),
                   (params,), (v,))[1]


@functools.lru_cache(maxsize=32)
def _compiled_steps(model: Model, loss: str, optimizer: str, lr: float, momentum: float,
                    tv_weight: float = 0.0, grid_shape: tuple[int, int] | None = None):
    """The optax transform and the jitted ``value_and_grad``, loss and update of one training
    setup, shared by every network of the same architecture in this process: trials that differ
    only in weights, data or seed compile once (per input shape).

    ``value(params, x, y, grid)`` is ``(objective, data loss)``: the objective adds
    ``tv_weight · TV`` of the outputs on ``grid`` (``None`` without it)."""
    opt = optax.adam(lr) if optimizer == "adam" else optax.sgd(lr, momentum=momentum or None)
    # Without a bias the b entries stay fixed, as torch's requires_grad=False does.
    frozen = set() if model.bias else set(range(1, 2 * len(model.layers()), 2))

    def value(params, x, y, grid):
        data = _loss_value(model, params, x, y, loss)
        if not tv_weight:
            return data, data
        return data + tv_weight * total_variation(_forward(model, params, grid), grid_shape), data

    def data_loss(params, x, y, grid):
        return _loss_value(model, params, x, y, loss)

    def update(params, state, grads):
        if frozen:
            grads = [jnp.zeros_like(g) if i in frozen else g for i, g in enumerate(grads)]
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return (opt, jax.jit(jax.value_and_grad(value, has_aux=True)), jax.jit(data_loss),
            jax.jit(update))


def _groups(model: Model) -> tuple[tuple[int, ...], ...]:
    """Indices into the parameter list of each weight layer's trainable arrays."""
    return tuple((2 * i, 2 * i + 1) if model.bias else (2 * i,)
                 for i in range(len(model.layers())))


@partial(jax.jit, static_argnames=("model",))
def _layer_jacobians(params: list[jax.Array], x: jax.Array, *,
                     model: Model) -> list[list[jax.Array]]:
    """Per-example Jacobians of the outputs: per weight layer one ``(n, O, P)`` array per
    parameter (``vmap`` of ``jacrev``; see :func:`ntkbench.backends.torch_ntk.layer_jacobians`)."""
    groups = _groups(model)
    wanted = sorted({i for g in groups for i in g})

    def single(ps: list[jax.Array], xi: jax.Array) -> jax.Array:
        full = list(params)
        for i, p in zip(wanted, ps, strict=True):
            full[i] = p
        return _forward(model, full, xi[None])[0]

    jac = jax.vmap(jax.jacrev(single), in_axes=(None, 0))([params[i] for i in wanted], x)
    n = x.shape[0]
    by_index = {i: j.reshape(n, j.shape[1], -1) for i, j in zip(wanted, jac, strict=True)}
    return [[by_index[i] for i in g] for g in groups]


@partial(jax.jit, static_argnames=("full", "per_layer"))
def _jacobian_block(j1: list[list[jax.Array]], j2: list[list[jax.Array]], *, full: bool,
                    per_layer: bool) -> list[jax.Array] | jax.Array:
    """Each layer's ``J1_l J2_lᵀ`` (contracted over parameters, and over outputs unless
    ``full``); their sum unless ``per_layer``."""
    terms = []
    for a, b in zip(j1, j2, strict=True):
        if full:
            parts = [jnp.einsum("iop,jqp->ijoq", ja, jb) for ja, jb in zip(a, b, strict=True)]
        else:
            parts = [ja.reshape(ja.shape[0], -1) @ jb.reshape(jb.shape[0], -1).T
                     for ja, jb in zip(a, b, strict=True)]
        terms.append(sum(parts[1:], parts[0]))
    return terms if per_layer else sum(terms[1:], terms[0])


@partial(jax.jit, static_argnames=("scales", "activation", "bias"))
def _sensitivities(params: list[jax.Array], x: jax.Array, *, scales: tuple, activation: str,
                   bias: bool) -> tuple[list[jax.Array], list[jax.Array | None]]:
    """Layer inputs ``A_l`` and sensitivities ``Δ_l`` (n, out_dim, fan_out), the readout's
    ``Δ`` (the identity) as ``None``; see :mod:`ntkbench.backends.torch_ntk`. Compiled once
    per architecture and input shape, shared by every :class:`Network`."""
    act, dact = _activation(activation)
    inputs, pre = [], []
    h = x
    n_layers = len(scales)
    for i, (sw, sb) in enumerate(scales):
        inputs.append(h)
        if i == n_layers - 1:
            break
        z = sw * (h @ params[2 * i].T)
        if bias:
            z = z + sb * params[2 * i + 1]
        pre.append(z)
        h = act(z)
    deltas: list[jax.Array | None] = [None] * n_layers
    if n_layers > 1:
        delta = (scales[-1][0] * params[-2])[None] * dact(pre[-1])[:, None]
        deltas[-2] = delta
        for i in range(n_layers - 2, 0, -1):
            delta = (scales[i][0] * (delta @ params[2 * i])) * dact(pre[i - 1])[:, None]
            deltas[i - 1] = delta
    return inputs, deltas


@partial(jax.jit, static_argnames=("scales", "activation", "bias", "out_dim", "full",
                                   "per_layer"))
def _whole_kernel(params: list[jax.Array], x1: jax.Array, x2: jax.Array | None, *,
                  scales: tuple, activation: str, bias: bool, out_dim: int, full: bool,
                  per_layer: bool) -> list[jax.Array] | jax.Array:
    """The kernel in one block: sensitivities and Gram products in one compiled function."""
    s1 = _sensitivities.__wrapped__(params, x1, scales=scales, activation=activation, bias=bias)
    s2 = s1 if x2 is None else _sensitivities.__wrapped__(params, x2, scales=scales,
                                                          activation=activation, bias=bias)
    return _block_terms.__wrapped__(s1[0], s2[0], s1[1], s2[1], scales=scales, bias=bias,
                                    out_dim=out_dim, full=full, per_layer=per_layer)


def _rows(arrays: list, rows: slice, n: int) -> list:
    """``arrays`` restricted to ``rows`` (no copy when the block spans every row)."""
    if rows.start == 0 and rows.stop == n:
        return arrays
    return [None if a is None else a[rows] for a in arrays]


@partial(jax.jit, static_argnames=("scales", "bias", "out_dim", "full", "per_layer"))
def _block_terms(a1: list, a2: list, d1: list, d2: list, *, scales: tuple, bias: bool,
                 out_dim: int, full: bool, per_layer: bool) -> list[jax.Array] | jax.Array:
    """Each layer's contribution ``(s_W² A1A2ᵀ + s_b²) ⊙ Σ_o Δ1_o Δ2_oᵀ`` to one block, from
    the block's inputs and sensitivities; their sum unless ``per_layer``."""
    terms = []
    for (sw, sb), A1, A2, D1, D2 in zip(scales, a1, a2, d1, d2, strict=True):
        # s_W·(s_W·G), not s_W²·G: a Python float s_W² past float32's range would be cast
        # with an overflow warning, while the torch engine's in-place product just gives inf.
        gram = sw * (sw * (A1 @ A2.T))
        if bias:
            gram = gram + sb * sb
        if D1 is None:
            terms.append(gram[:, :, None, None] * jnp.eye(out_dim, dtype=gram.dtype) if full
                         else out_dim * gram)
        elif full:
            terms.append(gram[:, :, None, None] * jnp.einsum("iok,jpk->ijop", D1, D2))
        else:
            terms.append(gram * (D1.reshape(D1.shape[0], -1) @ D2.reshape(D2.shape[0], -1).T))
    return terms if per_layer else sum(terms[1:], terms[0])


# Scales are Python floats, which JAX casts to the network's dtype with numpy: a float32
# overflow there becomes inf (as in torch) and must not warn (a trial whose network is not
# finite at init is recorded as diverged, and RuntimeWarnings may be errors).
_quiet_overflow = np.errstate(over="ignore")


class Network:
    """An :class:`~ntkbench.models.MLP` or :class:`~ntkbench.models.CNN` with concrete weights
    on a JAX device.

    Same interface as :class:`ntkbench.backends.torch_backend.Network`.
    """

    def __init__(self, model: Model, weights: list[dict[str, np.ndarray]], *,
                 dtype: str = "float32", device: str = "cpu") -> None:
        self.model = model
        self.dtype = _DTYPES[dtype]
        self.device = _jax_device(device)
        self.params: list[jax.Array] = []
        for layer in weights:
            self.params += [self._array(layer["W"]), self._array(layer["b"])]
        self.scales = [model.scales(info) for info in model.layers()]
        self._forward = partial(_jit_forward, model)

    def peak_memory_mb(self) -> float | None:
        """Peak device memory in use (``None`` on the CPU, where JAX keeps no statistics)."""
        if self.device.platform == "cpu":
            return None
        stats = self.device.memory_stats() or {}
        peak = stats.get("peak_bytes_in_use")
        return None if peak is None else peak / 2**20

    def _array(self, x: np.ndarray) -> jax.Array:
        # Cast on the host first, as the torch backend does: the same float32 rounding.
        return jax.device_put(np.asarray(x, dtype=np.dtype(self.dtype)), self.device)

    def weights(self) -> list[dict[str, np.ndarray]]:
        """Current weights in the neutral format (float64 numpy)."""
        return [{"W": np.asarray(W, dtype=np.float64), "b": np.asarray(b, dtype=np.float64)}
                for W, b in zip(self.params[::2], self.params[1::2], strict=True)]

    @property
    def structured(self) -> bool:
        """Whether the NTK uses the layer-structured engine (MLPs) rather than Jacobians."""
        return isinstance(self.model, MLP)

    @_quiet_overflow
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Network outputs ``(n, out_dim)`` as float64 numpy."""
        return np.asarray(self._forward(self.params, self._array(x)), dtype=np.float64)

    @_quiet_overflow
    def layer_outputs(self, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each layer's pre-activation ``z`` and activation ``h`` (see the torch backend)."""
        trace: list[tuple[jax.Array, jax.Array]] = []
        _forward(self.model, self.params, self._array(x), trace)
        return [(np.asarray(z, dtype=np.float64), np.asarray(h, dtype=np.float64))
                for z, h in trace]

    def _targets(self, y: np.ndarray, kind: str) -> jax.Array:
        if kind == "cross_entropy":
            return jax.device_put(np.asarray(y, dtype=np.int64), self.device)
        return self._array(np.asarray(y).reshape(len(y), -1))

    @staticmethod
    def _pairs(arrays: list[jax.Array]) -> list[dict[str, np.ndarray]]:
        # Without a bias the forward pass never reads b, so its derivatives are already 0.
        out = [np.asarray(a, dtype=np.float64) for a in arrays]
        return [{"W": W, "b": b} for W, b in zip(out[::2], out[1::2], strict=True)]

    @_quiet_overflow
    def loss_gradients(self, x: np.ndarray, y: np.ndarray,
                       kind: str) -> list[dict[str, np.ndarray]]:
        """``∇_θ L`` of the training loss (see the torch backend)."""
        return self._pairs(_loss_gradients(self.params, self._array(x), self._targets(y, kind),
                                           model=self.model, kind=kind))

    @_quiet_overflow
    def loss_hvp(self, x: np.ndarray, y: np.ndarray, kind: str,
                 v: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """The Hessian-vector product ``(∇²_θ L) v`` (forward over reverse mode)."""
        vs = [self._array(layer[k]) for layer in v for k in ("W", "b")]
        return self._pairs(_loss_hvp(self.params, self._array(x), self._targets(y, kind), vs,
                                     model=self.model, kind=kind))

    def _sensitivities(self, x: jax.Array) -> tuple[list[jax.Array], list[jax.Array | None]]:
        return _sensitivities(self.params, x, scales=tuple(self.scales),
                              activation=self.model.activation, bias=self.model.bias)

    @_quiet_overflow
    def ntk(self, x1: np.ndarray, x2: np.ndarray | None = None, *, full: bool = False,
            per_layer: bool = False, chunk_size: int | None = None) -> np.ndarray:
        """Empirical NTK by layer structure, in square blocks; same contract as the torch
        backend's ``Network.ntk``."""
        symmetric = x2 is None
        n1, n2 = len(x1), len(x1 if symmetric else x2)
        out_dim, n_layers = self.model.out_dim, len(self.scales)
        itemsize = np.dtype(self.dtype).itemsize
        a1 = self._array(x1)
        a2 = a1 if symmetric else self._array(x2)
        layout = {"symmetric": symmetric, "tail": (out_dim, out_dim) if full else (),
                  "n_layers": n_layers if per_layer else None}
        if not self.structured:
            row_bytes = itemsize * out_dim * self.model.n_params()
            if chunk_size is None:
                chunk_size = default_chunk(itemsize, out_dim, full, row_bytes=row_bytes,
                                           n=max(n1, n2))
            jac = jacobian_fetcher(
                lambda which, s: _layer_jacobians(self.params, (a1 if which == 0 else a2)[s],
                                                  model=self.model),
                symmetric=symmetric, total_bytes=(n1 + (0 if symmetric else n2)) * row_bytes)

            def jacobian_block(r: slice, c: slice):
                return _jacobian_block(jac(0, r), jac(1, c), full=full, per_layer=per_layer)

            return assemble(n1, n2, jacobian_block, chunk_size=chunk_size, **layout)
        if chunk_size is None:
            chunk_size = default_chunk(itemsize, out_dim, full, n=max(n1, n2))
        static = {"scales": tuple(self.scales), "bias": self.model.bias, "out_dim": out_dim,
                  "full": full, "per_layer": per_layer}
        if max(n1, n2) <= chunk_size:  # one block: a single compiled call, nothing in between
            kernel = _whole_kernel(self.params, a1, None if symmetric else a2,
                                   activation=self.model.activation, **static)
            return np.asarray(jnp.stack(kernel) if per_layer else kernel, dtype=np.float64)
        s1 = self._sensitivities(a1)
        s2 = s1 if symmetric else self._sensitivities(a2)

        def block(r: slice, c: slice):
            return _block_terms(_rows(s1[0], r, n1), _rows(s2[0], c, n2), _rows(s1[1], r, n1),
                                _rows(s2[1], c, n2), **static)

        return assemble(n1, n2, block, chunk_size=chunk_size, **layout)

    @_quiet_overflow
    def ntk_layer_diagonals(self, x: np.ndarray) -> np.ndarray:
        """Each weight layer's contribution to the NTK diagonal, ``(L, n)`` float64."""
        a = self._array(x)
        if not self.structured:
            itemsize = np.dtype(self.dtype).itemsize
            chunk = default_chunk(itemsize, 1, False,
                                  row_bytes=itemsize * self.model.out_dim * self.model.n_params())
            rows = [jnp.stack([sum(jnp.sum(j * j, axis=(1, 2)) for j in layer) for layer in
                               _layer_jacobians(self.params, a[s:s + chunk], model=self.model)])
                    for s in range(0, len(x), chunk)]
            return np.asarray(jnp.concatenate(rows, axis=1), dtype=np.float64)
        inputs, deltas = self._sensitivities(a)
        rows = []
        for (sw, sb), A, D in zip(self.scales, inputs, deltas, strict=True):
            row = sw * (sw * jnp.sum(A * A, axis=1)) + (sb * sb if self.model.bias else 0.0)
            rows.append(row * (self.model.out_dim if D is None else jnp.sum(D * D, axis=(1, 2))))
        return np.asarray(jnp.stack(rows), dtype=np.float64)

    def train(self, x: np.ndarray, y: np.ndarray, training: TrainingConfig, *, seed: int,
              checkpoints: list[int], on_checkpoint: Callable[[int, float], None],
              grid: PixelGrid | None = None) -> TrainLog:
        """Train in place for ``training.steps`` steps (the shared loop of
        :func:`ntkbench.backends.training.run_training`); ``grid`` as in the torch backend."""
        check_tv(training, grid)
        classification = training.loss == "cross_entropy"
        xa = self._array(x)
        ya = (jax.device_put(np.asarray(y, dtype=np.int32), self.device) if classification
              else self._array(np.asarray(y).reshape(len(x), -1)))
        stepper = _JaxStepper(self, xa, ya, training, full_batch=is_full_batch(training, len(x)),
                              grid=grid if training.tv_weight else None)
        log = run_training(stepper, len(x), training, seed=seed, checkpoints=checkpoints,
                           on_checkpoint=on_checkpoint)
        return log


class _JaxStepper:
    """Loss and optax update of :class:`Network` for the shared training loop."""

    def __init__(self, net: Network, x: jax.Array, y: jax.Array, training: TrainingConfig, *,
                 full_batch: bool, grid: PixelGrid | None = None) -> None:
        self.net, self.x, self.y, self.full_batch = net, x, y, full_batch
        self.grid = None if grid is None else net._array(grid.x)
        opt, self._value_and_grad, self._loss, self._update = _compiled_steps(
            net.model, training.loss, training.optimizer, training.lr, training.momentum,
            training.tv_weight if grid is not None else 0.0,
            None if grid is None else tuple(grid.shape))
        self.opt_state = opt.init(net.params)
        self._grads = None

    @_quiet_overflow
    def full_loss(self) -> float:
        if self.full_batch:  # keep the gradient: the step reuses this evaluation
            (_, value), self._grads = self._value_and_grad(self.net.params, self.x, self.y,
                                                           self.grid)
        else:
            value = self._loss(self.net.params, self.x, self.y, self.grid)
        return float(value)

    @_quiet_overflow
    def step(self, batch: np.ndarray | None) -> float | None:
        value = None
        if batch is None:
            grads = self._grads
        else:
            (_, loss), grads = self._value_and_grad(self.net.params, self.x[batch],
                                                    self.y[batch], self.grid)
            value = float(loss)
            if not math.isfinite(value):
                return value
        self.net.params, self.opt_state = self._update(self.net.params, self.opt_state, grads)
        return value

