"""The predict-the-mean reference of a task and the steps to a task-level target."""

import math

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_trial
from scipy import stats as sps

from ntkbench.data.base import Dataset
from ntkbench.evaluation import METRICS
from ntkbench.execute import TARGET_FRACTION, mean_predictor, run_trial, steps_to_loss
from ntkbench.report import across_tasks, leaderboard


def test_mean_predictor_of_a_regression_is_half_the_variance():
    rng = np.random.default_rng(0)
    y = rng.normal(2.0, 3.0, size=(50, 2))
    data = Dataset(rng.normal(size=(50, 1)), y, rng.normal(size=(20, 1)),
                   rng.normal(2.0, 3.0, size=(20, 2)))
    ref = mean_predictor(data, METRICS["test_mse"], "mse")
    assert ref["train_loss"] == pytest.approx(0.5 * np.var(y, axis=0).sum(), rel=1e-12)
    assert ref["test_metric"] == pytest.approx(np.mean((data.y_test - y.mean(axis=0)) ** 2))


def test_mean_predictor_of_a_classification_is_the_label_entropy_and_majority_class():
    rng = np.random.default_rng(1)
    y = rng.choice(3, size=200, p=[0.5, 0.3, 0.2])
    y_test = rng.choice(3, size=100, p=[0.5, 0.3, 0.2])
    data = Dataset(rng.normal(size=(200, 2)), y, rng.normal(size=(100, 2)), y_test,
                   kind="classification", n_classes=3)
    ref = mean_predictor(data, METRICS["test_accuracy"], "cross_entropy")
    assert ref["train_loss"] == pytest.approx(sps.entropy(np.bincount(y) / len(y)), rel=1e-12)
    assert ref["test_metric"] == pytest.approx(np.mean(y_test == np.bincount(y).argmax()))


def test_steps_to_loss():
    assert steps_to_loss([3.0, 2.0, 0.5, 0.1], [0, 1, 5, 9], 0.5) == 5
    assert steps_to_loss([3.0, 2.0], [0, 1], 0.5) is None
    assert steps_to_loss([3.0], [0], math.nan) is None


def test_a_trial_records_the_reference_and_its_steps_to_target():
    record = run_trial(tiny_trial(training=tiny_trial().training.model_copy(
        update={"steps": 200, "lr": 0.5})))
    assert record["status"] == "ok", record.get("error")
    target = record["target_train_loss"]
    assert target == pytest.approx(TARGET_FRACTION * record["mean_predictor"]["train_loss"])
    reached = record["steps_to_target"]
    assert reached is not None  # 200 steps at lr 0.5 get there: the check below has teeth
    steps, losses = record["curve_step"], record["curve_train_loss"]
    # The checkpoints agree with the exact per-step answer: none before it is at the target.
    assert all(loss > target for s, loss in zip(steps, losses, strict=True)
               if reached is None or s < reached)
    if reached is not None and reached in steps:
        assert losses[steps.index(reached)] <= target


def _trial(task, label, seed, value, ref):
    return {"task": task, "init_label": label, "initializer": label, "backend": "torch",
            "seed": seed, "status": "ok", "metric": "test_mse", "metric_goal": "min",
            "final_test_metric": value, "mean_predictor.test_metric": ref,
            "steps_to_target": 10.0 * (1 + seed), "steps_to_10pct": 5.0}


def test_the_reference_row_is_shown_but_never_ranked():
    df = pd.DataFrame([_trial(t, label, s, v + 0.01 * s, 1.0 + s)
                       for t in ("a", "b") for s in range(3)
                       for label, v in (("x", 0.1), ("y", 0.2), ("z", 0.3))])
    tables = leaderboard(df)
    table = tables[0]
    assert [r[0] for r in table.rows][-1] == "ref"
    ref = table.numeric.set_index("initializer").loc["predict the mean"]
    assert pd.isna(ref["rank"]) and ref["status"] == "reference"
    assert ref["metric_mean"] == pytest.approx(2.0) and ref["n_ok"] == 3  # one per seed
    assert "steps to target" in table.columns and "steps to 10%" not in table.columns
    assert table.rows[0][table.columns.index("steps to target")] == "20"  # median of 10, 20, 30
    (summary,) = across_tasks(tables)
    assert list(summary.mean_rank.index) == ["x", "y", "z"]


def test_trials_count_their_place_in_the_process():
    first, second = run_trial(tiny_trial(seed=0)), run_trial(tiny_trial(seed=1))
    assert second["worker_trial_index"] == first["worker_trial_index"] + 1


def test_a_sweep_over_the_data_gets_a_reference_row_per_sweep_label():
    rows = [dict(_trial("t", label, s, 0.1, ref + s), sweep_label=sweep)
            for sweep, ref in (("data.target=a", 1.0), ("data.target=b", 5.0))
            for label in ("x", "y") for s in range(2)]
    (table,) = leaderboard(pd.DataFrame(rows))
    refs = table.numeric[table.numeric["status"] == "reference"].set_index("sweep")
    assert refs["metric_mean"].to_dict() == {"data.target=a": 1.5, "data.target=b": 5.5}
    # A sweep that leaves the data alone (the same reference everywhere): one row.
    rows = [dict(_trial("t", label, s, 0.1, 1.0 + s), sweep_label=sweep)
            for sweep in ("model.width=8", "model.width=16") for label in ("x", "y")
            for s in range(2)]
    (table,) = leaderboard(pd.DataFrame(rows))
    assert (table.numeric["status"] == "reference").sum() == 1
