"""Linearized dynamics: exact for models linear in their parameters, and the gap of a real
network from its linearization shrinks with width."""

import numpy as np
import pytest
from conftest import network_class

import ntkbench as nb
from ntkbench.config import TrainingConfig
from ntkbench.ntk.linearized import linearization_gap, linearized_outputs


def _linear_model_gd(phi, phi_test, theta0, y, lr, steps):
    """Reference: gradient descent on θ for f(x) = Φ(x)θ with loss 1/(2n) Σ‖f − y‖².

    ``phi`` is (n, O, p): example i's output o is phi[i, o] · θ. Returns outputs per step.
    """
    n = phi.shape[0]
    theta = theta0.copy()
    train, test = {}, {}
    for t in range(max(steps) + 1):
        if t in steps:
            train[t] = phi @ theta
            test[t] = phi_test @ theta
        residual = phi @ theta - y
        theta -= lr / n * np.einsum("iop,io->p", phi, residual)
    return np.stack([train[t] for t in steps]), np.stack([test[t] for t in steps])


@pytest.mark.parametrize("n_out", [1, 3])
def test_exact_for_a_model_linear_in_its_parameters(n_out):
    # p < n·O, so the kernel is singular and the λ = 0 limit of g(λ) is exercised.
    rng = np.random.default_rng(0)
    n, m, p = 12, 5, 7
    phi, phi_test = rng.normal(size=(n, n_out, p)), rng.normal(size=(m, n_out, p))
    theta0, y = rng.normal(size=p), rng.normal(size=(n, n_out))
    K = np.einsum("iop,jqp->ijoq", phi, phi)
    Kx = np.einsum("iop,jqp->ijoq", phi_test, phi)
    steps = [0, 1, 5, 40, 200]
    lr = 0.9 * n / np.linalg.eigvalsh(K.transpose(0, 2, 1, 3).reshape(n * n_out, -1)).max()
    ref_train, ref_test = _linear_model_gd(phi, phi_test, theta0, y, lr, steps)
    if n_out == 1:
        K, Kx, y = K[:, :, 0, 0], Kx[:, :, 0, 0], y[:, 0]
    out = linearized_outputs(K, phi @ theta0 if n_out > 1 else (phi @ theta0)[:, 0], y, lr=lr,
                             steps=steps, cross_kernel=Kx,
                             f0_test=phi_test @ theta0 if n_out > 1 else (phi_test @ theta0)[:, 0])
    np.testing.assert_allclose(out.train, ref_train, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(out.test, ref_test, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(out.steps, steps)


def test_flow_is_the_small_step_limit_of_gd():
    rng = np.random.default_rng(1)
    n = 10
    A = rng.normal(size=(n, 4))
    K = A @ A.T + 0.1 * np.eye(n)
    f0, y = rng.normal(size=n), rng.normal(size=n)
    # Same time ηt, ever smaller steps: GD converges to the flow at rate O(η).
    flow = linearized_outputs(K, f0, y, lr=1e-3, steps=[1000], dynamics="flow").train
    errors = []
    for lr in (0.1, 0.01, 0.001):
        gd = linearized_outputs(K, f0, y, lr=lr, steps=[round(1.0 / lr)]).train
        errors.append(np.abs(gd - flow).max())
    assert errors[0] > 5 * errors[1] > 25 * errors[2]
    assert errors[2] < 1e-3


def test_train_outputs_reach_the_targets_and_start_at_f0():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(6, 6))
    K = A @ A.T + np.eye(6)
    f0, y = rng.normal(size=6), rng.normal(size=6)
    out = linearized_outputs(K, f0, y, lr=0.5, steps=[0, 100000])
    np.testing.assert_allclose(out.train[0, :, 0], f0, rtol=1e-12)
    np.testing.assert_allclose(out.train[1, :, 0], y, rtol=1e-8)
    assert out.test is None


def test_input_errors():
    K = np.eye(3)
    with pytest.raises(ValueError, match="dynamics"):
        linearized_outputs(K, np.zeros(3), np.zeros(3), lr=1.0, steps=[1], dynamics="ode")
    with pytest.raises(ValueError, match="lr"):
        linearized_outputs(K, np.zeros(3), np.zeros(3), lr=0.0, steps=[1])
    with pytest.raises(ValueError, match=r"\(3, 3, 2, 2\)"):
        linearized_outputs(K, np.zeros((3, 2)), np.zeros((3, 2)), lr=1.0, steps=[1])
    with pytest.raises(ValueError, match="together"):
        linearized_outputs(K, np.zeros(3), np.zeros(3), lr=1.0, steps=[1],
                           cross_kernel=np.zeros((2, 3)))
    assert np.isnan(linearization_gap(np.zeros(3), np.ones(3)))
    assert np.isnan(linearization_gap(np.array([1.0, np.inf]), np.ones(2)))
    assert linearization_gap(np.array([3.0, 4.0]), np.array([3.0, 3.0])) == pytest.approx(0.2)


def _gap_after_training(width: int, seed: int, backend: str) -> float:
    """Train an NTK-parameterized MLP with full-batch GD; gap to its linearization at the end."""
    rng = np.random.default_rng(100 + seed)
    x = rng.uniform(-1, 1, size=(16, 2))
    x_test = rng.uniform(-1, 1, size=(8, 2))
    y = np.sin(3 * x[:, :1]) * np.cos(2 * x[:, 1:])
    model = nb.MLP(in_dim=2, width=width, depth=2, out_dim=1, activation="tanh",
                   parameterization="ntk", b_std=0.1)
    wrng = np.random.default_rng(seed)
    weights = [{"W": wrng.normal(size=(info.fan_out, info.fan_in)),
                "b": wrng.normal(size=info.fan_out)} for info in model.layers()]
    net = network_class(backend)(model, weights, dtype="float64")
    f0, f0_test = net.predict(x), net.predict(x_test)
    K, Kx = net.ntk(x), net.ntk(x_test, x)
    steps, lr = 100, 1.0
    net.train(x, y, TrainingConfig(optimizer="gd", lr=lr, steps=steps, dtype="float64"),
              seed=seed, checkpoints=[], on_checkpoint=lambda *a: None)
    lin = linearized_outputs(K, f0, y, lr=lr, steps=[steps], cross_kernel=Kx, f0_test=f0_test)
    return linearization_gap(np.concatenate([net.predict(x), net.predict(x_test)]),
                             np.concatenate([lin.train[0], lin.test[0]]))


def test_gap_to_the_real_network_shrinks_as_width_grows(backend):
    gaps = [np.mean([_gap_after_training(w, s, backend) for s in range(3)])
            for w in (32, 256, 1024)]
    # Lee et al. 2019: the gap is O(1/√width); each step here multiplies the width by ≥ 4.
    assert gaps[0] > 1.8 * gaps[1] > 1.8**2 * gaps[2], gaps
    assert gaps[2] < 0.02, gaps


def test_a_diverging_linear_model_gives_non_finite_outputs_without_warnings():
    import warnings

    K = np.diag([1.0, 100.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # ηλ_max/n = 1 · 100 / 2 = 50 > 2: the linear model blows up under GD.
        out = linearized_outputs(K, np.zeros(2), np.ones(2), lr=1.0, steps=[0, 10, 1000],
                                 cross_kernel=K, f0_test=np.zeros(2))
        assert np.isfinite(out.train[0]).all() and not np.isfinite(out.train[2]).all()
        assert np.abs(out.test[1]).max() > 1e10
        assert np.isnan(linearization_gap(np.ones(2), out.train[2]))
    assert out.eigenvalues[-1] == pytest.approx(100.0)
