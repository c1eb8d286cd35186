"""A validated suite and the grid of trials it expands into, sweep axes included."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ntkbench import registry
from ntkbench.config import MODEL_KIND_FIELDS, InitializerConfig, TaskConfig, Trial
from ntkbench.spec.task import declared_params, deep_merge

SWEEP_SECTIONS = ("model", "training", "measure", "data", "initializer")


@dataclass(frozen=True)
class Suite:
    """A validated suite: tasks already carry the suite's overrides."""

    name: str
    path: Path
    description: str
    seeds: tuple[int, ...]
    backends: tuple[str, ...]
    device: str
    tasks: tuple[TaskConfig, ...]
    initializers: tuple[InitializerConfig, ...]
    sweep: dict[str, list] = field(default_factory=dict, hash=False)
    variant: str | None = None  # the variant this suite was loaded as (its name ends -<variant>)
    variants: tuple[str, ...] = ()  # the variants the suite file declares (none when loaded as one)

    @property
    def base_dir(self) -> Path:
        """Absolute directory of the suite file; plugin sources resolve against it."""
        return Path(self.path).resolve().parent

    def trials(self) -> list[Trial]:
        """The grid, in task, initializer, backend, seed, sweep order, without duplicates.

        A data or initializer sweep axis only varies the tasks / initializers that declare that
        parameter; the others appear once, without it in their ``sweep`` label.
        """
        base_dir = self.base_dir
        keys = list(self.sweep)
        combos = list(itertools.product(*(self.sweep[k] for k in keys)))
        grid: dict[str, Trial] = {}
        for task in self.tasks:
            data_params = declared_params(registry.tasks.get(task.data.generator))
            for init in self.initializers:
                init_params = declared_params(
                    registry.resolve_initializer(init.name, init.source, base_dir))
                for backend, seed, combo in itertools.product(self.backends, self.seeds, combos):
                    swept = {k: v for k, v in zip(keys, combo, strict=True)
                             if _applies(sweep_axis(k), data_params, init_params,
                                         task.model.kind)}
                    t, i = _swept(task, init, swept)
                    trial = Trial(suite=self.name, task=t.name, data=t.data, model=t.model,
                                  training=t.training, measure=t.measure, metric=t.metric,
                                  initializer=i, backend=backend, device=self.device, seed=seed,
                                  sweep=swept, base_dir=str(base_dir))
                    grid.setdefault(trial.trial_hash, trial)
        return list(grid.values())


def sweep_axis(key: str) -> tuple[str, str] | None:
    """``model.width`` → ``("model", "width")``; ``data.params.noise`` → ``("data", "noise")``."""
    section, _, name = key.partition(".")
    if section in ("data", "initializer") and name.startswith("params."):
        name = name[len("params."):]
    if section not in SWEEP_SECTIONS or not name or "." in name:
        return None
    if section in ("data", "initializer"):
        return section, name
    return (section, name) if name in TaskConfig.model_fields[section].annotation.model_fields \
        else None


def without_other_kind(base: TaskConfig, model: object) -> dict:
    """``base`` as a dict; when ``model`` switches the architecture (``kind: cnn`` over an MLP
    task), the base's fields of the other kind are dropped rather than carried over."""
    data = base.model_dump()
    kind = model.get("kind") if isinstance(model, dict) else None
    if kind in ("mlp", "cnn") and kind != base.model.kind:
        for name in MODEL_KIND_FIELDS[base.model.kind]:
            data["model"].pop(name, None)
    return data


def model_field_kind(name: str) -> str | None:
    """The model kind (``mlp`` / ``cnn``) that alone uses model field ``name``, if any."""
    return next((kind for kind, fields in MODEL_KIND_FIELDS.items() if name in fields), None)


def _applies(axis: tuple[str, str] | None, data_params: set[str], init_params: set[str],
             kind: str) -> bool:
    """Whether a sweep axis varies a task: data and initializer parameters where declared,
    architecture fields (``model.width``, ``model.channels``, ...) where the model has them."""
    if axis is None:
        return False
    section, name = axis
    if section == "data":
        return name in data_params
    if section == "initializer":
        return name in init_params
    if section == "model":
        return model_field_kind(name) in (None, kind)
    return True


def _swept(task: TaskConfig, init: InitializerConfig,
           values: Mapping[str, Any]) -> tuple[TaskConfig, InitializerConfig]:
    """``task`` and ``init`` with the swept ``values`` (keyed by sweep key) applied."""
    task_over: dict[str, dict] = {}
    init_params: dict[str, Any] = {}
    for key, value in values.items():
        section, name = sweep_axis(key)  # type: ignore[misc]
        if section == "initializer":
            init_params[name] = value
        elif section == "data":
            task_over.setdefault("data", {}).setdefault("params", {})[name] = value
        else:
            task_over.setdefault(section, {})[name] = value
    if task_over:
        task = TaskConfig.model_validate(
            deep_merge(without_other_kind(task, task_over.get("model")), task_over))
    if init_params:
        init = init.model_copy(update={"params": {**init.params, **init_params}})
    return task, init
