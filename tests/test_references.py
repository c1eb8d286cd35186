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


def _kernel_task(kind):
    rng = np.random.default_rng(5)
    x, x_test = rng.normal(size=(60, 3)), rng.normal(size=(40, 3))
    if kind == "classification":
        f = lambda z: (z[:, 0] > 0).astype(int) + (z[:, 1] > 0.5)  # noqa: E731
        return Dataset(x, f(x), x_test, f(x_test), kind="classification", n_classes=3)
    f = lambda z: np.sin(z[:, :1]) + z[:, 1:2] ** 2  # noqa: E731
    return Dataset(x, f(x), x_test, f(x_test))


@pytest.mark.parametrize("kind, metric", [("regression", "test_mse"),
                                          ("classification", "test_accuracy")])
def test_kernel_regression_reference_matches_sklearn_kernel_ridge(kind, metric):
    from sklearn.kernel_ridge import KernelRidge

    import ntkbench as nb
    from ntkbench.execute import KERNEL_REGRESSION_RIDGE, kernel_regression
    from ntkbench.ntk.analytic import matched_analytic_kernels

    data = _kernel_task(kind)
    model = nb.MLP(in_dim=3, width=64, depth=2, out_dim=data.out_dim, activation="relu")
    weights = nb.initialize(model, "he_normal", seed=0)
    out = kernel_regression(tiny_trial(), model, weights, data, METRICS[metric])
    y = np.eye(3)[data.y_train] if kind == "classification" else data.y_train
    for name in ("ntk", "nngp"):
        K = getattr(matched_analytic_kernels(model, weights, data.x_train), name)
        K_star = getattr(matched_analytic_kernels(model, weights, data.x_test, data.x_train),
                         name)
        ridge = KernelRidge(alpha=KERNEL_REGRESSION_RIDGE * np.linalg.eigvalsh(K)[-1],
                            kernel="precomputed").fit(K, y)
        expected = METRICS[metric].fn(ridge.predict(K_star), data.y_test)
        assert out[f"{name}_test_metric"] == pytest.approx(expected, rel=1e-6)
    # It beats "no learning" on this smooth target.
    better = out["ntk_test_metric"] < mean_predictor(data, METRICS[metric], "mse")["test_metric"]
    assert better if kind == "regression" else out["ntk_test_metric"] > 0.5


def test_kernel_regression_is_skipped_for_a_cnn_with_the_reason():
    import ntkbench as nb
    from ntkbench.execute import kernel_regression

    cnn = nb.CNN(input_shape=(1, 4, 4), channels=(2,), out_dim=1)
    out = kernel_regression(tiny_trial(), cnn, [], _kernel_task("regression"),
                            METRICS["test_mse"])
    assert "convolutional" in out["skipped"]


def test_kernel_regression_survives_round_off_negative_eigenvalues():
    # A bias-free ReLU network on 1-D inputs has a (numerically) rank-2 NTK whose closed form
    # carries ~1e-10 λ_max negative eigenvalues; a jitter relative to the mean diagonal was
    # below them and gave test MSEs in the hundreds. The limit must stay a sane fit.
    import ntkbench as nb
    from ntkbench.execute import kernel_regression

    x = np.linspace(-1, 1, 256)[:, None]
    y = np.sin(3 * x)
    data = Dataset(x[::2], y[::2], x[1::2], y[1::2])
    model = nb.MLP(in_dim=1, width=256, depth=2, out_dim=1, activation="relu", bias=False)
    out = kernel_regression(tiny_trial(), model, nb.initialize(model, "he_normal", seed=0),
                            data, METRICS["test_mse"])
    # Bias-free: f(x) = a·x for x > 0 and b·x for x < 0, the best such fit, not garbage.
    best = sum(np.sum((np.polyfit(xs, ys, 1)[0] * xs - ys) ** 2) for xs, ys in (
        (data.x_test[data.x_test > 0], data.y_test[data.x_test > 0]),
        (data.x_test[data.x_test < 0], data.y_test[data.x_test < 0]))) / len(data.x_test)
    assert out["ntk_test_metric"] < 2 * best + 0.05


def test_the_ntk_limit_column_averages_every_trial_that_computed_it():
    rows = [dict(_trial("t", "x", s, 0.1, 1.0), **{"kernel_regression.ntk_test_metric": v,
                                                   "kernel_regression.nngp_test_metric": 2 * v})
            for s, v in enumerate([0.2, 0.4])]
    rows[1]["status"] = "diverged"  # the limit comes from the initial weights: still counts
    (table,) = leaderboard(pd.DataFrame(rows))
    num = table.numeric.set_index("initializer").loc["x"]
    assert num["ntk_limit_mean"] == pytest.approx(0.3)
    assert num["nngp_limit_mean"] == pytest.approx(0.6)
    assert table.rows[0][table.columns.index("NTK limit")] == "0.300 ± 0.14"
