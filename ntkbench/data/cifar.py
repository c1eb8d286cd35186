"""CIFAR-10: 32×32 colour photographs in ten classes (airplane, automobile, bird, cat, deer,
dog, frog, horse, ship, truck), 50,000 for training and 10,000 for test.

There is no embedded copy: :func:`cifar10` reads the "CIFAR-10 python version" archive
``cifar-10-python.tar.gz`` in ``<cache root>/cifar10/`` (fetched, SHA-256 checked, by
``ntkbench data download cifar10``) directly, without extracting it. Its members
``cifar-10-batches-py/data_batch_1`` … ``data_batch_5`` (training) and ``test_batch`` are
Python 2 pickles, each a dict with ``b"data"``, a uint8 array ``(10000, 3072)`` whose row is one
image in channel-first C order (1024 red, then 1024 green, then 1024 blue values, each 32×32
plane row-major), and ``b"labels"``, a list of 10,000 class indices ``0..9``.

Security: unpickling runs code named by the pickle, so a tampered archive could execute code.
The defence is the SHA-256 check at download time; in addition the loader unpickles with a
restricted unpickler that refuses every global except those that rebuild a numpy array
(``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``), so dicts, lists,
bytes, str, int and arrays are all a batch can contain.

Cost: decompressing and parsing the whole archive (~180 MB) takes about a second, so a trial
reads only the members it needs (with all classes, the training batches its drawn images fall
in, and ``test_batch``), stopping early, and the parsed batches are kept for the rest of the
process (keyed by the archive's path, mtime and size), so a suite's many trials parse once.

Layout convention: each input row is one image flattened in C order from its channel-first
array ``(3, 32, 32)`` — exactly the archive's row — and :attr:`Dataset.input_shape` is that
shape, so pixel ``(c, r, k)`` is ``x[:, c*1024 + r*32 + k]``.

Reference: A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", technical
report, University of Toronto, 2009 (https://www.cs.toronto.edu/~kriz/cifar.html).
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ntkbench.data.base import Dataset, register_task
from ntkbench.data.cache import CorruptDataError, RemoteDataset, RemoteFile, register_remote
from ntkbench.data.classify import (
    LabelSpace,
    Selection,
    check_count,
    check_selection,
    class_pool,
    labelled_dataset,
    scale_pixels,
    shuffled,
)

INPUT_SHAPE = (3, 32, 32)
"""Channel-first shape of one image; rows of ``x`` are this array flattened in C order."""

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck")
CLASSES = LabelSpace(count=10, noun="class", plural="classes", names=CLASS_NAMES,
                     example="[cat, dog]")
PIXEL_MAX = 255.0

ARCHIVE = "cifar-10-python.tar.gz"
TRAIN_BATCHES = tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "cifar-10-batches-py/test_batch"
BATCH_SIZE = 10000
"""Images per batch member (every batch of the canonical archive has 10,000)."""

# SHA-256 as in keras-team/keras (keras/datasets/cifar10.py) and pytorch/vision
# (torchvision/prototype/datasets/_builtin/cifar.py); the size, 170498071 bytes, is the
# Content-Length the Toronto server sends and what Keras' download progress reports.
CIFAR10 = register_remote(RemoteDataset(
    name="cifar10",
    description="CIFAR-10: 50,000 training and 10,000 test 32×32 colour images, 10 classes "
                "(python version)",
    files=(RemoteFile(ARCHIVE, "https://www.cs.toronto.edu/~kriz/" + ARCHIVE,
                      "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                      170498071),),
    source="A. Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009, "
           "https://www.cs.toronto.edu/~kriz/cifar.html",
))

# Entropy words of the draws (see classify.shuffled): "cifa", then 1 = training, 2 = test.
_STREAM = 0x6369_6661
_ROW = int(np.prod(INPUT_SHAPE))
_RECONSTRUCT = np.ndarray((0,), np.uint8).__reduce__()[0]  # numpy's array-unpickling function
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,  # written by numpy 1.x (the archive)
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,  # written by numpy 2.x
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _ForbiddenGlobal(pickle.UnpicklingError):
    pass


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only builtin containers and scalars and numpy arrays (no other globals)."""

    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(f"{module}.{name}") from None


