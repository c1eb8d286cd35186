"""Convolutional networks: the spec, the forward pass against torch.nn, the NTK against an
independent Jacobian contraction, both backends, and initializers in their conv form."""

import math

import numpy as np
import pytest
import torch

import ntkbench as nb
from ntkbench.backends import get_backend
from ntkbench.backends.torch_ntk import jacobian_ntk
from ntkbench.models import CNN

BACKENDS = ["torch", pytest.param("jax", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("jax") is None, reason="jax is not installed"))]

# Two conv layers (the second strided, no padding), pooling, a hidden dense layer, 3 outputs.
MODELS = {
    "pool-head": CNN(input_shape=(2, 9, 9), channels=(3, 4), kernel_size=3, pool=2, head=(6,),
                     out_dim=3, activation="tanh", parameterization="ntk", b_std=0.5),
    "stride-gap-nobias": CNN(input_shape=(8, 8), channels=(4, 5), kernel_size=3, stride=2,
                             padding=0, global_pool=True, out_dim=2, activation="relu",
                             bias=False),
}


def _reference_module(model: CNN, weights) -> torch.nn.Module:
    """The same network from torch.nn building blocks (an independent implementation)."""
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[model.activation]
    mods: list[torch.nn.Module] = []
    layers = model.layers()
    for i, info in enumerate(layers):
        sw, sb = model.scales(info)
        w = torch.from_numpy(sw * weights[i]["W"])
        b = torch.from_numpy(sb * weights[i]["b"]) if model.bias else None
        if info.kind == "conv":
            m = torch.nn.Conv2d(w.shape[1], w.shape[0], model.kernel_size, stride=model.stride,
                                padding=model.pad, bias=model.bias).double()
        else:
            if i == model.n_conv:
                mods.append(torch.nn.Flatten() if not model.global_pool
                            else torch.nn.AdaptiveAvgPool2d(1))
                if model.global_pool:
                    mods.append(torch.nn.Flatten())
            m = torch.nn.Linear(w.shape[1], w.shape[0], bias=model.bias).double()
        with torch.no_grad():
            m.weight.copy_(w)
            if b is not None:
                m.bias.copy_(b)
        mods.append(m)
        if not info.is_readout:
            mods.append(act())
        if info.kind == "conv" and model.pool > 1:
            mods.append(torch.nn.AvgPool2d(model.pool))
    return torch.nn.Sequential(torch.nn.Unflatten(1, model.input_shape), *mods)


def _reference_jacobian(model: CNN, weights, x) -> torch.Tensor:
    """``∂f_o(x_i)/∂θ`` ``(n, O, P)`` from autograd through torch.nn modules, one output of one
    example at a time, with respect to the *unscaled* weights (the trainable parameters)."""
    ws = [{"W": torch.tensor(w["W"], requires_grad=True),
           "b": torch.tensor(w["b"], requires_grad=True)} for w in weights]
    params = [p for w in ws for p in ((w["W"], w["b"]) if model.bias else (w["W"],))]
    rows = []
    for xi in x:
        out = _functional(model, ws, torch.tensor(xi)[None])[0]
        for o in range(model.out_dim):
            grads = torch.autograd.grad(out[o], params, retain_graph=True)
            rows.append(torch.cat([g.flatten() for g in grads]))
    return torch.stack(rows).reshape(len(x), model.out_dim, -1)


def _functional(model: CNN, ws, x):
    """``_reference_module`` with its parameters replaced by differentiable scaled tensors."""
    module = _reference_module(model, [{k: v.detach().numpy() for k, v in w.items()} for w in ws])
    names = [str(k) for k, m in enumerate(module)
             if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    params = {}
    for name, w, info in zip(names, ws, model.layers(), strict=True):
        sw, sb = model.scales(info)
        params[f"{name}.weight"] = sw * w["W"]
        if model.bias:
            params[f"{name}.bias"] = sb * w["b"]
    return torch.func.functional_call(module, params, (x,))


def _data(model: CNN, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, model.in_dim))


# --- the spec ---

