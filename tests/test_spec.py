"""Suite and task files: grid expansion, and errors that name file, line and field."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ntkbench import registry
from ntkbench.cli.main import main
from ntkbench.config import TaskConfig
from ntkbench.data.base import Dataset, register_task
from ntkbench.spec import (
    Problem,
    SpecError,
    default_suite_path,
    load_suite,
    load_task,
    task_search_dirs,
)

# Test plugins under names no built-in uses, so the tests do not depend on the built-in families.


@registry.register_initializer("spec_test_normal")
def spec_test_normal(shape, rng, *, layer, std: float = 1.0):
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    return rng.normal(0.0, std, size=shape)


@registry.register_initializer("spec_test_zeros")
def spec_test_zeros(shape, rng, *, layer):
    return np.zeros(shape)


def _dataset(n: int) -> Dataset:
    x = np.linspace(-1, 1, n)[:, None]
    return Dataset(x, x, x, x)


@register_task("spec_test_wave")
def spec_test_wave(*, seed: int, n_train: int = 64, noise: float = 0.0) -> Dataset:
    return _dataset(n_train)


@register_task("spec_test_plane")
def spec_test_plane(*, seed: int, n_train: int = 64) -> Dataset:
    return _dataset(n_train)


WAVE = """\
name: wave
description: a test task
data:
  generator: spec_test_wave
  params: {n_train: 32}
model: {width: 16, depth: 1}
training: {steps: 10, lr: 0.05}
"""
PLANE = "data: {generator: spec_test_plane}\n"  # name defaults to the file name


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write ``text`` to ``name`` under a project with tasks ``wave`` and ``plane``; run in it."""
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "wave.yaml").write_text(WAVE)
    (tmp_path / "tasks" / "plane.yaml").write_text(PLANE)
    monkeypatch.chdir(tmp_path)

    def _write(text: str, name: str = "benchmarks.yaml") -> Path:
        path = Path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    return _write


def suite_of(write, text: str, **kwargs):
    return load_suite(write(text), **kwargs)


# ------------------------------------------------------------------------------ valid suites


def test_grid_size_overrides_and_sweep(write):
    suite = suite_of(write, """\
        name: grid
        seeds: 2
        tasks:
          - wave
          - name: plane
            params: {n_train: 8}
            model: {depth: 3}
            training: {steps: 5}
        initializers:
          - spec_test_normal
          - name: spec_test_normal
            params: {std: 0.5}
          - spec_test_zeros
        sweep:
          model.width: [8, 16]
          training.lr: [0.1, 0.01]
        """)
    trials = suite.trials()
    assert len(trials) == 2 * 3 * 1 * 2 * (2 * 2)
    assert suite.seeds == (0, 1) and suite.backends == ("torch",) and suite.device == "auto"
    plane = [t for t in trials if t.task == "plane"]
    assert {t.data.params["n_train"] for t in plane} == {8}
    assert {(t.model.depth, t.training.steps) for t in plane} == {(3, 5)}
    wave = [t for t in trials if t.task == "wave"]
    assert {(t.model.depth, t.training.steps, t.data.params["n_train"]) for t in wave} == \
        {(1, 10, 32)}
    assert {(t.model.width, t.training.lr) for t in wave} == \
        {(8, 0.1), (8, 0.01), (16, 0.1), (16, 0.01)}
    first = trials[0]
    assert (first.suite, first.task, first.initializer.name, first.seed) == \
        ("grid", "wave", "spec_test_normal", 0)
    assert first.sweep == {"model.width": 8, "training.lr": 0.1}
    assert first.base_dir == str(Path.cwd().resolve())
    assert len({t.trial_hash for t in trials}) == len(trials)
    assert [t.trial_hash for t in load_suite("benchmarks.yaml").trials()] == \
        [t.trial_hash for t in trials]


def test_duplicates_collapse(write):
    # repeated task and initializer entries are one cell each (a repeated seed is an error:
    # tests/test_validate_data.py)
    suite = suite_of(write, """\
        seeds: [0, 1]
        tasks: [wave, wave, {name: wave, model: {width: 16}}]
        initializers: [spec_test_zeros, spec_test_zeros]
        """)
    assert suite.name == "benchmarks"
    assert suite.seeds == (0, 1)
    assert len(suite.trials()) == 2


