import json

from conftest import ROOT

from ntkbench.cli.main import main

SUITE = """
name: cli-test
seeds: 2
backends: [BACKEND]
device: cpu
tasks:
  - name: oscillatory_1d
    params: {n_samples: 40}
    model: {width: 16, depth: 1}
    training: {steps: 20}
initializers: [he_normal, xavier_normal]
sweep:
  training.lr: [0.01, 0.02]
"""


def _suite(tmp_path, backend="torch"):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.replace("BACKEND", backend))
    return path


def test_dry_run_lists_the_grid_and_trains_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(_suite(tmp_path)), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "8 trial(s)" in text and "training.lr=0.02" in text
    assert not out.exists()


def test_only_filters_and_run_prints_leaderboard(tmp_path, capsys, backend):
    out = tmp_path / "run"
    argv = ["run", str(_suite(tmp_path, backend)), "--out", str(out), "--no-progress",
            "--jobs", "1", "--only", "initializer=xavier_normal", "--only", "seed=1"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    records = [json.loads(p.read_text()) for p in (out / "trials").glob("*.json")]
    assert len(records) == 2
    assert {r["initializer"] for r in records} == {"xavier_normal"}
    assert {r["seed"] for r in records} == {1}
    assert {r["backend"] for r in records} == {backend}
    assert "xavier_normal" in captured.out and "oscillatory_1d" in captured.out
    assert (out / "results.parquet").is_file() and (out / "suite.yaml").is_file()
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["runs"][0]["grid_size"] == 2
    # Second run: nothing to train.
    assert main(argv) == 0
    assert "already recorded" in capsys.readouterr().err


def test_default_out_dir_is_results_slash_suite_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    suite = _suite(tmp_path)
    assert main(["run", str(suite), "--dry-run"]) == 0
    assert "results/cli-test" in capsys.readouterr().out


def test_bad_only_and_bad_jobs_exit_2(tmp_path, capsys):
    suite = str(_suite(tmp_path))
    assert main(["run", suite, "--only", "model.widht=3", "--dry-run"]) == 2
    assert "unknown field" in capsys.readouterr().err
    assert main(["run", suite, "--jobs", "0", "--out", str(tmp_path / "o")]) == 2
    assert main(["run", suite, "--only", "seed=99", "--out", str(tmp_path / "o")]) == 2
    assert "no trial matches" in capsys.readouterr().err


def test_builtin_default_suite_is_found_outside_the_repo(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--dry-run"]) == 0
    assert "suite 'default'" in capsys.readouterr().out
    assert ROOT.joinpath("benchmarks.yaml").is_file()


MISSING_DATA_SUITE = """
name: missing-data
seeds: 1
backends: [torch]
device: cpu
tasks:
  - name: oscillatory_1d
    params: {n_samples: 40}
    model: {width: 8, depth: 1}
    training: {steps: 5}
  - name: mnist
    params: {source: full, n_train: 20, n_test: 20}
    model: {width: 8, depth: 1}
    training: {steps: 5}
  - name: cifar10
    params: {n_train: 20, n_test: 20}
initializers: [he_normal]
"""


def test_a_task_whose_data_is_missing_is_skipped_once_with_the_fetch_command(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NTKBENCH_DATA", str(tmp_path / "empty-cache"))
    suite = tmp_path / "suite.yaml"
    suite.write_text(MISSING_DATA_SUITE)
    out = tmp_path / "run"
    assert main(["run", str(suite), "--out", str(out), "--no-progress", "--jobs", "1"]) == 0
    err = capsys.readouterr().err
    for name in ("mnist", "cifar10"):
        lines = [ln for ln in err.splitlines() if f"ntkbench data download {name}" in ln]
        assert len(lines) == 1, err  # reported once, with the exact command
        assert lines[0].startswith(f"skipping 1 trial(s) of task {name}:")
    records = [json.loads(p.read_text()) for p in (out / "trials").glob("*.json")]
    assert [r["task"] for r in records] == ["oscillatory_1d"]  # the rest of the suite ran


def test_strict_fails_before_running_anything_when_data_is_missing(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.setenv("NTKBENCH_DATA", str(tmp_path / "empty-cache"))
    suite = tmp_path / "suite.yaml"
    suite.write_text(MISSING_DATA_SUITE)
    out = tmp_path / "run"
    argv = ["run", str(suite), "--out", str(out), "--no-progress", "--jobs", "1", "--strict"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot run 1 trial(s) of task mnist" in err and "nothing was run (--strict)" in err
    assert not (out / "trials").exists() or not list((out / "trials").glob("*.json"))


def test_the_full_suite_is_found_by_name_and_names_every_task_family(tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.chdir(tmp_path)  # no suites/ here: the name resolves to the shipped suite
    assert main(["run", "full", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    tasks = {line.split()[1] for line in lines[:-1]}  # "<hash>  <task> | <init> | ..."
    assert tasks == {"oscillatory_1d", "targets_2d", "image_regression", "digits", "mnist",
                     "mnist_binary", "cifar10"}
    assert lines[-1].startswith("960 trial(s) in suite 'full'")


def test_dry_run_says_which_trials_a_run_would_skip_for_missing_data(tmp_path, monkeypatch,
                                                                      capsys):
    monkeypatch.setenv("NTKBENCH_DATA", str(tmp_path / "empty-cache"))
    suite = tmp_path / "suite.yaml"
    suite.write_text(MISSING_DATA_SUITE)
    assert main(["run", str(suite), "--out", str(tmp_path / "run"), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "would skip 1 trial(s) of task cifar10:" in err
    assert "ntkbench data download mnist" in err


def test_recorded_trials_do_not_need_their_data_again(tmp_path, monkeypatch, capsys):
    import shutil

    import numpy as np
    from test_data_mnist import FILES, fake_split, idx_bytes, write

    # Run with a (tiny, real-format) MNIST in the cache, then delete it: the recorded mnist
    # trial needs nothing, so even --strict succeeds and only cifar10 is reported missing.
    cache = tmp_path / "cache"
    (cache / "mnist").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, array in zip(FILES, (*fake_split(rng, 60), *fake_split(rng, 30)), strict=True):
        write(cache / "mnist" / name, idx_bytes(array))
    monkeypatch.setenv("NTKBENCH_DATA", str(cache))
    suite = tmp_path / "suite.yaml"
    suite.write_text(MISSING_DATA_SUITE.replace("  - name: cifar10\n    params: {n_train: 20, "
                                                "n_test: 20}\n", ""))
    out = tmp_path / "run"
    base = ["run", str(suite), "--out", str(out), "--no-progress", "--jobs", "1"]
    assert main(base) == 0
    records = [json.loads(p.read_text()) for p in (out / "trials").glob("*.json")]
    assert sorted(r["task"] for r in records) == ["mnist", "oscillatory_1d"]
    shutil.rmtree(cache / "mnist")
    capsys.readouterr()
    assert main([*base, "--strict"]) == 0
    captured = capsys.readouterr()
    assert "already recorded" in captured.err and "not downloaded" not in captured.err
    assert "mnist" in captured.out  # its recorded result is still on the leaderboard
