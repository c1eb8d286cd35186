"""An image task keeps its predicted image in a side file, and the report draws it."""

import numpy as np
import pytest
from conftest import tiny_trial

from ntkbench import registry
from ntkbench.config import DataConfig, ModelConfig, TrainingConfig
from ntkbench.data.images import load_image
from ntkbench.execute import run_trial
from ntkbench.report import figures
from ntkbench.report.site import load_runs
from ntkbench.runner import run_trials
from ntkbench.store import RunStore

PARAMS = {"image": "camera", "resolution": 12, "color": "gray"}


def _image_trial(initializer="he_normal", seed=0):
    return tiny_trial(initializer=initializer, seed=seed).model_copy(update={
        "task": "image_regression", "data": DataConfig(generator="image_regression",
                                                      params=PARAMS),
        "model": ModelConfig(width=16, depth=2, activation="relu"),
        "training": TrainingConfig(optimizer="gd", lr=0.5, steps=20), "metric": "test_snr_db"})


def test_the_side_arrays_hold_the_image_the_mask_and_the_prediction(tmp_path):
    record = run_trial(_image_trial())
    assert record["status"] == "ok", record.get("error")
    arrays = record["arrays"]
    truth = load_image(PARAMS["image"], PARAMS["resolution"], PARAMS["color"])
    np.testing.assert_allclose(arrays["image_target"], truth, atol=1e-3)  # float16
    data = registry.tasks.get("image_regression").obj(seed=0, **PARAMS)
    assert arrays["image_train_mask"].sum() == data.n_train
    assert arrays["image_prediction"].shape == truth.shape
    store = RunStore(tmp_path)
    path = store.write(record)
    assert '"arrays":' not in path.read_text() and '"arrays_file"' in path.read_text()
    back = store.arrays(record["trial_hash"])
    np.testing.assert_array_equal(back["image_train_mask"], arrays["image_train_mask"])
    assert "arrays" in record  # the caller's record is left as it was


def test_image_prediction_figure(tmp_path):
    run_trials([_image_trial(i) for i in ("he_normal", "lecun_normal")], tmp_path,
               progress=False)
    df = load_runs([tmp_path])
    fig = figures.image_prediction(df, "image_regression")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "ground truth" and titles[1].startswith("training pixels (25%)")
    assert [t.split("\n")[0] for t in titles[2:]] == ["he_normal", "lecun_normal"]
    with pytest.raises(ValueError, match="no predicted images"):
        figures.image_prediction(df.drop(columns="arrays_file"), "image_regression")
