"""Sharing records between run directories: --reuse, merge, and compare's verdicts and exit
codes on constructed runs."""

import json
import shutil

import numpy as np
import pytest
from conftest import tiny_trial

from ntkbench.cli.main import main
from ntkbench.config import InitializerConfig
from ntkbench.execute import run_trial
from ntkbench.report import stats
from ntkbench.report.compare import compare_frames, compare_runs
from ntkbench.reuse import Reuse, differences, merge_runs
from ntkbench.runner import run_trials
from ntkbench.store import RunStore


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """A run directory with two initializers × two seeds of the tiny task."""
    run = tmp_path_factory.mktemp("baseline")
    trials = [tiny_trial(init, seed=s) for init in ("he_normal", "lecun_normal") for s in (0, 1)]
    assert run_trials(trials, run, progress=False).ran == 4
    return run


def test_reuse_trains_only_the_new_cells_and_keeps_provenance(baseline, tmp_path):
    trials = [tiny_trial(init, seed=s) for init in ("he_normal", "lecun_normal",
                                                     "xavier_normal") for s in (0, 1)]
    reuse = Reuse([baseline])
    summary = run_trials(trials, tmp_path, progress=False, reuse=reuse)
    assert (summary.reused, summary.ran, summary.skipped) == (4, 2, 0)
    assert dict(reuse.taken) == {str(baseline): 4}
    new = {r["trial_hash"]: r for r in RunStore(tmp_path).records()}
    for old in RunStore(baseline).records():
        copy = new[old["trial_hash"]]
        assert copy["reused_from"] == {"run_dir": str(baseline), "host": old["host"],
                                       "ntkbench_commit": old["ntkbench_commit"]}
        assert copy["final_test_metric"] == old["final_test_metric"]
        assert differences(copy, old, rtol=0) == []
    trained = [r for r in new.values() if "reused_from" not in r]
    assert {r["initializer"] for r in trained} == {"xavier_normal"}
    manifest = json.loads((tmp_path / "run.json").read_text())
    assert manifest["runs"][-1]["reused"] == {str(baseline): 4}
    # a second run has everything: nothing trained, nothing reused
    again = run_trials(trials, tmp_path, progress=False, reuse=Reuse([baseline]))
    assert (again.reused, again.ran, again.skipped) == (0, 0, 6)


def test_reuse_takes_only_ok_records_on_this_machines_device_kind(baseline, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(baseline, base)
    store = RunStore(base)
    he0, he1, lecun0, lecun1 = (tiny_trial(i, seed=s) for i in ("he_normal", "lecun_normal")
                                for s in (0, 1))
    for trial, change in ((he0, {"status": "failed"}), (he1, {"device_resolved": "cuda:0"})):
        path = store.record_path(trial.trial_hash)
        path.write_text(json.dumps(dict(json.loads(path.read_text()), **change)))
    auto = tiny_trial("lecun_normal", seed=0, device="auto")  # 'auto' is cpu here
    path = store.record_path(lecun0.trial_hash)
    record = dict(json.loads(path.read_text()), trial_hash=auto.trial_hash, device="auto")
    store.record_path(auto.trial_hash).write_text(json.dumps(record))
    reuse = Reuse([base])
    assert reuse.find(he0) is None and reuse.find(he1) is None
    assert reuse.find(lecun1) is not None and reuse.find(auto) is not None
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        Reuse([tmp_path / "nowhere"])


SUITE = """
name: reuse-test
seeds: 2
backends: [torch]
device: cpu
tasks:
  - name: oscillatory_1d
    params: {n_samples: 40}
    model: {width: 16, depth: 1}
    training: {steps: 20}
initializers: INITS
"""


def test_run_cli_reuse_trains_only_the_plugin_and_prints_the_full_leaderboard(
        tmp_path, capsys, monkeypatch):
    (tmp_path / "mine.py").write_text(
        "import numpy as np\n\ndef mine(shape, rng, *, layer):\n"
        "    return rng.normal(0, 0.5 / np.sqrt(shape[0]), size=shape)\n")
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.replace("INITS", "[he_normal, lecun_normal]"))
    common = ["--no-progress", "--jobs", "1"]
    assert main(["run", str(suite), "--out", str(tmp_path / "base"), *common]) == 0
    capsys.readouterr()
    out = tmp_path / "run"
    monkeypatch.chdir(tmp_path)  # the plugin path is relative to the working directory
    assert main(["run", str(suite), "--out", str(out), "--reuse", str(tmp_path / "base"),
                 "--add-initializer", "mine.py:mine", "--add-initializer", "he_normal",
                 *common]) == 0
    captured = capsys.readouterr()
    assert "reused 4 recorded trial(s)" in captured.err
    assert "ran 2 trial(s)" in captured.err
    table = [line for line in captured.out.splitlines() if "seeds" not in line]
    for label in ("he_normal", "lecun_normal", "mine"):
        assert any(label in line and "2/2" in line for line in table), captured.out
    trained = [r for r in RunStore(out).records() if "reused_from" not in r]
    assert {r["initializer"] for r in trained} == {"mine"}
    assert main(["run", str(suite), "--out", str(tmp_path / "x"), "--reuse",
                 str(tmp_path / "nowhere"), *common]) == 2
    assert "not a run directory" in capsys.readouterr().err


