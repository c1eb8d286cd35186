"""The example plugins install and run the way README says."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from ntkbench.models import LayerInfo
from ntkbench.registry import load_source


def _env(*paths):
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), str(ROOT)])}


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target),
                    str(ROOT / "examples" / "plugin")], check=True, capture_output=True)
    return target


def test_entry_point_plugin_is_listed_and_runs(installed_plugin, tmp_path, ntkbench_cli):
    env = _env(installed_plugin)
    listing = subprocess.run([*ntkbench_cli, "list", "initializers"], env=env,
                             capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in listing.splitlines() if ln.startswith("spectral_normal"))
    assert "sigma: float = 1.0" in line and "entry point ntkbench-spectral" in line
    out = tmp_path / "run"
    done = subprocess.run([*ntkbench_cli, "run", str(ROOT / "examples/plugin/suite.yaml"),
                           "--out", str(out), "--only", "seed=0", "--no-progress"],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = [json.loads(p.read_text()) for p in (out / "trials").glob("*.json")]
    by_init = {r["initializer"]: r for r in records}
    assert set(by_init) == {"he_normal", "spectral_normal"}
    assert by_init["spectral_normal"]["status"] == "ok"
    assert by_init["spectral_normal"]["initializer_origin"] == "entry point ntkbench-spectral"
    assert "spectral_normal(sigma=2.0)" in done.stdout  # on the printed leaderboard


def test_spectral_normal_has_the_promised_spectral_norm():
    sys.path.insert(0, str(ROOT / "examples" / "plugin"))
    try:
        from ntkbench_spectral import spectral_normal
    finally:
        sys.path.pop(0)
    layer = LayerInfo(index=0, depth=2, fan_in=30, fan_out=50, activation="relu")
    W = spectral_normal((50, 30), np.random.default_rng(0), layer=layer, sigma=2.5)
    assert np.linalg.norm(W, 2) == pytest.approx(2.5, rel=1e-12)
    with pytest.raises(ValueError, match="sigma"):
        spectral_normal((5, 3), np.random.default_rng(0), layer=layer, sigma=0)


def test_file_plugin_suite_sweeps_the_plugin_parameter(tmp_path, ntkbench_cli):
    suite = ROOT / "examples" / "file_plugin_suite.yaml"
    dry = subprocess.run([*ntkbench_cli, "run", str(suite), "--dry-run"], env=_env(),
                         capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert "4 trial(s)" in dry and "scaled_normal(gain=2.0)" in dry
    fn = load_source("plugins/scaled_normal.py:scaled_normal", base_dir=suite.parent)
    layer = LayerInfo(index=1, depth=3, fan_in=400, fan_out=300, activation="relu")
    W = fn((300, 400), np.random.default_rng(1), layer=layer, gain=2.0)
    # std of 1.2e5 normal draws: relative standard error 1/sqrt(2N) ≈ 0.002; allow 5 SE.
    assert W.std() == pytest.approx(2.0 / 20.0, rel=5 / np.sqrt(2 * W.size))
