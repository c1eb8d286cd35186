"""Tests of the image_regression task and of the SNR / PSNR metrics."""

from __future__ import annotations

import re

import numpy as np
import pytest
import skimage.data
import skimage.io
from conftest import ROOT, tiny_trial
from skimage.metrics import peak_signal_noise_ratio

from ntkbench import registry
from ntkbench.config import DataConfig, MeasureConfig, ModelConfig, TrainingConfig
from ntkbench.data.images import (
    SAMPLE_IMAGES,
    image_regression,
    load_image,
    pixel_coordinates,
    resized_shape,
)
from ntkbench.evaluation import DB_LIMIT, METRICS, psnr_db, snr_db
from ntkbench.execute import run_trial
from ntkbench.spec import load_task

ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _reassemble(ds, img: np.ndarray, coords: str) -> tuple[np.ndarray, np.ndarray]:
    """The docstring's recipe: paint train and test targets at their pixels; also count how
    often each pixel was painted."""
    h, w = img.shape[:2]
    canvas = np.full(img.shape, np.nan)
    hits = np.zeros((h, w), dtype=int)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        u = x if coords == "unit" else (x + 1) / 2
        r = np.rint(u[:, 0] * (h - 1)).astype(int)
        c = np.rint(u[:, 1] * (w - 1)).astype(int)
        np.add.at(hits, (r, c), 1)
        canvas[r, c] = y
    return canvas, hits


def _pixels(x: np.ndarray, shape: tuple[int, ...], coords: str) -> set[tuple[int, int]]:
    """The (row, col) pixels that the inputs ``x`` of an ``(H, W, ...)`` image stand for."""
    u = x if coords == "unit" else (x + 1) / 2
    r = np.rint(u[:, 0] * (shape[0] - 1)).astype(int)
    c = np.rint(u[:, 1] * (shape[1] - 1)).astype(int)
    return set(zip(r.tolist(), c.tolist(), strict=True))


def _write(path, pixels: np.ndarray) -> str:
    skimage.io.imsave(str(path), pixels, check_contrast=False)
    return str(path)


# ---------------------------------------------------------------- the task


def test_default_task_is_the_rocket_at_43_by_64():
    ds = image_regression(seed=0)
    # rocket is 427×640: longer side 640 → 64, shorter round(427·64/640) = round(42.7) = 43.
    n = 43 * 64
    assert ds.x_train.shape == (round(0.25 * n), 2) and ds.y_train.shape == (round(0.25 * n), 3)
    assert ds.x_test.shape == (n - round(0.25 * n), 2) and ds.y_test.shape[1] == 3
    for name in ARRAYS:
        assert getattr(ds, name).dtype == np.float64
    assert ds.kind == "regression" and ds.input_shape is None
    assert ds.in_dim == 2 and ds.out_dim == 3


@pytest.mark.parametrize("image,color,coords", [
    ("rocket", "rgb", "unit"),
    ("rocket", "gray", "centered"),
    ("cell", "gray", "unit"),        # portrait: 660×550
    ("astronaut", "rgb", "centered"),
])
def test_train_and_test_partition_the_image_and_reassemble_it_exactly(image, color, coords):
    ds = image_regression(seed=3, image=image, resolution=24, color=color, coords=coords)
    img = load_image(image, 24, color)
    canvas, hits = _reassemble(ds, img, coords)
    assert np.all(hits == 1)  # every pixel exactly once, in train or in test
    np.testing.assert_array_equal(canvas, img)
    # Raster order within each set: the flat index r·W + c increases.
    h, w = img.shape[:2]
    for x in (ds.x_train, ds.x_test):
        u = x if coords == "unit" else (x + 1) / 2
        flat = np.rint(u[:, 0] * (h - 1)) * w + np.rint(u[:, 1] * (w - 1))
        assert np.all(np.diff(flat) > 0)


