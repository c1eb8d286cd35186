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
