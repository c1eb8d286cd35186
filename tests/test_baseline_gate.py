"""The CI gate: a canonical subset of the default suite, trained now, compared with the published
baseline (``baselines/default-cpu``) by ``ntkbench compare``.

It fails on a significant regression of a cell, on a seed that fails now but did not then, and,
where this machine matches the baseline's (same CPU model, thread count and library versions),
on any drift of a same-hash trial's numbers. After a change that bumps
``ntkbench.identity.MEASUREMENT_VERSION`` regenerate the baselines
(``python scripts/publish_baselines.py``).
"""

import json

from conftest import ROOT, run_like_a_worker

from ntkbench.report.compare import compare_runs, render_comparison
from ntkbench.runner import filter_trials
from ntkbench.spec import load_suite

BASELINE = ROOT / "baselines" / "default-cpu"
SUBSET = ["task=oscillatory_1d", "initializer=orthogonal"]  # 3 trials, ~10 s


def test_the_published_baseline_is_complete_and_says_where_it_came_from():
    provenance = json.loads((BASELINE / "PROVENANCE.json").read_text())
    suite = load_suite(ROOT / "benchmarks.yaml")
    hashes = {t.trial_hash for t in suite.trials()}
    recorded = {p.stem for p in (BASELINE / "trials").glob("*.json")}
    assert recorded == hashes, "baselines/default-cpu is not the default suite at this " \
        "measurement version: run python scripts/publish_baselines.py"
    assert provenance["trials"] == {"ok": len(hashes)}
    assert provenance["cpu"] and provenance["threads_per_trial"]
    assert "+dirty" not in provenance["environment"]["ntkbench_commit"]


def test_a_subset_of_the_default_suite_reproduces_the_baseline(tmp_path):
    trials = filter_trials(load_suite(ROOT / "benchmarks.yaml").trials(), SUBSET)
    assert len(trials) == 3
    # In one process started with the thread settings each of the baseline's two workers had
    # (torch and numpy's BLAS: an ill-conditioned kernel-regression solve moves by ~0.5% with
    # the BLAS thread count), so that on a machine like the baseline's the records can be
    # checked for bit-equality.
    (threads,) = json.loads((BASELINE / "PROVENANCE.json").read_text())["threads_per_trial"]
    run_like_a_worker(trials, tmp_path, threads)
    statuses = [json.loads(p.read_text())["status"] for p in tmp_path.glob("trials/*.json")]
    assert statuses == ["ok"] * 3
    # On another CPU the float32 numbers need not be equal, and 1% would flag noise: torch and
    # JAX, which differ only by round-off, differ by a median 4% per trial on this task
    # (results/README.md). A broken initializer or training loop moves it by far more.
    result = compare_runs(tmp_path, BASELINE, tolerance=0.10)
    ours = [c for c in result.cells if c.verdict != "missing in run"]
    assert len(ours) == 1 and ours[0].n_pairs == 3
    assert not result.failed, render_comparison(result, show_all=False)
    # every same-hash trial was either checked for equal numbers or has a stated reason not to be
    assert result.checked + sum(result.not_checked.values()) == 3
