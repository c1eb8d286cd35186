"""Regenerate the published baselines (baselines/) and leaderboards (results/) of the default
suite on this machine.

    python scripts/publish_baselines.py            # both backends
    python scripts/publish_baselines.py --only default-cpu

Each baseline is the run directory of ``ntkbench run`` on the default suite (its device stays
``auto``, so the hashes are those a user's ``ntkbench run`` computes), with the records only:
``results.parquet`` and the ``.npz`` side arrays are not published (``.gitignore``). Beside
the records it writes ``PROVENANCE.json``: commit, library versions, CPU, threads, date, the
command and its wall time. Then the leaderboards go to ``results/<name>.md`` and the results
site of both baselines to ``results/site/``.

Run it from a clean checkout (the records name the commit, ``+dirty`` otherwise), after a
change that bumps ``ntkbench.identity.MEASUREMENT_VERSION``, on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINES = {"default-cpu": "torch", "default-jax-cpu": "jax"}


def _ntkbench(*args: str) -> None:
    cmd = [sys.executable, "-m", "ntkbench.cli.main", *args]
    print("$ ntkbench " + " ".join(args), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def publish(name: str, backend: str, jobs: int) -> None:
    from ntkbench.execute import cpu_model, environment
    from ntkbench.store import load_results

    out = ROOT / "baselines" / name
    if out.exists():
        shutil.rmtree(out)
    args = ["run", "--out", str(out.relative_to(ROOT)), "--backend", backend, "--jobs",
            str(jobs), "--no-progress"]
    start = time.perf_counter()
    _ntkbench(*args)
    seconds = time.perf_counter() - start
    for path in (out / "trials").glob("*.npz"):
        path.unlink()  # predicted images: reproducible, binary; not published
    df = load_results(out)
    versions = {c.removeprefix("versions."): sorted(df[c].dropna().astype(str).unique())
                for c in df.columns if c.startswith("versions.")}
    provenance = {
        "command": "ntkbench " + " ".join(args),
        "wall_time_s": round(seconds, 1),
        "date": time.strftime("%Y-%m-%d"),
        "environment": environment(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "threads_per_trial": sorted(int(t) for t in df["threads"].dropna().unique()),
        "versions": versions,
        "trials": {str(k): int(v) for k, v in df["status"].value_counts().items()},
    }
    (out / "PROVENANCE.json").write_text(json.dumps(provenance, indent=1) + "\n")
    _ntkbench("leaderboard", str(out.relative_to(ROOT)), "--format", "md", "--out",
              f"results/{name}.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(BASELINES), action="append")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-site", action="store_true")
    args = parser.parse_args()
    for name in args.only or BASELINES:
        publish(name, BASELINES[name], args.jobs)
    if not args.no_site:
        site = ROOT / "results" / "site"
        if site.exists():
            shutil.rmtree(site)
        _ntkbench("report", *(f"baselines/{n}" for n in BASELINES
                              if (ROOT / "baselines" / n / "trials").is_dir()),
                  "--out", "results/site")


if __name__ == "__main__":
    main()
