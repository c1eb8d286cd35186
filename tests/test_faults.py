"""Faults a run must survive: dead workers, a killed or terminated parent, failed trials."""

import ctypes
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT

from ntkbench.executors import ProcessExecutor, RemoteError, WorkerDied, describe_exit


def _work(item):
    """What the workers run: ``("kill" | "segv" | "raise" | "once:<marker>" | n)``."""
    if item == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if item == "segv":
        ctypes.string_at(0)
    if item == "raise":
        raise SystemExit(3)
    if isinstance(item, str) and item.startswith("once:"):
        marker = Path(item[5:])
        if not marker.exists():
            marker.write_text("killed once")
            os.kill(os.getpid(), signal.SIGKILL)
        return "survived"
    return item * 2


def test_a_dead_worker_costs_only_its_item(tmp_path):
    ex = ProcessExecutor(2)
    items = [1, "kill", 2, f"once:{tmp_path / 'm'}", "segv", 3, "raise", 4]
    try:
        results = dict(ex.imap_unordered(_work, items))
    finally:
        ex.shutdown(cancel=False)
    assert {k: results[k] for k in (1, 2, 3, 4)} == {1: 2, 2: 4, 3: 6, 4: 8}
    assert results[f"once:{tmp_path / 'm'}"] == "survived"  # retried on a fresh worker
    assert isinstance(results["kill"], WorkerDied)
    assert "SIGKILL" in str(results["kill"]) and "2 tries" in str(results["kill"])
    assert isinstance(results["segv"], WorkerDied) and "SIGSEGV" in str(results["segv"])
    # an exception that escapes the function comes back as its traceback; the worker goes on
    assert isinstance(results["raise"], RemoteError) and "SystemExit" in str(results["raise"])
    # kill twice, segv twice, once once
    assert sorted(ex.deaths) == sorted([describe_exit(-9)] * 3 + [describe_exit(-11)] * 2)
    assert not ex._workers


def test_a_worker_that_dies_while_idle_is_replaced_without_losing_a_trial():
    ex = ProcessExecutor(2)
    gen = ex.imap_unordered(_work, [1, 2, 3, 4, 5])
    try:
        first = [next(gen)]
        idle = next(w for w in ex._workers if not w.busy)  # the one that just returned
        os.kill(idle.proc.pid, signal.SIGKILL)
        idle.proc.join(10)
        results = dict(first + list(gen))
    finally:
        ex.shutdown(cancel=False)
    assert results == {1: 2, 2: 4, 3: 6, 4: 8, 5: 10}
    assert ex.deaths == []  # it held no trial


def test_describe_exit():
    assert describe_exit(-9).startswith("killed by SIGKILL (signal 9")
    assert describe_exit(-11) == "killed by SIGSEGV (signal 11: a crash in native code)"
    assert describe_exit(2) == "exited with code 2"


# --- the command line ------------------------------------------------------------------------

PLUGIN = """
import os, signal, time
import numpy as np

def {name}(shape, rng, *, layer):
    # the spec's check calls initializers on a tiny layer (fan_in <= 4): survive that
    if layer.fan_in > 8:
        {action}
    return rng.standard_normal(shape) / np.sqrt(layer.fan_in)
"""

SUITE = """
name: faults
seeds: {seeds}
backends: [torch]
device: cpu
tasks:
  - name: oscillatory_1d
    params: {{n_samples: 40}}
    model: {{width: 16, depth: 1}}
    training: {{steps: {steps}}}
initializers: [he_normal, {{name: killer, source: plugin.py:killer}}]
"""


KILL = "os.kill(os.getpid(), signal.SIGKILL)"
HANG = "time.sleep(300)"  # a trial that outlasts the test: only the watchdog ends its worker


def _suite(tmp_path, seeds=2, steps=20, action=KILL):
    (tmp_path / "plugin.py").write_text(PLUGIN.format(name="killer", action=action))
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.format(seeds=seeds, steps=steps))
    return suite