def test_spec_shapes_fans_and_parameter_count_match_torch_nn():
    model = MODELS["pool-head"]
    assert model.feature_shapes() == [(2, 9, 9), (3, 4, 4), (4, 2, 2)]
    assert model.features == 16
    kinds = [(i.kind, i.weight_shape, i.fan_in, i.fan_out) for i in model.layers()]
    assert kinds == [("conv", (3, 2, 3, 3), 18, 27), ("conv", (4, 3, 3, 3), 27, 36),
                     ("dense", (6, 16), 16, 6), ("dense", (3, 6), 6, 3)]
    weights = nb.initialize(model, "he_normal", seed=0)
    ref = _reference_module(model, weights)
    assert model.n_params() == sum(p.numel() for p in ref.parameters())
    # (H, W) means one channel; global pooling feeds the channel count to the head.
    gap = MODELS["stride-gap-nobias"]
    assert gap.input_shape == (1, 8, 8) and gap.features == 5
    assert gap.feature_shapes()[1:] == [(4, 3, 3), (5, 1, 1)]


@pytest.mark.parametrize("kwargs, message", [
    ({"input_shape": (3, 4, 4), "channels": (2, 2, 2), "pool": 2}, "leaves no output positions"),
    ({"input_shape": (5,)}, "input_shape"),
    ({"input_shape": (4, 4), "channels": ()}, "channels"),
    ({"input_shape": (4, 4), "kernel_size": 0}, "kernel_size"),
    ({"input_shape": (4, 4), "activation": "swish"}, "activation"),
])
def test_spec_rejects_impossible_networks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CNN(**kwargs)


def test_fans_of_conv_layers_include_the_receptive_field():
    """He-normal conv weights have variance 2 / (in_channels · k²), as in torch.nn.init."""
    model = CNN(input_shape=(16, 12, 12), channels=(64,), kernel_size=5, out_dim=1)
    w = nb.initialize(model, "he_normal", seed=0)[0]["W"]
    assert w.shape == (64, 16, 5, 5)
    n = w.size
    var = w.var()
    assert abs(var - 2 / (16 * 25)) < 5 * math.sqrt(2 / n) * 2 / (16 * 25)


# --- forward and NTK, both backends ---

