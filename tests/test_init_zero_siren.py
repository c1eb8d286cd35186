"""ZerO (exact matrices, Hadamard algebra, injectivity) and SIREN (bounds, folding of ω₀).

Statistical checks: a moment within ``Z = 5`` standard errors, fixed seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ntkbench as nb
from ntkbench import registry
from ntkbench.backends.torch_backend import Network
from ntkbench.initializers import siren as siren_module
from ntkbench.initializers import zero

Z = 5.0
LAYER = nb.LayerInfo(index=1, depth=3, fan_in=1, fan_out=1, activation="relu")
H1 = np.array([[1, 1],
               [1, -1]])
H2 = np.array([[1, 1, 1, 1],
               [1, -1, 1, -1],
               [1, 1, -1, -1],
               [1, -1, -1, 1]])


def zerO(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return zero.zerO(shape, np.random.default_rng(seed), layer=LAYER)


def recursive_hadamard(m: int) -> np.ndarray:
    h = np.ones((1, 1))
    for _ in range(m):
        h = np.block([[h, h], [h, -h]])
    return h


# --- Hadamard -----------------------------------------------------------------------------------


def test_hadamard_small_cases_written_out() -> None:
    np.testing.assert_array_equal(zero.sylvester_hadamard(1, 1), [[1]])
    np.testing.assert_array_equal(zero.sylvester_hadamard(2, 2), H1)
    np.testing.assert_array_equal(zero.sylvester_hadamard(4, 4), H2)


@pytest.mark.parametrize("m", range(8))
def test_hadamard_is_sylvesters_recursion_and_orthogonal(m: int) -> None:
    n = 2**m
    h = zero.sylvester_hadamard(n, n)
    np.testing.assert_array_equal(h, recursive_hadamard(m))
    np.testing.assert_array_equal(h @ h.T, n * np.eye(n))


def test_hadamard_blocks_are_leading_blocks() -> None:
    np.testing.assert_array_equal(zero.sylvester_hadamard(11, 5), recursive_hadamard(4)[:11, :5])


# --- ZerO ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, expected", [
    ((3, 3), np.eye(3)),
    ((2, 4), [[1, 0, 0, 0], [0, 1, 0, 0]]),                    # partial identity
    ((1, 3), [[1, 0, 0]]),
    ((2, 1), [[1], [1]]),                                      # m = 1, c = 1
    ((4, 2), H2[:, :2] / math.sqrt(2)),                        # m = 2, c = 2^(-1/2)
    ((3, 2), [[1 / math.sqrt(2), 1 / math.sqrt(2)],            # m = 2, c = 2^(-1/2)
              [1 / math.sqrt(2), -1 / math.sqrt(2)],
              [1 / math.sqrt(2), 1 / math.sqrt(2)]]),
    ((5, 3), np.array([[1, 1, 1], [1, -1, 1], [1, 1, -1],      # m = 3, c = 1/2
                       [1, -1, -1], [1, 1, 1]]) / 2),
])
def test_zerO_exact_matrices(shape: tuple[int, int], expected) -> None:
    np.testing.assert_allclose(zerO(shape), np.asarray(expected, dtype=float), rtol=0,
                               atol=1e-15)


@pytest.mark.parametrize("rows, cols", [(2, 1), (8, 5), (64, 10), (128, 127), (7, 3), (100, 33)])
def test_zerO_expanding_columns(rows: int, cols: int) -> None:
    """Every column has norm c·√P_out; for P_out = 2^m they are orthogonal and WᵀW = 2 I."""
    w = zerO((rows, cols))
    m = math.ceil(math.log2(rows))
    c = 2 ** (-(m - 1) / 2)
    np.testing.assert_allclose(np.linalg.norm(w, axis=0), c * math.sqrt(rows), rtol=1e-14)
    if rows == 2**m:
        np.testing.assert_allclose(w.T @ w, 2 * np.eye(cols), rtol=0, atol=1e-12)


def test_zerO_expanding_layers_are_injective() -> None:
    """rank W = P_in for every 1 ≤ P_in < P_out ≤ 40: no input direction is lost."""
    for rows in range(2, 41):
        for cols in range(1, rows):
            assert np.linalg.matrix_rank(zerO((rows, cols))) == cols, (rows, cols)


@pytest.mark.parametrize("shape", [(8, 3, 3, 3), (3, 8, 5, 5), (4, 4, 1, 1), (5, 2, 3, 1)])
def test_zerO_conv_kernel_is_the_matrix_at_the_centre_tap(shape: tuple[int, ...]) -> None:
    w = zerO(shape)
    centre = (slice(None), slice(None), shape[2] // 2, shape[3] // 2)
    np.testing.assert_array_equal(w[centre], zerO(shape[:2]))
    w[centre] = 0
    assert not w.any()


def test_zerO_rejects_even_kernels() -> None:
    with pytest.raises(ValueError, match="odd kernel sizes"):
        zerO((4, 4, 2, 2))


@pytest.mark.parametrize("model", [
    nb.MLP(in_dim=3, width=10, depth=2, out_dim=2),
    nb.CNN(input_shape=(2, 5, 5), channels=(6, 4), head=(8,), out_dim=3),
])
def test_zerO_is_deterministic_with_zero_biases(model) -> None:
    a = nb.initialize(model, "zerO", seed=0)
    b = nb.initialize(model, "zerO", seed=1)
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa["W"], wb["W"])
        assert not wa["b"].any()


# --- SIREN --------------------------------------------------------------------------------------

OMEGA = 30.0


def siren_layer(index: int, readout: bool) -> nb.LayerInfo:
    return nb.LayerInfo(index=index, depth=3, fan_in=400, fan_out=500, activation="sin",
                        is_readout=readout)


@pytest.mark.parametrize("fold", [True, False])
@pytest.mark.parametrize("index, readout", [(0, False), (1, False), (2, True)])
def test_siren_bounds_and_variance_per_layer(fold: bool, index: int, readout: bool) -> None:
    fan_in = 400
    bound = 1 / fan_in if index == 0 else math.sqrt(6 / fan_in) / OMEGA
    if fold and not readout:
        bound *= OMEGA
    w = siren_module.siren((500, fan_in), np.random.default_rng(index), omega_0=OMEGA,
                           fold=fold, layer=siren_layer(index, readout))
    n, var = w.size, bound**2 / 3
    # Uniform: Var(s²) = (9/5 − (n−3)/(n−1)) σ⁴ / n.
    assert abs(w.var(ddof=1) - var) <= Z * var * math.sqrt((1.8 - (n - 3) / (n - 1)) / n)
    # Both ends are approached within ε = 2·bound·ln(1e9)/N (missed with probability ≤ 1e-9).
    eps = 2 * bound * math.log(1e9) / n
    assert -bound <= w.min() < -bound + eps and bound - eps < w.max() <= bound


def siren_forward(weights, x: np.ndarray, omega_0: float) -> np.ndarray:
    """SIREN's forward pass: sin(ω₀(W h + b)) per hidden layer, linear readout."""
    h = x
    for layer in weights[:-1]:
        h = np.sin(omega_0 * (h @ layer["W"].T + layer["b"]))
    return h @ weights[-1]["W"].T + weights[-1]["b"]


