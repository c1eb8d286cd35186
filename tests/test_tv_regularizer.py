"""The total-variation regularizer of image tasks (``training.tv_weight``)."""

import numpy as np
import pytest

from ntkbench import registry
from ntkbench.backends.training import TV_EPS, total_variation
from ntkbench.config import DataConfig, ModelConfig, TrainingConfig
from ntkbench.execute import run_trial
from tests.conftest import tiny_trial


def test_total_variation_matches_its_definition():
    rng = np.random.default_rng(0)
    h, w, c = 4, 5, 3
    img = rng.normal(size=(h, w, c))
    terms = [np.sqrt((img[i + 1, j, k] - img[i, j, k]) ** 2
                     + (img[i, j + 1, k] - img[i, j, k]) ** 2 + TV_EPS**2)
             for i in range(h - 1) for j in range(w - 1) for k in range(c)]
    assert total_variation(img.reshape(h * w, c), (h, w)) == pytest.approx(np.mean(terms),
                                                                           rel=1e-12)
    assert total_variation(np.ones((h * w, 1)), (h, w)) == pytest.approx(TV_EPS)
    # A vertical edge of height 1 between columns 1 and 2: in each of the first three rows
    # one of the four terms jumps (j = 1), three are flat.
    edge = np.zeros((h, w))
    edge[:, 2:] = 1.0
    expected = (1 * np.sqrt(1 + TV_EPS**2) + 3 * TV_EPS) / 4  # per row: j = 0..3, j = 1 jumps
    assert total_variation(edge.reshape(-1, 1), (h, w)) == pytest.approx(expected, rel=1e-12)


def _image_trial(backend: str, tv_weight: float, dtype: str = "float32", steps: int = 60):
    return tiny_trial(backend=backend).model_copy(update={
        "task": "image_regression",
        "data": DataConfig(generator="image_regression",
                           params={"image": "camera", "resolution": 16, "color": "gray"}),
        "model": ModelConfig(width=32, depth=2, activation="relu"),
        "training": TrainingConfig(optimizer="gd", lr=0.5, steps=steps, dtype=dtype,
                                   tv_weight=tv_weight),
        "metric": "test_snr_db"})


def test_the_regularizer_smooths_the_predicted_image_and_logs_the_data_loss(backend):
    from ntkbench.backends import get_backend
    from ntkbench.execute import build_model
    from ntkbench.initializers import initialize

    plain, smooth = (_image_trial(backend, w) for w in (0.0, 0.5))
    data = registry.tasks.get("image_regression").obj(seed=0, **plain.data.params)
    assert data.grid is not None and data.grid.shape == (16, 16)
    tvs, logs = [], []
    for trial in (plain, smooth):
        model = build_model(trial, data)
        net = get_backend(backend).Network(model, initialize(model, "he_normal", seed=0),
                                           dtype="float64")
        log = net.train(data.x_train, data.y_train, trial.training, seed=0,
                        checkpoints=[0, 60], on_checkpoint=lambda step, loss: None,
                        grid=data.grid)
        logs.append(log.losses)
        tvs.append(total_variation(net.predict(data.grid.x), data.grid.shape))
    assert logs[0][0] == pytest.approx(logs[1][0], rel=1e-12)  # step 0: the data term only
    assert tvs[1] < 0.7 * tvs[0]  # measured 0.51× on both backends: a flatter prediction
    assert logs[1][-1] > logs[0][-1]  # ... at the cost of fitting the training pixels less


def test_the_regularized_training_agrees_across_backends_in_float64():
    pytest.importorskip("jax")
    a, b = (run_trial(_image_trial(name, 0.5, "float64", steps=20)) for name in ("torch", "jax"))
    assert a["status"] == b["status"] == "ok"
    np.testing.assert_allclose(a["curve_train_loss"], b["curve_train_loss"], rtol=1e-9)
    assert a["linearized"]["skipped"].startswith("a total-variation term")


def test_a_task_without_a_pixel_grid_rejects_the_regularizer():
    trial = tiny_trial().model_copy(update={"training": TrainingConfig(steps=5, tv_weight=1.0)})
    record = run_trial(trial)
    assert record["status"] == "failed"
    assert "not an image on a pixel grid (use it with image_regression)" in record["error"]
    assert trial.trial_hash != tiny_trial().trial_hash