@pytest.mark.parametrize("fraction", [0.05, 0.25, 0.5, 0.9, 1 / 176, 175 / 176])
def test_training_pixel_count_is_round_fraction_times_pixels(fraction):
    ds = image_regression(seed=1, resolution=16, fraction=fraction)  # 11×16 = 176 pixels
    assert len(ds.x_train) == round(fraction * 176)
    assert len(ds.x_train) + len(ds.x_test) == 176


def test_same_seed_same_arrays_other_seed_other_pixels():
    a, b, c = (image_regression(seed=s, resolution=32) for s in (5, 5, 6))
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    # rocket at 32: 21×32 = 672 pixels, 168 training pixels per seed. Two independent draws
    # share a hypergeometric number of pixels: mean 168²/672 = 42, variance
    # 168·(1/4)(3/4)(504/671) ≈ 23.7 (sd ≈ 4.9); six sd either side.
    sa = {tuple(p) for p in a.x_train}
    sc = {tuple(p) for p in c.x_train}
    assert len(sa) == len(sc) == 168
    assert abs(len(sa & sc) - 42) < 6 * 4.9


def test_split_is_nested_in_fraction_and_independent_of_color_and_coords():
    small = image_regression(seed=2, resolution=32, fraction=0.1, color="gray")
    large = image_regression(seed=2, resolution=32, fraction=0.3, coords="centered")
    shape = (21, 32)
    assert len(small.x_train) == 67 and len(large.x_train) == 202
    assert _pixels(small.x_train, shape, "unit") < _pixels(large.x_train, shape, "centered")


@pytest.mark.parametrize("coords,low,high", [("unit", 0.0, 1.0), ("centered", -1.0, 1.0)])
def test_coordinate_ranges_and_grid(coords, low, high):
    ds = image_regression(seed=0, resolution=20, coords=coords)  # 13×20
    x = np.concatenate([ds.x_train, ds.x_test])
    assert x.min() == low and x.max() == high  # corners exactly on the square's corners
    assert len(np.unique(x[:, 0])) == 13 and len(np.unique(x[:, 1])) == 20
    unit = x if coords == "unit" else (x + 1) / 2
    np.testing.assert_allclose(np.unique(unit[:, 0]), np.arange(13) / 12, rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.unique(unit[:, 1]), np.arange(20) / 19, rtol=0, atol=1e-15)


def test_pixel_coordinates_are_raster_order():
    x = pixel_coordinates(3, 4, "unit")
    assert x.shape == (12, 2)
    np.testing.assert_array_equal(x[5], [1 / 2, 1 / 3])  # row 1, column 1: index 1·4 + 1
    np.testing.assert_array_equal(pixel_coordinates(3, 4, "centered"), 2 * x - 1)


# ---------------------------------------------------------------- image loading and resizing


@pytest.mark.parametrize("image,resolution", [
    ("rocket", 64), ("rocket", 37), ("cell", 50), ("astronaut", 30), ("page", 100),
    ("hubble_deep_field", 77),
])
def test_resize_keeps_aspect_ratio_and_sets_the_longer_side(image, resolution):
    h, w = getattr(skimage.data, image)().shape[:2]
    out = load_image(image, resolution, SAMPLE_IMAGES[image][0])
    nh, nw = out.shape[:2]
    assert max(nh, nw) == resolution
    assert (nh >= nw) == (h >= w)
    # The shorter side is rounded to a whole pixel: off by at most half a pixel.
    short, long_ = min(h, w), max(h, w)
    assert abs(min(nh, nw) - short * resolution / long_) <= 0.5
    assert (nh, nw) == resized_shape(h, w, resolution)
    assert out.dtype == np.float64 and out.min() >= 0.0 and out.max() <= 1.0


def test_full_resolution_is_the_original_image():
    raw = skimage.data.microaneurysms()  # 102×102 uint8
    np.testing.assert_array_equal(load_image("microaneurysms", 102, "gray")[:, :, 0], raw / 255)


