"""Throughput of small trials: thread policy, executors, backends. Prints Markdown tables.

    python scripts/bench_throughput.py threads      # one trial per fresh process, by env
    python scripts/bench_throughput.py executors    # a suite subset: serial, pool, Dask
    python scripts/bench_throughput.py all

``threads`` runs one trial of the default suite's targets_2d and oscillatory_1d tasks
(he_normal, seed 0) in a fresh Python process per measurement, alternating the settings
(``OMP_WAIT_POLICY`` default or PASSIVE; 1 or all torch threads) round by round, and reports the
median wall time of the trial (its second run in the process: no import or JIT cost).
``executors`` runs the
oscillatory_1d and targets_2d trials of the default suite (2 tasks × 6 initializers × 3 seeds
= 36 trials) with ``ntkbench run`` through each executor and backend, each into a fresh run
directory, and reports trials per second of wall time including start-up. The machine's load
average is printed with every table: on a shared machine, compare ratios within one table.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ONE_TRIAL = r"""
import json, sys, time
from ntkbench.spec import load_suite
from ntkbench.runner import filter_trials
from ntkbench.execute import run_trial
trials = filter_trials(load_suite(sys.argv[1]).trials(),
                       [f"task={sys.argv[2]}", "initializer=he_normal", "seed=0",
                        f"backend={sys.argv[3]}"])
record = run_trial(trials[0])          # warm-up: imports, thread pools, JIT
record = run_trial(trials[0])
print(json.dumps({"wall": record["wall_time_s"], "status": record["status"],
                  "threads": record.get("threads")}))
"""


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min); {os.cpu_count()} CPUs"


def threads(tasks: tuple[str, ...] = ("targets_2d", "oscillatory_1d"), rounds: int = 5) -> None:
    settings = [("default policy, 2 threads", {}),
                ("OMP_WAIT_POLICY=PASSIVE, 2 threads", {"OMP_WAIT_POLICY": "PASSIVE"}),
                ("default policy, 1 thread", {"OMP_NUM_THREADS": "1"}),
                ("OMP_WAIT_POLICY=PASSIVE, 1 thread", {"OMP_WAIT_POLICY": "PASSIVE",
                                                        "OMP_NUM_THREADS": "1"})]
    suite = ROOT / "benchmarks.yaml"
    print(f"\n### One trial (second in its process), torch; {_load()}\n")
    print("| task | setting | wall time per trial (median of "
          f"{rounds}) | vs default |\n|---|---|---|---|")
    for task in tasks:
        walls: dict[str, list[float]] = {name: [] for name, _ in settings}
        for _ in range(rounds):
            for name, env in settings:
                base = {k: v for k, v in os.environ.items()
                        if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
                out = subprocess.run([sys.executable, "-c", ONE_TRIAL, str(suite), task, "torch"],
                                     env={**base, **env}, capture_output=True, text=True,
                                     check=True)
                walls[name].append(json.loads(out.stdout.strip().splitlines()[-1])["wall"])
        ref = statistics.median(walls[settings[0][0]])
        for name, _ in settings:
            m = statistics.median(walls[name])
            print(f"| {task} | {name} | {m:.2f} s | {m / ref:.2f}× |")
    print(f"\n({_load()} at the end)")


def executors(backends: tuple[str, ...] = ("torch", "jax"), rounds: int = 3) -> None:
    runners = [("serial (--jobs 1)", ["--jobs", "1"]),
               ("pool (--jobs 2)", ["--jobs", "2"]),
               ("Dask LocalCluster (--cluster local:2)", ["--cluster", "local:2"])]
    print(f"\n### 36 small trials (oscillatory_1d + targets_2d of the default suite), median of "
          f"{rounds} alternating rounds; {_load()}\n")
    print("| backend | executor | wall time (min–max) | trials per second | vs serial |\n"
          "|---|---|---|---|---|")
    for backend in backends:
        walls: dict[str, list[float]] = {name: [] for name, _ in runners}
        for _ in range(rounds):
            for name, args in runners:
                out = Path(tempfile.mkdtemp()) / "run"
                cmd = [sys.executable, "-m", "ntkbench.cli.main", "run",
                       str(ROOT / "benchmarks.yaml"), "--out", str(out), "--no-progress",
                       "--backend", backend, "--only", "task=oscillatory_1d,targets_2d", *args]
                t0 = time.perf_counter()
                subprocess.run(cmd, capture_output=True, text=True, check=True)
                walls[name].append(time.perf_counter() - t0)
                assert len(list(out.glob("trials/*.json"))) == 36
        ref = statistics.median(walls[runners[0][0]])
        for name, _ in runners:
            m = statistics.median(walls[name])
            print(f"| {backend} | {name} | {m:.1f} s ({min(walls[name]):.1f}–"
                  f"{max(walls[name]):.1f}) | {36 / m:.2f} | {ref / m:.2f}× |")
    print(f"\n({_load()} at the end)")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what in ("threads", "all"):
        # python scripts/bench_throughput.py threads mnist digits: other tasks of the suite
        threads(*([tuple(sys.argv[2:]), 3] if len(sys.argv) > 2 else []))
    if what in ("executors", "all"):
        executors()
