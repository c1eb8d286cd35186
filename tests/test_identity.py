"""Trial identity: what the hash covers, plugin-source digests, environment failures, and the
record schema (migration on read)."""

import json
import os
import sys

import pytest
from conftest import tiny_trial

import ntkbench
from ntkbench import identity, registry
from ntkbench.backends import BackendNotInstalled
from ntkbench.config import InitializerConfig, MeasureConfig
from ntkbench.execute import run_trial
from ntkbench.runner import run_trials
from ntkbench.store import SCHEMA_VERSION, RecordError, RunStore, load_results, read_record

# The hash of tiny_trial() at MEASUREMENT_VERSION 1. When this test fails, a change altered
# what identifies a trial: bump identity.MEASUREMENT_VERSION if what a trial computes changed
# (and update this value), or list a new configuration field in identity.NEUTRAL_DEFAULTS with
# the value that reproduces the old computation. Never update it silently.
PINNED = {1: "b9495ff31d46fcdf"}


def test_hash_of_a_fixed_trial_is_pinned():
    assert tiny_trial().trial_hash == PINNED[identity.MEASUREMENT_VERSION]


def test_a_release_without_a_measurement_change_keeps_every_hash(monkeypatch):
    before = [tiny_trial(seed=s).trial_hash for s in range(3)]
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("ntkbench") and hasattr(module,
                                                                              "__version__"):
            monkeypatch.setattr(module, "__version__", "99.0.0")
    assert ntkbench.__version__ == "99.0.0"
    assert [tiny_trial(seed=s).trial_hash for s in range(3)] == before


def test_a_measurement_change_changes_every_hash(monkeypatch):
    before = {tiny_trial(seed=s).trial_hash for s in range(3)}
    monkeypatch.setattr(identity, "MEASUREMENT_VERSION", identity.MEASUREMENT_VERSION + 1)
    after = {tiny_trial(seed=s).trial_hash for s in range(3)}
    assert len(after) == 3 and not before & after


def test_settings_change_the_hash_and_labels_do_not(tmp_path):
    base = tiny_trial().trial_hash
    assert tiny_trial(suite="renamed", sweep={"model.width": 16},
                      base_dir=str(tmp_path)).trial_hash == base
    changed = [tiny_trial(seed=1), tiny_trial(backend="jax"), tiny_trial(device="cuda"),
               tiny_trial(measure=MeasureConfig(checkpoints=6, ntk_checkpoints=3)),
               tiny_trial(initializer="lecun_normal"),
               tiny_trial(initializer=InitializerConfig(name="he_normal", params={"gain": 2}))]
    hashes = {t.trial_hash for t in changed}
    assert len(hashes) == len(changed) and base not in hashes


def test_a_field_at_its_neutral_default_is_left_out(monkeypatch):
    monkeypatch.setattr(identity, "NEUTRAL_DEFAULTS", {"measure.checkpoints": 5})
    assert "checkpoints" not in identity.identity(tiny_trial())["measure"]
    other = tiny_trial(measure=MeasureConfig(checkpoints=6, ntk_checkpoints=3))
    assert identity.identity(other)["measure"]["checkpoints"] == 6


PLUGIN = """import numpy as np

def scaled(shape, rng, *, layer, scale: float = 1.0):
    return rng.normal(0.0, {std} * scale / np.sqrt(shape[0]), size=shape)
"""


def _plugin_trial(tmp_path, **overrides):
    return tiny_trial(initializer=InitializerConfig(name="scaled", source="plug.py:scaled"),
                      base_dir=str(tmp_path), **overrides)


def test_editing_a_file_plugin_changes_its_hash_and_reverting_restores_it(tmp_path):
    plugin = tmp_path / "plug.py"
    plugin.write_text(PLUGIN.format(std="1.0"))
    first = _plugin_trial(tmp_path).trial_hash
    assert first != tiny_trial().trial_hash
    plugin.write_text(PLUGIN.format(std="2.0"))
    os.utime(plugin, ns=(1, 10**18))  # a distinct mtime even on a coarse clock
    edited = _plugin_trial(tmp_path).trial_hash
    plugin.write_text(PLUGIN.format(std="1.0"))
    os.utime(plugin, ns=(1, 2 * 10**18))
    assert edited != first and _plugin_trial(tmp_path).trial_hash == first
    # the path only says where to find the file: the same bytes elsewhere, under another
    # name or given as an absolute path, are the same plugin
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    (elsewhere / "plug.py").write_text(PLUGIN.format(std="1.0"))
    (elsewhere / "renamed.py").write_text(PLUGIN.format(std="1.0"))
    assert _plugin_trial(elsewhere).trial_hash == first
    for source in ("renamed.py:scaled", f"{elsewhere / 'plug.py'}:scaled"):
        init = InitializerConfig(name="scaled", source=source)
        assert tiny_trial(init, base_dir=str(elsewhere)).trial_hash == first
    # ... but another function of the file is another initializer
    other = InitializerConfig(name="scaled", source="plug.py:other")
    assert tiny_trial(other, base_dir=str(tmp_path)).trial_hash != first


def test_module_and_registered_plugins_are_digested_and_builtins_are_not(tmp_path,
                                                                         monkeypatch):
    module = tmp_path / "ntkb_test_plugin_mod.py"
    module.write_text(PLUGIN.format(std="1.0"))
    monkeypatch.syspath_prepend(str(tmp_path))
    init = InitializerConfig(name="scaled", source="ntkb_test_plugin_mod:scaled")
    assert identity.plugin_digest(init, None) == identity.file_digest(module)
    fn = registry.load_source("ntkb_test_plugin_mod:scaled")
    monkeypatch.setitem(registry.initializers._entries, "scaled_in_code",
                        registry.initializers.make_entry("scaled_in_code", fn,
                                                         "registered in code"))
    named = InitializerConfig(name="scaled_in_code")
    assert identity.plugin_digest(named, None) == identity.file_digest(module)
    assert identity.plugin_digest(InitializerConfig(name="he_normal"), None) is None
    assert "source_digest" not in identity.identity(tiny_trial())["initializer"]