def test_downscaling_is_anti_aliased(tmp_path):
    # Vertical stripes 0, 1, 0, 1, ... (the Nyquist frequency, ½ cycle per pixel), 48 → 16.
    # Without a pre-filter, bilinear sampling at the source positions 1, 4, 7, ... returns whole
    # stripes (0 or 1). resize's Gaussian pre-filter (σ = (3 − 1)/2 = 1, cut at 4σ, normalised)
    # passes the Nyquist frequency with gain Σ_k g_k (−1)^k / Σ_k g_k, k = −4..4, ≈ 0.0144, so
    # every pixel is 0.5 ± 0.5·gain ≈ 0.5 ± 0.0072 (mirror borders keep the stripes' phase).
    k = np.arange(-4, 5)
    g = np.exp(-k**2 / 2.0)
    gain = np.sum(g * (-1.0) ** k) / np.sum(g)
    stripes = np.tile((np.arange(48) % 2 * 255).astype(np.uint8), (48, 1))
    out = load_image(_write(tmp_path / "stripes.png", stripes), 16, "gray")
    assert out.shape == (16, 16, 1)
    np.testing.assert_allclose(np.abs(out - 0.5), 0.5 * gain, rtol=1e-6)


def test_rgb_to_gray_uses_bt709_luminance():
    rgb = load_image("coffee", 40, "rgb")
    gray = load_image("coffee", 40, "gray")
    assert gray.shape == (*rgb.shape[:2], 1)
    # Both resize linearly (same weights per channel), so luminance commutes with resizing.
    expected = 0.2125 * rgb[:, :, 0] + 0.7154 * rgb[:, :, 1] + 0.0721 * rgb[:, :, 2]
    np.testing.assert_allclose(gray[:, :, 0], expected, rtol=0, atol=1e-12)


def test_grey_image_needs_color_gray():
    with pytest.raises(ValueError, match=r"'camera' \(skimage.data\) is grey-level.*color: gray"):
        image_regression(seed=0, image="camera")
    ds = image_regression(seed=0, image="camera", resolution=16, color="gray")
    assert ds.out_dim == 1


def test_every_sample_image_loads_offline_with_its_documented_kind_and_size():
    for name, (kind, description) in SAMPLE_IMAGES.items():
        raw = getattr(skimage.data, name)()
        size = re.search(r"(\d+)×(\d+)$", description)
        assert size and raw.shape[:2] == (int(size[1]), int(size[2])), name
        assert (raw.ndim == 3) == (kind == "rgb"), name
        assert load_image(name, 16, kind).shape[2] == (3 if kind == "rgb" else 1)


# ---------------------------------------------------------------- image files


