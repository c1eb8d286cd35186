"""Suite files: YAML → a checked :class:`~ntkbench.spec.grid.Suite`, every problem collected."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ntkbench import registry
from ntkbench.config import InitializerConfig, TaskConfig
from ntkbench.initializers import check_params, initialize_with
from ntkbench.models import MLP
from ntkbench.spec.errors import Problem, SpecError
from ntkbench.spec.grid import Suite, model_field_kind, sweep_axis, without_other_kind
from ntkbench.spec.locations import find_task_file, task_search_dirs
from ntkbench.spec.messages import validation_issues
from ntkbench.spec.sandbox import crash_of
from ntkbench.spec.task import (
    data_issues,
    declared_params,
    deep_merge,
    read_task,
    task_issues,
)
from ntkbench.spec.variants import apply_variant, variant_names
from ntkbench.spec.yamldoc import Doc, Loc, field_name, read_yaml, show

SUITE_FIELDS = ("name", "description", "seeds", "backends", "device", "tasks", "initializers",
                "sweep", "variants")
TASK_ENTRY_FIELDS = ("name", "params", "model", "training", "measure", "metric")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
# The dummy network every initializer is tried on: its first layer has shape (4, 3).
_PROBE = MLP(in_dim=3, width=4, depth=1, out_dim=1, activation="relu")


def load_suite(path: str | Path, *, backends: list[str] | None = None,
               device: str | None = None, variant: str | None = None,
               add_initializers: list[str] | None = None, check_data: bool = False) -> Suite:
    """Read and validate a suite file, or its ``variant`` (:mod:`ntkbench.spec.variants`);
    ``backends`` / ``device`` (from the command line) replace the suite's, and
    ``add_initializers`` (:func:`initializer_item`) join its initializers. ``check_data``
    also builds each task's data once to find what only the data reveals
    (:func:`~ntkbench.spec.task.data_issues`; ``ntkbench validate`` and ``run`` do). Raise
    :class:`SpecError` with every problem found in the suite and its tasks."""
    problems: list[Problem] = []
    doc = read_yaml(Path(path), str(path), problems)
    if doc is not None and variant is not None:
        doc = apply_variant(doc, variant)
    if doc is None:
        raise SpecError(problems)
    reader = _SuiteReader(doc, Path(path), check_data=check_data)
    if add_initializers:
        have = doc.data.get("initializers")
        items = list(have) if isinstance(have, list) else []
        for spec in add_initializers:
            item = initializer_item(spec)
            if item not in items and item["name"] not in items:
                reader.added[("initializers", len(items))] = spec
                items.append(item)
        doc.data["initializers"] = items
    suite = reader.read(backends, device, variant)
    if problems:  # the suite's own problems first, in line order, then its task files'
        problems.sort(key=lambda p: (p.file != doc.file, p.file, p.line or 0))
        raise SpecError(problems)
    return suite


def _initializer_issues(entry: registry.Entry, params: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Unknown or missing parameters, then a call on a dummy layer to surface bad values."""
    unknown = [k for k in params if k not in declared_params(entry)]
    issues: list[tuple[Loc, str]] = []
    for key in unknown:
        try:
            check_params(entry, {key: params[key]})
        except ValueError as exc:
            issues.append((("params", key), str(exc)))
    if issues:
        return issues
    try:
        check_params(entry, params)
    except ValueError as exc:
        return [(("params",), str(exc))]
    try:
        initialize_with(_PROBE, entry, 0, params, calibrate=False)  # calibration needs data
    except Exception as exc:  # a plugin may raise anything; report it here rather than mid-run
        loc = ("params", *params) if len(params) == 1 else ("params",)
        given = ", ".join(f"{k}={v!r}" for k, v in params.items()) or "its defaults"
        what = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        return [(loc, f"initializer {entry.name!r} rejects {given}: {what}")]
    return []


def initializer_item(spec: str, cwd: Path | None = None) -> dict[str, str]:
    """A suite's initializer entry from the command line: ``NAME`` (registered),
    ``path/file.py:function`` (relative to ``cwd``, default the working directory) or
    ``module:function``, optionally as ``NAME=SOURCE`` to name it (else the function's name)."""
    name, eq, source = spec.partition("=")
    if not eq:
        name, source = "", spec
    if ":" not in source:
        return {"name": source}
    target, _, attr = source.rpartition(":")
    if target.endswith(".py") and not Path(target).is_absolute():
        target = str((cwd or Path.cwd()) / target)
    return {"name": name or attr, "source": f"{target}:{attr}"}


