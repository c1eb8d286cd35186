"""Tests of the digits task: scikit-learn's real 8×8 handwritten digits."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, tiny_trial
from sklearn.datasets import load_digits

from ntkbench import registry
from ntkbench.config import DataConfig, MeasureConfig, ModelConfig, TrainingConfig
from ntkbench.data.digits import digits
from ntkbench.execute import run_trial
from ntkbench.spec import load_task

ARRAYS = ("x_train", "y_train", "x_test", "y_test")


@pytest.fixture(scope="module")
def reference():
    """The images and labels straight from scikit-learn, and a row → image index lookup."""
    bunch = load_digits()
    index = {row.tobytes(): i for i, row in enumerate(bunch.data)}
    assert len(index) == 1797  # every image is distinct, so a row identifies its image
    return bunch.data, bunch.target, bunch.images, index


def _indices(raw_rows: np.ndarray, index: dict[bytes, int]) -> np.ndarray:
    """Image index of each raw (0..16) row; fails if a row is not one of the real images."""
    out = []
    for row in np.asarray(raw_rows, dtype=np.float64):
        assert row.tobytes() in index, "row is not an image of load_digits()"
        out.append(index[row.tobytes()])
    return np.array(out)


def test_shapes_dtypes_and_input_shape():
    ds = digits(seed=0, n_train=120, n_test=80)
    assert ds.x_train.shape == (120, 64) and ds.y_train.shape == (120,)
    assert ds.x_test.shape == (80, 64) and ds.y_test.shape == (80,)
    assert ds.x_train.dtype == ds.x_test.dtype == np.float64
    assert np.issubdtype(ds.y_train.dtype, np.integer) and np.issubdtype(ds.y_test.dtype,
                                                                          np.integer)
    assert ds.kind == "classification" and ds.n_classes == 10
    assert ds.input_shape == (1, 8, 8) and int(np.prod(ds.input_shape)) == ds.in_dim == 64
    assert ds.out_dim == 10 and ds.n_train == 120
    assert ds.x_train.flags.c_contiguous


def test_defaults_are_500_and_500_of_all_ten_digits():
    ds = digits(seed=1)
    assert len(ds.x_train) == 500 and len(ds.x_test) == 500
    assert set(np.unique(ds.y_train)) == set(range(10))


@pytest.mark.parametrize("normalize,scale", [("unit", 1 / 16), ("none", 1.0)])
def test_rows_are_real_images_with_their_labels(reference, normalize, scale):
    data, target, images, index = reference
    ds = digits(seed=3, n_train=300, n_test=200, normalize=normalize)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        idx = _indices(x / scale, index)
        np.testing.assert_array_equal(x, data[idx] * scale)
        np.testing.assert_array_equal(y, target[idx])  # all ten digits: label = digit
        # Channel-first C-order convention: reshaping a row gives the image itself.
        np.testing.assert_array_equal(x.reshape(-1, *ds.input_shape)[:, 0], images[idx] * scale)
    assert ds.x_train.min() >= 0 and ds.x_train.max() == 16 * scale


def test_train_and_test_are_disjoint_without_repeats(reference):
    *_, index = reference
    ds = digits(seed=5, n_train=1000, n_test=797)  # every image used exactly once
    train = _indices(ds.x_train * 16, index)
    test = _indices(ds.x_test * 16, index)
    assert len(set(train)) == 1000 and len(set(test)) == 797
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(range(1797))


def test_same_seed_same_arrays_other_seed_other_split(reference):
    *_, index = reference
    a, b, c = (digits(seed=s, n_train=200, n_test=100) for s in (7, 7, 8))
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    ia, ic = _indices(a.x_train * 16, index), _indices(c.x_train * 16, index)
    assert len(set(ia) & set(ic)) < 0.5 * len(ia)  # expected overlap ≈ 200 · 200/1797 ≈ 22


def test_split_does_not_depend_on_normalize_or_n_test():
    a = digits(seed=2, n_train=100, n_test=50, normalize="none")
    b = digits(seed=2, n_train=100, n_test=400, normalize="unit")
    np.testing.assert_array_equal(a.x_train / 16, b.x_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    np.testing.assert_array_equal(a.x_test / 16, b.x_test[:50])


def test_class_subset_remaps_labels_in_given_order(reference):
    data, target, _, index = reference
    ds = digits(seed=0, n_train=200, n_test=150, classes=[7, 1, 4])
    assert ds.n_classes == 3 and ds.out_dim == 3
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        digit = target[_indices(x * 16, index)]
        assert set(digit) <= {7, 1, 4}
        np.testing.assert_array_equal(y, np.select([digit == 7, digit == 1, digit == 4],
                                                   [0, 1, 2], default=-1))
    assert set(ds.y_train) == {0, 1, 2}


def test_all_images_of_a_class_subset_can_be_used(reference):
    _, target, _, index = reference
    n = int(np.isin(target, [0, 6]).sum())
    ds = digits(seed=0, n_train=n - 10, n_test=10, classes=[0, 6])
    used = set(_indices(ds.x_train * 16, index)) | set(_indices(ds.x_test * 16, index))
    assert used == set(np.flatnonzero(np.isin(target, [0, 6])))


def test_pm1_targets_map_first_class_to_minus_one(reference):
    _, target, _, index = reference
    ds = digits(seed=4, n_train=150, n_test=100, classes=[8, 3], targets="pm1")
    assert ds.kind == "regression" and ds.n_classes is None and ds.out_dim == 1
    assert ds.input_shape == (1, 8, 8)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert y.shape == (len(x), 1) and y.dtype == np.float64
        assert set(np.unique(y)) == {-1.0, 1.0}
        digit = target[_indices(x * 16, index)]
        np.testing.assert_array_equal(y[:, 0], np.where(digit == 8, -1.0, 1.0))
        assert set(digit) == {3, 8}


def test_standardize_uses_training_statistics_only():
    raw = digits(seed=6, n_train=200, n_test=300, normalize="none")
    ds = digits(seed=6, n_train=200, n_test=300, normalize="standardize")
    assert abs(ds.x_train.mean()) < 1e-12 and abs(ds.x_train.std() - 1.0) < 1e-12
    mean, std = raw.x_train.mean(), raw.x_train.std()
    np.testing.assert_allclose(ds.x_train, (raw.x_train - mean) / std, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds.x_test, (raw.x_test - mean) / std, rtol=0, atol=1e-12)
    # Statistics of train + test would give a different transform of the test set.
    both = np.concatenate([raw.x_train, raw.x_test])
    assert not np.allclose(ds.x_test, (raw.x_test - both.mean()) / both.std(), atol=1e-6)
    assert abs(ds.x_test.mean()) > 1e-6
    np.testing.assert_array_equal(ds.y_train, raw.y_train)


@pytest.mark.parametrize("kwargs,message", [
    ({"n_train": 0}, "n_train must be an integer >= 1"),
    ({"n_test": 0}, "n_test must be an integer >= 1"),
    ({"n_train": 2.5}, "n_train must be an integer"),
    ({"n_train": True}, "n_train must be an integer"),
    ({"n_train": 1500, "n_test": 400},
     r"n_train \+ n_test = 1500 \+ 400 = 1900 exceeds the 1797 images of all digits.*"
     r"at most 1797"),
    ({"n_train": 1000, "n_test": 798}, r"= 1798 exceeds the 1797 images"),
    ({"classes": [3, 8]},
     r"1000 exceeds the 357 images of digits \[3, 8\].*at most 357"),
    ({"classes": [3]}, r"at least 2 digits.*\[3\]"),
    ({"classes": []}, "at least 2 digits"),
    ({"classes": [1, 2, 1]}, r"must not repeat a digit.*\(1 repeated\)"),
    ({"classes": [1, 10]}, r"digits 0\.\.9, got 10"),
    ({"classes": [-1, 2]}, r"digits 0\.\.9, got -1"),
    ({"classes": [1, "2"]}, r"digits 0\.\.9, got '2'"),
    ({"classes": [1, 2.5]}, r"digits 0\.\.9, got 2\.5"),
    ({"classes": 3}, r"classes must be a list of digits 0\.\.9.*got 3"),
    ({"classes": "38"}, r"classes must be a list of digits"),
    ({"targets": "pm1"}, r"targets='pm1' needs exactly 2 classes.*got 10"),
    ({"targets": "pm1", "classes": [1, 2, 3], "n_train": 10, "n_test": 10},
     r"needs exactly 2 classes.*got 3"),
    ({"targets": "label"},
     r"unknown targets 'label' — did you mean 'labels'\?.*valid: labels, pm1"),
    ({"targets": "onehot"}, r"unknown targets 'onehot'.*labels.*pm1"),
    ({"normalize": "standardise"},
     r"did you mean 'standardize'\?.*valid: unit, standardize, none"),
    ({"normalize": None}, r"unknown normalize None"),
])
def test_invalid_params(kwargs, message):
    with pytest.raises(ValueError, match=message):
        digits(seed=0, **kwargs)


def test_yaml_friendly_values_are_accepted():
    ds = digits(seed=0, n_train=8.0, n_test=4.0, classes=(2.0, 5))
    assert ds.x_train.shape == (8, 64) and ds.n_classes == 2


def test_registered_with_declared_params_and_task_file_loads():
    entry = registry.tasks.get("digits")
    assert [p.name for p in entry.params] == [
        "n_train", "n_test", "classes", "targets", "normalize"]
    assert {p.name: p.default for p in entry.params} == {
        "n_train": 500, "n_test": 500, "classes": None, "targets": "labels", "normalize": "unit"}
    assert entry.summary()
    task = load_task(ROOT / "tasks" / "digits.yaml")
    assert task.data.generator == "digits" and task.metric == "test_accuracy"
    assert task.training.loss == "cross_entropy" and task.measure.ntk_max_n == 256
    ds = digits(seed=0, **task.data.params)
    assert ds.kind == "classification"


@pytest.mark.parametrize("seed", [0, 1])
def test_real_trial_learns_far_above_chance(seed, backend):
    """Ten classes (chance 0.1): a small MLP reaches 0.87–0.95 test accuracy in 60 GD steps on
    150 images (seeds 0–9, He and Xavier). Mismatched images and labels stay near 0.1."""
    trial = tiny_trial(
        seed=seed, task="digits",
        data=DataConfig(generator="digits", params={"n_train": 150, "n_test": 200}),
        model=ModelConfig(width=64, depth=1, activation="relu"),
        training=TrainingConfig(optimizer="gd", lr=0.5, steps=60, loss="cross_entropy"),
        measure=MeasureConfig(checkpoints=4, ntk_checkpoints=2, ntk_max_n=64),
        metric="test_accuracy", backend=backend)
    record = run_trial(trial)
    assert record["status"] == "ok", record.get("error")
    assert record["n_train"] == 150 and record["in_dim"] == 64 and record["out_dim"] == 10
    assert record["final_test_metric"] == record["test_accuracy"]
    assert record["test_accuracy"] > 0.75, record["test_accuracy"]
    assert record["final_train_loss"] < 0.25 * record["initial_train_loss"]
