"""The JAX backend against the torch backend: same weights, same NTK, same training."""

import numpy as np
import pytest
from conftest import tiny_trial

import ntkbench as nb
from ntkbench.backends import get_backend
from ntkbench.config import TrainingConfig
from ntkbench.execute import run_trial

pytest.importorskip("jax")
torch_backend, jax_backend = get_backend("torch"), get_backend("jax")


def _weights(model, rng):
    return [{"W": rng.normal(size=(i.fan_out, i.fan_in)) / np.sqrt(i.fan_in),
             "b": rng.normal(size=i.fan_out)} for i in model.layers()]


def test_weights_materialise_bit_identically():
    model = nb.MLP(in_dim=3, width=8, depth=2, out_dim=2)
    weights = nb.initialize(model, "orthogonal", seed=4)
    for dtype in ("float32", "float64"):
        a = torch_backend.Network(model, weights, dtype=dtype).weights()
        b = jax_backend.Network(model, weights, dtype=dtype).weights()
        for la, lb in zip(a, b, strict=True):
            np.testing.assert_array_equal(la["W"], lb["W"])
            np.testing.assert_array_equal(la["b"], lb["b"])


@pytest.mark.parametrize("activation", ["relu", "tanh", "erf", "gelu", "sin", "linear"])
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 1e-5)])
def test_ntk_agrees_across_backends(activation, dtype, rtol):
    rng = np.random.default_rng(0)
    model = nb.MLP(in_dim=3, width=16, depth=3, out_dim=2, activation=activation,
                   parameterization="ntk", b_std=0.3)
    weights = _weights(model, rng)
    x1, x2 = rng.normal(size=(9, 3)), rng.normal(size=(5, 3))
    for kwargs in ({}, {"full": True, "chunk_size": 4}, {"per_layer": True, "chunk_size": 2}):
        for b in (None, x2):
            a = torch_backend.Network(model, weights, dtype=dtype).ntk(x1, b, **kwargs)
            j = jax_backend.Network(model, weights, dtype=dtype).ntk(x1, b, **kwargs)
            np.testing.assert_allclose(j, a, rtol=rtol, atol=rtol * np.abs(a).max())
    np.testing.assert_allclose(
        jax_backend.Network(model, weights, dtype=dtype).ntk_layer_diagonals(x1),
        torch_backend.Network(model, weights, dtype=dtype).ntk_layer_diagonals(x1),
        rtol=rtol)


@pytest.mark.parametrize("training", [
    TrainingConfig(optimizer="gd", lr=0.1, steps=100, dtype="float64"),
    TrainingConfig(optimizer="sgd", lr=0.05, momentum=0.9, batch_size=8, steps=100,
                   dtype="float64"),
    TrainingConfig(optimizer="adam", lr=0.01, steps=100, dtype="float64"),
    TrainingConfig(optimizer="gd", lr=0.1, steps=100, dtype="float64", loss="cross_entropy"),
], ids=["gd", "sgd-momentum-minibatch", "adam", "cross-entropy"])
def test_training_agrees_across_backends_in_float64(training):
    rng = np.random.default_rng(1)
    classes = training.loss == "cross_entropy"
    model = nb.MLP(in_dim=2, width=32, depth=2, out_dim=3 if classes else 1, activation="tanh")
    weights = nb.initialize(model, "he_normal", seed=0)
    x = rng.uniform(-1, 1, (40, 2))
    y = rng.integers(0, 3, 40) if classes else np.sin(3 * x[:, :1])
    logs, outputs = [], []
    for backend in (torch_backend, jax_backend):
        net = backend.Network(model, weights, dtype="float64")
        log = net.train(x, y, training, seed=0, checkpoints=[0, 50, 100],
                        on_checkpoint=lambda *a: None)
        logs.append(np.array(log.losses))
        outputs.append(net.predict(x))
    assert len(logs[0]) == len(logs[1]) > 1
    np.testing.assert_allclose(logs[1], logs[0], rtol=1e-8)
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-8, atol=1e-10)


def test_float32_training_agrees_to_single_precision():
    rng = np.random.default_rng(2)
    model = nb.MLP(in_dim=2, width=32, depth=2, activation="relu")
    weights = nb.initialize(model, "he_normal", seed=1)
    x = rng.uniform(-1, 1, (40, 2))
    y = np.cos(2 * x[:, :1])
    training = TrainingConfig(lr=0.1, steps=100, dtype="float32")
    losses = [np.array(b.Network(model, weights, dtype="float32").train(
        x, y, training, seed=0, checkpoints=[], on_checkpoint=lambda *a: None).losses)
        for b in (torch_backend, jax_backend)]
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)


def test_a_trial_on_jax_matches_the_same_trial_on_torch():
    a, b = run_trial(tiny_trial(backend="torch")), run_trial(tiny_trial(backend="jax"))
    assert a["status"] == b["status"] == "ok", b.get("error")
    assert b["backend"] == "jax" and "jax" in b["versions"]
    assert b["final_test_metric"] == pytest.approx(a["final_test_metric"], rel=1e-5)
    assert b["ntk_drift"] == pytest.approx(a["ntk_drift"], rel=1e-4)
    assert b["linearized"]["gap_test"] == pytest.approx(a["linearized"]["gap_test"], rel=1e-3)
