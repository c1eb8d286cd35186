"""Tests of the synthetic regression tasks: oscillatory_1d and targets_2d."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ntkbench import registry
from ntkbench.data.synthetic import (
    TARGETS,
    oscillatory_1d,
    oscillatory_1d_frequency,
    oscillatory_1d_target,
    targets_2d,
)

ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _noise_tolerance(sigma: float, n: int) -> float:
    """Five standard errors of a Gaussian sample std: SE(s) ≈ σ / √(2(n − 1))."""
    return 5.0 * sigma / np.sqrt(2.0 * (n - 1))


def _sign_changes(y: np.ndarray) -> int:
    return int(np.count_nonzero(np.diff(np.sign(y)) != 0))


# ---------------------------------------------------------------- oscillatory_1d


def test_oscillatory_shapes_dtypes_and_domain():
    ds = oscillatory_1d(seed=0, n_samples=250, train_fraction=0.8)
    assert ds.x_train.shape == (200, 1) and ds.y_train.shape == (200, 1)
    assert ds.x_test.shape == (50, 1) and ds.y_test.shape == (50, 1)
    for name in ARRAYS:
        assert getattr(ds, name).dtype == np.float64
    x = np.concatenate([ds.x_train, ds.x_test])
    assert np.all((x >= -1.0) & (x <= 1.0))
    assert ds.kind == "regression" and ds.input_shape is None
    assert ds.in_dim == 1 and ds.out_dim == 1


def test_oscillatory_train_test_disjoint():
    ds = oscillatory_1d(seed=3, n_samples=512)
    assert not set(ds.x_train.ravel()) & set(ds.x_test.ravel())


@pytest.mark.parametrize("task,kwargs", [
    (oscillatory_1d, {"noise": 0.1}),
    (targets_2d, {"target": "radial_chirp", "noise": 0.1}),
])
def test_determinism(task, kwargs):
    a, b, c = task(seed=7, **kwargs), task(seed=7, **kwargs), task(seed=8, **kwargs)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert not np.array_equal(getattr(a, name), getattr(c, name))


def test_oscillatory_targets_follow_documented_formula():
    f = 3.5
    ds = oscillatory_1d(seed=1, frequency=f)
    c = 1.0 / np.sqrt((1.0 + 0.25 + 0.0625) / 2.0)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        t = np.pi * f * x
        expected = c * (np.sin(t) + 0.5 * np.sin(2.3 * t + 0.5) + 0.25 * np.cos(4.1 * t))
        np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)


def test_oscillatory_ground_truth_has_unit_variance_and_dominant_cycles():
    x = np.linspace(-1.0, 1.0, 200_001)
    y = oscillatory_1d_target(x, 40.0)
    assert abs(y.var() - 1.0) < 0.05
    # The dominant component sin(πFx) alone changes sign 2F times on [-1, 1] (F = 4 → 8).
    assert _sign_changes(np.sin(np.pi * 4.0 * x[1:-1])) == 8


def test_oscillatory_noise_on_train_only():
    sigma, n = 0.3, 20_000
    ds = oscillatory_1d(seed=2, n_samples=n, train_fraction=0.5, noise=sigma)
    resid = ds.y_train - oscillatory_1d_target(ds.x_train, 4.0)
    assert abs(resid.std(ddof=1) - sigma) < _noise_tolerance(sigma, len(resid))
    assert abs(resid.mean()) < 5 * sigma / np.sqrt(len(resid))
    np.testing.assert_allclose(ds.y_test, oscillatory_1d_target(ds.x_test, 4.0), atol=1e-12)
    # Noise changes the training targets only, never the inputs.
    clean = oscillatory_1d(seed=2, n_samples=n, train_fraction=0.5)
    np.testing.assert_array_equal(ds.x_train, clean.x_train)
    np.testing.assert_array_equal(ds.y_test, clean.y_test)


def test_samples_per_cycle_ties_frequency_to_sample_count():
    spc = 16.0
    changes = []
    for n in (64, 256, 1024):
        ds = oscillatory_1d(seed=0, n_samples=n, train_fraction=0.75, samples_per_cycle=spc,
                            frequency=99.0)  # overridden by samples_per_cycle
        freq = oscillatory_1d_frequency(ds.n_train, spc)
        assert freq == ds.n_train / spc
        np.testing.assert_allclose(ds.y_train, oscillatory_1d_target(ds.x_train, freq),
                                   atol=1e-12)
        order = np.argsort(ds.x_train.ravel())
        changes.append(_sign_changes(ds.y_train.ravel()[order]))
    assert changes[0] < changes[1] < changes[2]


@pytest.mark.parametrize("kwargs,message", [
    ({"n_samples": 3}, "n_samples must be an integer >= 4"),
    ({"n_samples": 10.5}, "n_samples must be an integer"),
    ({"train_fraction": 0.0}, "strictly between 0 and 1"),
    ({"train_fraction": 1.0}, "strictly between 0 and 1"),
    ({"n_samples": 4, "train_fraction": 0.95}, "both need at least one"),
    ({"noise": -0.1}, "noise must be >= 0"),
    ({"frequency": 0.0}, "frequency must be > 0"),
    ({"frequency": float("nan")}, "frequency must be finite"),
    ({"samples_per_cycle": -2.0}, "samples_per_cycle must be > 0"),
])
def test_oscillatory_invalid_params(kwargs, message):
    with pytest.raises(ValueError, match=message):
        oscillatory_1d(seed=0, **kwargs)


# ---------------------------------------------------------------- targets_2d


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_targets_2d_shapes_dtypes_domain_and_formula(target):
    ds = targets_2d(seed=0, target=target, n_train=64, n_test=96)
    assert ds.x_train.shape == (64, 2) and ds.y_train.shape == (64, 1)
    assert ds.x_test.shape == (96, 2) and ds.y_test.shape == (96, 1)
    for name in ARRAYS:
        assert getattr(ds, name).dtype == np.float64
    x = np.concatenate([ds.x_train, ds.x_test])
    assert np.all((x >= 0.0) & (x <= 1.0))
    assert ds.kind == "regression" and ds.input_shape is None
    np.testing.assert_array_equal(ds.y_train[:, 0], TARGETS[target](ds.x_train))
    np.testing.assert_array_equal(ds.y_test[:, 0], TARGETS[target](ds.x_test))


def _documented(name: str, x: np.ndarray) -> np.ndarray:
    """The formulas of the TARGETS docstrings, written out independently."""
    x1, x2 = x[:, 0], x[:, 1]
    if name == "smooth":
        return np.sin(2 * np.pi * x1) + np.sin(2 * np.pi * x2)
    if name == "multi_frequency":
        return 0.5 * sum(np.sin(2 * np.pi * k * x1) + np.cos(2 * np.pi * k * x2)
                         for k in (1, 2, 4, 8))
    if name == "discontinuous":
        return np.array([1.0 if (int(4 * a) + int(4 * b)) % 2 == 0 else -1.0 for a, b in x])
    if name == "radial_chirp":
        return np.sin(2 * np.pi * 10 * ((x1 - 0.5) ** 2 + (x2 - 0.5) ** 2))
    if name == "gaussian_bump":
        return np.exp(-((x1 - 0.35) ** 2 + (x2 - 0.6) ** 2) / (2 * 0.15**2))
    raise AssertionError(f"no documented formula for {name!r}")


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_targets_match_documented_formulas(target):
    x = np.random.default_rng(5).uniform(0.0, 1.0, size=(500, 2))
    np.testing.assert_allclose(TARGETS[target](x), _documented(target, x), rtol=0, atol=1e-12)
    assert TARGETS[target].__doc__ and "\n" not in TARGETS[target].__doc__.strip()


def test_targets_are_finite_nonconstant_and_distinct():
    g = np.linspace(0.0, 1.0, 41)
    x = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    values = {name: fn(x) for name, fn in TARGETS.items()}
    assert {"smooth", "multi_frequency", "discontinuous", "radial_chirp",
            "gaussian_bump"} <= set(values)
    for name, v in values.items():
        assert v.shape == (len(x),), name
        assert np.all(np.isfinite(v)), name
        assert v.std() > 0.1, name
    for (a, va), (b, vb) in itertools.combinations(values.items(), 2):
        assert abs(np.corrcoef(va, vb)[0, 1]) < 0.9, (a, b)


def test_targets_2d_noise_on_train_only_and_inputs_independent_of_target():
    sigma, n = 0.5, 20_000
    ds = targets_2d(seed=4, target="multi_frequency", n_train=n, n_test=100, noise=sigma)
    resid = ds.y_train[:, 0] - TARGETS["multi_frequency"](ds.x_train)
    assert abs(resid.std(ddof=1) - sigma) < _noise_tolerance(sigma, n)
    np.testing.assert_array_equal(ds.y_test[:, 0], TARGETS["multi_frequency"](ds.x_test))
    other = targets_2d(seed=4, target="gaussian_bump", n_train=n, n_test=100)
    np.testing.assert_array_equal(ds.x_train, other.x_train)
    np.testing.assert_array_equal(ds.x_test, other.x_test)


def test_targets_2d_unknown_target_suggests_name():
    with pytest.raises(ValueError, match=r"did you mean 'smooth'\?.*valid: .*radial_chirp"):
        targets_2d(seed=0, target="smoth")
    with pytest.raises(ValueError, match=r"unknown 2-D target 'spiral'.*gaussian_bump"):
        targets_2d(seed=0, target="spiral")


@pytest.mark.parametrize("kwargs,message", [
    ({"n_train": 0}, "n_train must be an integer >= 1"),
    ({"n_test": 0}, "n_test must be an integer >= 1"),
    ({"n_train": "many"}, "n_train must be an integer"),
    ({"n_train": True}, "n_train must be an integer"),
    ({"noise": -1.0}, "noise must be >= 0"),
    ({"noise": float("inf")}, "noise must be finite"),
])
def test_targets_2d_invalid_params(kwargs, message):
    with pytest.raises(ValueError, match=message):
        targets_2d(seed=0, **kwargs)


def test_whole_float_sizes_from_yaml_are_accepted():
    ds = targets_2d(seed=0, n_train=8.0, n_test=4.0)
    assert ds.x_train.shape == (8, 2) and ds.x_test.shape == (4, 2)


# ---------------------------------------------------------------- registry


def test_tasks_are_registered_with_declared_params():
    assert {"oscillatory_1d", "targets_2d"} <= set(registry.tasks.names())
    entry = registry.tasks.get("targets_2d")
    assert [p.name for p in entry.params] == ["target", "n_train", "n_test", "noise"]
    assert {p.name: p.default for p in entry.params} == {
        "target": "smooth", "n_train": 512, "n_test": 1024, "noise": 0.0}
    osc = registry.tasks.get("oscillatory_1d")
    assert [p.name for p in osc.params] == [
        "frequency", "n_samples", "train_fraction", "noise", "samples_per_cycle"]
    assert all(p.annotation for p in osc.params)
    assert entry.summary() and osc.summary()