def _records(run):
    return {r["trial_hash"]: r for r in RunStore(run).records()}


def test_merge_keeps_duplicates_once_and_reports_conflicts(baseline, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(baseline, a)
    shutil.copytree(baseline, b)
    extra = run_trial(tiny_trial("xavier_normal"))
    RunStore(b).write(extra)
    report = merge_runs([a, b], tmp_path / "m")
    assert (report.written, report.duplicates, report.conflicts) == (5, 4, [])
    assert set(_records(tmp_path / "m")) == set(_records(baseline)) | {extra["trial_hash"]}
    # conflicting numbers for one hash: reported, the first input's record kept
    h = sorted(_records(baseline))[0]
    path = RunStore(b).record_path(h)
    changed = dict(json.loads(path.read_text()))
    changed["final_test_metric"] *= 1.5
    path.write_text(json.dumps(changed))
    assert main(["merge", str(a), str(b), "--out", str(tmp_path / "m2")]) == 1
    err = capsys.readouterr().err
    assert f"conflict {h}" in err and "final_test_metric" in err
    kept = _records(tmp_path / "m2")[h]
    assert kept["final_test_metric"] == _records(a)[h]["final_test_metric"]
    assert (tmp_path / "m2" / "results.parquet").is_file()
    # an unavailable record gives way to the other input's outcome, without a conflict
    path.write_text(json.dumps(dict(changed, status="unavailable")))
    order = merge_runs([b, a], tmp_path / "m3")
    assert order.conflicts == [] and _records(tmp_path / "m3")[h]["status"] == "ok"
    with pytest.raises(ValueError, match="also an input"):
        merge_runs([a, b], a)


# ---- compare on constructed runs -------------------------------------------------------


@pytest.fixture(scope="module")
def template():
    return run_trial(tiny_trial())


def _write_run(path, template, values, *, goal="min", status=None, hash_prefix="r",
               **fields):
    """A run directory whose cells are ``{(init, seed): metric}``."""
    store = RunStore(path)
    for (init, seed), value in sorted(values.items()):
        record = dict(template, trial_hash=f"{hash_prefix}{init}{seed}", initializer=init,
                      init_label=init, seed=seed, final_test_metric=value, metric_goal=goal,
                      status=(status or {}).get((init, seed), "ok"), **fields)
        store.write(record)
    return path


BASE = {("a", 0): 1.0, ("a", 1): 1.2, ("a", 2): 0.9,
        ("b", 0): 2.0, ("b", 1): 2.1, ("b", 2): 1.9}


def test_identical_runs_are_unchanged_and_deterministic(tmp_path, template, capsys):
    base = _write_run(tmp_path / "base", template, BASE)
    run = _write_run(tmp_path / "run", template, BASE)
    result = compare_runs(run, base)
    assert {c.verdict for c in result.cells} == {"unchanged"}
    assert result.checked == 6 and not result.drifts and not result.failed
    assert main(["compare", str(run), str(base)]) == 0
    out = capsys.readouterr().out
    assert "2 unchanged (of 2 cells)" in out and "6 same-hash trial(s) checked" in out


def test_a_worse_cell_regresses_with_the_paired_ci(tmp_path, template, capsys):
    base = _write_run(tmp_path / "base", template, BASE)
    worse = {k: v * (1.10 if k[0] == "a" else 1.0) + (0.01 * k[1] if k[0] == "a" else 0)
             for k, v in BASE.items()}
    run = _write_run(tmp_path / "run", template, worse, hash_prefix="new")
    cells = {c.label: c for c in compare_runs(run, base).cells}
    a = cells["a"]
    d = np.array([worse[("a", s)] - BASE[("a", s)] for s in range(3)])
    assert a.verdict == "regressed" and a.n_pairs == 3
    assert a.diff == pytest.approx(d.mean())
    low, high, _ = stats.bootstrap_ci(d)
    assert (a.ci_low, a.ci_high) == pytest.approx((low, high)) and a.ci_low > 0
    assert cells["b"].verdict == "unchanged"
    assert main(["compare", str(run), str(base), "--changed-only"]) == 1
    out = capsys.readouterr().out
    assert "regressed" in out and "\nb " not in out  # unchanged cells left out
    # the other way round it is an improvement, and improvements pass the gate
    assert main(["compare", str(base), str(run)]) == 0
    assert "1 improved" in capsys.readouterr().out


def test_noise_below_the_tolerance_is_unchanged(tmp_path, template):
    base = _write_run(tmp_path / "base", template, BASE)
    noisy = {k: v * (1 + 1e-4 * (1 + k[1])) for k, v in BASE.items()}  # all worse, tiny
    run = _write_run(tmp_path / "run", template, noisy, hash_prefix="new")
    assert {c.verdict for c in compare_runs(run, base).cells} == {"unchanged"}
    loose = compare_runs(run, base, tolerance=0.0)  # significance alone flags it
    assert {c.verdict for c in loose.cells} == {"regressed"}


def test_a_failed_seed_regresses_and_accuracy_goes_the_other_way(tmp_path, template):
    base = _write_run(tmp_path / "base", template, BASE, goal="max")
    run = _write_run(tmp_path / "run", template, {k: v * 0.8 for k, v in BASE.items()},
                     goal="max", status={("b", 1): "diverged"}, hash_prefix="new")
    cells = {c.label: c for c in compare_runs(run, base).cells}
    assert cells["a"].verdict == "regressed" and cells["a"].diff < 0  # accuracy fell
    assert cells["b"].verdict == "regressed" and "failed or diverged in the run" in \
        cells["b"].note


def test_missing_cells_are_reported_and_do_not_fail(tmp_path, template):
    base = _write_run(tmp_path / "base", template, BASE)
    only_a = {k: v for k, v in BASE.items() if k[0] == "a"}
    run = _write_run(tmp_path / "run", template, {**only_a, ("c", 0): 3.0})
    result = compare_runs(run, base)
    assert result.counts == {"unchanged": 1, "missing in run": 1, "missing in baseline": 1}
    assert not result.failed


def test_a_deterministic_trial_that_drifts_fails_the_gate(tmp_path, template, capsys):
    base = _write_run(tmp_path / "base", template, BASE)
    drifted = dict(BASE)
    drifted[("a", 0)] *= 1 + 1e-4  # far below the tolerance: no cell changes
    run = _write_run(tmp_path / "run", template, drifted)
    result = compare_runs(run, base)
    assert result.counts == {"unchanged": 2}
    assert [d.trial_hash for d in result.drifts] == ["ra0"] and result.failed
    assert result.drifts[0].differences[0].field in ("final_test_metric",)
    assert main(["compare", str(run), str(base)]) == 1
    assert "DRIFTED" in capsys.readouterr().out
    # on another thread count the same numbers need not be equal: not checked
    other = _write_run(tmp_path / "other", template, drifted, threads=template["threads"] + 1)
    result = compare_runs(other, base)
    assert not result.drifts and result.not_checked == {"different thread count": 6}
    assert main(["compare", str(other), str(base), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["determinism_not_checked"] == {"different thread count": 6}
    # nor on a CPU of the same model name that dispatches to other instructions
    isa = _write_run(tmp_path / "isa", template, drifted, cpu_flags="0123456789ab")
    assert compare_runs(isa, base).not_checked == {"different CPU instruction-set flags": 6}


def test_compare_frames_pairs_by_seed_only(template):
    import pandas as pd

    base = pd.DataFrame([dict(task="t", init_label="a", seed=s, final_test_metric=v,
                              metric_goal="min", status="ok") for s, v in enumerate([1, 2, 3])])
    run = base.assign(seed=[1, 2, 3], final_test_metric=[2.0, 3.0, 9.0])
    (cell,) = compare_frames(run, base)
    assert cell.n_pairs == 2 and cell.diff == pytest.approx(0.0)
    assert "2 seed(s) in one of the two only" in cell.note


def test_plugin_cells_are_distinguished_from_builtins_by_source(tmp_path):
    plugin = tmp_path / "p.py"
    plugin.write_text("def he_normal(shape, rng, *, layer):\n    return rng.normal(size=shape)\n")
    shadow = tiny_trial(InitializerConfig(name="he_normal", source="p.py:he_normal"),
                        base_dir=str(tmp_path))
    assert shadow.trial_hash != tiny_trial().trial_hash


def test_reuse_copies_side_arrays_or_says_there_are_none(tmp_path):
    trial = tiny_trial("xavier_normal", seed=5)
    record = dict(run_trial(trial), arrays={"predicted": np.arange(6.0).reshape(2, 3)})
    base = RunStore(tmp_path / "base")
    base.write(record)
    run = RunStore(tmp_path / "run")
    assert Reuse([base.run_dir]).copy_into(run, [trial]) == []
    np.testing.assert_array_equal(run.arrays(trial.trial_hash)["predicted"],
                                  record["arrays"]["predicted"])
    base.arrays_path(trial.trial_hash).unlink()  # a published baseline has no .npz
    bare = RunStore(tmp_path / "bare")
    Reuse([base.run_dir]).copy_into(bare, [trial])
    (copy,) = bare.records()
    assert "arrays_file" not in copy and bare.arrays(trial.trial_hash) == {}


def test_initializer_items_from_the_command_line(tmp_path):
    from ntkbench.spec.suite import initializer_item

    assert initializer_item("he_normal") == {"name": "he_normal"}
    assert initializer_item("p/mine.py:fn", cwd=tmp_path) == {
        "name": "fn", "source": f"{tmp_path}/p/mine.py:fn"}
    assert initializer_item("alias=pkg.mod:fn") == {"name": "alias", "source": "pkg.mod:fn"}


def test_a_bad_added_initializer_is_a_command_line_problem(capsys):
    assert main(["run", "--add-initializer", "he_normall", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "<command line>: --add-initializer he_normall: unknown initializer" in err
    assert "did you mean 'he_normal'" in err
    assert main(["run", "--add-initializer", "lecun_normal", "--dry-run"]) == 0
    assert "90 trial(s)" in capsys.readouterr().out  # already in the suite: not doubled
