"""Pydantic's validation errors in plain words, located by their path in the YAML data."""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, ValidationError

from ntkbench import registry
from ntkbench.spec.yamldoc import Loc, show


def validation_issues(exc: ValidationError, cls: type[BaseModel],
                      data: Any) -> list[tuple[Loc, str]]:
    """Pydantic's errors as ``(loc, plain message)``, one per offending field."""
    out: dict[Loc, str] = {}
    for err in exc.errors():
        loc, kind = tuple(err["loc"]), err["type"]
        if kind == "extra_forbidden":
            owner = _model_at(cls, loc[:-1])
            names = list(owner.model_fields) if owner else []
            msg = f"unknown field {loc[-1]!r}{registry.suggest(str(loc[-1]), names)}"
        elif kind == "missing":
            msg = f"missing required field {loc[-1]!r}"
        elif kind == "value_error":  # a model validator's own message
            loc = _data_loc(loc, data)
            msg = str(err.get("ctx", {}).get("error", err["msg"]))
        else:
            loc = _data_loc(loc, data)  # drops pydantic's union-member tags
            info = _field_at(cls, loc)
            if info is not None:
                msg = f"expected {_describe(info.annotation, info.metadata)}"
            else:
                msg = err["msg"].replace("Input should be", "expected")
            msg += f", got {show(err.get('input'))}"
        out.setdefault(loc, msg)
    return list(out.items())


def _data_loc(loc: Loc, data: Any) -> Loc:
    """The longest prefix of ``loc`` that exists in ``data``."""
    out: list[Any] = []
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            break
        out.append(part)
    return tuple(out)


def _is_model(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, BaseModel)


def _field_at(cls: type[BaseModel], loc: Loc) -> Any:
    info: Any = None
    for part in loc:
        if not _is_model(cls) or part not in cls.model_fields:
            return None
        info = cls.model_fields[part]
        cls = info.annotation
    return info


def _model_at(cls: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    info = _field_at(cls, loc) if loc else None
    target = info.annotation if info is not None else (cls if not loc else None)
    return target if _is_model(target) else None


_BOUNDS = {at.Gt: "greater than {}", at.Ge: "at least {}", at.Lt: "less than {}",
           at.Le: "at most {}"}


def _describe(ann: Any, metadata: list[Any] | tuple[Any, ...] = ()) -> str:
    """A type annotation in words: ``Annotated[int, Gt(0)]`` → ``a positive integer``."""
    origin = get_origin(ann)
    if origin is Annotated:
        base, *meta = get_args(ann)
        return _describe(base, (*metadata, *meta))
    if origin in (Union, types.UnionType):
        args = get_args(ann)
        words = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(words + (["null"] if type(None) in args else []))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(ann))
    if _is_model(ann):
        return "a mapping with fields " + ", ".join(ann.model_fields)
    if ann is bool:
        return "true or false"
    if ann in (int, float):
        noun = "integer" if ann is int else "number"
        limits = [_BOUNDS[type(m)].format(getattr(m, type(m).__name__.lower()))
                  for m in metadata if type(m) in _BOUNDS]
        if limits in (["greater than 0"], ["at least 0"]):
            return f"a {'positive' if limits[0][0] == 'g' else 'non-negative'} {noun}"
        return " ".join([f"{'an' if ann is int else 'a'} {noun}", " and ".join(limits)]).strip()
    if ann is str:
        return "a string"
    if ann is dict or origin is dict:
        return "a mapping"
    return getattr(ann, "__name__", str(ann))