def _entry_field(task_loc: Loc) -> Loc:
    """A task file's field as a suite's task entry spells it (``data.params.x`` →
    ``params.x``; the others as they are)."""
    return ("params",) + task_loc[2:] if task_loc[:1] == ("data",) else task_loc


class _SuiteReader:
    """Validates one suite document field by field, recording problems as it goes."""

    def __init__(self, doc: Doc, path: Path, check_data: bool = False) -> None:
        self.doc, self.path, self.data = doc, path, doc.data
        self.check_data = check_data
        self.base_dir = path.resolve().parent
        self.dirs = task_search_dirs(path)
        self.task_files: dict[Path, TaskConfig | None] = {}
        self.added: dict[Loc, str] = {}  # list entries from the command line → what was given

    def read(self, backends: list[str] | None, device: str | None,
             variant: str | None) -> Suite:
        for key in self.data:
            if key not in SUITE_FIELDS:
                self.doc.error((key,), f"unknown field {key!r}"
                                       f"{registry.suggest(str(key), SUITE_FIELDS)}")
        name = self._string("name", self.path.stem)
        description = self._string("description", "")
        tasks = self._tasks()
        inits = self._initializers()
        return Suite(
            name=name, path=self.path, description=description, seeds=self._seeds(),
            backends=self._backends(backends), device=self._device(device),
            tasks=tuple(tasks), initializers=tuple(cfg for cfg, _ in inits),
            sweep=self._sweep(tasks, inits), variant=variant,
            variants=variant_names(self.doc) if variant is None else (),
        )

    def _error(self, loc: Loc, message: str) -> None:
        if loc[:2] in self.added:
            self.doc.problems.append(Problem("<command line>", None, "--add-initializer "
                                             f"{self.added[loc[:2]]}", message))
            return
        self.doc.error(loc, message)

    def _string(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or (key == "name" and not value):
            what = "a non-empty string" if key == "name" else "a string"
            self._error((key,), f"expected {what}, got {show(value)}")
            return default
        return value

    def _list(self, key: str, what: str) -> list:
        if key not in self.data:
            self._error((), f"missing required field {key!r} (a list of {what})")
            return []
        value = self.data[key]
        if not isinstance(value, list) or not value:
            self._error((key,), f"expected a non-empty list of {what}, got {show(value)}")
            return []
        return value

    def _seeds(self) -> tuple[int, ...]:
        raw = self.data.get("seeds", 1)
        if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
            return tuple(range(raw))
        if not isinstance(raw, list) or not raw:
            self._error(("seeds",), "expected a positive number of seeds or a non-empty list "
                                    f"of non-negative integer seeds, got {show(raw)}")
            return ()
        seen: set[int] = set()
        for i, seed in enumerate(raw):
            if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
                self._error(("seeds", i), f"expected a non-negative integer seed, "
                                          f"got {show(seed)}")
            elif seed in seen:
                self._error(("seeds", i), f"seed {seed} is listed twice (each seed is one "
                                          "trial per cell)")
            seen.add(seed)
        return tuple(dict.fromkeys(s for s in raw if isinstance(s, int)))

    def _backends(self, override: list[str] | None) -> tuple[str, ...]:
        raw = override if override is not None else self.data.get("backends", ["torch"])
        report = self._command_line_error if override is not None else self._error
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(names, list) or not names:
            report(("backends",), f"expected a non-empty list of backend names, got {show(raw)}")
            return ()
        for i, name in enumerate(names):
            if not isinstance(name, str):
                report(("backends", i), f"expected a backend name, got {show(name)}")
            elif name not in registry.backends:
                report(("backends", i), f"unknown backend {name!r}"
                                        f"{registry.suggest(name, registry.backends.names())}")
        return tuple(dict.fromkeys(n for n in names if isinstance(n, str)))

    def _device(self, override: str | None) -> str:
        value = override if override is not None else self.data.get("device", "auto")
        if not isinstance(value, str) or not _DEVICE.fullmatch(value):
            msg = f"expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {show(value)}"
            if override is not None:
                self._command_line_error(("device",), msg)
            else:
                self._error(("device",), msg)
        return value if isinstance(value, str) else "auto"

    def _command_line_error(self, loc: Loc, message: str) -> None:
        self.doc.problems.append(Problem("<command line>", None, field_name(loc[:1]), message))

    def _named_entries(self, key: str, noun: str) -> Iterator[tuple[Loc, dict]]:
        """Items of the list ``key`` as mappings: a bare ``name`` becomes ``{"name": name}``;
        anything else is reported and skipped."""
        for i, item in enumerate(self._list(key, f"{noun} names")):
            loc = (key, i)
            if isinstance(item, str):
                yield loc, {"name": item}
            elif isinstance(item, dict):
                yield loc, item
            else:
                self._error(loc, f"expected {'an' if noun[0] in 'aeiou' else 'a'} {noun} name "
                                 f"or a mapping with 'name', got {show(item)}")

    # tasks -----------------------------------------------------------------------------------

    def _tasks(self) -> list[TaskConfig]:
        out = []
        for loc, item in self._named_entries("tasks", "task"):
            for key in item:
                if key not in TASK_ENTRY_FIELDS:
                    self._error(loc + (key,), f"unknown field {key!r}"
                                              f"{registry.suggest(str(key), TASK_ENTRY_FIELDS)}")
            name = item.get("name")
            if not isinstance(name, str) or not name:
                self._error(loc + ("name",), f"expected a task name, got {show(name)}")
                continue
            base = self._task_file(name, loc + ("name",))
            if base is not None:
                task = self._with_overrides(base, item, loc)
                if task is not None and self.check_data:
                    issues = data_issues(task)
                    for task_loc, msg in issues:
                        self._error(*self._task_issue_at(task_loc, msg, item, loc))
                    task = None if issues else task
                if task is not None:
                    out.append(task)
        return out

    @staticmethod
    def _task_issue_at(task_loc: Loc, msg: str, item: dict, loc: Loc) -> tuple[Loc, str]:
        """Where a problem of a task's field is reported: the suite line that sets the field
        when the entry overrides it, else the entry's name (the task file sets it)."""
        suite_loc = _entry_field(task_loc)
        node: Any = item
        depth = 0  # how much of the field's path the suite entry sets
        for key in suite_loc:
            if not isinstance(node, dict) or key not in node:
                break
            node, depth = node[key], depth + 1
        if depth:
            return loc + suite_loc[:depth], msg
        return loc + ("name",), f"task {item['name']!r} (its task file): {msg}"

    def _task_file(self, name: str, loc: Loc) -> TaskConfig | None:
        path = find_task_file(name, self.dirs)
        if path is not None:
            key = path.resolve()
            if key not in self.task_files:
                self.task_files[key] = read_task(path, str(path), self.doc.problems)
            return self.task_files[key]
        known = sorted({p.stem for d in self.dirs if d.is_dir() for p in d.glob("*.yaml")})
        where = ", ".join(f"{d}/" for d in self.dirs)
        hint = registry.suggest(name, known) if known else f" (no task files in {where})"
        self._error(loc, f"unknown task {name!r}{hint}")
        return None

    def _with_overrides(self, base: TaskConfig, item: dict, loc: Loc) -> TaskConfig | None:
        """``base`` with the entry's ``params`` / ``model`` / ... overrides; problems point at
        the suite lines that set them."""
        over = {k: item[k] for k in ("model", "training", "measure", "metric") if k in item}
        if "params" in item:
            params = item["params"]
            if not isinstance(params, dict):
                self._error(loc + ("params",), f"expected a mapping of data parameters, "
                                               f"got {show(params)}")
                return None
            over["data"] = {"params": params}
        if not over:
            return base

        def at(task_loc: Loc) -> Loc:  # task-file field → the suite entry that overrides it
            return loc + _entry_field(task_loc)

        data = deep_merge(without_other_kind(base, over.get("model")), over)
        try:
            task = TaskConfig.model_validate(data)
        except ValidationError as exc:
            for task_loc, msg in validation_issues(exc, TaskConfig, data):
                self._error(at(task_loc), msg)
            return None
        issues = task_issues(task, item.get("params", {}))
        for task_loc, msg in issues:
            self._error(at(task_loc), msg)
        return None if issues else task

    # initializers ----------------------------------------------------------------------------

    def _initializers(self) -> list[tuple[InitializerConfig, registry.Entry]]:
        out = []
        for loc, item in self._named_entries("initializers", "initializer"):
            try:
                cfg = InitializerConfig.model_validate(item)
            except ValidationError as exc:
                for sub, msg in validation_issues(exc, InitializerConfig, item):
                    self._error(loc + sub, msg)
                continue
            if cfg.source is not None:  # third-party code: a crash must not take us down
                crash = crash_of(cfg.name, cfg.source, self.base_dir, cfg.params)
                if crash is not None:
                    self._error(loc + ("source",), crash)
                    continue
            try:
                entry = registry.resolve_initializer(cfg.name, cfg.source, self.base_dir)
            except (registry.RegistryError, ValueError, TypeError) as exc:
                self._error(loc + (("source",) if cfg.source else ("name",)), str(exc))
                continue
            issues = _initializer_issues(entry, cfg.params)
            for sub, msg in issues:
                self._error(loc + sub, msg)
            if not issues:
                out.append((cfg, entry))
        return out

    # sweep -----------------------------------------------------------------------------------

    def _sweep(self, tasks: list[TaskConfig],
               inits: list[tuple[InitializerConfig, registry.Entry]]) -> dict[str, list]:
        raw = self.data.get("sweep") or {}
        if not isinstance(raw, dict):
            self._error(("sweep",), f"expected a mapping of field: [values], got {show(raw)}")
            return {}
        data_params = {t.name: declared_params(registry.tasks.get(t.data.generator)) for t in tasks}
        init_params = [declared_params(entry) for _, entry in inits]
        known = [f"{s}.{f}" for s in ("model", "training", "measure")
                 for f in TaskConfig.model_fields[s].annotation.model_fields]
        known += sorted({f"data.{p}" for ps in data_params.values() for p in ps})
        known += sorted({f"initializer.{p}" for ps in init_params for p in ps})
        out: dict[str, list] = {}
        for key, values in raw.items():
            loc = ("sweep", key)
            axis = sweep_axis(key) if isinstance(key, str) else None
            if axis is None:
                self._error(loc, f"unknown sweep key {key!r}{registry.suggest(str(key), known)}")
                continue
            if not isinstance(values, list) or not values:
                self._error(loc, f"expected a non-empty list of values, got {show(values)}")
                continue
            section, name = axis
            if section == "data":
                targets = [t for t in tasks if name in data_params[t.name]]
            elif section == "initializer":
                targets = [c for c, ps in zip(inits, init_params, strict=True) if name in ps]
            elif section == "model" and model_field_kind(name):
                kind = model_field_kind(name)
                targets = [t for t in tasks if t.model.kind == kind]
                if not targets:
                    self._error(loc, f"{key} applies to model kind: {kind}, and no task in this "
                                     f"suite has one")
                    continue
            else:
                targets = tasks
            if not targets:
                owner = "task's data generator" if section == "data" else "initializer"
                self._error(loc, f"no {owner} in this suite declares parameter {name!r}"
                                 f"{registry.suggest(key, known)}")
                continue
            for j, value in enumerate(values):
                problem = self._sweep_value_problem(section, name, value, targets)
                if problem:
                    self._error(loc + (j,), problem)
            out[key] = values
        return out

    @staticmethod
    def _sweep_value_problem(section: str, name: str, value: Any, targets: list) -> str | None:
        """Why ``value`` cannot be swept into ``section.name`` of one of ``targets``, if it
        cannot."""
        for target in targets:
            if section == "initializer":
                cfg, entry = target
                issues = _initializer_issues(entry, {**cfg.params, name: value})
            elif section == "data":
                return None  # data values are the generator's to check when it runs
            else:
                over = {section: {name: value}}
                data = deep_merge(without_other_kind(target, over.get("model")), over)
                try:
                    TaskConfig.model_validate(data)
                    issues = []
                except ValidationError as exc:
                    issues = validation_issues(exc, TaskConfig, data)
            if issues:
                return f"task {target.name!r}: {issues[0][1]}" if section == "model" \
                    else issues[0][1]
        return None