def test_folded_sin_network_computes_siren() -> None:
    model = nb.MLP(in_dim=2, width=64, depth=3, out_dim=2, activation="sin")
    x = np.random.default_rng(0).uniform(-1, 1, size=(50, 2))
    folded = nb.initialize(model, "siren", seed=3, params={"omega_0": OMEGA, "fold": True})
    raw = nb.initialize(model, "siren", seed=3, params={"omega_0": OMEGA, "fold": False})
    ours = Network(model, folded, dtype="float64").predict(x)
    expected = siren_forward(raw, x, OMEGA)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10 * np.abs(expected).max())
    # Unfolded weights in a plain sin network are a different (much smoother) function.
    assert not np.allclose(Network(model, raw, dtype="float64").predict(x), expected, atol=1e-3)


@pytest.mark.parametrize("params, message", [
    ({"omega_0": 0.0}, "omega_0 must be > 0"),
    ({"omega_0": -30.0}, "omega_0 must be > 0"),
    ({"fold": "yes"}, "fold must be true or false, got 'yes'"),
])
def test_siren_rejects_bad_parameters(params, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        nb.initialize(nb.MLP(in_dim=2, width=4, depth=1, activation="sin"), "siren", 0, params)


def test_declared_parameters() -> None:
    assert {p.name: p.default for p in registry.initializers.get("siren").params} == \
        {"omega_0": 30.0, "fold": True}
    assert registry.initializers.get("zerO").params == ()
