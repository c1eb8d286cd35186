"""Running trials: records, resume, failure isolation, kill-safety, parallel determinism."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import ROOT, run_like_a_worker, tiny_trial

import ntkbench as nb
from ntkbench.config import InitializerConfig, TrainingConfig
from ntkbench.execute import run_trial
from ntkbench.runner import filter_trials, run_trials
from ntkbench.store import RunStore


def test_ok_record_has_every_measurement(backend):
    rec = run_trial(tiny_trial(backend=backend))
    assert rec["status"] == "ok", rec.get("traceback")
    for key in ("final_test_metric", "final_train_loss", "initial_train_loss", "test_mse",
                "ntk_drift", "wall_time_s", "peak_memory_mb", "device_name"):
        assert rec[key] is not None, key
    assert rec["curve_step"][0] == 0 and rec["curve_step"][-1] == 30
    assert rec["ntk_step"] == [0, 5, 30]  # 3 log-spaced NTK checkpoints incl. ends
    assert rec["ntk_drift_curve"][0] == 0.0
    assert set(rec["ntk_init"]) >= {"centered_alignment", "top1_alignment", "top10_alignment",
                                   "top10pct_alignment", "lambda_max", "lambda_min",
                                   "condition_number", "effective_rank"}
    assert rec["final_train_loss"] < rec["initial_train_loss"]
    json.dumps(rec)  # JSON-serialisable


def test_record_reproduces_from_config(backend):
    a, b = (run_trial(tiny_trial(seed=3, backend=backend)),
            run_trial(tiny_trial(seed=3, backend=backend)))
    for key in ("final_test_metric", "curve_train_loss", "ntk_init", "ntk_drift"):
        assert a[key] == b[key], key
    c = run_trial(tiny_trial(seed=4, backend=backend))
    assert c["final_test_metric"] != a["final_test_metric"]


def test_initial_ntk_matches_public_api(backend):
    trial = tiny_trial(training=TrainingConfig(lr=0.1, steps=1, dtype="float64"),
                       backend=backend)
    rec = run_trial(trial)
    data = nb.registry.tasks.get("oscillatory_1d").obj(seed=0, **trial.data.params)
    model = nb.MLP(in_dim=1, width=16, depth=1, activation="tanh")
    K = nb.empirical_ntk(model, nb.initialize(model, "he_normal", seed=0), data.x_train,
                         backend=backend)
    assert rec["ntk_init"]["lambda_max"] == pytest.approx(np.linalg.eigvalsh(K)[-1], rel=1e-9)
    # The stored spectrum: eigenvalues (descending) at the recorded 1-based ranks.
    descending = np.linalg.eigvalsh(K)[::-1]
    ranks = np.asarray(rec["ntk_spectrum_rank"])
    assert ranks[0] == 1 and ranks[-1] == len(K) and np.all(np.diff(ranks) > 0)
    big = descending[ranks - 1] > 1e-10 * descending[0]  # below: round-off, zeroed
    np.testing.assert_allclose(np.asarray(rec["ntk_init_spectrum"])[big],
                               descending[ranks - 1][big], rtol=1e-8)


def _plugin(tmp_path, body):
    path = tmp_path / "plug.py"
    path.write_text("import numpy as np\n\n" + textwrap.dedent(body))
    return path


def test_failure_and_divergence_stay_inside_their_trials(tmp_path, backend):
    _plugin(tmp_path, """
        def flaky(shape, rng, *, layer, fail_seed: int = 1):
            if rng is not None and layer.index == 0 and FAIL[0]:
                pass
            return rng.normal(0, 1 / np.sqrt(shape[1]), shape)
        FAIL = [False]

        def broken(shape, rng, *, layer):
            raise RuntimeError("boom in layer %d" % layer.index)
        """)
    src = InitializerConfig(name="broken", source="plug.py:broken")
    trials = [tiny_trial(seed=0, backend=backend),
              tiny_trial(initializer="broken", base_dir=str(tmp_path),
                         backend=backend).model_copy(update={"initializer": src}),
              tiny_trial(seed=1, training=TrainingConfig(lr=1e3, steps=30), backend=backend)]
    summary = run_trials(trials, tmp_path / "run", jobs=1, progress=False)
    assert summary.statuses == {"ok": 1, "failed": 1, "diverged": 1}
    recs = {r["trial_hash"]: r for r in RunStore(tmp_path / "run").records()}
    failed = recs[trials[1].trial_hash]
    assert failed["status"] == "failed" and "boom in layer 0" in failed["error"]
    assert "RuntimeError" in failed["traceback"]
    diverged = recs[trials[2].trial_hash]
    assert diverged["status"] == "diverged" and "step" in diverged["error"]
    assert recs[trials[0].trial_hash]["status"] == "ok"


def test_resume_skips_recorded_trials_and_retry_failed(tmp_path, backend):
    trials = [tiny_trial(seed=s, backend=backend) for s in range(3)]
    first = run_trials(trials[:2], tmp_path, progress=False)
    assert first.ran == 2
    t0 = time.perf_counter()
    again = run_trials(trials[:2], tmp_path, progress=False)
    assert again.ran == 0 and again.skipped == 2 and time.perf_counter() - t0 < 2
    more = run_trials(trials, tmp_path, progress=False)
    assert more.ran == 1 and more.skipped == 2
    # A failed record is kept on resume and re-run with retry_failed.
    store = RunStore(tmp_path)
    rec = json.loads(store.record_path(trials[0].trial_hash).read_text())
    rec["status"] = "failed"
    store.write(rec)
    assert run_trials(trials, tmp_path, progress=False).ran == 0
    assert run_trials(trials, tmp_path, progress=False, retry_failed=True).ran == 1
    df = nb.load_results(tmp_path)
    assert sorted(df["trial_hash"]) == sorted(t.trial_hash for t in trials)
    assert (df["status"] == "ok").all()
    assert (tmp_path / "results.parquet").is_file()


def test_parallel_run_equals_serial_run(tmp_path, backend):
    trials = [tiny_trial(seed=s, backend=backend) for s in range(2)]
    # with the threads each of two workers gets (XLA's thread count changes JAX's sums)
    run_like_a_worker(trials, tmp_path / "serial")
    run_trials(trials, tmp_path / "parallel", jobs=2, progress=False)
    a = nb.load_results(tmp_path / "serial").set_index("trial_hash").sort_index()
    b = nb.load_results(tmp_path / "parallel").set_index("trial_hash").sort_index()
    assert (a["status"] == "ok").all() and (b["status"] == "ok").all()
    np.testing.assert_array_equal(a["final_test_metric"], b["final_test_metric"])
    np.testing.assert_array_equal(a["ntk_drift"], b["ntk_drift"])


def test_filter_trials():
    trials = [tiny_trial(initializer=i, seed=s) for i in ("he_normal", "orthogonal")
              for s in range(3)]
    assert len(filter_trials(trials, ["initializer=orthogonal"])) == 3
    assert len(filter_trials(trials, ["seed=0,2", "initializer=he_normal"])) == 2
    assert len(filter_trials(trials, ["model.width=16"])) == 6
    assert len(filter_trials(trials, ["training.lr=0.1"])) == 6
    with pytest.raises(ValueError, match="unknown field"):
        filter_trials(trials, ["model.widht=16"])
    with pytest.raises(ValueError, match="key=value"):
        filter_trials(trials, ["seed"])


SUITE = """
name: killtest
seeds: 6
backends: [BACKEND]
device: cpu
tasks:
  - name: oscillatory_1d
    params: {n_samples: 60}
    model: {width: 32, depth: 1}
    training: {steps: 300}
initializers: [he_normal, xavier_normal]
"""


def _records(run_dir):
    return [json.loads(p.read_text()) for p in (run_dir / "trials").glob("*.json")]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_run_resumes_with_every_trial_recorded_once(tmp_path, sig, backend):
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.replace("BACKEND", backend))
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "ntkbench.cli.main", "run", str(suite), "--out", str(run_dir),
           "--no-progress", "--jobs", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # A shell that started pytest in the background may have left SIGINT ignored; a user's
    # terminal never does, so restore the default for the child.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and len(_records(run_dir) if run_dir.exists() else []) < 2:
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    n_before = len(_records(run_dir))
    assert 2 <= n_before < 12, (f"the run should have been stopped mid-way: {n_before} "
                                f"records, exit {proc.returncode}, stderr {err[-2000:]!r}")
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and b"resume" in err and b"Traceback" not in err
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    records = _records(run_dir)
    hashes = [r["trial_hash"] for r in records]
    assert len(hashes) == len(set(hashes)) == 12
    assert all(r["status"] == "ok" for r in records)
    assert not list((run_dir / "trials").glob(".*tmp"))
