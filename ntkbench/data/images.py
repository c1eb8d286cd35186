"""Image regression: fit a real photograph as a function (row, col) → colour from a few pixels.

:func:`image_regression` turns one image into a coordinate-regression task, the setting of
coordinate networks / implicit neural representations: a network ``f: [0, 1]² → [0, 1]³`` is
trained on a random ``fraction`` of the pixels (25% by default) and tested on all the others.
Natural images carry most of their energy at low spatial frequencies but their edges and
textures need high ones, so how well a plain MLP fills in the missing pixels is a direct
read-out of the *spectral bias* of its Neural Tangent Kernel (Tancik et al. 2020), and how an
initializer shapes that bias (e.g. SIREN's sine networks, Sitzmann et al. 2020) is exactly what
ntkbench compares. The metric is the test SNR or PSNR in decibels
(:func:`ntkbench.evaluation.snr_db`, :func:`ntkbench.evaluation.psnr_db`).

The image is either one of scikit-image's sample images (:data:`SAMPLE_IMAGES`, files embedded
in the scikit-image wheel: no download) or a user's image file.

Layout convention: pixel ``(r, c)`` of the resized image ``(H, W, C)`` (row ``r`` from the top,
column ``c`` from the left) is one sample with input ``(r/(H−1), c/(W−1))`` (``coords="unit"``)
or ``(2r/(H−1) − 1, 2c/(W−1) − 1)`` (``coords="centered"``) and target ``image[r, c, :]``.
:func:`load_image` gives the resized image itself, so the full image (or a network's
prediction of it) can be rebuilt from ``x``; see :func:`image_regression`.

References: M. Tancik et al., "Fourier Features Let Networks Learn High Frequency Functions in
Low Dimensional Domains", NeurIPS 2020 (arXiv:2006.10739); V. Sitzmann et al., "Implicit Neural
Representations with Periodic Activation Functions", NeurIPS 2020 (arXiv:2006.09661).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ntkbench.checks import choice, integer, real
from ntkbench.data.base import Dataset, PixelGrid, register_task
from ntkbench.data.classify import shuffled
from ntkbench.registry import suggest

SAMPLE_IMAGES: dict[str, tuple[str, str]] = {
    # colour photographs and images (RGB)
    "astronaut": ("rgb", "portrait of astronaut Eileen Collins (NASA), 512×512"),
    "chelsea": ("rgb", "Chelsea the cat, 300×451"),
    "coffee": ("rgb", "a cup of coffee on a table, 400×600"),
    "colorwheel": ("rgb", "a synthetic colour wheel, 370×371"),
    "hubble_deep_field": ("rgb", "Hubble eXtreme Deep Field (NASA), 872×1000"),
    "immunohistochemistry": ("rgb", "immunohistochemistry-stained tissue, 512×512"),
    "retina": ("rgb", "fundus photograph of a human retina, 1411×1411"),
    "rocket": ("rgb", "a rocket on its launch pad at dusk (Falcon 9, DSCOVR launch), 427×640"),
    # grey-level images
    "brick": ("gray", "texture of a brick wall, 512×512"),
    "camera": ("gray", "a photographer with a camera on a tripod, 512×512"),
    "cell": ("gray", "a cell in saline (quantitative phase image), 660×550"),
    "checkerboard": ("gray", "a synthetic checkerboard, 200×200"),
    "clock": ("gray", "a wall clock, motion-blurred, 300×400"),
    "coins": ("gray", "Greek coins, 303×384"),
    "grass": ("gray", "texture of grass, 512×512"),
    "gravel": ("gray", "texture of gravel, 512×512"),
    "microaneurysms": ("gray", "retinal microaneurysms (fundus detail, green channel), 102×102"),
    "moon": ("gray", "the surface of the Moon, 512×512"),
    "page": ("gray", "a scanned page of text, 191×384"),
    "shepp_logan_phantom": ("gray", "the Shepp–Logan phantom (synthetic CT slice), 400×400"),
    "text": ("gray", "handwritten formulae on paper, photographed at an angle, 172×448"),
}
"""Sample image name → (``"rgb"`` or ``"gray"``, what it shows and its size ``H×W``).

