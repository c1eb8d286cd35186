"""The Dask executor on a LocalCluster of processes: same records as a local run, a worker
killed mid-trial, the client killed mid-run and run again."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, run_like_a_worker, tiny_trial

pytest.importorskip("distributed")

from ntkbench.dask_executor import DaskExecutor, parse_cluster  # noqa: E402
from ntkbench.reuse import measured  # noqa: E402
from ntkbench.runner import run_trials  # noqa: E402
from ntkbench.spec import load_suite  # noqa: E402


def _records(run_dir):
    return {r["trial_hash"]: r for r in
            (json.loads(p.read_text()) for p in (run_dir / "trials").glob("*.json"))}


def test_a_local_cluster_gives_the_records_of_a_local_run(tmp_path):
    trials = [tiny_trial(seed=s, initializer=i) for s in range(2)
              for i in ("he_normal", "orthogonal")]
    summary = run_trials(trials, tmp_path / "dask", progress=False,
                         executor=DaskExecutor(local_workers=2))
    assert dict(summary.statuses) == {"ok": 4}
    run_like_a_worker(trials, tmp_path / "serial")  # the threads each Dask worker has
    dask, serial = _records(tmp_path / "dask"), _records(tmp_path / "serial")
    assert set(dask) == set(serial) == {t.trial_hash for t in trials}
    for h in dask:
        assert measured(dask[h]) == measured(serial[h]), h


def test_parse_cluster():
    assert parse_cluster("local:3") == 3
    for bad in ("local", "local:0", "remote:2", "local:x"):
        with pytest.raises(ValueError, match="local:N"):
            parse_cluster(bad)


PLUGIN = """
import os, signal
from pathlib import Path
import numpy as np

def flaky(shape, rng, *, layer):  # kills its worker the first time it meets a real layer
    marker = Path(__file__).with_name("killed-once")
    if layer.fan_in > 8 and not marker.exists():
        marker.write_text("x")
        os.kill(os.getpid(), signal.SIGKILL)
    return rng.standard_normal(shape) / np.sqrt(layer.fan_in)

def killer(shape, rng, *, layer):  # kills every worker that runs it
    if layer.fan_in > 8:
        os.kill(os.getpid(), signal.SIGKILL)
    return rng.standard_normal(shape) / np.sqrt(layer.fan_in)
"""

SUITE = """
name: dask
seeds: {seeds}
backends: [torch]
device: cpu
tasks:
  - name: oscillatory_1d
    params: {{n_samples: 40}}
    model: {{width: 16, depth: 1}}
    training: {{steps: {steps}}}
initializers: {inits}
"""


def test_a_worker_killed_mid_trial_costs_only_that_trial(tmp_path):
    (tmp_path / "plugin.py").write_text(PLUGIN)
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.format(seeds=1, steps=20, inits="[he_normal, "
                                  "{name: flaky, source: plugin.py:flaky}, "
                                  "{name: killer, source: plugin.py:killer}]"))
    trials = load_suite(suite).trials()
    summary = run_trials(trials, tmp_path / "run", progress=False,
                         executor=DaskExecutor(local_workers=2, retries=1))
    records = {r["init_label"]: r for r in _records(tmp_path / "run").values()}
    assert records["he_normal"]["status"] == "ok"
    assert records["flaky"]["status"] == "ok"  # its worker died once: run again elsewhere
    assert (tmp_path / "killed-once").exists()
    assert records["killer"]["status"] == "failed" and records["killer"]["worker_crashed"]
    assert "Dask workers running this trial died" in records["killer"]["error"]
    assert len(summary.crashed) == 1


def test_a_killed_client_then_a_rerun_records_every_trial_once(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.format(seeds=8, steps=1500, inits="[he_normal, xavier_normal]"))
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "ntkbench.cli.main", "run", str(suite), "--out", str(run_dir),
           "--no-progress", "--cluster", "local:2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(run_dir.glob("trials/*.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    n_before = len(list(run_dir.glob("trials/*.json")))
    assert 2 <= n_before < 16
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{n_before} already recorded" in done.stderr
    records = _records(run_dir)
    assert len(records) == 16 and all(r["status"] == "ok" for r in records.values())
    assert not list(run_dir.glob("trials/.*tmp"))


def test_a_missing_scheduler_is_a_one_line_error(tmp_path, capsys):
    from ntkbench.cli.main import main

    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.format(seeds=1, steps=5, inits="[he_normal]"))
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        code = main(["run", str(suite), "--out", str(tmp_path / "run"), "--no-progress",
                     "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err, err
    assert not (tmp_path / "run").exists()
