"""The structured empirical NTK against an independent reference: torch.func Jacobians."""

import functools

import numpy as np
import pytest
import torch
from torch.func import functional_call, jacrev

import ntkbench as nb


def _random_weights(model: nb.MLP, rng: np.random.Generator) -> list[dict]:
    out = []
    for layer in model.layers():
        std = 1.0 if model.parameterization == "ntk" else 1.0 / np.sqrt(layer.fan_in)
        out.append({"W": rng.normal(0, std, (layer.fan_out, layer.fan_in)),
                    "b": rng.normal(0, 0.5, layer.fan_out)})
    return out


def _module(model: nb.MLP, weights: list[dict]) -> torch.nn.Module:
    """The same network written independently as an nn.Module (scales folded into weights)."""
    acts = {"relu": torch.nn.ReLU(), "tanh": torch.nn.Tanh(), "gelu": torch.nn.GELU(),
            "sin": None, "erf": None}
    layers = []
    for info, w in zip(model.layers(), weights, strict=True):
        sw, sb = model.scales(info)
        lin = torch.nn.Linear(info.fan_in, info.fan_out, bias=model.bias).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(sw * w["W"]))
            if model.bias:
                lin.bias.copy_(torch.tensor(sb * w["b"]))
        layers.append(lin)
        if not info.is_readout:
            act = acts[model.activation]
            layers.append(act if act is not None else _Lambda(model.activation))
    return torch.nn.Sequential(*layers)


class _Lambda(torch.nn.Module):
    def __init__(self, name):
        super().__init__()
        self.fn = {"sin": torch.sin, "erf": torch.special.erf}[name]

    def forward(self, x):
        return self.fn(x)


def _jacobian_ntk(model: nb.MLP, weights: list[dict], x1, x2, layers=None) -> np.ndarray:
    """Reference: materialise per-example Jacobians with torch.func and contract them.

    The module holds ``s_W·W`` as its parameter; the network's parameter is ``W``, so each
    Jacobian block is rescaled by the chain rule: ∂f/∂W = s_W · ∂f/∂(s_W W). ``layers``
    restricts the contraction to the parameters of those weight layers.
    """
    net = _module(model, weights)
    params = {k: v.detach() for k, v in net.named_parameters()}
    chain = {}
    for i, info in enumerate(model.layers()):
        sw, sb = model.scales(info)
        idx = 2 * i  # position in Sequential: linear layers at even indices
        chain[f"{idx}.weight"] = sw
        chain[f"{idx}.bias"] = sb

    def f(p, x):
        return functional_call(net, p, (x,))

    j1 = jacrev(f)(params, torch.tensor(x1))
    j2 = jacrev(f)(params, torch.tensor(x2))
    K = 0
    for name in params:
        if layers is not None and int(name.split(".")[0]) // 2 not in layers:
            continue
        a = j1[name].flatten(2) * chain[name]
        b = j2[name].flatten(2) * chain[name]
        K = K + torch.einsum("iop,jqp->ijoq", a, b)
    return K.numpy()


