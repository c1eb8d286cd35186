"""Task files: ``tasks/<name>.yaml`` → a checked :class:`~ntkbench.config.TaskConfig`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ntkbench import registry
from ntkbench.config import TaskConfig
from ntkbench.evaluation import METRICS
from ntkbench.spec.errors import Problem, SpecError
from ntkbench.spec.messages import validation_issues
from ntkbench.spec.yamldoc import Loc, read_yaml


def load_task(path: str | Path) -> TaskConfig:
    """Read and validate ``tasks/<name>.yaml``; raise :class:`SpecError` naming file and line."""
    problems: list[Problem] = []
    task = read_task(Path(path), str(path), problems)
    if task is None or problems:
        raise SpecError(problems)
    return task


def declared_params(entry: registry.Entry) -> set[str]:
    """Names of the parameters a generator or initializer declares."""
    return {p.name for p in entry.params}


def deep_merge(base: dict, over: Mapping) -> dict:
    """``base`` with ``over`` applied, nested mappings merged rather than replaced."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(out.get(key), dict) and isinstance(value, dict)
        out[key] = deep_merge(out[key], value) if both else value
    return out


def read_task(path: Path, file: str, problems: list[Problem]) -> TaskConfig | None:
    """Parse and check one task file; problems name the task file. None if any were found."""
    doc = read_yaml(path, file, problems)
    if doc is None:
        return None
    data = {"name": path.stem, **doc.data}
    try:
        task = TaskConfig.model_validate(data)
    except ValidationError as exc:
        for loc, msg in validation_issues(exc, TaskConfig, data):
            doc.error(loc, msg)
        return None
    issues = task_issues(task, task.data.params)
    if task.name != path.stem:
        issues.insert(0, (("name",), f"task name {task.name!r} does not match its file name "
                                     f"{path.name!r}"))
    for loc, msg in issues:
        doc.error(loc, msg)
    return None if issues else task


def task_issues(task: TaskConfig, params: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Unknown generator, metric, or data parameters (of those in ``params``) of ``task``."""
    issues: list[tuple[Loc, str]] = []
    if task.metric not in METRICS:
        issues.append((("metric",), f"unknown metric {task.metric!r}"
                                    f"{registry.suggest(task.metric, list(METRICS))}"))
    gen = task.data.generator
    if gen not in registry.tasks:
        return [(("data", "generator"), f"unknown data generator {gen!r}"
                                        f"{registry.suggest(gen, registry.tasks.names())}"),
                *issues]
    entry = registry.tasks.get(gen)
    known = sorted(declared_params(entry))
    for key in params:
        if key not in known:
            hint = registry.suggest(key, known) if known else " (it takes no parameters)"
            issues.append((("data", "params", key),
                           f"unknown parameter {key!r} for data generator {gen!r}{hint}"))
    for p in entry.params:
        if p.required and p.name not in task.data.params:
            issues.append((("data", "params"), f"data generator {gen!r} needs parameter "
                                               f"{p.name!r}"))
    return issues


def data_issues(task: TaskConfig) -> list[tuple[Loc, str]]:
    """What only the task's data reveals: the generator rejects its parameters (values out of
    range, an unknown image), or the rest of the task does not fit the data
    (:func:`ntkbench.execute.fit_issues`: metric, loss, model, ``training.tv_weight``).

    Builds the data once (seed 0), as each trial would; a data set that is not downloaded is
    not a problem of the suite (``ntkbench run`` says how to fetch it) and is skipped.
    """
    from ntkbench.data.cache import MissingDataError
    from ntkbench.execute import fit_issues

    gen = task.data.generator
    try:
        data = registry.tasks.get(gen).obj(seed=0, **task.data.params)
    except MissingDataError:
        return []
    except Exception as exc:  # a generator may raise anything: report it here, not per trial
        named = [k for k in task.data.params if k in str(exc)]
        loc = ("data", "params", named[0]) if named else ("data", "params")
        what = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        return [(loc, f"data generator {gen!r} rejects its parameters: {what}")]
    return fit_issues(task, data)
