"""What the image-classification tasks (``digits``, ``mnist``, ``cifar10``) share: their common
parameters, the seeded disjoint train/test draw, input scaling, and labels or ±1 targets.

Every such task takes these parameters, with the same meaning and the same error messages:

- ``n_train``, ``n_test`` (integers ``≥ 1``): images drawn without replacement from a seeded
  permutation (:func:`shuffled`) of the images of the chosen classes, so the training and test
  sets are disjoint and contain no repeats.
- ``classes``: at least two distinct classes, in label order; class ``classes[i]`` gets label
  ``i`` (``[3, 8]`` makes 3 → 0 and 8 → 1); ``None`` = all classes, label = class index.
- ``targets``: ``"labels"`` (classification: integer labels ``(n,)``, ``n_classes = k``) or
  ``"pm1"`` (exactly two classes as a regression: targets ``(n, 1)``, ``-1.0`` for
  ``classes[0]`` and ``+1.0`` for ``classes[1]``, the setting in which MSE training follows the
  NTK's linear dynamics).
- ``normalize``: ``"unit"`` (pixels / pixel maximum, in ``[0, 1]``), ``"standardize"``
  (``(x - m) / s`` with ``m``, ``s`` the mean and standard deviation of *all pixels of the
  training images*: two scalars, applied to train and test alike, so the test set leaks nothing)
  or ``"none"`` (raw pixel values as float64).

Inputs are float64 ``(n, d)``, each row one image flattened in C order from its channel-first
shape ``(channels, height, width)``, which the task reports as :attr:`Dataset.input_shape`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ntkbench.checks import choice, integer
from ntkbench.data.base import Dataset
from ntkbench.registry import suggest

TARGETS = ("labels", "pm1")
NORMALIZATIONS = ("unit", "standardize", "none")


@dataclass(frozen=True)
class LabelSpace:
    """The classes of a labelled image set, as error messages and ``classes`` name them."""

    count: int = 10
    noun: str = "digit"
    plural: str = "digits"
    names: tuple[str, ...] = ()  # accepted in ``classes`` in place of the index, e.g. "cat"
    example: str = "[3, 8]"  # a two-class ``classes`` value for hints

    def describe(self, index: int) -> str:
        return self.names[index] if self.names else str(index)


DIGITS = LabelSpace()
"""Ten digits 0..9, the label space of ``digits`` and ``mnist``."""


@dataclass(frozen=True)
class Selection:
    """The validated common parameters of one image-classification task instance."""

    n_train: int
    n_test: int
    classes: tuple[int, ...]  # class indices in label order
    targets: str
    normalize: str
    space: LabelSpace
    subset: bool  # False when ``classes`` was None (all classes, label = class index)

    def which(self) -> str:
        """The chosen classes in words, for error messages: ``all digits``, ``digits [3, 8]``."""
        if not self.subset:
            return f"all {self.space.plural}"
        if self.space.names:
            named = ", ".join(self.space.names[c] for c in self.classes)
            return f"{self.space.plural} {list(self.classes)} ({named})"
        return f"{self.space.plural} {list(self.classes)}"


def check_classes(classes: object, space: LabelSpace = DIGITS) -> list[int]:
    """``classes`` as a list of at least two distinct class indices (order kept).

    ``None`` means all ``space.count`` classes. Elements are indices ``0..count-1`` (whole
    floats from YAML accepted) or, where ``space.names`` is set, class names.
    """
    top = space.count - 1
    alt = f" or their names ({', '.join(space.names)})" if space.names else ""
    if classes is None:
        return list(range(space.count))
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (list, tuple)):
        raise ValueError(f"classes must be a list of {space.plural} 0..{top}{alt} "
                         f"(or null for all {space.count}), got {classes!r}")
    out = []
    for c in classes:
        if isinstance(c, str) and space.names:
            if c not in space.names:
                raise ValueError(f"unknown {space.noun} name {c!r} in classes"
                                 f"{suggest(c, list(space.names))}")
            out.append(space.names.index(c))
            continue
        try:
            d = integer("classes", c, minimum=0)
        except ValueError:
            d = -1
        if not 0 <= d <= top:
            raise ValueError(f"classes must contain {space.plural} 0..{top}{alt}, "
                             f"got {c!r} in {classes!r}")
        out.append(d)
    dupes = sorted({d for d in out if out.count(d) > 1})
    if dupes:
        raise ValueError(f"classes must not repeat a {space.noun}, got {classes!r} "
                         f"({', '.join(space.describe(d) for d in dupes)} repeated)")
    if len(out) < 2:
        raise ValueError(f"classes needs at least 2 {space.plural} to classify, got {classes!r}")
    return out


def check_selection(
    space: LabelSpace,
    *,
    n_train: object,
    n_test: object,
    classes: object,
    targets: object,
    normalize: object,
) -> Selection:
    """Validate the common parameters (see the module docstring); ``ValueError`` if invalid."""
    n_train = integer("n_train", n_train, minimum=1)
    n_test = integer("n_test", n_test, minimum=1)
    class_list = check_classes(classes, space)
    targets = choice("targets", targets, TARGETS)
    normalize = choice("normalize", normalize, NORMALIZATIONS)
    if targets == "pm1" and len(class_list) != 2:
        raise ValueError(f"targets='pm1' needs exactly 2 classes (the -1 and the +1 "
                         f"{space.noun}), got {len(class_list)}; set e.g. classes: "
                         f"{space.example}")
    return Selection(n_train, n_test, tuple(class_list), targets, normalize, space,
                     subset=classes is not None)


def class_pool(labels: np.ndarray, selection: Selection) -> np.ndarray:
    """Indices of the images whose class is one of ``selection.classes``, ascending."""
    return np.flatnonzero(np.isin(labels, selection.classes))


def shuffled(pool: np.ndarray, seed: int, *stream: int) -> np.ndarray:
    """``pool`` in the order of ``default_rng(SeedSequence([seed, *stream])).permutation``.

    A task takes its training images from the front (and, from a single pool, its test images
    right after them), so the training set does not depend on ``n_test``. ``stream`` is the
    task's own entropy words, so its draw is not the same random stream as any other draw seeded
    by the bare trial seed.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), *stream]))
    return pool[rng.permutation(len(pool))]


