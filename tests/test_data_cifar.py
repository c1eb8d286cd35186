"""Tests of the cifar10 task on tiny archives written in the real "CIFAR-10 python version"
layout: a gzip tar whose batch members are pickled dicts of a uint8 array and a label list."""

from __future__ import annotations

import io
import os
import pickle
import re
import struct
import tarfile

import numpy as np
import pytest
from conftest import ROOT

from ntkbench import registry
from ntkbench.data import cifar
from ntkbench.data.cache import REMOTE, CorruptDataError, MissingDataError
from ntkbench.data.cifar import cifar10, load_batches
from ntkbench.spec import load_task

B = 10  # images per batch in the fake archives (the real one has 10,000)
N_TRAIN_ALL = 5 * B
DIR = "cifar-10-batches-py/"
TRAIN = tuple(f"{DIR}data_batch_{i}" for i in range(1, 6))
TEST = f"{DIR}test_batch"
# Members in a scrambled order, with the two members the loader never reads.
ORDER = (TEST, TRAIN[2], f"{DIR}readme.html", TRAIN[0], f"{DIR}batches.meta", TRAIN[4], TRAIN[1],
         TRAIN[3])
SPECIAL = 17  # training image 17 (data_batch_2, row 7) has one bright pixel ...
PIXEL = (1, 4, 9)  # ... at channel 1 (green), row 4, column 9


def batch_pickle(batch: object) -> bytes:
    """``batch`` pickled by this Python (bytes stay bytes), for malformed batches."""
    return pickle.dumps(batch, protocol=3)


def _py2_str(b: bytes) -> bytes:
    return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<i", len(b))) + b


def _py2_int(n: int) -> bytes:
    if 0 <= n < 256:
        return b"K" + bytes([n])
    return b"M" + struct.pack("<H", n) if 0 <= n < 65536 else b"J" + struct.pack("<i", n)


def py2_batch_pickle(data: np.ndarray, labels: list[int], name: bytes) -> bytes:
    """A batch exactly as the archive stores it: Python 2 cPickle, protocol 2, every string a
    Python 2 str (read back as bytes with ``encoding="bytes"``), the array rebuilt by numpy
    1.x's ``numpy.core.multiarray._reconstruct``. Written opcode by opcode (no memo)."""
    rows, cols = data.shape
    array = (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + _py2_int(0)
             + b"\x85" + _py2_str(b"b") + b"\x87R"  # _reconstruct(ndarray, (0,), "b")
             + b"(" + _py2_int(1) + _py2_int(rows) + _py2_int(cols) + b"\x86"  # version, shape
             + b"cnumpy\ndtype\n" + _py2_str(b"u1") + b"\x89\x88\x87R"  # dtype("u1", 0, 1)
             + b"(" + _py2_int(3) + _py2_str(b"|") + b"NNN" + _py2_int(-1) + _py2_int(-1)
             + _py2_int(0) + b"tb"  # dtype state
             + b"\x89" + _py2_str(data.tobytes()) + b"tb")  # not Fortran order, the pixels
    label_list = b"](" + b"".join(_py2_int(int(v)) for v in labels) + b"e"
    return (b"\x80\x02}(" + _py2_str(b"batch_label") + _py2_str(name) + _py2_str(b"labels")
            + label_list + _py2_str(b"data") + array + b"u.")


def batch_dict(data: np.ndarray, labels: list[int], name: bytes) -> dict:
    return {b"batch_label": name, b"labels": labels, b"data": data,
            b"filenames": [b"img_%d.png" % i for i in range(len(labels))]}


def write_archive(path, members: dict[str, bytes], level: int = 9) -> None:
    with tarfile.open(path, "w:gz", compresslevel=level) as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