def _cli(*args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ntkbench.cli.main", *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=300, **kw)


def _records(run_dir):
    return [json.loads(p.read_text()) for p in sorted((run_dir / "trials").glob("*.json"))]


def test_a_trial_that_kills_its_worker_is_recorded_failed_and_the_run_goes_on(tmp_path):
    suite = _suite(tmp_path)
    run_dir = tmp_path / "run"
    done = _cli("run", suite, "--out", run_dir, "--jobs", "2", "--no-progress")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "BrokenProcessPool" not in done.stderr
    assert "leaked" not in done.stderr
    by_init = {}
    for r in _records(run_dir):
        by_init.setdefault(r["init_label"], []).append(r)
    assert [r["status"] for r in by_init["he_normal"]] == ["ok", "ok"]
    for r in by_init["killer"]:
        assert r["status"] == "failed" and r["worker_crashed"]
        assert "SIGKILL" in r["error"] and "2 tries" in r["error"]
    assert "2 trial(s) of this suite failed" in done.stderr
    assert "worker crashed, recorded as failed" in done.stderr
    # the failures are results of this suite now: a plain re-run trains nothing, still exit 1,
    # and --allow-failures turns the exit code off
    again = _cli("run", suite, "--out", run_dir, "--jobs", "2", "--no-progress",
                 "--allow-failures")
    assert again.returncode == 0 and "nothing to run" in again.stderr


def test_a_run_whose_trials_all_fail_exits_1(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.format(seeds=1, steps=5).replace(
        ", {name: killer, source: plugin.py:killer}", "").replace("device: cpu",
                                                                   "device: cuda:7"))
    done = _cli("run", suite, "--out", tmp_path / "run", "--jobs", "1", "--no-progress")
    assert done.returncode == 1, done.stderr
    assert "1 trial(s) could not run on this machine" in done.stderr
    ok = _cli("run", suite, "--out", tmp_path / "run", "--jobs", "1", "--no-progress",
              "--allow-failures")
    assert ok.returncode == 0, ok.stderr


def _children(pid):
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start(suite, run_dir, jobs):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "ntkbench.cli.main", "run", str(suite), "--out", str(run_dir),
           "--no-progress", "--jobs", str(jobs)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                        signal.SIG_DFL))


def _wait_for_records(run_dir, n, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if run_dir.exists() and len(list((run_dir / "trials").glob("*.json"))) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} records after {timeout} s")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_workers_exit_when_the_run_is_killed(tmp_path):
    suite = _suite(tmp_path, seeds=2, action=HANG)
    run_dir = tmp_path / "run"
    proc = _start(suite, run_dir, jobs=2)
    # both workers end up inside the hanging plugin, with trials queued behind them
    _wait_for_records(run_dir, 2)
    time.sleep(2)
    workers = _children(proc.pid)  # two workers and multiprocessing's resource tracker
    assert len(workers) >= 2, workers
    proc.kill()  # SIGKILL: the run has no chance to stop its workers
    proc.communicate(timeout=30)
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "workers outlived the run by 10 s"


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_stops_a_parallel_run_as_ctrl_c_does(tmp_path, sig, code):
    suite = _suite(tmp_path, seeds=6, steps=300, action="pass")
    run_dir = tmp_path / "run"
    proc = _start(suite, run_dir, jobs=2)
    _wait_for_records(run_dir, 1)
    workers = _children(proc.pid)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "resume" in err and "Traceback" not in err and "leaked" not in err, err
    assert not any(_alive(w) for w in workers)
    n = len(_records(run_dir))
    assert 1 <= n < 12
    assert not list((run_dir / "trials").glob(".*tmp"))


def test_plugin_text_is_valid():
    # the plugin above must be a valid initializer whatever the condition
    for action in (KILL, HANG, "pass"):
        compile(textwrap.dedent(PLUGIN.format(name="k", action=action)), "plugin.py", "exec")


# --- the run directory -----------------------------------------------------------------------

def _run_in_process(suite, run_dir, *extra):
    from ntkbench.cli.main import main

    return main(["run", str(suite), "--out", str(run_dir), "--jobs", "1", "--no-progress",
                 *map(str, extra)])


def _plain_suite(tmp_path, seeds=2):
    suite = tmp_path / "plain.yaml"
    suite.write_text(SUITE.format(seeds=seeds, steps=10).replace(
        ", {name: killer, source: plugin.py:killer}", ""))
    return suite


