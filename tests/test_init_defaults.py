"""torch_default and flax_default against their closed forms and against torch / jax themselves.

Tolerances come from the sample size: a moment within ``Z = 5`` standard errors, one- and
two-sample KS tests with p > 1e-4, on fixed seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import ntkbench as nb
from ntkbench import registry
from ntkbench.initializers import defaults, layer_rng

Z = 5.0
P_MIN = 1e-4


def dense_layer(fan_in: int, fan_out: int) -> nb.LayerInfo:
    return nb.LayerInfo(index=0, depth=2, fan_in=fan_in, fan_out=fan_out, activation="relu")


# A real conv layer of a CNN: in_channels 8, 3×3 kernels, so fan_in = 72.
CONV_LAYER = nb.CNN(input_shape=(8, 5, 5), channels=(16,)).layers()[0]


def assert_uniform(w: np.ndarray, bound: float) -> None:
    """U(±bound): variance bound²/3 within Z·SE (uniform μ4 = 9/5 σ⁴), KS, and the support
    [−bound, bound] approached within ε = 2·bound·ln(1e9)/N (missed with probability ≤ 1e-9)."""
    n, var = w.size, bound**2 / 3
    se = math.sqrt((1.8 * var**2 - var**2 * (n - 3) / (n - 1)) / n)
    assert abs(w.var(ddof=1) - var) <= Z * se
    assert stats.kstest(w.ravel(), stats.uniform(-bound, 2 * bound).cdf).pvalue > P_MIN
    eps = 2 * bound * math.log(1e9) / n
    assert -bound <= w.min() < -bound + eps and bound - eps < w.max() <= bound


def torch_module_draws(make, draws: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights and biases of ``draws`` freshly built torch modules, pooled (global seed 0)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        mods = [make() for _ in range(draws)]
    return (np.concatenate([m.weight.detach().double().numpy().ravel() for m in mods]),
            np.concatenate([m.bias.detach().double().numpy().ravel() for m in mods]))


# --- torch_default ------------------------------------------------------------------------------


def test_torch_default_matches_nn_linear() -> None:
    fan_in, fan_out = 50, 40
    theirs_w, theirs_b = torch_module_draws(lambda: torch.nn.Linear(fan_in, fan_out), 100)
    rng = np.random.default_rng(0)
    layer = dense_layer(fan_in, fan_out)
    ours_w = defaults.torch_default((100 * fan_out, fan_in), rng, layer=layer)
    ours_b = defaults.torch_default.bias((theirs_b.size,), rng, layer=layer)
    bound = 1 / math.sqrt(fan_in)
    assert_uniform(ours_w, bound)
    assert_uniform(ours_b, bound)
    assert stats.ks_2samp(ours_w.ravel(), theirs_w).pvalue > P_MIN
    assert stats.ks_2samp(ours_b, theirs_b).pvalue > P_MIN
    assert np.abs(theirs_b).max() <= bound  # torch's bound is the same closed form


def test_torch_default_matches_nn_conv2d() -> None:
    """Conv weights U(±1/√(in·kh·kw)); the bias takes fan_in = in·kh·kw from the layer."""
    theirs_w, theirs_b = torch_module_draws(lambda: torch.nn.Conv2d(8, 16, 3), 200)
    assert CONV_LAYER.fan_in == 72 and CONV_LAYER.weight_shape == (16, 8, 3, 3)
    rng = np.random.default_rng(1)
    ours_w = defaults.torch_default((16 * 200, 8, 3, 3), rng, layer=CONV_LAYER)
    ours_b = defaults.torch_default.bias((theirs_b.size,), rng, layer=CONV_LAYER)
    assert_uniform(ours_w, 1 / math.sqrt(72))
    assert_uniform(ours_b, 1 / math.sqrt(72))
    assert stats.ks_2samp(ours_w.ravel(), theirs_w).pvalue > P_MIN
    assert stats.ks_2samp(ours_b, theirs_b).pvalue > P_MIN


def test_a_sqrt5_arithmetic() -> None:
    """kaiming_uniform_(a=√5): √3 · √(2/(1+5)) / √fan_in = 1/√fan_in."""
    w = defaults.torch_default((4000, 9), np.random.default_rng(0), layer=dense_layer(9, 4000))
    assert 1 / 3 - 1e-3 < np.abs(w).max() <= 1 / 3 * (1 + 1e-15)


@pytest.mark.parametrize("model", [
    nb.MLP(in_dim=20, width=300, depth=2, out_dim=3),
    nb.CNN(input_shape=(3, 6, 6), channels=(200,), kernel_size=3, head=(100,), out_dim=2),
])
def test_initialize_gives_nonzero_biases_with_the_bound(model) -> None:
    weights = nb.initialize(model, "torch_default", seed=4)
    for layer, w in zip(model.layers(), weights, strict=True):
        bound = 1 / math.sqrt(layer.fan_in)
        assert np.all(w["b"] != 0) and np.abs(w["b"]).max() <= bound
        assert np.abs(w["W"]).max() <= bound
        # The bias is drawn after the weight from the layer's generator.
        rng = layer_rng(4, layer.index)
        defaults.torch_default(layer.weight_shape, rng, layer=layer)
        np.testing.assert_array_equal(
            w["b"], defaults.torch_default.bias((layer.n_units,), rng, layer=layer))
    # 300 (MLP) or 200 (CNN) first-layer biases: the largest comes within 10% of the bound
    # (missed with probability 0.9^200 < 1e-9).
    first = model.layers()[0]
    assert np.abs(weights[0]["b"]).max() > 0.9 / math.sqrt(first.fan_in)


# --- flax_default -------------------------------------------------------------------------------


def test_truncated_std_constant() -> None:
    assert defaults.TRUNCATED_STD == pytest.approx(stats.truncnorm(-2, 2).std(), rel=1e-15)


@pytest.mark.parametrize("shape, fan_in", [((512, 1024), 1024), ((64, 32, 3, 3), 288),
                                           ((32768, 2, 2), 4)])
def test_flax_default_is_truncated_lecun_normal(shape, fan_in: int) -> None:
    w = defaults.flax_default(shape, np.random.default_rng(0), layer=dense_layer(1, 1))
    scale = math.sqrt(1 / fan_in) / defaults.TRUNCATED_STD
    dist = stats.truncnorm(-2, 2, scale=scale)
    n, var = w.size, 1 / fan_in
    # Var(s²) = (μ4 − σ⁴(n−3)/(n−1))/n with the truncated normal's own μ4.
    mu4 = (3 + float(dist.stats(moments="k"))) * var**2
    assert abs(w.var(ddof=1) - var) <= Z * math.sqrt((mu4 - var**2 * (n - 3) / (n - 1)) / n)
    assert abs(w.mean()) <= Z * math.sqrt(var / n)
    assert np.abs(w).max() <= 2 * scale
    assert stats.kstest(w.ravel(), dist.cdf).pvalue > P_MIN


@pytest.mark.parametrize("ours_shape, jax_shape", [
    ((256, 400), (400, 256)),            # Dense kernel: (in, out) in flax
    ((64, 16, 3, 3), (3, 3, 16, 64)),    # Conv kernel: HWIO in flax, fan_in = 16·9
])
def test_flax_default_matches_jax_lecun_normal(ours_shape, jax_shape) -> None:
    jax = pytest.importorskip("jax")
    theirs = np.asarray(jax.nn.initializers.lecun_normal()(jax.random.PRNGKey(0), jax_shape))
    ours = defaults.flax_default(ours_shape, np.random.default_rng(0), layer=dense_layer(1, 1))
    assert stats.ks_2samp(ours.ravel(), theirs.ravel().astype(np.float64)).pvalue > P_MIN


def test_flax_default_biases_are_zero() -> None:
    weights = nb.initialize(nb.MLP(in_dim=5, width=8, depth=1), "flax_default", seed=0)
    assert all(not w["b"].any() for w in weights)


def test_declared_parameters() -> None:
    for name in ("torch_default", "flax_default"):
        entry = registry.initializers.get(name)
        assert entry.params == () and entry.summary(), name
