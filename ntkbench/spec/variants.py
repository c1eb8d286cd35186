"""Named variants of a suite: the same study at another size, in the same file.

A suite may carry ``variants: {NAME: {...}}``. Each variant replaces top-level fields of the
suite (``seeds``, ``backends``, ``device``, ``initializers``, ``sweep``, ``description``) and
either replaces ``tasks`` (a list) or overrides tasks by name (a mapping ``task name →
{params, model, training, measure, metric}`` merged into that task's entry)::

    variants:
      full:                       # ntkbench run receptive_fields --variant full
        seeds: 5
        tasks:
          mnist: {model: {width: 1000}, training: {steps: 3001}}

The variant's suite is named ``<suite>-<variant>``, so its default run directory is its own, and
problems in it point at the variant's lines.
"""

from __future__ import annotations

from typing import Any

from ntkbench import registry
from ntkbench.spec.errors import Problem
from ntkbench.spec.task import deep_merge
from ntkbench.spec.yamldoc import Doc, Loc, show

VARIANT_FIELDS = ("description", "seeds", "backends", "device", "tasks", "initializers", "sweep")
TASK_OVERRIDE_FIELDS = ("params", "model", "training", "measure", "metric")


def variant_names(doc: Doc) -> tuple[str, ...]:
    """The variants ``doc`` declares, after checking their shape (fields, task names); their
    values are checked when a variant is loaded (:func:`apply_variant`)."""
    raw = doc.data.get("variants")
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not raw:
        doc.error(("variants",), f"expected a mapping of variant name: {{fields}}, got "
                                 f"{show(raw)}")
        return ()
    names = []
    task_names = _task_names(doc.data.get("tasks"))
    for name, over in raw.items():
        loc = ("variants", name)
        if not isinstance(name, str) or not name.isidentifier():
            doc.error(loc, f"expected a variant name (letters, digits, _), got {show(name)}")
            continue
        if not isinstance(over, dict) or not over:
            doc.error(loc, f"expected a mapping of the fields the variant changes, got "
                           f"{show(over)}")
            continue
        ok = True
        for key, value in over.items():
            if key not in VARIANT_FIELDS:
                what = " (a variant is named after its suite)" if key == "name" else ""
                doc.error(loc + (key,), f"unknown variant field {key!r}{what}"
                                        f"{registry.suggest(str(key), VARIANT_FIELDS)}")
                ok = False
            elif key == "tasks" and isinstance(value, dict):
                ok &= _check_task_overrides(doc, loc + (key,), value, task_names)
        if ok:
            names.append(name)
    return tuple(names)


def apply_variant(doc: Doc, name: str) -> Doc | None:
    """The suite document as variant ``name`` makes it (lines of the changed fields point into
    the variant), or ``None`` with the problem recorded when there is no such variant."""
    known = variant_names(doc)
    if name not in known:
        if not any(p.field.startswith("variants") for p in doc.problems):
            have = f" (this suite has: {', '.join(known)})" if known else \
                " (this suite declares no variants)"
            hint = registry.suggest(name, known) if known else ""
            doc.problems.append(Problem("<command line>", None, "variant",
                                        f"unknown variant {name!r}{hint or have}"))
        return None
    over: dict[str, Any] = doc.data["variants"][name]
    data = {k: v for k, v in doc.data.items() if k != "variants"}
    lines = {loc: ln for loc, ln in doc.lines.items() if loc[:1] != ("variants",)}
    src = ("variants", name)
    for key, value in over.items():
        if key == "tasks" and isinstance(value, dict):
            entries = list(data["tasks"])
            for i, entry in enumerate(entries):
                task = _entry_name(entry)
                if task in value:
                    base = {"name": entry} if isinstance(entry, str) else entry
                    entries[i] = deep_merge(base, value[task])
                    _rebase(doc.lines, src + (key, task), ("tasks", i), lines, drop=False)
            data["tasks"] = entries
        else:
            data[key] = value
            _rebase(doc.lines, src + (key,), (key,), lines, drop=True)
    if isinstance(data.get("name"), str):
        data["name"] = f"{data['name']}-{name}"
    return Doc(doc.file, data, lines, doc.problems)


def _rebase(source: dict[Loc, int], old: Loc, new: Loc, lines: dict[Loc, int], *,
            drop: bool) -> None:
    """Point the lines below ``new`` at the variant's lines below ``old`` (``drop``: forget the
    suite's own lines below ``new`` first, the field being replaced as a whole)."""
    if drop:
        for loc in [loc for loc in lines if loc[:len(new)] == new]:
            del lines[loc]
    for loc, ln in source.items():
        if loc[:len(old)] == old:
            lines[new + loc[len(old):]] = ln


def _entry_name(entry: Any) -> Any:
    return entry if isinstance(entry, str) else entry.get("name") if isinstance(entry, dict) \
        else None


def _task_names(tasks: Any) -> list[str]:
    if not isinstance(tasks, list):
        return []
    return [n for n in map(_entry_name, tasks) if isinstance(n, str)]


def _check_task_overrides(doc: Doc, loc: Loc, value: dict, task_names: list[str]) -> bool:
    ok = True
    for task, fields in value.items():
        if task not in task_names:
            have = ", ".join(task_names) or "none"
            doc.error(loc + (task,), f"no task {task!r} in this suite's tasks (has: {have}); "
                                     f"give a list to replace the tasks")
            ok = False
        elif not isinstance(fields, dict):
            doc.error(loc + (task,), f"expected a mapping of task overrides "
                                     f"({', '.join(TASK_OVERRIDE_FIELDS)}), got {show(fields)}")
            ok = False
        else:
            for key in fields:
                if key not in TASK_OVERRIDE_FIELDS:
                    hint = registry.suggest(str(key), TASK_OVERRIDE_FIELDS)
                    doc.error(loc + (task, key), f"unknown field {key!r}{hint}")
                    ok = False
    return ok