@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_matches_torch_nn_modules(backend, name):
    model = MODELS[name]
    weights = nb.initialize(model, "he_normal", seed=1)
    x = _data(model, 5)
    net = get_backend(backend).Network(model, weights, dtype="float64")
    with torch.no_grad():
        expected = _reference_module(model, weights)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.predict(x), expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_ntk_matches_autograd_jacobian_contraction(backend, name):
    model = MODELS[name]
    weights = nb.initialize(model, "he_normal", seed=2)
    x1, x2 = _data(model, 6, seed=3), _data(model, 4, seed=4)
    jac = _reference_jacobian(model, weights, np.concatenate([x1, x2]))
    both = torch.einsum("iop,jop->ij", jac, jac).numpy()
    ref, cross = both[:6, :6], both[:6, 6:]
    K = nb.empirical_ntk(model, weights, x1, backend=backend)
    np.testing.assert_allclose(K, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(nb.empirical_ntk(model, weights, x1, x2, backend=backend,
                                                chunk_size=4), cross, rtol=1e-10,
                               atol=1e-12 * np.abs(cross).max())
    # Chunked, full, per-layer and diagonal views of the same kernel.
    np.testing.assert_allclose(nb.empirical_ntk(model, weights, x1, backend=backend,
                                                chunk_size=4), K, rtol=1e-12)
    full = nb.empirical_ntk(model, weights, x1, backend=backend, full=True, chunk_size=4)
    assert full.shape == (6, 6, model.out_dim, model.out_dim)
    np.testing.assert_allclose(np.einsum("ijoo->ij", full), K, rtol=1e-12)
    np.testing.assert_allclose(full, full.transpose(1, 0, 3, 2), rtol=1e-12)
    per_layer = nb.empirical_ntk(model, weights, x1, backend=backend, per_layer=True)
    assert per_layer.shape == (len(model.layers()), 6, 6)
    np.testing.assert_allclose(per_layer.sum(0), K, rtol=1e-12)
    net = get_backend(backend).Network(model, weights, dtype="float64")
    np.testing.assert_allclose(net.ntk_layer_diagonals(x1),
                               np.einsum("lii->li", per_layer), rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_jacobians_recomputed_per_block_give_the_same_kernel(backend, monkeypatch):
    """Within the Jacobian cache budget each block of examples' Jacobians is computed once;
    above it only the current row block's are kept and column blocks are recomputed. Both give
    the same kernel."""
    import importlib

    module = importlib.import_module("ntkbench.backends.torch_ntk" if backend == "torch"
                                     else "ntkbench.backends.jax_backend")
    name = "layer_jacobians" if backend == "torch" else "_layer_jacobians"
    original, calls = getattr(module, name), []

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    model = MODELS["pool-head"]
    weights = nb.initialize(model, "he_normal", seed=2)
    x1, x2 = _data(model, 7, seed=3), _data(model, 5, seed=4)  # 3 row blocks, 2 column blocks

    def run(b):
        calls.clear()
        K = nb.empirical_ntk(model, weights, x1, b, backend=backend, chunk_size=3, full=True)
        return K, len(calls)

    (sym, n_sym), (cross, n_cross) = run(None), run(x2)
    assert (n_sym, n_cross) == (3, 3 + 2)
    monkeypatch.setattr("ntkbench.ntk.blocks.JACOBIAN_CACHE_BYTES", 0)
    (sym0, n_sym0), (cross0, n_cross0) = run(None), run(x2)
    # rows 0, 1, 2 plus the off-diagonal columns (1, 2), (2); every row block recomputes both
    # column blocks of x2.
    assert (n_sym0, n_cross0) == (3 + 3, 3 + 3 * 2)
    np.testing.assert_allclose(sym0, sym, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cross0, cross, rtol=1e-12, atol=1e-14)


def test_jacobian_engine_equals_the_structured_engine_on_an_mlp():
    """The CNN's Jacobian-contraction engine, run on an MLP, against the layer-structured one."""
    backend = get_backend("torch")
    model = nb.MLP(in_dim=3, width=7, depth=2, out_dim=2, activation="gelu",
                   parameterization="ntk", b_std=0.4)
    weights = nb.initialize(model, "he_normal", seed=0)
    net = backend.Network(model, weights, dtype="float64")
    x1 = net._tensor(np.random.default_rng(0).normal(size=(9, 3)))
    x2 = net._tensor(np.random.default_rng(1).normal(size=(4, 3)))
    groups = [[0, 1], [2, 3], [4, 5]]
    for kwargs in ({}, {"full": True, "chunk_size": 2}, {"per_layer": True, "chunk_size": 5}):
        for b in (None, x2):
            jac = jacobian_ntk(net._forward, net.params, groups, x1, b, out_dim=2, **kwargs)
            structured = net.ntk(x1.numpy(), None if b is None else b.numpy(), **kwargs)
            np.testing.assert_allclose(jac, structured, rtol=1e-11,
                                       atol=1e-13 * np.abs(structured).max())


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 2e-5)])
@pytest.mark.parametrize("name", MODELS)
def test_cnn_ntk_agrees_across_backends(name, dtype, rtol):
    pytest.importorskip("jax")
    model = MODELS[name]
    weights = nb.initialize(model, "orthogonal", seed=3)
    x1, x2 = _data(model, 7, seed=5), _data(model, 3, seed=6)
    for kwargs, b in (({}, None), ({"full": True, "chunk_size": 3}, x2),
                      ({"per_layer": True}, None)):
        a = get_backend("torch").Network(model, weights, dtype=dtype).ntk(x1, b, **kwargs)
        j = get_backend("jax").Network(model, weights, dtype=dtype).ntk(x1, b, **kwargs)
        np.testing.assert_allclose(j, a, rtol=rtol, atol=rtol * np.abs(a).max())


# --- training and trials ---

def test_cnn_training_agrees_across_backends_in_float64():
    """100 full-batch GD steps from the same weights: losses agree to 1e-8 relative."""
    pytest.importorskip("jax")
    from ntkbench.config import TrainingConfig

    model = MODELS["pool-head"]
    weights = nb.initialize(model, "he_normal", seed=0)
    x = _data(model, 24, seed=7)
    y = np.random.default_rng(8).normal(size=(24, model.out_dim))
    training = TrainingConfig(optimizer="gd", lr=0.2, steps=100, dtype="float64")
    logs, outputs = [], []
    for name in ("torch", "jax"):
        net = get_backend(name).Network(model, weights, dtype="float64")
        log = net.train(x, y, training, seed=0, checkpoints=[0, 100],
                        on_checkpoint=lambda *a: None)
        logs.append(np.array(log.losses))
        outputs.append(net.predict(x))
    assert len(logs[0]) == 101 and logs[0][-1] < 0.99 * logs[0][0]  # it trains
    np.testing.assert_allclose(logs[1], logs[0], rtol=1e-8)
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-8, atol=1e-10)


