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