@pytest.mark.parametrize("activation", ["relu", "tanh", "erf", "gelu", "sin"])
@pytest.mark.parametrize("parameterization", ["standard", "ntk"])
def test_matches_jacobian_contraction(activation, parameterization, backend):
    rng = np.random.default_rng(7)
    model = nb.MLP(in_dim=4, width=9, depth=3, out_dim=3, activation=activation,
                   parameterization=parameterization, w_std=1.3, b_std=0.4)
    weights = _random_weights(model, rng)
    x1, x2 = rng.normal(size=(6, 4)), rng.normal(size=(5, 4))
    ref = _jacobian_ntk(model, weights, x1, x2)
    full = nb.empirical_ntk(model, weights, x1, x2, full=True, backend=backend)
    traced = nb.empirical_ntk(model, weights, x1, x2, backend=backend)
    np.testing.assert_allclose(full, ref, rtol=1e-8, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(traced, np.einsum("ijoo->ij", ref), rtol=1e-8)


def test_gram_is_symmetric_psd_and_cross_kernel_consistent(backend):
    ntk = functools.partial(nb.empirical_ntk, backend=backend)
    rng = np.random.default_rng(1)
    model = nb.MLP(in_dim=2, width=16, depth=2, out_dim=1, activation="tanh")
    weights = nb.initialize(model, "xavier_normal", seed=3)
    x = rng.normal(size=(8, 2))
    K = ntk(model, weights, x)
    np.testing.assert_allclose(K, K.T, rtol=1e-12)
    assert np.linalg.eigvalsh(K).min() > -1e-10 * np.abs(K).max()
    cross = ntk(model, weights, x[:3], x[3:])
    np.testing.assert_allclose(cross, K[:3, 3:], rtol=1e-12)


def test_no_bias_and_linear_model(backend):
    ntk = functools.partial(nb.empirical_ntk, backend=backend)
    rng = np.random.default_rng(2)
    # depth 0: f(x) = W x + b, so Θ(x, x') = O·(x·x' + 1) for O outputs.
    model = nb.MLP(in_dim=3, width=1, depth=0, out_dim=2)
    weights = _random_weights(model, rng)
    x = rng.normal(size=(4, 3))
    np.testing.assert_allclose(ntk(model, weights, x), 2 * (x @ x.T + 1),
                               rtol=1e-12)
    model_nb = nb.MLP(in_dim=3, width=5, depth=2, out_dim=2, bias=False)
    weights = _random_weights(model_nb, rng)
    ref = _jacobian_ntk(model_nb, weights, x, x)
    np.testing.assert_allclose(ntk(model_nb, weights, x, full=True), ref,
                               rtol=1e-8)


def test_float32_close_to_float64(backend):
    ntk = functools.partial(nb.empirical_ntk, backend=backend)
    rng = np.random.default_rng(3)
    model = nb.MLP(in_dim=5, width=64, depth=2, out_dim=1)
    weights = nb.initialize(model, "he_normal", seed=0)
    x = rng.normal(size=(16, 5))
    k64 = ntk(model, weights, x)
    k32 = ntk(model, weights, x, dtype="float32")
    np.testing.assert_allclose(k32, k64, rtol=1e-4, atol=1e-5 * np.abs(k64).max())


def test_rejects_wrong_input_shape(backend):
    ntk = functools.partial(nb.empirical_ntk, backend=backend)
    model = nb.MLP(in_dim=3, width=4, depth=1)
    weights = nb.initialize(model, "he_normal", seed=0)
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        ntk(model, weights, np.zeros((2, 4)))


@pytest.mark.parametrize("parameterization", ["standard", "ntk"])
def test_per_layer_contributions_match_each_layers_jacobian(parameterization, backend):
    ntk = functools.partial(nb.empirical_ntk, backend=backend)
    rng = np.random.default_rng(11)
    model = nb.MLP(in_dim=3, width=7, depth=2, out_dim=2, activation="tanh",
                   parameterization=parameterization, w_std=1.5, b_std=0.3)
    weights = _random_weights(model, rng)
    x1, x2 = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    layers = ntk(model, weights, x1, x2, per_layer=True)
    assert layers.shape == (3, 5, 4)
    for i in range(3):
        ref = np.einsum("ijoo->ij", _jacobian_ntk(model, weights, x1, x2, layers={i}))
        np.testing.assert_allclose(layers[i], ref, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(layers.sum(0), ntk(model, weights, x1, x2),
                               rtol=1e-12)
    full_layers = ntk(model, weights, x1, x2, per_layer=True, full=True)
    np.testing.assert_allclose(np.einsum("lijoo->lij", full_layers), layers, rtol=1e-12)


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("chunk_size", [1, 3, 4, 100])
def test_chunked_kernel_equals_single_block(chunk_size, full, backend):
    ntk = functools.partial(nb.empirical_ntk, backend=backend)
    rng = np.random.default_rng(5)
    model = nb.MLP(in_dim=3, width=8, depth=2, out_dim=2, activation="gelu")
    weights = _random_weights(model, rng)
    x1, x2 = rng.normal(size=(10, 3)), rng.normal(size=(7, 3))
    for a, b in ((x1, None), (x1, x2), (x2, x1)):
        ref = ntk(model, weights, a, b, full=full, chunk_size=10**6)
        got = ntk(model, weights, a, b, full=full, chunk_size=chunk_size)
        np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-13)
    gram = ntk(model, weights, x1, full=full, chunk_size=chunk_size)
    np.testing.assert_allclose(gram, np.swapaxes(gram, 0, 1).swapaxes(2, 3) if full else gram.T,
                               rtol=1e-13)
    layers = ntk(model, weights, x1, per_layer=True, chunk_size=chunk_size)
    np.testing.assert_allclose(layers.sum(0), ntk(model, weights, x1),
                               rtol=1e-12)


def test_rejects_nonpositive_chunk_size(backend):
    ntk = functools.partial(nb.empirical_ntk, backend=backend)
    model = nb.MLP(in_dim=2, width=4, depth=1)
    weights = nb.initialize(model, "he_normal", seed=0)
    with pytest.raises(ValueError, match="chunk_size"):
        ntk(model, weights, np.zeros((3, 2)), chunk_size=0)