def _digits_cnn_trial(backend: str, steps: int = 120, **model):
    from conftest import tiny_trial

    from ntkbench.config import DataConfig, MeasureConfig, ModelConfig, TrainingConfig

    return tiny_trial(
        backend=backend, metric="test_accuracy",
        data=DataConfig(generator="digits", params={"n_train": 200, "n_test": 300}),
        model=ModelConfig(kind="cnn", **({"channels": [8, 16], "pool": 2, "head": [32]} | model)),
        training=TrainingConfig(optimizer="sgd", lr=0.05, momentum=0.9, batch_size=50,
                                steps=steps, loss="cross_entropy"),
        measure=MeasureConfig(checkpoints=4, ntk_checkpoints=2, ntk_max_n=64))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cnn_trial_trains_on_real_digit_images(backend):
    from ntkbench.execute import run_trial

    record = run_trial(_digits_cnn_trial(backend))
    assert record["status"] == "ok", record.get("error")
    assert record["model"]["kind"] == "cnn" and record["n_params"] == CNN(
        input_shape=(1, 8, 8), channels=(8, 16), pool=2, head=(32,), out_dim=10).n_params()
    # Ten balanced-ish classes: chance is ~0.1; a working CNN gets most digits right.
    assert record["test_accuracy"] > 0.6
    assert record["curve_train_loss"][-1] < 0.5 * record["curve_train_loss"][0]
    shares = record["ntk_init_layer_share"]
    assert len(shares) == 4 and sum(shares) == pytest.approx(1.0)
    assert record["ntk_analytic_method"] is None and "convolutional" in record[
        "ntk_analytic_skipped"]


def test_cnn_trials_agree_across_backends():
    pytest.importorskip("jax")
    from ntkbench.execute import run_trial

    a, b = (run_trial(_digits_cnn_trial(name, steps=30, channels=[4], head=[]))
            for name in ("torch", "jax"))
    assert a["status"] == b["status"] == "ok", (a.get("error"), b.get("error"))
    assert b["initial_train_loss"] == pytest.approx(a["initial_train_loss"], rel=1e-5)
    assert b["ntk_init"]["centered_alignment"] == pytest.approx(
        a["ntk_init"]["centered_alignment"], rel=1e-4)
    assert b["final_train_loss"] == pytest.approx(a["final_train_loss"], rel=1e-2)


def test_model_fields_of_the_other_kind_are_rejected():
    from pydantic import ValidationError

    from ntkbench.config import ModelConfig

    with pytest.raises(ValidationError, match="channels applies to kind: cnn"):
        ModelConfig(channels=[4])
    with pytest.raises(ValidationError, match="a CNN's dense layers are set by head"):
        ModelConfig(kind="cnn", width=64)
    assert ModelConfig(kind="cnn", channels=[4], head=[8]).channels == (4,)
    # Records and trial hashes carry only the fields of the model's own kind.
    assert "width" not in ModelConfig(kind="cnn").dump()
    assert "channels" not in ModelConfig().dump()
    hash(ModelConfig(kind="cnn"))


def test_a_cnn_on_inputs_without_an_image_shape_fails_clearly():
    from conftest import tiny_trial

    from ntkbench.config import ModelConfig
    from ntkbench.execute import run_trial

    record = run_trial(tiny_trial(model=ModelConfig(kind="cnn")))
    assert record["status"] == "failed"
    assert "model kind 'cnn' needs image inputs" in record["error"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_cnn_training_repeats_bit_for_bit(backend):
    """Same weights, data, seed and device: identical losses and outputs (minibatch SGD)."""
    from ntkbench.config import TrainingConfig

    model = MODELS["stride-gap-nobias"]
    weights = nb.initialize(model, "he_uniform", seed=1)
    x, y = _data(model, 32, seed=9), np.random.default_rng(10).normal(size=(32, 2))
    training = TrainingConfig(optimizer="sgd", lr=0.05, momentum=0.5, batch_size=8, steps=20)
    runs = []
    for _ in range(2):
        net = get_backend(backend).Network(model, weights, dtype="float32")
        log = net.train(x, y, training, seed=4, checkpoints=[0, 20],
                        on_checkpoint=lambda *a: None)
        runs.append((np.array(log.losses), net.predict(x), net.ntk(x[:6])))
    for first, second in zip(*runs, strict=True):
        np.testing.assert_array_equal(first, second)
    untrained = get_backend(backend).Network(model, weights, dtype="float32").predict(x)
    assert not np.array_equal(runs[0][1], untrained)  # training moved the outputs
