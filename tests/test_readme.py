"""README is the front door: its commands are the ones CI runs, and its examples run."""

import re

import numpy as np
from conftest import ROOT

README = (ROOT / "README.md").read_text()


def _bash_blocks():
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    test_cmd = ci[-1]
    # .ci/run creates the venv itself; the README line starts with the same venv creation.
    readme_lines = [b.strip() for b in _bash_blocks()]
    assert any(line.endswith(test_cmd) for line in readme_lines), test_cmd
    assert "python -m pytest" in test_cmd


def test_readme_install_command_pins_cpu_torch_and_runs_ntkbench():
    first = _bash_blocks()[0].strip()
    assert "pip install torch==2.13.0 -e ." in first and first.endswith("ntkbench run")


def test_python_api_example_runs():
    block = next(b for b in re.findall(r"```python\n(.*?)```", README, flags=re.S)
                 if "nb.empirical_ntk(model" in b)
    scope: dict = {}
    exec(block, scope)
    K = scope["K"]
    assert K.shape == (64, 64) and np.allclose(K, K.T)
    assert [w["W"].shape for w in scope["weights"]] == [(256, 1), (256, 256), (1, 256)]


def test_data_dependent_initializer_example_runs():
    block = next(b for b in re.findall(r"```python\n(.*?)```", README, flags=re.S)
                 if "data=(x, y)" in b)
    scope: dict = {}
    exec(block, scope)
    weights, pre = scope["weights"], scope["pre"]
    scales = weights.calibration["scales"]
    assert len(scales) == 7 and pre.calibration is None
    for w, p, scale in zip(weights, pre, scales, strict=True):
        np.testing.assert_allclose(w["W"], scale * p["W"], rtol=1e-12)


def test_readme_images_exist():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert images
    for image in images:
        assert (ROOT / image).is_file(), image


def test_report_example_runs(tmp_path, monkeypatch):
    from conftest import tiny_trial

    from ntkbench.config import DataConfig
    from ntkbench.runner import run_trials

    block = next(b for b in re.findall(r"```python\n(.*?)```", README, flags=re.S)
                 if "nb.report.tables" in b)
    run = tmp_path / "results" / "default"
    trials = [tiny_trial(initializer=i, seed=s, task=task,
                         data=DataConfig(generator="oscillatory_1d", params={
                             "frequency": f, "n_samples": 40, "train_fraction": 0.5}))
              for task, f in (("oscillatory_1d", 1.0), ("other", 2.0))
              for i in ("he_normal", "lecun_normal", "orthogonal") for s in range(2)]
    run_trials(trials, run, progress=False)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(block, scope)
    assert set(scope["tables"]) == {"oscillatory_1d", "other"}
    assert (tmp_path / "cd.pdf").read_bytes().startswith(b"%PDF")


def test_add_a_contender_example_reuses_the_baseline(tmp_path, monkeypatch, capsys):
    """The README's --add-initializer --reuse command, on one task of the default suite."""
    import shlex

    from ntkbench.cli.main import main

    (line,) = [b.strip() for b in _bash_blocks() if "--reuse baselines/default-cpu" in b
               and "--add-initializer" in b]
    argv = shlex.split(line)[1:]
    monkeypatch.chdir(ROOT)
    argv += ["--only", "task=oscillatory_1d", "--out", str(tmp_path / "run"), "--no-progress",
             "--jobs", "1"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "reused 18 recorded trial(s)" in captured.err and "ran 3 trial(s)" in captured.err
    assert "scaled_normal" in captured.out and "he_normal" in captured.out