def test_a_damaged_record_is_set_aside_and_its_trial_run_again(tmp_path, capsys):
    suite, run_dir = _plain_suite(tmp_path), tmp_path / "run"
    assert _run_in_process(suite, run_dir) == 0
    records = sorted((run_dir / "trials").glob("*.json"))
    assert len(records) == 2
    good = records[0].read_text()
    records[0].write_text(good[: len(good) // 2])  # truncated, as a full disk or a crash leaves
    capsys.readouterr()
    # the leaderboard reads the rest and names the damaged file
    from ntkbench.cli.main import main

    assert main(["leaderboard", str(run_dir), "--format", "text"]) == 0
    out = capsys.readouterr()
    assert "skipped 1 damaged record file(s)" in out.err and records[0].name in out.err
    assert "he_normal" in out.out
    # the next run sets it aside (keeping its bytes) and re-runs only that trial
    assert _run_in_process(suite, run_dir) == 0
    err = capsys.readouterr().err
    aside = run_dir / "trials" / ".corrupt" / records[0].name
    assert aside.read_text() == good[: len(good) // 2]
    assert f"set aside as {aside}" in err and "ran 1 trial(s)" in err
    assert json.loads(records[0].read_text())["status"] == "ok"
    # a second damage of the same record does not overwrite the first one set aside
    records[0].write_text("{")
    assert _run_in_process(suite, run_dir) == 0
    assert (aside.parent / f"{records[0].name}.1").read_text() == "{"


def test_a_directory_in_place_of_a_record_is_set_aside(tmp_path, capsys):
    suite, run_dir = _plain_suite(tmp_path, seeds=1), tmp_path / "run"
    assert _run_in_process(suite, run_dir) == 0
    record = next((run_dir / "trials").glob("*.json"))
    record.unlink()
    record.mkdir()
    assert _run_in_process(suite, run_dir) == 0
    assert "a directory, not a file" in capsys.readouterr().err
    assert record.is_file() and (run_dir / "trials" / ".corrupt" / record.name).is_dir()


def test_out_naming_a_file_is_a_one_line_error(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert _run_in_process(_plain_suite(tmp_path), target) == 2
    err = capsys.readouterr().err
    assert "is an existing file, not a directory" in err and "Traceback" not in err
    assert target.read_text() == "mine"


def test_a_second_run_on_the_same_directory_is_refused(tmp_path, capsys):
    from ntkbench.store import locked

    suite, run_dir = _plain_suite(tmp_path, seeds=1), tmp_path / "run"
    run_dir.mkdir()
    with locked(run_dir):
        assert _run_in_process(suite, run_dir) == 2
        err = capsys.readouterr().err
        assert "is in use by another ntkbench run" in err and f"pid {os.getpid()}" in err
        assert not (run_dir / "trials").exists()
    assert not (run_dir / ".lock").exists()  # released and removed
    assert _run_in_process(suite, run_dir) == 0


def test_a_killed_holder_leaves_the_directory_unlocked(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    code = ("import sys, time; from pathlib import Path; from ntkbench.store import locked\n"
            "with locked(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True)
    assert proc.stdout.readline().strip() == "held"
    from ntkbench.store import RunDirectoryError, locked

    with pytest.raises(RunDirectoryError, match=f"pid {proc.pid}"):
        with locked(run_dir):
            pass
    proc.kill()
    proc.wait()
    with locked(run_dir):  # the kernel released the dead holder's lock
        pass


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    import errno

    import ntkbench.store as store

    suite, run_dir = _plain_suite(tmp_path), tmp_path / "run"

    def full(df, path):
        path.write_bytes(b"PAR1 partial")  # what a write cut short leaves
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "_to_parquet", full)
    assert _run_in_process(suite, run_dir) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert "2 trial record(s)" in err and "are kept" in err
    assert sorted(p.name for p in run_dir.iterdir()) == ["run.json", "suite.yaml", "trials"]
    assert len(list((run_dir / "trials").glob("*.json"))) == 2
    # a record that cannot be written: the same one line, no temporary file
    real = store.atomic_write_text

    def full_record(path, text):
        if path.suffix == ".json" and path.parent.name == "trials":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, text)

    monkeypatch.setattr(store, "atomic_write_text", full_record)
    for p in (run_dir / "trials").glob("*.json"):
        p.unlink()
    assert _run_in_process(suite, run_dir) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "No space left on device" in err and "Traceback" not in err
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


def test_a_temporary_file_left_by_a_killed_writer_is_removed_by_the_next_run(tmp_path):
    suite, run_dir = _plain_suite(tmp_path, seeds=1), tmp_path / "run"
    assert _run_in_process(suite, run_dir) == 0
    left = [run_dir / "trials" / ".0123456789abcdef.json.x1y2.tmp",
            run_dir / "trials" / ".0123456789abcdef.k3.tmp.npz",
            run_dir / ".results.parquet.z9.tmp"]
    for path in left:
        path.write_text("partial")  # what a SIGKILL between write and rename leaves
    assert _run_in_process(suite, run_dir) == 0
    assert not any(p.exists() for p in left)
    assert len(list((run_dir / "trials").glob("*.json"))) == 1


def test_dask_options_without_dask_installed_say_what_to_install(tmp_path, capsys,
                                                                   monkeypatch):
    import builtins

    real = builtins.__import__

    def without_dask(name, *args, **kwargs):
        if name == "dask" or name.startswith(("dask.", "distributed")):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_dask)
    assert _run_in_process(_plain_suite(tmp_path, seeds=1), tmp_path / "run",
                           "--cluster", "local:2") == 2
    err = capsys.readouterr().err
    assert 'pip install "ntkbench[dask]"' in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