@pytest.mark.parametrize(("seeds", "expected"), [("3", (0, 1, 2)), ("[4, 7]", (4, 7))])
def test_seeds_count_or_list(write, seeds, expected):
    suite = suite_of(write, f"seeds: {seeds}\ntasks: [wave]\ninitializers: [spec_test_zeros]\n")
    assert suite.seeds == expected
    assert [t.seed for t in suite.trials()] == list(expected)


@pytest.mark.parametrize("key", ["initializer.std", "initializer.params.std"])
def test_sweep_initializer_param_only_where_declared(write, key):
    suite = suite_of(write, f"""\
        tasks: [wave]
        initializers: [spec_test_normal, spec_test_zeros]
        sweep:
          {key}: [0.1, 0.2]
        """)
    got = [(t.initializer.name, t.initializer.params, t.sweep) for t in suite.trials()]
    assert got == [
        ("spec_test_normal", {"std": 0.1}, {key: 0.1}),
        ("spec_test_normal", {"std": 0.2}, {key: 0.2}),
        ("spec_test_zeros", {}, {}),
    ]


@pytest.mark.parametrize("key", ["data.noise", "data.params.noise"])
def test_sweep_data_param_only_where_declared(write, key):
    suite = suite_of(write, f"""\
        tasks: [wave, plane]
        initializers: [spec_test_zeros]
        sweep:
          {key}: [0.0, 0.1]
        """)
    got = [(t.task, t.data.params.get("noise"), t.sweep) for t in suite.trials()]
    assert got == [("wave", 0.0, {key: 0.0}), ("wave", 0.1, {key: 0.1}), ("plane", None, {})]


def test_command_line_overrides(write):
    suite = suite_of(write, """\
        backends: [torch]
        device: cuda:1
        tasks: [wave]
        initializers: [spec_test_zeros]
        """, backends=["torch"], device="cpu")
    assert suite.device == "cpu"
    assert {t.device for t in suite.trials()} == {"cpu"}


def test_plugin_source_resolves_next_to_the_suite(write, tmp_path):
    plugin = tmp_path / "suites" / "plugins" / "my_init.py"
    plugin.parent.mkdir(parents=True)
    plugin.write_text(
        "import numpy as np\n\n"
        "def my_init(shape, rng, *, layer, gain: float = 1.0):\n"
        "    return gain * np.ones(shape)\n"
    )
    (tmp_path / "suites" / "tasks").mkdir()
    (tmp_path / "suites" / "tasks" / "wave.yaml").write_text(WAVE)
    suite = load_suite(write("""\
        tasks: [wave]
        initializers:
          - name: my_init
            source: plugins/my_init.py:my_init
            params: {gain: 2.0}
        """, name="suites/bench.yaml"))
    (trial,) = suite.trials()
    assert trial.base_dir == str(plugin.parent.parent.resolve())
    entry = registry.resolve_initializer(trial.initializer.name, trial.initializer.source,
                                         trial.source_dir)
    assert entry.obj((2, 2), None, layer=None, gain=2.0).tolist() == [[2.0, 2.0], [2.0, 2.0]]


def test_load_task(write):
    task = load_task("tasks/wave.yaml")
    assert isinstance(task, TaskConfig)
    assert (task.name, task.description, task.data.generator) == \
        ("wave", "a test task", "spec_test_wave")
    assert (task.data.params, task.model.width, task.training.lr, task.metric) == \
        ({"n_train": 32}, 16, 0.05, "test_mse")
    assert load_task("tasks/plane.yaml").name == "plane"


def test_search_paths_and_default_suite(write, tmp_path):
    dirs = task_search_dirs(tmp_path / "bench.yaml")
    assert dirs[0] == tmp_path / "tasks"
    assert all(d.name == "tasks" for d in dirs)
    assert default_suite_path().name == "benchmarks.yaml"
    write("tasks: [wave]\n")
    assert default_suite_path() == Path("benchmarks.yaml")