def test_rgb_png_file_is_read_exactly(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    _write(tmp_path / "photo.png", pixels)
    monkeypatch.chdir(tmp_path)  # a relative path is relative to the current directory
    np.testing.assert_array_equal(load_image("photo.png", 30, "rgb"), pixels / 255)
    ds = image_regression(seed=0, image="photo.png", resolution=30, fraction=0.5)
    canvas, hits = _reassemble(ds, pixels, "unit")
    assert np.all(hits == 1)
    np.testing.assert_array_equal(canvas, pixels / 255)
    small = load_image(tmp_path / "photo.png", 15, "rgb")  # a pathlib.Path works too
    assert small.shape == (10, 15, 3)


def test_16_bit_grey_and_opaque_rgba_files(tmp_path):
    rng = np.random.default_rng(1)
    grey16 = rng.integers(0, 65536, size=(12, 9), dtype=np.uint16)
    out = load_image(_write(tmp_path / "g16.png", grey16), 12, "gray")
    np.testing.assert_array_equal(out[:, :, 0], grey16 / 65535)
    rgba = rng.integers(0, 256, size=(8, 8, 4), dtype=np.uint8)
    rgba[:, :, 3] = 255
    out = load_image(_write(tmp_path / "opaque.png", rgba), 8, "rgb")
    np.testing.assert_array_equal(out, rgba[:, :, :3] / 255)
    rgba[0, 0, 3] = 254
    with pytest.raises(ValueError, match=r"transparent\.png' has transparent pixels"):
        load_image(_write(tmp_path / "transparent.png", rgba), 8, "rgb")


def test_float_tiff_files_must_lie_in_unit_range(tmp_path):
    rng = np.random.default_rng(2)
    unit = rng.uniform(size=(6, 7, 3))
    np.testing.assert_array_equal(load_image(_write(tmp_path / "f.tif", unit), 7, "rgb"), unit)
    with pytest.raises(ValueError, match=r"'.*big\.tif' has float pixels outside \[0, 1\] "
                                         r"\(range 0 to 2\)"):
        load_image(_write(tmp_path / "big.tif", np.linspace(0, 2, 42).reshape(6, 7)), 7, "gray")
    with pytest.raises(ValueError, match=r"has int16 pixels; expected unsigned 8- or 16-bit"):
        load_image(_write(tmp_path / "s.tif", np.arange(42, dtype=np.int16).reshape(6, 7)), 7,
                   "gray")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # imageio tries its legacy plugins
def test_missing_and_unreadable_files_are_named(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(ValueError, match=rf"image file '{re.escape(str(missing))}' not found"):
        image_regression(seed=0, image=str(missing))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=rf"cannot read image file '{re.escape(str(bad))}'"):
        image_regression(seed=0, image=str(bad))


# ---------------------------------------------------------------- invalid parameters


@pytest.mark.parametrize("kwargs,message", [
    ({"image": "rockt"}, r"unknown sample image 'rockt' — did you mean 'rocket'.*astronaut"),
    ({"image": "zebra"}, r"unknown sample image 'zebra' \(sample images: astronaut, .*rocket.*"
                         r"or give the path of an image file"),
    ({"image": 3}, r"image must be a sample image name or a file path, got 3"),
    ({"resolution": 1}, r"resolution must be an integer >= 2"),
    ({"resolution": 64.5}, r"resolution must be an integer"),
    ({"resolution": 641}, r"resolution 641 is larger than image 'rocket' \(skimage.data\) "
                          r"\(427×640\).*never upscaled.*at most 640"),
    ({"image": "page", "resolution": 2, "color": "gray"},
     r"shrinks image 'page' .*\(191×384\) to 1×2; both sides need at least 2 pixels"),
    ({"fraction": 0.0}, r"fraction must be strictly between 0 and 1"),
    ({"fraction": 1.0}, r"fraction must be strictly between 0 and 1"),
    ({"fraction": "half"}, r"fraction must be a number"),
    ({"fraction": 0.001, "resolution": 16},
     r"fraction=0.001 of the 11×16 = 176 pixels gives 0 training and 176 test"),
    ({"fraction": 0.999, "resolution": 16}, r"gives 176 training and 0 test pixels"),
    ({"color": "grey"}, r"unknown color 'grey' — did you mean 'gray'\?.*valid: rgb, gray"),
    ({"coords": "center"}, r"unknown coords 'center' — did you mean 'centered'\?"),
])
def test_invalid_params(kwargs, message):
    with pytest.raises(ValueError, match=message):
        image_regression(seed=0, **kwargs)


def test_registered_with_declared_params_and_task_file_loads():
    entry = registry.tasks.get("image_regression")
    assert {p.name: p.default for p in entry.params} == {
        "image": "rocket", "resolution": 64, "fraction": 0.25, "color": "rgb", "coords": "unit"}
    task = load_task(ROOT / "tasks" / "image_regression.yaml")
    assert task.data.generator == "image_regression" and task.metric == "test_snr_db"
    assert task.training.loss == "mse"
    assert image_regression(seed=0, **task.data.params).out_dim == 3


# ---------------------------------------------------------------- metrics


def test_snr_and_psnr_against_hand_computed_values():
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    f = np.array([[1.0, 0.0], [0.0, 0.5]])
    # Σy² = 2, Σ(f − y)² = 0.25 → SNR = 10·log10(8); MSE = 0.25/4 → PSNR = 10·log10(16).
    assert snr_db(f, y) == pytest.approx(10 * np.log10(8.0), abs=1e-12)
    assert psnr_db(f, y) == pytest.approx(10 * np.log10(16.0), abs=1e-12)
    rng = np.random.default_rng(0)
    y = rng.uniform(size=(50, 3))
    f = y + 0.03 * rng.standard_normal((50, 3))
    assert psnr_db(f, y) == pytest.approx(peak_signal_noise_ratio(y, f, data_range=1.0),
                                          abs=1e-10)
    # Flat predictions (n,) against targets (n, 1), as the MSE accepts them.
    assert snr_db(f[:, :1], y[:, 0]) == pytest.approx(snr_db(f[:, 0], y[:, 0]))


def test_perfect_and_zero_signal_are_bounded():
    y = np.full((4, 3), 0.5)
    assert snr_db(y, y) == psnr_db(y, y) == DB_LIMIT
    zero = np.zeros((4, 1))
    assert snr_db(zero, zero) == DB_LIMIT  # a perfect fit of a black image
    assert snr_db(zero + 0.1, zero) == -DB_LIMIT  # no signal to speak of


def test_snr_of_known_noise_on_a_constant_image():
    # f = y + σε on a constant image y ≡ c: SNR = 10·log10(c²/σ²) − 10·log10(mean ε²), and
    # mean ε² over n draws has standard error √(2/n); 10·log10(1 + δ) ≈ 4.34 δ, so the
    # estimate is within 5 standard errors: 5 · 4.34 · √(2/n) dB.
    c, sigma, n = 0.6, 0.05, 30_000
    y = np.full((n // 3, 3), c)
    f = y + sigma * np.random.default_rng(7).standard_normal(y.shape)
    expected = 10 * np.log10(c**2 / sigma**2)
    assert abs(snr_db(f, y) - expected) < 5 * 10 / np.log(10) * np.sqrt(2 / n)
    # PSNR of the same fit: 10·log10(1/σ²), with the same relative error in the MSE.
    assert abs(psnr_db(f, y) - 10 * np.log10(1 / sigma**2)) < 5 * 10 / np.log(10) * np.sqrt(2 / n)


def test_metrics_are_registered_for_regression_and_maximised():
    for name in ("test_snr_db", "test_psnr_db"):
        m = METRICS[name]
        assert m.goal == "max" and m.kinds == ("regression",) and m.name == name


# ---------------------------------------------------------------- a real trial


def test_real_trial_beats_predicting_the_mean_colour(backend):
    """rocket at 16 pixels (11×16; 44 training pixels): a small ReLU MLP trained with Adam lifts
    the test SNR 4.3–9.3 dB above predicting the mean training colour (8.7–9.3 dB) on both
    backends (seeds 0–5, He and Xavier; seed 0 with He is the lowest), so a 2 dB margin fails
    only if training stopped improving the fit."""
    params = {"resolution": 16}
    trial = tiny_trial(
        seed=0, task="image_regression",
        data=DataConfig(generator="image_regression", params=params),
        model=ModelConfig(width=64, depth=2, activation="relu"),
        training=TrainingConfig(optimizer="adam", lr=0.01, steps=150, loss="mse"),
        measure=MeasureConfig(checkpoints=4, ntk_checkpoints=2, ntk_max_n=44),
        metric="test_snr_db", backend=backend)
    record = run_trial(trial)
    assert record["status"] == "ok", record.get("error")
    assert record["n_train"] == 44 and record["in_dim"] == 2 and record["out_dim"] == 3
    for key in ("test_snr_db", "test_psnr_db", "train_snr_db", "train_psnr_db", "test_mse"):
        assert np.isfinite(record[key]), key
    assert record["final_test_metric"] == record["test_snr_db"]
    ds = image_regression(seed=0, **params)
    mean_colour = np.broadcast_to(ds.y_train.mean(axis=0), ds.y_test.shape)
    baseline = snr_db(mean_colour, ds.y_test)
    # Consistency of the two dB metrics: PSNR − SNR = 10·log10(n_test·C / Σy²) for any fit.
    offset = 10 * np.log10(ds.y_test.size / np.sum(ds.y_test**2))
    assert record["test_psnr_db"] - record["test_snr_db"] == pytest.approx(offset, abs=1e-9)
    assert record["test_snr_db"] > baseline + 2.0, (record["test_snr_db"], baseline)
