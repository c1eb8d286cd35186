"""What `ntkbench validate` (and `run`) find before any trial runs: values only the data
reveals, mismatched metric / model / tv_weight, repeated seeds, plugins that crash."""

import pytest

from ntkbench.cli.main import main


def _validate(tmp_path, body, capsys, name="suite.yaml"):
    path = tmp_path / name
    path.write_text(body)
    code = main(["validate", str(path)])
    return code, capsys.readouterr().err, path


def _suite(task_entry, initializers="[he_normal]", seeds="1"):
    return f"name: s\nseeds: {seeds}\ntasks:\n{task_entry}\ninitializers: {initializers}\n"


CASES = [
    ("  - name: oscillatory_1d\n    params: {n_samples: -5}",
     "tasks[0].params.n_samples: data generator 'oscillatory_1d' rejects its parameters: "
     "n_samples must be an integer >= 4, got -5"),
    ("  - name: oscillatory_1d\n    params: {train_fraction: 1.5}",
     "tasks[0].params.train_fraction: data generator 'oscillatory_1d' rejects its "
     "parameters: train_fraction must be strictly between 0 and 1, got 1.5"),
    ("  - name: oscillatory_1d\n    metric: test_accuracy",
     "tasks[0].metric: metric 'test_accuracy' is for classification tasks, but "
     "'oscillatory_1d' is a regression task"),
    ("  - name: digits\n    metric: test_mse",
     "tasks[0].metric: metric 'test_mse' is for regression tasks, but 'digits' is a "
     "classification task"),
    ("  - name: oscillatory_1d\n    model: {kind: cnn}",
     "tasks[0].model.kind: model kind 'cnn' needs image inputs"),
    ("  - name: image_regression\n    params: {image: rokcet}",
     "tasks[0].params.image: data generator 'image_regression' rejects its parameters: "
     "unknown sample image 'rokcet' — did you mean 'rocket'?"),
    ("  - name: image_regression\n    params: {image: missing/photo.png}",
     "tasks[0].params.image: data generator 'image_regression' rejects its parameters: "
     "image file 'missing/photo.png' not found"),
    ("  - name: targets_2d\n    training: {tv_weight: 0.1}",
     "tasks[0].training.tv_weight: training.tv_weight = 0.1 regularises a predicted image, "
     "but this task's data is not an image"),
]


@pytest.mark.parametrize("entry, message", CASES, ids=[c[1].split(":")[0] + str(i)
                                                        for i, c in enumerate(CASES)])
def test_a_problem_only_the_data_reveals_is_reported_at_its_line(tmp_path, capsys, entry,
                                                                  message):
    code, err, path = _validate(tmp_path, _suite(entry), capsys)
    assert code == 2
    assert f"{path}:5: {message}" in err or f"{path}:6: {message}" in err, err
    # the line is the one that sets the field: the line after the entry's name
    line = int(err.split(f"{path}:")[1].split(":")[0])
    assert path.read_text().splitlines()[line - 1].strip().split(":")[0] in (
        "params", "metric", "model", "training")


def test_a_value_set_in_the_task_file_names_the_task_file(tmp_path, capsys):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "wiggle.yaml").write_text(
        "data:\n  generator: oscillatory_1d\n  params: {train_fraction: 1.5}\n"
        "model: {width: 8, depth: 1}\ntraining: {steps: 5}\nmetric: test_mse\n")
    code, err, path = _validate(tmp_path, _suite("  - wiggle"), capsys)
    assert code == 2
    assert (f"{path}:4: tasks[0].name: task 'wiggle' (its task file): data generator "
            "'oscillatory_1d' rejects its parameters: train_fraction must be") in err, err


def test_a_seed_listed_twice_is_an_error(tmp_path, capsys):
    code, err, path = _validate(tmp_path, _suite("  - oscillatory_1d", seeds="[0, 0, 1]"),
                                capsys)
    assert code == 2
    assert f"{path}:2: seeds[1]: seed 0 is listed twice" in err


def test_data_that_is_not_downloaded_is_not_a_problem_of_the_suite(tmp_path, capsys,
                                                                  monkeypatch):
    monkeypatch.setenv("NTKBENCH_DATA", str(tmp_path / "empty-cache"))
    code, err, _ = _validate(tmp_path, _suite("  - name: cifar10"), capsys)
    assert code == 0, err


def test_a_good_suite_still_validates(tmp_path, capsys):
    code, err, _ = _validate(tmp_path, _suite("  - oscillatory_1d\n  - digits\n  - mnist"),
                             capsys)
    assert code == 0, err


SEGV = "import ctypes\n\ndef segv(shape, rng, *, layer):\n    ctypes.string_at(0)\n"
EXITS = "import os\n\ndef leaves(shape, rng, *, layer):\n    os._exit(0)\n"
AT_IMPORT = "import os\nos._exit(3)\n\ndef early(shape, rng, *, layer):\n    pass\n"


@pytest.mark.parametrize("code_text, fn, how", [
    (SEGV, "segv", "killed by SIGSEGV (signal 11: a crash in native code)"),
    (EXITS, "leaves", "exited with code 0"),
    (AT_IMPORT, "early", "exited with code 3"),
])
def test_a_plugin_that_crashes_is_reported_not_fatal(tmp_path, capsys, code_text, fn, how):
    (tmp_path / "plugin.py").write_text(code_text)
    body = _suite("  - oscillatory_1d",
                  initializers=f"\n  - he_normal\n  - {{name: {fn}, source: plugin.py:{fn}}}")
    code, err, path = _validate(tmp_path, body, capsys)
    assert code == 2
    assert (f"{path}:7: initializers[1].source: initializer '{fn}' from 'plugin.py:{fn}' "
            f"ended the process that imported it and called it on a tiny test network "
            f"(3→4→1): {how}; ntkbench does not run it") in err, err
    # ntkbench run checks the suite the same way: nothing runs, the process survives
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "ended the process" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_plugin_that_raises_is_still_rejected_with_its_message(tmp_path, capsys):
    (tmp_path / "plugin.py").write_text(
        "def bad(shape, rng, *, layer):\n    raise RuntimeError('no weights today')\n")
    body = _suite("  - oscillatory_1d",
                  initializers="\n  - {name: bad, source: plugin.py:bad}")
    code, err, _ = _validate(tmp_path, body, capsys)
    assert code == 2 and "RuntimeError: no weights today" in err, err