def test_shipped_default_suite_is_valid(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no ./benchmarks.yaml here: the built-in suite is used
    path = default_suite_path()
    if not path.is_file():
        pytest.skip("no built-in benchmarks.yaml")
    suite = load_suite(path)
    assert len(suite.trials()) >= len(suite.tasks) * len(suite.initializers)


# -------------------------------------------------------------------------------- errors

GOOD_TAIL = "tasks: [wave]\ninitializers: [spec_test_normal]\n"

MALFORMED = {
    "yaml_syntax": ("name: broken\ntasks:\n  - wave\n initializers: [spec_test_normal]\n",
                    4, "yaml", ["invalid YAML"]),
    "top_level_list": ("- wave\n- plane\n", 1, "top level", ["expected a mapping", "a list"]),
    "empty_file": ("# nothing\n", 1, "top level", ["empty file"]),
    "unknown_top_level_key": ("tasks: [wave]\ninitializers: [spec_test_normal]\nseed: 3\n",
                              3, "seed", ["unknown field 'seed'", "did you mean 'seeds'"]),
    "misspelt_initializer": ("tasks: [wave]\ninitializers:\n  - spec_test_zeros\n"
                             "  - spec_test_normall\n", 4, "initializers[1].name",
                             ["unknown initializer 'spec_test_normall'",
                              "did you mean 'spec_test_normal'"]),
    "misspelt_task": ("tasks:\n  - plane\n  - wav\ninitializers: [spec_test_normal]\n",
                      3, "tasks[1].name", ["unknown task 'wav'", "did you mean 'wave'"]),
    "initializer_param_name": ("tasks: [wave]\ninitializers:\n  - name: spec_test_normal\n"
                               "    params:\n      sdt: 0.1\n", 5,
                               "initializers[0].params.sdt",
                               ["unknown parameter 'sdt'", "did you mean 'std'"]),
    "initializer_param_value": ("tasks: [wave]\ninitializers:\n  - name: spec_test_normal\n"
                                "    params: {std: -1}\n", 4, "initializers[0].params.std",
                                ["rejects std=-1", "std must be positive"]),
    "wrong_type": ("tasks:\n  - name: wave\n    model:\n      depth: 2\n      width: abc\n"
                   "initializers: [spec_test_normal]\n", 5, "tasks[0].model.width",
                   ["expected a positive integer, got 'abc'"]),
    "wrong_type_optional": ("tasks:\n  - name: wave\n    training: {batch_size: abc}\n"
                            "initializers: [spec_test_normal]\n", 3,
                            "tasks[0].training.batch_size",
                            ["expected a positive integer or null, got 'abc'"]),
    "unknown_model_field": ("tasks:\n  - name: wave\n    model: {widht: 8}\n"
                            "initializers: [spec_test_normal]\n", 3, "tasks[0].model.widht",
                            ["unknown field 'widht'", "did you mean 'width'"]),
    "unknown_data_param": ("tasks:\n  - name: wave\n    params:\n      n_trian: 8\n"
                           "initializers: [spec_test_normal]\n", 4, "tasks[0].params.n_trian",
                           ["unknown parameter 'n_trian'", "did you mean 'n_train'"]),
    "unknown_backend": ("backends: [torhc]\n" + GOOD_TAIL, 1, "backends[0]",
                        ["unknown backend 'torhc'", "did you mean 'torch'"]),
    "bad_device": ("device: gpu\n" + GOOD_TAIL, 1, "device", ["expected 'auto', 'cpu'", "'gpu'"]),
    "bad_sweep_key": (GOOD_TAIL + "sweep:\n  model.widht: [8]\n", 4, "sweep.model.widht",
                      ["unknown sweep key", "did you mean 'model.width'"]),
    "undeclared_sweep_param": (GOOD_TAIL + "sweep:\n  data.nosie: [0.1]\n", 4,
                               "sweep.data.nosie",
                               ["declares parameter 'nosie'", "did you mean 'data.noise'"]),
    "empty_sweep_list": (GOOD_TAIL + "sweep:\n  training.lr: []\n", 4, "sweep.training.lr",
                         ["expected a non-empty list", "got an empty list"]),
    "bad_sweep_value": (GOOD_TAIL + "sweep:\n  model.width:\n    - 8\n    - -1\n", 6,
                        "sweep.model.width[1]", ["expected a positive integer, got -1"]),
    "bad_sweep_init_value": (GOOD_TAIL + "sweep:\n  initializer.std: [0.1, 0]\n", 4,
                             "sweep.initializer.std[1]", ["std must be positive, got 0"]),
    "negative_seeds": ("seeds: -1\n" + GOOD_TAIL, 1, "seeds",
                       ["expected a positive number of seeds", "got -1"]),
    "negative_seed_in_list": ("seeds:\n  - 0\n  - -2\n" + GOOD_TAIL, 3, "seeds[1]",
                              ["non-negative integer seed, got -2"]),
    "empty_tasks": ("tasks: []\ninitializers: [spec_test_normal]\n", 1, "tasks",
                    ["expected a non-empty list of task names, got an empty list"]),
    "missing_plugin_file": ("tasks: [wave]\ninitializers:\n  - name: mine\n"
                            "    source: plugins/nope.py:mine\n", 4, "initializers[0].source",
                            ["nope.py", "does not exist"]),
    "duplicate_key": ("tasks: [wave]\ninitializers: [spec_test_normal]\ntasks: [plane]\n",
                      3, "tasks", ["duplicate key 'tasks'"]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_suite(write, case):
    text, line, field, words = MALFORMED[case]
    path = write(text)
    with pytest.raises(SpecError) as info:
        load_suite(path)
    matching = [p for p in info.value.problems if p.field == field]
    assert matching, f"no problem for {field!r} in:\n{info.value}"
    problem = matching[0]
    assert (problem.file, problem.line) == ("benchmarks.yaml", line), str(info.value)
    for word in words:
        assert word in problem.message


BAD_TASK = """\
name: bad
data:
  generator: spec_test_wave
  params: {n_train: 8}
metric: test_mae
"""


def test_error_in_task_file_names_the_task_file(write):
    Path("tasks/bad.yaml").write_text(BAD_TASK)
    with pytest.raises(SpecError) as info:
        load_suite(write("tasks: [wave, bad]\ninitializers: [spec_test_normal]\n"))
    assert info.value.problems == [
        Problem(str(Path("tasks/bad.yaml")), 5, "metric",
                "unknown metric 'test_mae' — did you mean 'test_mse'?")]
    with pytest.raises(SpecError) as direct:
        load_task("tasks/bad.yaml")
    assert direct.value.problems == info.value.problems


@pytest.mark.parametrize(("text", "line", "field", "words"), [
    ("data: {generator: spec_test_wav}\n", 1, "data.generator",
     ["unknown data generator 'spec_test_wav'", "did you mean 'spec_test_wave'"]),
    ("data:\n  generator: spec_test_wave\ntraining:\n  momentum: 2\n", 4, "training.momentum",
     ["expected a number at least 0 and less than 1, got 2"]),
    ("name: other\ndata: {generator: spec_test_wave}\n", 1, "name", ["does not match"]),
    ("model: {width: 4}\n", 1, "data", ["missing required field 'data'"]),
])
def test_malformed_task_file(write, text, line, field, words):
    Path("tasks/broken.yaml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_task("tasks/broken.yaml")
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.field) == (str(Path("tasks/broken.yaml")), line,
                                                           field)
    for word in words:
        assert word in problem.message


def test_all_problems_are_collected_and_formatted(write):
    path = write("""\
        seeds: 0
        backends: [torch]
        tasks: [wav]
        initializers:
          - spec_test_normall
        """)
    with pytest.raises(SpecError) as info:
        load_suite(path)
    lines = str(info.value).splitlines()
    assert [(p.line, p.field) for p in info.value.problems] == \
        [(1, "seeds"), (3, "tasks[0].name"), (5, "initializers[0].name")]
    assert len(lines) == 3
    for line in lines:
        assert re.fullmatch(r"benchmarks\.yaml:\d+: [\w.\[\]]+: \S.*", line), line
    assert lines[2].startswith("benchmarks.yaml:5: initializers[0].name: unknown initializer "
                               "'spec_test_normall' — did you mean 'spec_test_normal'")


def test_command_line_problems_and_missing_file(write):
    with pytest.raises(SpecError) as info:
        suite_of(write, GOOD_TAIL, backends=["jaxx"], device="tpu")
    assert [(p.file, p.line, p.field) for p in info.value.problems] == \
        [("<command line>", None, "backends"), ("<command line>", None, "device")]
    with pytest.raises(SpecError, match=r"^missing\.yaml: file: cannot read"):
        load_suite("missing.yaml")


def test_an_entry_can_switch_an_mlp_task_to_a_cnn(write):
    """The wave task sets an MLP's width and depth; a CNN override drops them, keeps the rest."""
    suite = suite_of(write, """\
        tasks:
          - name: wave
            model: {kind: cnn, channels: [4], head: [8], activation: tanh}
        initializers: [spec_test_normal]
        """)
    (trial,) = suite.trials()
    m = trial.model
    assert (m.kind, m.channels, m.head, m.activation) == ("cnn", (4,), (8,), "tanh")
    assert (m.width, m.depth) == (256, 2)  # defaults, unused by a CNN


def test_cnn_fields_on_an_mlp_are_an_error_at_their_line(write):
    path = write("tasks:\n  - name: wave\n    model: {channels: [4]}\n"
                 "initializers: [spec_test_normal]\n")
    with pytest.raises(SpecError) as info:
        load_suite(path)
    (problem,) = info.value.problems
    assert problem.line == 3 and problem.field.startswith("tasks[0].model"), str(info.value)
    assert "channels applies to kind: cnn" in problem.message


def test_architecture_sweeps_vary_only_the_tasks_of_their_kind(write):
    suite = suite_of(write, """\
        tasks:
          - wave
          - name: plane
            model: {kind: cnn}
        initializers: [spec_test_normal]
        sweep:
          model.width: [8, 16]
          model.channels: [[4], [4, 8]]
          training.lr: [0.1, 0.01]
        """)
    trials = suite.trials()
    wave = {(t.model.width, t.training.lr) for t in trials if t.task == "wave"}
    plane = {(t.model.channels, t.training.lr) for t in trials if t.task == "plane"}
    assert wave == {(w, lr) for w in (8, 16) for lr in (0.1, 0.01)}
    assert plane == {(c, lr) for c in ((4,), (4, 8)) for lr in (0.1, 0.01)}
    assert all("model.channels" not in t.sweep for t in trials if t.task == "wave")
    assert all("model.width" not in t.sweep for t in trials if t.task == "plane")


def test_an_architecture_sweep_without_a_task_of_its_kind_is_an_error(write):
    path = write("tasks: [wave]\ninitializers: [spec_test_normal]\n"
                 "sweep:\n  model.channels: [[4]]\n")
    with pytest.raises(SpecError) as info:
        load_suite(path)
    (problem,) = info.value.problems
    assert problem.field == "sweep.model.channels"
    assert "applies to model kind: cnn, and no task in this suite has one" in problem.message


def test_every_shipped_suite_validates():
    from ntkbench.spec import load_suite

    suites = sorted((Path(__file__).resolve().parents[1] / "suites").glob("*.yaml"))
    assert {p.stem for p in suites} >= {"full", "orthogonal_ntk", "wide_deep", "go_init",
                                       "receptive_fields", "spectrum_alignment"}
    for path in suites:
        suite = load_suite(path)
        assert suite.name == path.stem, path
        if path.stem != "full":  # each reproduction suite has its paper-sized variant
            assert "full" in suite.variants, path
        for name in suite.variants:
            variant = load_suite(path, variant=name)
            assert variant.name == f"{path.stem}-{name}" and variant.variant == name
            assert {t.trial_hash for t in variant.trials()}.isdisjoint(
                t.trial_hash for t in suite.trials()), f"{path}: variant {name} changes nothing"


# ------------------------------------------------------------------------------ variants

VARIANT_SUITE = """    name: study
    seeds: 2
    tasks:
      - wave
      - name: plane
        model: {depth: 3}
    initializers: [spec_test_normal]
    sweep:
      model.width: [8, 16]
    variants:
      big:
        seeds: 3
        tasks:
          plane:
            params: {n_train: 512}
            model: {width: 64}
        sweep:
          training.lr: [0.1, 0.01, 0.001]
      wide_only:
        tasks:
          - name: wave
            model: {width: 1024}
    """


def test_variant_overrides_tasks_by_name_and_replaces_top_level_fields(write):
    base = suite_of(write, VARIANT_SUITE)
    assert base.variants == ("big", "wide_only") and base.variant is None
    big = load_suite("benchmarks.yaml", variant="big")
    assert big.name == "study-big" and big.seeds == (0, 1, 2) and big.variants == ()
    wave, plane = big.tasks
    assert wave == base.tasks[0]  # untouched by the variant
    assert plane.data.params["n_train"] == 512
    assert (plane.model.width, plane.model.depth) == (64, 3)  # merged with the suite's entry
    assert big.sweep == {"training.lr": [0.1, 0.01, 0.001]}  # replaced, not merged
    assert len(big.trials()) == 2 * 1 * 3 * 3
    wide = load_suite("benchmarks.yaml", variant="wide_only")
    assert [t.name for t in wide.tasks] == ["wave"] and wide.tasks[0].model.width == 1024
    assert wide.seeds == base.seeds and wide.sweep == base.sweep


VARIANT_ERRORS = {
    # variant text (under "variants:\n  big:\n"), line, field, words
    "unknown_field": ("    name: other\n", 12, "variants.big.name",
                      ["unknown variant field 'name'", "named after its suite"]),
    "unknown_task": ("    tasks:\n      plnae: {model: {width: 4}}\n", 13,
                     "variants.big.tasks.plnae", ["no task 'plnae'", "has: wave, plane"]),
    "unknown_task_field": ("    tasks:\n      plane: {modle: {width: 4}}\n", 13,
                           "variants.big.tasks.plane.modle", ["unknown field 'modle'"]),
    "bad_value": ("    tasks:\n      plane:\n        model: {width: -4}\n", 14,
                  "tasks[1].model.width", ["expected a positive integer, got -4"]),
    "bad_seeds": ("    seeds: 0\n", 12, "seeds", ["expected a positive number of seeds"]),
}


@pytest.mark.parametrize("case", list(VARIANT_ERRORS))
def test_variant_problems_point_at_the_variant_lines(write, case):
    text, line, field, words = VARIANT_ERRORS[case]
    head = textwrap.dedent(VARIANT_SUITE).split("variants:")[0]
    path = write(head + "variants:\n  big:\n" + text)
    with pytest.raises(SpecError) as info:
        load_suite(path, variant="big")
    matching = [p for p in info.value.problems if p.field == field]
    assert matching, f"no problem for {field!r} in:\n{info.value}"
    assert matching[0].line == line, str(info.value)
    for word in words:
        assert word in matching[0].message
    if field.startswith("variants"):  # shape problems are found without asking for the variant
        with pytest.raises(SpecError):
            load_suite(path)


def test_unknown_variant_is_a_command_line_problem(write):
    path = write(VARIANT_SUITE)
    with pytest.raises(SpecError) as info:
        load_suite(path, variant="bgi")
    (problem,) = info.value.problems
    assert problem.file == "<command line>" and "did you mean 'big'" in problem.message
    plain = write("tasks: [wave]\ninitializers: [spec_test_normal]\n", name="plain.yaml")
    with pytest.raises(SpecError, match="declares no variants"):
        load_suite(plain, variant="full")


def test_validate_checks_every_variant_and_run_uses_its_directory(write, capsys):
    write(VARIANT_SUITE)
    assert main(["validate", "benchmarks.yaml"]) == 0
    out = capsys.readouterr().out
    assert "'study':" in out and "'study-big':" in out and "'study-wide_only':" in out
    assert main(["run", "benchmarks.yaml", "--variant", "big", "--dry-run"]) == 0
    assert "results/study-big" in capsys.readouterr().out