def _parse_batch(path: Path, member: str, raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``(data, labels)`` of one batch member, checked: uint8 ``(10000, 3072)``, int64 0..9."""
    def corrupt(what: str) -> CorruptDataError:
        return CorruptDataError(path, f"member {member}: {what}")

    try:
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _ForbiddenGlobal as exc:
        raise corrupt(f"refusing to unpickle global {exc} (a CIFAR-10 batch holds only a dict "
                      f"of bytes, lists of int and a numpy uint8 array); the archive is not "
                      f"the canonical one, delete it and run `ntkbench data download cifar10`"
                      ) from None
    except Exception as exc:  # a damaged pickle can fail in many ways; all mean "corrupt"
        raise corrupt(f"not a readable pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(map(repr, batch)) if isinstance(batch, dict) else type(batch).__name__
        raise corrupt(f"expected a dict with keys b'data' and b'labels', got {keys}")
    data, labels = batch[b"data"], batch[b"labels"]
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8
            or data.shape != (BATCH_SIZE, _ROW)):
        got = (f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
               else type(data).__name__)
        raise corrupt(f"b'data' must be a uint8 array of shape ({BATCH_SIZE}, {_ROW}), got {got}")
    if not isinstance(labels, list) or not all(type(v) is int for v in labels):
        raise corrupt("b'labels' must be a list of int")
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != BATCH_SIZE:
        raise corrupt(f"b'labels' has {len(labels)} entries, expected {BATCH_SIZE}")
    if labels.min() < 0 or labels.max() > 9:
        bad = int(np.argmax((labels < 0) | (labels > 9)))
        raise corrupt(f"expected class labels 0..9, got {labels[bad]} at index {bad}")
    data = np.ascontiguousarray(data)
    data.flags.writeable = False
    labels.flags.writeable = False
    return data, labels


def _read_members(path: Path, members: set[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Parse ``members`` of the archive in one pass, stopping once all are found."""
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for info in tar:
                if info.name not in members:
                    continue
                if not info.isfile():
                    raise CorruptDataError(path, f"member {info.name} is not a regular file")
                raw = tar.extractfile(info).read()  # archive damage surfaces here, not below
                found[info.name] = _parse_batch(path, info.name, raw)
                if len(found) == len(members):
                    break
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise CorruptDataError(path, f"not a readable gzip-compressed tar archive ({exc}); "
                                     f"expected the CIFAR-10 python version, {ARCHIVE}") from exc
    missing = sorted(members - found.keys())
    if missing:
        raise CorruptDataError(path, f"member {missing[0]} is missing"
                                     f"{f' (and {len(missing) - 1} more)' if missing[1:] else ''}"
                                     f"; expected cifar-10-batches-py/data_batch_1..5 and "
                                     f"test_batch")
    return found


@lru_cache(maxsize=1)
def _parsed(path: str, mtime_ns: int, size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    # The batches parsed so far from one version of the archive (filled by load_batches);
    # mtime and size are part of the key so that a replaced archive is read again.
    return {}


def load_batches(path: Path | str, members: list[str] | tuple[str, ...]
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{member: (data, labels)}`` of the archive at ``path``, parsed once per process.

    ``data`` is read-only uint8 ``(10000, 3072)``, ``labels`` read-only int64 ``(10000,)``.
    Members not parsed before are read in one pass over the archive.

    Raises:
        CorruptDataError: the file is not a gzip tar, a member is missing, not a valid batch,
            or its pickle names a forbidden global.
    """
    path = Path(path)
    stat = path.stat()
    cache = _parsed(str(path), stat.st_mtime_ns, stat.st_size)
    todo = set(members) - cache.keys()
    if todo:
        cache.update(_read_members(path, todo))
    return {m: cache[m] for m in members}


def _gather(batches: dict[str, tuple[np.ndarray, np.ndarray]], names: tuple[str, ...],
            index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``index`` of the concatenation of batches ``names`` (only those in ``batches``)."""
    x = np.empty((len(index), _ROW), dtype=np.uint8)
    y = np.empty(len(index), dtype=np.int64)
    which, row = np.divmod(index, BATCH_SIZE)
    for b in np.unique(which):
        data, labels = batches[names[b]]
        mask = which == b
        x[mask], y[mask] = data[row[mask]], labels[row[mask]]
    return x, y


def _draw(selection: Selection, seed: int, path: Path) -> tuple[np.ndarray, ...]:
    """``(x_train, classes_train, x_test, classes_test)`` raw, reading only needed batches."""
    n_train, n_test = selection.n_train, selection.n_test
    n_all = len(TRAIN_BATCHES) * BATCH_SIZE
    if selection.subset:  # the class pools need every label, so every batch
        batches = load_batches(path, (*TRAIN_BATCHES, TEST_BATCH))
        train_pool = class_pool(np.concatenate([batches[m][1] for m in TRAIN_BATCHES]), selection)
        test_pool = class_pool(batches[TEST_BATCH][1], selection)
    else:
        train_pool, test_pool = np.arange(n_all), np.arange(BATCH_SIZE)
    check_count("n_train", n_train, len(train_pool),
                f"training images of {selection.which()} in {ARCHIVE} (data_batch_1..5)")
    check_count("n_test", n_test, len(test_pool),
                f"test images of {selection.which()} in {ARCHIVE} (test_batch)")
    train_idx = shuffled(train_pool, seed, _STREAM, 1)[:n_train]
    test_idx = shuffled(test_pool, seed, _STREAM, 2)[:n_test]
    needed = [TRAIN_BATCHES[b] for b in np.unique(train_idx // BATCH_SIZE)]
    batches = load_batches(path, (*needed, TEST_BATCH))
    return (*_gather(batches, TRAIN_BATCHES, train_idx),
            *_gather(batches, (TEST_BATCH,), test_idx))


@register_task("cifar10")
def cifar10(
    *,
    seed: int,
    source: str = "full",
    n_train: int = 1000,
    n_test: int = 1000,
    classes: list[int | str] | None = None,
    targets: str = "labels",
    normalize: str = "unit",
) -> Dataset:
    """Real 32×32 colour CIFAR-10 photographs, 10 classes (needs `ntkbench data download cifar10`).

    Draw: the training images come from the 50,000 of ``data_batch_1..5`` (in that order,
    index ``10000·(i-1) + row``) with ``default_rng(SeedSequence([seed, 0x63696661, 1]))``'s
    permutation of the chosen classes' images, the test images from the 10,000 of
    ``test_batch`` with stream ``[seed, 0x63696661, 2]``; the first ``n_train`` / ``n_test`` of
    each permutation are used. The sets are disjoint (different files), no image repeats, and
    the training set does not depend on ``n_test``. Random, not stratified.

    Labels: class ``classes[i]`` (an index ``0..9`` or a name: airplane, automobile, bird, cat,
    deer, dog, frog, horse, ship, truck) gets label ``i`` (``[cat, dog]`` makes cat → 0,
    dog → 1); ``None`` = all ten, label = class index. ``targets="pm1"`` needs exactly two
    classes and gives a regression with targets ``(n, 1)``: ``-1.0`` for ``classes[0]``,
    ``+1.0`` for ``classes[1]`` (use ``loss: mse``).

    Inputs: float64 ``(n, 3072)``, each row one image flattened in C order from
    ``input_shape = (3, 32, 32)`` (channels R, G, B; pixel ``(c, r, k)`` at
    ``c*1024 + r*32 + k``). ``normalize="unit"`` divides ``0..255`` by 255; ``"standardize"``
    subtracts the mean and divides by the standard deviation of all pixels (all channels) of the
    *training* images (two scalars, applied to train and test alike); ``"none"`` keeps
    ``0..255``.

    Reference: A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009.

    Args:
        seed: trial seed; it alone decides the draw.
        source: ``"full"``, the only source (there is no embedded copy of CIFAR-10).
        n_train: number of training images, ``≥ 1``, at most 50,000 (5,000 per class).
        n_test: number of test images, ``≥ 1``, at most 10,000 (1,000 per class).
        classes: at least two distinct classes (indices or names), in label order; ``None`` =
            all ten.
        targets: ``"labels"`` (classification) or ``"pm1"`` (two classes, ±1 regression).
        normalize: ``"unit"`` (pixels / 255), ``"standardize"`` (training mean and std) or
            ``"none"`` (raw 0..255).

    Returns:
        Dataset with ``x`` of shape ``(n, 3072)`` and ``input_shape=(3, 32, 32)``; labels int64
        ``(n,)`` or ±1 targets float64 ``(n, 1)``.

    Raises:
        MissingDataError: the archive is not downloaded.
        CorruptDataError: the archive is damaged or not the CIFAR-10 python version.
    """
    if source != "full":
        raise ValueError(f"unknown source {source!r}: cifar10 has only source 'full' (there "
                         f"is no embedded copy); fetch it once with `ntkbench data download "
                         f"cifar10`")
    selection = check_selection(CLASSES, n_train=n_train, n_test=n_test, classes=classes,
                                targets=targets, normalize=normalize)
    path = CIFAR10.require()[ARCHIVE]
    x_train, c_train, x_test, c_test = _draw(selection, seed, path)
    x_train, x_test = scale_pixels(x_train, x_test, selection.normalize, PIXEL_MAX)
    return labelled_dataset(x_train, c_train, x_test, c_test, selection, INPUT_SHAPE)


def _cifar10_requires(**_: Any) -> list[str]:
    """Every ``cifar10`` trial reads the downloaded archive (checked before a run starts)."""
    return [CIFAR10.name]


cifar10.requires_data = _cifar10_requires