Each is ``skimage.data.<name>()``, a file inside the scikit-image wheel (no download). Left out:
the binary (``horse``, ``binary_blobs``), RGBA (``logo``), stacked (``lfw_subset``) and paired
(``stereo_motorcycle``) images, and those scikit-image fetches over the network with ``pooch``.
"""

COLORS = ("rgb", "gray")
COORDS = ("unit", "centered")

# Second entropy word of the split generator, so the pixel split is not the same random stream
# as any other draw seeded by the bare trial seed.
_SPLIT_STREAM = 0x696D_6167  # "imag"


def _is_path(image: str) -> bool:
    """Whether ``image`` names a file rather than a sample: it has a directory part or a
    suffix (``photo.png``, ``./rocket``), or a file of that name exists."""
    p = Path(image)
    return len(p.parts) > 1 or p.suffix != "" or image.startswith("~") or p.is_file()


def _unknown_image(image: str) -> ValueError:
    hint = suggest(image, list(SAMPLE_IMAGES))
    if "did you mean" not in hint:
        hint = ""
    return ValueError(f"unknown sample image {image!r}{hint} (sample images: "
                      f"{', '.join(SAMPLE_IMAGES)}; or give the path of an image file, e.g. "
                      f"'./{image}.png')")


def _to_unit_float(pixels: np.ndarray, source: str) -> np.ndarray:
    """Pixels as float64 in ``[0, 1]``: unsigned integers over their dtype's maximum (255 for
    8-bit, 65535 for 16-bit), booleans as 0/1, floats kept (they must lie in ``[0, 1]``)."""
    if pixels.dtype == bool:
        return pixels.astype(np.float64)
    if np.issubdtype(pixels.dtype, np.unsignedinteger):
        return pixels.astype(np.float64) / float(np.iinfo(pixels.dtype).max)
    if np.issubdtype(pixels.dtype, np.floating):
        out = pixels.astype(np.float64)
        if not np.all(np.isfinite(out)) or out.min() < 0.0 or out.max() > 1.0:
            raise ValueError(f"image {source} has float pixels outside [0, 1] (range "
                             f"{np.nanmin(out):.4g} to {np.nanmax(out):.4g}); save it with "
                             f"8- or 16-bit integer pixels or float pixels in [0, 1]")
        return out
    raise ValueError(f"image {source} has {pixels.dtype} pixels; expected unsigned 8- or 16-bit "
                     f"integers (PNG, JPEG, TIFF) or floats in [0, 1]")


def _channels_last(pixels: np.ndarray, source: str) -> np.ndarray:
    """``(H, W, C)`` with ``C`` 1 (grey) or 3 (RGB); an opaque alpha channel is dropped."""
    if pixels.ndim == 2:
        return pixels[:, :, None]
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):  # grey + alpha, RGB + alpha
        alpha = pixels[:, :, -1]
        if np.any(alpha < 1.0):
            raise ValueError(f"image {source} has transparent pixels (an alpha channel below "
                             f"fully opaque); flatten it onto a background first")
        pixels = pixels[:, :, :-1]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise ValueError(f"image {source} has shape {pixels.shape}; expected one grey-level "
                         f"(H, W) or colour (H, W, 3) image (H, W, 4 with an opaque alpha is "
                         f"accepted), not a stack of frames")
    return pixels


def _read(image: str) -> tuple[np.ndarray, str]:
    """The image named ``image`` as float64 ``(H, W, C)`` in ``[0, 1]``, and how to name it in
    messages."""
    if isinstance(image, os.PathLike):
        image = os.fspath(image)
    if not isinstance(image, str) or not image:
        raise ValueError(f"image must be a sample image name or a file path, got {image!r}")
    if image in SAMPLE_IMAGES:
        import skimage.data  # imported here: slow, and only this task needs it

        source = f"'{image}' (skimage.data)"
        try:
            pixels = getattr(skimage.data, image)()
        except Exception as exc:  # e.g. a scikit-image release that no longer ships it
            raise ValueError(f"scikit-image {_skimage_version()} cannot load the sample image "
                             f"{image!r} offline ({type(exc).__name__}: {exc}); pick another "
                             f"sample or give an image file") from exc
    elif _is_path(image):
        path = Path(image).expanduser()
        source = f"file '{image}'"
        if not path.is_file():
            raise ValueError(f"image file '{image}' not found (looked for {path.resolve()}; "
                             f"relative paths are relative to the current directory, "
                             f"{Path.cwd()})")
        import skimage.io

        try:
            pixels = np.asarray(skimage.io.imread(str(path)))
        except Exception as exc:
            raise ValueError(f"cannot read image file '{image}' ({type(exc).__name__}: {exc}); "
                             f"expected a PNG, JPEG, TIFF or other format that "
                             f"skimage.io.imread reads") from exc
    else:
        raise _unknown_image(image)
    return _channels_last(_to_unit_float(pixels, source), source), source


def _skimage_version() -> str:
    import skimage

    return skimage.__version__


def resized_shape(height: int, width: int, resolution: int) -> tuple[int, int]:
    """``(H, W)`` of an ``height × width`` image whose longer side is scaled to ``resolution``:
    the shorter side becomes ``round(shorter · resolution / longer)`` (aspect ratio kept up to
    rounding; a square stays square)."""
    longer = max(height, width)
    if height >= width:
        return resolution, int(round(width * resolution / longer))
    return int(round(height * resolution / longer)), resolution


def _resize(pixels: np.ndarray, resolution: int, source: str) -> np.ndarray:
    h, w, c = pixels.shape
    if resolution > max(h, w):
        raise ValueError(f"resolution {resolution} is larger than image {source} ({h}×{w}); "
                         f"images are never upscaled: set resolution to at most {max(h, w)}")
    new_h, new_w = resized_shape(h, w, resolution)
    if min(new_h, new_w) < 2:
        raise ValueError(f"resolution {resolution} shrinks image {source} ({h}×{w}) to "
                         f"{new_h}×{new_w}; both sides need at least 2 pixels: raise resolution")
    if (new_h, new_w) == (h, w):
        return pixels
    from skimage.transform import resize

    # Gaussian pre-filter (σ = (scale − 1)/2) then bilinear interpolation: convex combinations
    # of the pixels, so values stay in [0, 1] (clip=True guards round-off).
    return resize(pixels, (new_h, new_w, c), order=1, mode="reflect", anti_aliasing=True,
                  clip=True)


@lru_cache(maxsize=8)
def _sample(image: str, resolution: int, color: str) -> np.ndarray:
    """:func:`load_image` of a sample image, cached (read-only)."""
    out = _load(image, resolution, color)
    out.flags.writeable = False
    return out


def _load(image: str, resolution: int, color: str) -> np.ndarray:
    pixels, source = _read(image)
    if pixels.shape[2] == 1 and color == "rgb":
        raise ValueError(f"image {source} is grey-level, so it has no RGB targets; "
                         f"set color: gray")
    if pixels.shape[2] == 3 and color == "gray":
        from skimage.color import rgb2gray

        pixels = rgb2gray(pixels)[:, :, None]
    return np.ascontiguousarray(_resize(pixels, resolution, source), dtype=np.float64)


def load_image(image: str | os.PathLike = "rocket", resolution: int = 64,
               color: str = "rgb") -> np.ndarray:
    """The image of :func:`image_regression`: read, converted and resized, float64 ``(H, W, C)``.

    Steps: read ``skimage.data.<image>()`` (a name in :data:`SAMPLE_IMAGES`) or the file at path
    ``image`` (``skimage.io.imread``); scale to ``[0, 1]`` (unsigned integers over their maximum,
    255 or 65535; floats must already lie in ``[0, 1]``); drop a fully opaque alpha channel;
    with ``color="gray"`` convert RGB to luminance ``Y = 0.2125 R + 0.7154 G + 0.0721 B``
    (``skimage.color.rgb2gray``, ITU-R BT.709 weights); finally resize with
    ``skimage.transform.resize(..., order=1, anti_aliasing=True)`` (Gaussian pre-filter,
    bilinear interpolation) to ``(H, W) = resized_shape(h, w, resolution)``. An image whose
    longer side already equals ``resolution`` is left untouched.

    Args:
        image: sample image name or file path (``str`` or path-like; relative to the current
            directory).
        resolution: length ``≥ 2`` of the longer side after resizing; at most the original's.
        color: ``"rgb"`` (``C = 3``; the image must be in colour) or ``"gray"`` (``C = 1``).

    Returns:
        float64 ``(H, W, C)`` in ``[0, 1]``; sample images come from a cache and are read-only.
    """
    resolution = integer("resolution", resolution, minimum=2)
    color = choice("color", color, COLORS)
    if isinstance(image, str) and image in SAMPLE_IMAGES:
        return _sample(image, resolution, color)
    return _load(image, resolution, color)


def pixel_coordinates(height: int, width: int, coords: str = "unit") -> np.ndarray:
    """Input coordinates of every pixel of an ``height × width`` image in raster order.

    Row ``i = r·W + c`` is pixel ``(r, c)``: ``(r/(H−1), c/(W−1))`` in ``[0, 1]²`` for
    ``coords="unit"``, ``(2r/(H−1) − 1, 2c/(W−1) − 1)`` in ``[−1, 1]²`` for ``"centered"``.
    Corners map exactly onto the corners of the square. ``H, W ≥ 2``.

    Returns:
        float64 ``(H·W, 2)``: column 0 the row coordinate (top to bottom), column 1 the column
        coordinate (left to right).
    """
    coords = choice("coords", coords, COORDS)
    rows, cols = np.meshgrid(np.arange(height) / (height - 1), np.arange(width) / (width - 1),
                             indexing="ij")
    x = np.stack([rows.ravel(), cols.ravel()], axis=1)
    return 2.0 * x - 1.0 if coords == "centered" else x


@register_task("image_regression")
def image_regression(
    *,
    seed: int,
    image: str = "rocket",
    resolution: int = 64,
    fraction: float = 0.25,
    color: str = "rgb",
    coords: str = "unit",
) -> Dataset:
    """Fit a real image as (row, col) → colour from a random 25% of its pixels; test on the rest.

    Image: :func:`load_image` — a scikit-image sample (:data:`SAMPLE_IMAGES`; the default
    ``"rocket"`` is a detailed outdoor scene, a rocket on its launch pad at dusk between lattice
    towers and lamps, 427×640) or an image file (``skimage.io.imread``; a relative path is
    relative to the current directory of the process that runs the trial, not to the suite
    file; sample names win over files of the same name, write ``./rocket`` for such a file). It
    is resized so that its longer side has ``resolution`` pixels (aspect ratio kept; never
    upscaled: a larger ``resolution`` is an error), values float64 in ``[0, 1]``.
    ``color="gray"`` fits the luminance; a grey-level image needs ``color="gray"``. The trial
    hash holds the path, not the file's contents: changing the file does not make a new trial.

    Split: ``n_train = round(fraction · H · W)`` pixels (Python's ``round``, halves to even; at
    least 1, leaving at least 1) are the first ``n_train`` of
    ``default_rng(SeedSequence([seed, 0x696D6167])).permutation(H·W)``; every other pixel is a
    test pixel. So train and test partition the image, the split depends
    only on ``seed`` and the image size, and at one seed a smaller ``fraction`` trains on a
    subset of the pixels of a larger one. Both sets are in raster order (row by row).

    Inputs and targets: pixel ``(r, c)`` has input :func:`pixel_coordinates` — ``(r/(H−1),
    c/(W−1))`` in ``[0, 1]²`` (``coords="unit"``) or ``2·that − 1`` in ``[−1, 1]²``
    (``"centered"``, SIREN's convention) — and target ``image[r, c]``: ``(R, G, B)`` or
    ``(Y,)``. To rebuild the full image (or paint a network's predictions ``f``)::

        img = load_image(image, resolution, color)       # (H, W, C), the task's ground truth
        H, W = img.shape[:2]
        u = x if coords == "unit" else (x + 1) / 2        # x: x_train or x_test
        r = np.rint(u[:, 0] * (H - 1)).astype(int)
        c = np.rint(u[:, 1] * (W - 1)).astype(int)
        canvas = np.zeros_like(img); canvas[r, c] = f     # f: y_train, y_test or predictions

    Metrics: ``test_snr_db`` (``10·log10(Σy²/Σ(f−y)²)``) and ``test_psnr_db``
    (``10·log10(1/MSE)``) over all test pixels and channels, or ``test_mse``.

    References: Tancik et al., NeurIPS 2020 (arXiv:2006.10739); Sitzmann et al., NeurIPS 2020
    (arXiv:2006.09661).

    Args:
        seed: trial seed; with the image size and ``fraction`` it decides the training pixels.
        image: a :data:`SAMPLE_IMAGES` name or an image file path.
        resolution: longer side after resizing, ``≥ 2`` and at most the original's.
        fraction: share of pixels used for training, in ``(0, 1)``.
        color: ``"rgb"`` (3 outputs) or ``"gray"`` (1 output, luminance).
        coords: ``"unit"`` (``[0, 1]²``) or ``"centered"`` (``[−1, 1]²``).

    Returns:
        Regression Dataset with ``x`` float64 ``(n, 2)``, ``y`` float64 ``(n, C)`` in
        ``[0, 1]``, ``input_shape=None`` (an input is a coordinate pair, not an image), and
        ``grid`` the inputs of all ``H·W`` pixels in raster order (for ``training.tv_weight``).
    """
    fraction = real("fraction", fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be strictly between 0 and 1, got {fraction}")
    coords = choice("coords", coords, COORDS)
    img = load_image(image, resolution, color)
    height, width, channels = img.shape
    n_pixels = height * width
    n_train = int(round(fraction * n_pixels))
    if not 1 <= n_train <= n_pixels - 1:
        raise ValueError(f"fraction={fraction} of the {height}×{width} = {n_pixels} pixels "
                         f"gives {n_train} training and {n_pixels - n_train} test pixels; both "
                         f"need at least one")

    order = shuffled(np.arange(n_pixels), seed, _SPLIT_STREAM)
    train_idx, test_idx = np.sort(order[:n_train]), np.sort(order[n_train:])
    x = pixel_coordinates(height, width, coords)
    y = img.reshape(n_pixels, channels)
    return Dataset(
        x_train=x[train_idx],
        y_train=y[train_idx],
        x_test=x[test_idx],
        y_test=y[test_idx],
        kind="regression",
        input_shape=None,
        grid=PixelGrid(x, (height, width)),
    )
