"""Handwritten digits: a small, real image-classification task that ships with scikit-learn.

:func:`digits` serves the 1797 images of ``sklearn.datasets.load_digits()``: 8×8 grey-level
images of the digits 0–9 (about 180 per class), each pixel an integer count in ``0..16``. They
are the test set of the UCI "Optical Recognition of Handwritten Digits" data: 32×32 bitmaps of
NIST forms, written by 13 people, divided into 4×4 blocks whose "on" pixels were counted.
The images are embedded in the scikit-learn wheel, so the task needs no download.

Unlike the synthetic regressions of :mod:`ntkbench.data.synthetic`, the inputs here are real
images (64 correlated pixels with a spatial layout), so the task measures how an initializer's
kernel copes with natural-data structure. ``targets="pm1"`` turns a pair of digits into a
binary regression with ``±1`` targets, the setting in which MSE training follows the NTK.

Layout convention: each input row is one image flattened in C order from its channel-first
array ``(channels, height, width) = (1, 8, 8)``, and :attr:`Dataset.input_shape` is that shape,
so a convolutional model can restore the image with ``x.reshape(-1, *input_shape)``.

Reference: E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine
Learning Repository, 1998 (https://archive.ics.uci.edu/dataset/80); C. Kaynak, "Methods of
Combining Multiple Classifiers and Their Applications to Handwritten Digit Recognition",
MSc thesis, Boğaziçi University, 1995.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ntkbench.data.base import Dataset, register_task
from ntkbench.data.classify import (
    DIGITS,
    check_selection,
    check_total,
    class_pool,
    labelled_dataset,
    scale_pixels,
    shuffled,
)

INPUT_SHAPE = (1, 8, 8)
"""Channel-first shape of one image; rows of ``x`` are this array flattened in C order."""

N_IMAGES = 1797
PIXEL_MAX = 16.0

# Second entropy word of the split generator, so the digits split is not the same random stream
# as any other draw seeded by the bare trial seed.
_SPLIT_STREAM = 0x6469_6769  # "digi"


@lru_cache(maxsize=1)
def load_images() -> tuple[np.ndarray, np.ndarray]:
    """All images and labels of ``sklearn.datasets.load_digits()``, read-only.

    Returns:
        ``(pixels, labels)``: float64 ``(1797, 64)`` with values ``0..16`` (each row one 8×8
        image in C order) and int64 ``(1797,)`` digits ``0..9``.
    """
    try:
        from sklearn.datasets import load_digits  # imported here: ~1 s, only when used
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        raise ImportError("the 'digits' task needs scikit-learn: pip install scikit-learn") from exc
    bunch = load_digits()
    pixels = np.ascontiguousarray(bunch.data, dtype=np.float64)
    labels = np.asarray(bunch.target, dtype=np.int64)
    pixels.flags.writeable = False
    labels.flags.writeable = False
    return pixels, labels


@register_task("digits")
def digits(
    *,
    seed: int,
    n_train: int = 500,
    n_test: int = 500,
    classes: list[int] | None = None,
    targets: str = "labels",
    normalize: str = "unit",
) -> Dataset:
    """Real 8×8 handwritten digits (scikit-learn's load_digits, UCI); no download needed.

    Selection: the images whose digit is in ``classes`` (all 1797 if ``None``) form a pool;
    ``default_rng(SeedSequence([seed, 0x64696769])).permutation`` of that pool puts its first
    ``n_train`` images into the training set and the next ``n_test`` into the test set, so the
    two are disjoint, no image appears twice, and the training set does not depend on
    ``n_test``. The split is random, not stratified: class frequencies vary a little by seed.

    Labels: digit ``classes[i]`` gets label ``i`` (the order given, not sorted), so
    ``classes: [3, 8]`` makes 3 → 0 and 8 → 1; with ``classes=None`` the label is the digit.

    Targets: ``"labels"`` gives a classification dataset with ``n_classes = len(classes)`` and
    integer labels ``(n,)`` (use ``loss: cross_entropy``, ``metric: test_accuracy``).
    ``"pm1"`` needs exactly two classes and gives a regression dataset with targets ``(n, 1)``:
    ``-1.0`` for ``classes[0]`` and ``+1.0`` for ``classes[1]`` (use ``loss: mse``).

    Inputs: float64 ``(n, 64)``, each row one image flattened in C order from shape
    ``input_shape = (1, 8, 8)`` (channels, height, width). ``normalize="unit"`` divides the
    raw pixel counts by 16 (values in ``[0, 1]``); ``"standardize"`` subtracts the mean and
    divides by the standard deviation of all pixels of the *training* images (two scalars,
    applied to train and test alike, so the test set leaks nothing into the inputs); ``"none"``
    keeps the raw counts ``0..16``.

    Reference: E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits", UCI
    Machine Learning Repository, 1998.

    Args:
        seed: trial seed; it alone decides the split.
        n_train: number of training images, ``≥ 1``.
        n_test: number of test images, ``≥ 1``; ``n_train + n_test`` must not exceed the images
            of the chosen classes (1797 for all ten, about 180 per digit).
        classes: at least two distinct digits ``0..9``, in label order; ``None`` = all ten.
        targets: ``"labels"`` (classification) or ``"pm1"`` (two classes, ±1 regression).
        normalize: ``"unit"`` (pixels / 16), ``"standardize"`` (training mean and std) or
            ``"none"`` (raw 0..16).

    Returns:
        Dataset with ``x`` of shape ``(n, 64)`` and ``input_shape=(1, 8, 8)``; labels int64
        ``(n,)`` or ±1 targets float64 ``(n, 1)``.
    """
    selection = check_selection(DIGITS, n_train=n_train, n_test=n_test, classes=classes,
                                targets=targets, normalize=normalize)
    pixels, labels = load_images()
    pool = class_pool(labels, selection)
    check_total(selection, len(pool), f"images of {selection.which()}")
    order = shuffled(pool, seed, _SPLIT_STREAM)
    train_idx = order[:selection.n_train]
    test_idx = order[selection.n_train:selection.n_train + selection.n_test]
    x_train, x_test = scale_pixels(pixels[train_idx], pixels[test_idx], selection.normalize,
                                   PIXEL_MAX)
    return labelled_dataset(x_train, labels[train_idx], x_test, labels[test_idx], selection,
                            INPUT_SHAPE)
