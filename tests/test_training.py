"""Training against closed forms, and the per-trial bookkeeping (checkpoints, steps-to-target)."""

import numpy as np
import pytest
from conftest import network_class

import ntkbench as nb
from ntkbench.backends.training import minibatch_indices
from ntkbench.config import TrainingConfig
from ntkbench.execute import log_steps, steps_to_fraction


def test_full_batch_gd_on_linear_model_matches_closed_form(backend):
    Network = network_class(backend)
    # depth 0: f(x) = W x + b; GD on L = 1/(2n)‖f − y‖² updates
    # W ← W − η/n · (f − y)ᵀ X,  b ← b − η/n · Σ_i (f_i − y_i), computed here in numpy.
    rng = np.random.default_rng(0)
    n, d, lr, steps = 40, 3, 0.3, 50
    x, y = rng.normal(size=(n, d)), rng.normal(size=(n, 1))
    model = nb.MLP(in_dim=d, width=1, depth=0, out_dim=1)
    weights = [{"W": rng.normal(size=(1, d)), "b": rng.normal(size=1)}]
    net = Network(model, weights, dtype="float64")
    seen = {}
    log = net.train(x, y, TrainingConfig(lr=lr, steps=steps, dtype="float64"), seed=0,
                    checkpoints=[0, 10, steps], on_checkpoint=lambda s, v: seen.update({s: v}))
    W, b = weights[0]["W"].copy(), weights[0]["b"].copy()
    losses = []
    for _ in range(steps + 1):
        r = x @ W.T + b - y
        losses.append(0.5 * np.sum(r**2) / n)
        W, b = W - lr / n * r.T @ x, b - lr / n * r.sum(0)
    W_prev = weights[0]["W"]
    assert not np.allclose(W_prev, net.weights()[0]["W"])  # training moved the weights
    np.testing.assert_allclose(log.losses, losses, rtol=1e-10)
    # `W` after the loop took one extra step; compare with the trained network's prediction
    # through the loss values at checkpoints instead.
    assert seen[0] == pytest.approx(losses[0], rel=1e-12)
    assert seen[10] == pytest.approx(losses[10], rel=1e-12)
    assert seen[steps] == pytest.approx(losses[steps], rel=1e-12)
    assert log.diverged_at is None


def test_divergence_is_detected(backend):
    Network = network_class(backend)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(32, 2)), rng.normal(size=(32, 1))
    model = nb.MLP(in_dim=2, width=32, depth=2, out_dim=1)
    net = Network(model, nb.initialize(model, "he_normal", seed=0))
    log = net.train(x, y, TrainingConfig(lr=50.0, steps=200), seed=0, checkpoints=[0],
                    on_checkpoint=lambda s, v: None)
    assert log.diverged_at is not None and log.diverged_at < 200
    assert not np.isfinite(log.losses[-1]) or log.losses[-1] > 1e4 * log.losses[0]


def test_minibatches_cover_each_epoch_without_replacement():
    batches = minibatch_indices(10, 3, steps=7, seed=4)
    assert len(batches) == 7 and all(len(b) == 3 for b in batches)
    first_epoch = np.concatenate(batches[:3])
    assert len(set(first_epoch.tolist())) == 9  # 3 full batches per epoch, no repeats
    again = minibatch_indices(10, 3, steps=7, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_minibatch_optimizers_reduce_the_loss(optimizer, backend):
    Network = network_class(backend)
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, size=(64, 1))
    y = np.sin(3 * x)
    model = nb.MLP(in_dim=1, width=64, depth=2, out_dim=1, activation="tanh")
    net = Network(model, nb.initialize(model, "xavier_normal", seed=0))
    cfg = TrainingConfig(optimizer=optimizer, lr=0.01 if optimizer == "adam" else 0.1,
                         steps=300, batch_size=16, momentum=0.9 if optimizer == "sgd" else 0)
    seen = []
    log = net.train(x, y, cfg, seed=0, checkpoints=[0, 300],
                    on_checkpoint=lambda s, v: seen.append(v))
    assert not log.exact and log.loss_steps == [0, 300]
    assert seen[1] < 0.2 * seen[0]


def test_cross_entropy_training_learns_separable_classes(backend):
    Network = network_class(backend)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 2))
    labels = (x[:, 0] > 0).astype(int)
    model = nb.MLP(in_dim=2, width=32, depth=1, out_dim=2)
    net = Network(model, nb.initialize(model, "he_normal", seed=0))
    net.train(x, labels, TrainingConfig(loss="cross_entropy", lr=0.5, steps=200), seed=0,
              checkpoints=[0], on_checkpoint=lambda s, v: None)
    assert np.mean(net.predict(x).argmax(1) == labels) > 0.95


def test_log_steps_and_steps_to_fraction():
    assert log_steps(1000, 4) == [0, 10, 100, 1000]
    s = log_steps(1000, 25)
    assert s[0] == 0 and s[-1] == 1000 and s == sorted(set(s)) and len(s) >= 20
    assert np.allclose(np.diff(np.log10(s[-5:])), 0.125, atol=0.01)
    assert log_steps(1, 10) == [0, 1]
    losses = [10.0, 5.0, 1.0, 0.5, 0.2]
    assert steps_to_fraction(losses, list(range(5)), 0.1) == 2
    assert steps_to_fraction(losses, [0, 10, 20, 40, 80], 0.01) is None
    assert steps_to_fraction(losses, [0, 10, 20, 40, 80], 0.05) == 40


def test_minibatch_log_always_starts_at_step_0(backend):
    Network = network_class(backend)
    # steps-to-fraction needs the loss at step 0 even when 0 is not a checkpoint.
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(32, 2)), rng.normal(size=(32, 1))
    model = nb.MLP(in_dim=2, width=8, depth=1, out_dim=1)
    net = Network(model, nb.initialize(model, "he_normal", seed=0))
    seen = []
    log = net.train(x, y, TrainingConfig(optimizer="sgd", lr=0.01, steps=20, batch_size=8),
                    seed=0, checkpoints=[20], on_checkpoint=lambda s, v: seen.append(s))
    assert log.loss_steps == [0, 20] and seen == [20] and len(log.losses) == 2