def check_total(selection: Selection, available: int, what: str) -> None:
    """``ValueError`` unless ``n_train + n_test ≤ available`` (one pool for both sets)."""
    n_train, n_test = selection.n_train, selection.n_test
    if n_train + n_test > available:
        raise ValueError(f"n_train + n_test = {n_train} + {n_test} = {n_train + n_test} exceeds "
                         f"the {available} {what}; lower n_train or n_test so that their sum "
                         f"is at most {available}")


def check_count(name: str, n: int, available: int, what: str) -> None:
    """``ValueError`` unless ``n ≤ available`` (separate training and test pools)."""
    if n > available:
        raise ValueError(f"{name} = {n} exceeds the {available} {what}; lower {name} to at "
                         f"most {available}")


def scale_pixels(
    x_train: np.ndarray, x_test: np.ndarray, normalize: str, pixel_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """Float64 copies of the raw pixels scaled as ``normalize`` says (module docstring)."""
    x_train = np.asarray(x_train, dtype=np.float64)
    x_test = np.asarray(x_test, dtype=np.float64)
    if normalize == "unit":
        return x_train / pixel_max, x_test / pixel_max
    if normalize == "standardize":
        mean, std = float(x_train.mean()), float(x_train.std())
        if std == 0.0:
            raise ValueError(f"normalize='standardize' needs training images whose pixels are "
                             f"not all equal (all {len(x_train)} are {mean:g}); draw more "
                             f"images or use normalize: unit")
        return (x_train - mean) / std, (x_test - mean) / std
    return x_train, x_test


def labelled_dataset(
    x_train: np.ndarray,
    classes_train: np.ndarray,
    x_test: np.ndarray,
    classes_test: np.ndarray,
    selection: Selection,
    input_shape: tuple[int, ...],
) -> Dataset:
    """The :class:`Dataset` of scaled inputs and the class indices of their images.

    Class ``selection.classes[i]`` becomes label ``i``; with ``targets="pm1"`` label 0 becomes
    ``-1.0`` and label 1 ``+1.0`` in a regression dataset with targets ``(n, 1)``.
    """
    remap = np.full(selection.space.count, -1, dtype=np.int64)
    remap[list(selection.classes)] = np.arange(len(selection.classes))
    y_train = remap[np.asarray(classes_train, dtype=np.int64)]
    y_test = remap[np.asarray(classes_test, dtype=np.int64)]
    if selection.targets == "pm1":
        return Dataset(
            x_train=x_train,
            y_train=(2.0 * y_train - 1.0)[:, None],
            x_test=x_test,
            y_test=(2.0 * y_test - 1.0)[:, None],
            kind="regression",
            input_shape=input_shape,
        )
    return Dataset(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        kind="classification",
        n_classes=len(selection.classes),
        input_shape=input_shape,
    )