def fake_images(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct channel-first images ``(n, 3, 32, 32)`` and labels, ``n/10`` per class."""
    return (rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8),
            rng.permutation(np.arange(n) % 10))


def members_of(train_x, train_y, test_x, test_y) -> dict[str, bytes]:
    rows = {m: (train_x[i * B:(i + 1) * B], train_y[i * B:(i + 1) * B])
            for i, m in enumerate(TRAIN)}
    rows[TEST] = (test_x, test_y)
    out = {}
    for name in ORDER:
        if name in rows:
            x, y = rows[name]
            out[name] = py2_batch_pickle(x.reshape(len(x), -1), list(y), name.encode())
        else:
            out[name] = b"<html>not read</html>" if name.endswith("html") else b"meta"
    return out


@pytest.fixture
def archive(tmp_path, monkeypatch):
    """A data cache with a tiny CIFAR-10 archive (batches of 10); returns its path and arrays."""
    monkeypatch.setenv("NTKBENCH_DATA", str(tmp_path))
    monkeypatch.setattr(cifar, "BATCH_SIZE", B)
    rng = np.random.default_rng(99)
    train_x, train_y = fake_images(rng, N_TRAIN_ALL)
    test_x, test_y = fake_images(rng, B)
    train_x[SPECIAL] = 0
    train_x[SPECIAL][PIXEL] = 200
    path = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    path.parent.mkdir()
    members = members_of(train_x, train_y, test_x, test_y)
    write_archive(path, members)
    return {"path": path, "train": (train_x, train_y), "test": (test_x, test_y),
            "members": members}


def lookup(images: np.ndarray) -> dict[bytes, int]:
    index = {im.reshape(-1).tobytes(): i for i, im in enumerate(images)}
    assert len(index) == len(images)
    return index


def indices(x_raw: np.ndarray, index: dict[bytes, int]) -> np.ndarray:
    """Image index of each raw 0..255 row; KeyError if a row is not one of the images."""
    return np.array([index[np.asarray(row).astype(np.uint8).tobytes()] for row in x_raw])


def test_python2_batch_pickle_decodes_like_the_archive_documents():
    data = np.arange(2 * 300, dtype=np.uint8).reshape(2, 300) % 251
    batch = pickle.loads(py2_batch_pickle(data, [7, 300], b"b1"), encoding="bytes")
    assert set(batch) == {b"batch_label", b"labels", b"data"} and batch[b"batch_label"] == b"b1"
    assert batch[b"labels"] == [7, 300] and batch[b"data"].dtype == np.uint8
    np.testing.assert_array_equal(batch[b"data"], data)


def test_shapes_and_rows_come_from_the_right_batches(archive):
    ds = cifar10(seed=0, n_train=20, n_test=6, normalize="none")
    assert ds.x_train.shape == (20, 3072) and ds.x_test.shape == (6, 3072)
    assert ds.y_train.shape == (20,) and ds.y_test.shape == (6,)
    assert ds.x_train.dtype == np.float64 and ds.x_train.flags.c_contiguous
    assert ds.input_shape == (3, 32, 32) and ds.in_dim == 3072
    assert ds.kind == "classification" and ds.n_classes == 10
    for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        images, labels = archive[split]
        idx = indices(x, lookup(images))  # training rows from data_batch_*, test from test_batch
        assert len(set(idx)) == len(idx)
        np.testing.assert_array_equal(y, labels[idx])
        np.testing.assert_array_equal(x.reshape(-1, *ds.input_shape), images[idx])


def test_pixel_order_is_channel_first_c_order(archive):
    ds = cifar10(seed=1, n_train=N_TRAIN_ALL, n_test=1, normalize="none")
    (row,) = np.flatnonzero(ds.x_train.sum(axis=1) == 200)  # the one-pixel image
    c, r, k = PIXEL
    assert np.flatnonzero(ds.x_train[row]).tolist() == [c * 1024 + r * 32 + k]
    assert ds.x_train.reshape(-1, 3, 32, 32)[row][PIXEL] == 200
    assert ds.y_train[row] == archive["train"][1][SPECIAL]


def test_every_image_once_and_the_test_set_only_from_test_batch(archive):
    ds = cifar10(seed=2, n_train=N_TRAIN_ALL, n_test=B, normalize="none")
    assert sorted(indices(ds.x_train, lookup(archive["train"][0]))) == list(range(N_TRAIN_ALL))
    assert sorted(indices(ds.x_test, lookup(archive["test"][0]))) == list(range(B))
    with pytest.raises(KeyError):  # no test image is a training image
        indices(ds.x_test[:1], lookup(archive["train"][0]))


def test_seed_reproducibility_and_independence_of_the_two_sizes(archive):
    a, b, c = (cifar10(seed=s, n_train=12, n_test=5) for s in (4, 4, 5))
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.x_train, c.x_train)
    np.testing.assert_array_equal(a.x_train, cifar10(seed=4, n_train=12, n_test=2).x_train)
    np.testing.assert_array_equal(a.x_test, cifar10(seed=4, n_train=3, n_test=5).x_test)
    # Naming all ten classes in index order is the same draw as classes=None.
    d = cifar10(seed=4, n_train=12, n_test=5, classes=list(range(10)))
    np.testing.assert_array_equal(a.x_train, d.x_train)
    np.testing.assert_array_equal(a.y_test, d.y_test)


def test_classes_by_name_or_index_and_pm1(archive):
    images, labels = archive["train"]
    by_name = cifar10(seed=0, n_train=10, n_test=2, classes=["dog", "cat"], normalize="none")
    by_index = cifar10(seed=0, n_train=10, n_test=2, classes=[5, 3], normalize="none")
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(by_name, name), getattr(by_index, name))
    cls = labels[indices(by_name.x_train, lookup(images))]
    assert sorted(cls) == [3] * 5 + [5] * 5  # every dog and cat image of the training batches
    np.testing.assert_array_equal(by_name.y_train, np.where(cls == 5, 0, 1))
    assert by_name.n_classes == 2
    pm1 = cifar10(seed=0, n_train=10, n_test=2, classes=["dog", "cat"], targets="pm1",
                  normalize="none")
    assert pm1.kind == "regression" and pm1.y_test.shape == (2, 1)
    np.testing.assert_array_equal(pm1.y_train[:, 0], np.where(cls == 5, -1.0, 1.0))
    with pytest.raises(ValueError, match=r"n_train = 11 exceeds the 10 training images of "
                                         r"classes \[5, 3\] \(dog, cat\)"):
        cifar10(seed=0, n_train=11, n_test=2, classes=["dog", "cat"])


def test_normalize_unit_and_standardize_with_training_statistics(archive):
    raw = cifar10(seed=3, n_train=15, n_test=4, normalize="none")
    np.testing.assert_array_equal(cifar10(seed=3, n_train=15, n_test=4).x_train,
                                  raw.x_train / 255)
    std = cifar10(seed=3, n_train=15, n_test=4, normalize="standardize")
    mean, sd = raw.x_train.mean(), raw.x_train.std()
    np.testing.assert_allclose(std.x_train, (raw.x_train - mean) / sd, rtol=0, atol=1e-12)
    np.testing.assert_allclose(std.x_test, (raw.x_test - mean) / sd, rtol=0, atol=1e-12)


def test_only_the_batches_a_draw_needs_are_read(archive):
    """data_batch_5 is made unreadable: draws of one training image that fall in batches 1-4
    still load, those in batch 5 fail naming it, and a class subset (which needs every label)
    always fails."""
    members = dict(archive["members"])
    members[TRAIN[4]] = b"\x80\x03garbage"
    write_archive(archive["path"], members)
    outcomes = set()
    for seed in range(20):
        try:
            ds = cifar10(seed=seed, n_train=1, n_test=1, normalize="none")
        except CorruptDataError as exc:
            assert "data_batch_5" in str(exc)
            outcomes.add("batch 5")
        else:
            assert indices(ds.x_train, lookup(archive["train"][0]))[0] < 4 * B
            outcomes.add("batches 1-4")
    assert outcomes == {"batch 5", "batches 1-4"}
    with pytest.raises(CorruptDataError, match="data_batch_5"):
        cifar10(seed=0, n_train=1, n_test=1, classes=[0, 1])


def test_parsed_batches_are_cached_until_the_archive_changes(archive):
    path = archive["path"]
    first = load_batches(path, TRAIN)
    again = load_batches(path, (TEST, *TRAIN))
    assert all(again[m][0] is first[m][0] for m in TRAIN)  # parsed once, not re-read
    (tx, ty), (sx, sy) = archive["train"], archive["test"]
    # Level 0 (stored) makes the archive's size independent of the pixel values.
    write_archive(path, members_of(tx, ty, sx, sy), level=0)
    before = cifar10(seed=0, n_train=N_TRAIN_ALL, n_test=B, normalize="none")
    stat = path.stat()

    # Same size, later mtime: the inverted images must be seen.
    write_archive(path, members_of(255 - tx, ty, 255 - sx, sy), level=0)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert path.stat().st_size == stat.st_size
    after = cifar10(seed=0, n_train=N_TRAIN_ALL, n_test=B, normalize="none")
    np.testing.assert_array_equal(after.x_train, 255 - before.x_train)
    np.testing.assert_array_equal(after.x_test, 255 - before.x_test)
    np.testing.assert_array_equal(after.y_train, before.y_train)

    # Same mtime, other size (a coarse-mtime file system): the original images are back.
    write_archive(path, members_of(tx, ty, sx, sy), level=9)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert path.stat().st_size != stat.st_size
    restored = cifar10(seed=0, n_train=N_TRAIN_ALL, n_test=B, normalize="none")
    np.testing.assert_array_equal(restored.x_train, before.x_train)


class _Mkdir:
    """Unpickling this would create a directory: the shape of a malicious payload."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def _data(shape=(B, 3072), dtype=np.uint8):
    return np.zeros(shape, dtype=dtype)


@pytest.mark.parametrize("member,batch,message", [
    (TRAIN[0], batch_dict(_data((B, 3071)), [0] * B, b"x"),
     r"data_batch_1: b'data' must be a uint8 array of shape \(10, 3072\), got uint8 array of "
     r"shape \(10, 3071\)"),
    (TRAIN[1], batch_dict(_data(dtype=np.float32), [0] * B, b"x"),
     r"data_batch_2: b'data' must be a uint8 array.*got float32 array"),
    (TRAIN[2], batch_dict(_data(), [0] * (B - 1), b"x"),
     r"data_batch_3: b'labels' has 9 entries, expected 10"),
    (TRAIN[3], batch_dict(_data(), [0] * (B - 1) + [10], b"x"),
     r"data_batch_4: expected class labels 0\.\.9, got 10 at index 9"),
    (TEST, batch_dict(_data(), [0.0] * B, b"x"), r"test_batch: b'labels' must be a list of int"),
    (TEST, {b"data": _data()}, r"test_batch: expected a dict with keys b'data' and b'labels'"),
    (TEST, [1, 2, 3], r"test_batch: expected a dict.*got list"),
])
def test_malformed_batches_are_corrupt(archive, member, batch, message):
    members = dict(archive["members"])
    members[member] = batch_pickle(batch)
    write_archive(archive["path"], members)
    with pytest.raises(CorruptDataError, match=message) as info:
        cifar10(seed=0, n_train=N_TRAIN_ALL, n_test=1)
    assert info.value.path == archive["path"] and str(archive["path"]) in str(info.value)


def test_a_pickle_with_a_foreign_global_is_refused_unexecuted(archive, tmp_path):
    marker = tmp_path / "pwned"
    members = dict(archive["members"])
    members[TRAIN[0]] = pickle.dumps(batch_dict(_data(), [0] * B, _Mkdir(str(marker))),
                                     protocol=3)
    write_archive(archive["path"], members)
    with pytest.raises(CorruptDataError, match=r"data_batch_1: refusing to unpickle global "
                                               r"(posix|nt)\.mkdir.*ntkbench data download"):
        cifar10(seed=0, n_train=N_TRAIN_ALL, n_test=1)
    assert not marker.exists()


@pytest.mark.parametrize("damage,message", [
    ("not gzip", r"not a readable gzip-compressed tar archive .*cifar-10-python\.tar\.gz"),
    ("plain tar", r"not a readable gzip-compressed tar archive"),
    ("truncated", r"not a readable gzip-compressed tar archive"),
    ("missing member", r"member cifar-10-batches-py/test_batch is missing; expected "
                       r"cifar-10-batches-py/data_batch_1\.\.5 and test_batch"),
    ("garbage pickle", r"data_batch_3: not a readable pickle"),
])
def test_damaged_archives_are_corrupt(archive, damage, message):
    path = archive["path"]
    if damage == "not gzip":
        path.write_bytes(b"<html>404 Not Found</html>")
    elif damage == "plain tar":
        with tarfile.open(path, "w") as tar:
            info = tarfile.TarInfo(TEST)
            tar.addfile(info, io.BytesIO(b""))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "missing member":
        write_archive(path, {m: p for m, p in archive["members"].items() if m != TEST})
    else:
        write_archive(path, {**archive["members"], TRAIN[2]: b"\x80\x03}q\x00(X"})
    with pytest.raises(CorruptDataError, match=message) as info:
        cifar10(seed=0, n_train=N_TRAIN_ALL, n_test=1)
    assert info.value.path == path


def test_missing_archive_names_the_download_command(tmp_path, monkeypatch):
    monkeypatch.setenv("NTKBENCH_DATA", str(tmp_path))
    with pytest.raises(MissingDataError, match=r"cifar-10-python\.tar\.gz.*"
                                               r"ntkbench data download cifar10"):
        cifar10(seed=0)


@pytest.mark.parametrize("kwargs,message", [
    ({"source": "embedded"}, r"unknown source 'embedded': cifar10 has only source 'full'.*"
                             r"ntkbench data download cifar10"),
    ({"classes": ["kat", "dog"]}, r"unknown class name 'kat' in classes — did you mean 'cat'\?"),
    ({"classes": ["cat", 3]}, r"must not repeat a class.*\(cat repeated\)"),
    ({"classes": [3, 10]}, r"classes must contain classes 0\.\.9 or their names \(airplane, "
                           r"automobile, bird, cat, deer, dog, frog, horse, ship, truck\), got 10"),
    ({"classes": "cat"}, r"classes must be a list of classes 0\.\.9 or their names"),
    ({"targets": "pm1"}, r"needs exactly 2 classes \(the -1 and the \+1 class\), got 10; set "
                         r"e\.g\. classes: \[cat, dog\]"),
    ({"n_test": 0}, "n_test must be an integer >= 1"),
])
def test_invalid_params_fail_before_any_file_is_read(tmp_path, monkeypatch, kwargs, message):
    monkeypatch.setenv("NTKBENCH_DATA", str(tmp_path))  # empty: no archive
    with pytest.raises(ValueError, match=message):
        cifar10(seed=0, **kwargs)


def test_registered_with_declared_params_and_task_file_loads(archive):
    entry = registry.tasks.get("cifar10")
    assert {p.name: p.default for p in entry.params} == {
        "source": "full", "n_train": 1000, "n_test": 1000, "classes": None,
        "targets": "labels", "normalize": "unit"}
    assert "ntkbench data download cifar10" in entry.summary()
    task = load_task(ROOT / "tasks" / "cifar10.yaml")
    assert task.data.generator == "cifar10" and task.metric == "test_accuracy"
    assert task.training.loss == "cross_entropy" and task.measure.ntk_max_n == 256
    ds = cifar10(seed=0, **{**task.data.params, "n_train": 20, "n_test": 5})
    assert ds.kind == "classification" and ds.input_shape == (3, 32, 32)


def test_remote_cifar10_is_the_python_version_archive():
    (file,) = REMOTE["cifar10"].files
    assert file.name == "cifar-10-python.tar.gz"
    assert file.url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert file.size == 170498071 and re.fullmatch("[0-9a-f]{64}", file.sha256), file.sha256