def test_an_edited_plugin_retrains_its_cells(tmp_path):
    plugin = tmp_path / "plug.py"
    plugin.write_text(PLUGIN.format(std="1.0"))
    run = tmp_path / "run"
    trials = [_plugin_trial(tmp_path), tiny_trial()]
    assert run_trials(trials, run, progress=False).ran == 2
    assert run_trials(trials, run, progress=False).ran == 0
    plugin.write_text(PLUGIN.format(std="0.5"))
    os.utime(plugin, ns=(1, 10**18))
    summary = run_trials([_plugin_trial(tmp_path), tiny_trial()], run, progress=False)
    assert (summary.ran, summary.skipped) == (1, 1)
    df = load_results(run)  # the edited plugin's record supersedes the first one
    assert len(df) == 2 and df.attrs["superseded"] == {"osc": 1}
    digests = set(load_results(run, superseded=True)["initializer_source_digest"].dropna())
    assert len(digests) == 2 and identity.file_digest(plugin) in digests


def _missing_backend():
    raise BackendNotInstalled("the fake backend needs fakelib: pip install fakelib")


def test_a_missing_backend_or_device_is_not_an_outcome(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.backends._entries, "fake",
                        registry.backends.make_entry("fake", _missing_backend, "test"))
    record = run_trial(tiny_trial(backend="fake"))
    assert record["status"] == "unavailable" and "pip install fakelib" in record["error"]
    trials = [tiny_trial(backend="fake"), tiny_trial(seed=1)]
    first = run_trials(trials, tmp_path, progress=False)
    assert first.statuses == {"unavailable": 1, "ok": 1}
    # "installed" now: a plain re-run runs the unavailable trial, and only that one
    monkeypatch.setitem(registry.backends._entries, "fake",
                        registry.backends.make_entry("fake", registry.backends.get("torch").obj,
                                                     "test"))
    second = run_trials(trials, tmp_path, progress=False)
    assert (second.ran, second.skipped, dict(second.statuses)) == (1, 1, {"ok": 1})
    assert set(RunStore(tmp_path).statuses().values()) == {"ok"}


def test_records_carry_the_schema_and_measurement_versions():
    record = run_trial(tiny_trial())
    assert record["schema_version"] == SCHEMA_VERSION
    assert record["measurement_version"] == identity.MEASUREMENT_VERSION
    assert record["initializer_source_digest"] is None


def _write(run, name, record):
    (run / "trials").mkdir(parents=True, exist_ok=True)
    (run / "trials" / f"{name}.json").write_text(json.dumps(record))


def test_a_schema_0_record_is_migrated_on_read(tmp_path):
    trial = tiny_trial(backend="jax")
    old = {k: v for k, v in run_trial(tiny_trial()).items() if k not in (
        "schema_version", "measurement_version", "initializer_source_digest")}
    old.update(trial_hash=trial.trial_hash, backend="jax", status="failed",
               error="ImportError: the jax backend needs JAX and optax: pip install ...")
    _write(tmp_path, trial.trial_hash, old)
    (record,) = RunStore(tmp_path).records()
    assert record["schema_version"] == SCHEMA_VERSION and record["status"] == "unavailable"
    assert record["measurement_version"] is None
    # a real failure from that schema stays a failure
    other = dict(old, trial_hash="f" * 16, seed=3, error="ValueError: boom")
    _write(tmp_path, "f" * 16, other)
    statuses = RunStore(tmp_path).statuses()
    assert statuses == {trial.trial_hash: "unavailable", "f" * 16: "failed"}
    # and the migrated unavailable trial is run again
    from ntkbench.runner import pending

    assert pending([trial], statuses) == [trial]


def test_a_newer_or_damaged_record_is_an_error_naming_the_file(tmp_path):
    record = dict(run_trial(tiny_trial()), schema_version=SCHEMA_VERSION + 1)
    _write(tmp_path, "a" * 16, record)
    with pytest.raises(RecordError, match=r"aaaa.*\.json.*newer than this ntkbench"):
        load_results(tmp_path)
    path = tmp_path / "trials" / f"{'a' * 16}.json"
    path.write_text('{"trial_hash": "a", ')
    with pytest.raises(RecordError, match=r"damaged record .*aaaa.*\.json"):
        read_record(path)
    # reading the directory skips a damaged record and names it (tests/test_faults.py: the
    # next run sets it aside)
    _write(tmp_path, "b" * 16, dict(record, schema_version=SCHEMA_VERSION))
    df = load_results(tmp_path)
    assert list(df["trial_hash"]) == [record["trial_hash"]]
    assert list(df.attrs["damaged"]) == [str(path)]


def test_load_results_keeps_the_current_record_per_cell(tmp_path):
    old = tiny_trial()
    new = tiny_trial(measure=MeasureConfig(checkpoints=6, ntk_checkpoints=3))
    wide = tiny_trial(model=old.model.model_copy(update={"width": 32}))
    run_trials([old], tmp_path, progress=False)
    run_trials([new, wide], tmp_path, progress=False)
    df = load_results(tmp_path)
    # the wider net is another cell (no sweep label says so); the re-measured one replaces old
    assert sorted(df["trial_hash"]) == sorted([new.trial_hash, wide.trial_hash])
    assert df.attrs["superseded"] == {"osc": 1}
    assert len(load_results(tmp_path, superseded=True)) == 3
