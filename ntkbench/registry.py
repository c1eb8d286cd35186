"""Plugin registries: initializers, tasks, backends and metrics.

Every registry maps a name to an entry that remembers where it came from (``origin``:
``builtin``, ``entry point <dist>``, or the ``module:function`` / ``file.py:function`` source it
was loaded from). Third-party initializers are found three ways:

1. ``register_initializer("name")`` as a decorator, in code imported before the run;
2. an installed package declaring the entry point group ``ntkbench.initializers``
   (``my_init = "my_package.inits:my_init"``), discovered lazily on first lookup;
3. a ``source:`` in the suite YAML, ``path/to/file.py:function`` or ``module:function``,
   loaded with :func:`load_source`.

An initializer's parameters are its keyword-only arguments after ``layer``; their defaults and
annotations are the declared parameters, so ``ntkbench list initializers`` and spec validation
see them without any extra declaration.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")

INITIALIZER_GROUP = "ntkbench.initializers"


class RegistryError(LookupError):
    """A name that is not registered, or a plugin that cannot be loaded."""


def suggest(name: str, choices: list[str] | tuple[str, ...], n: int = 3) -> str:
    """`` — did you mean 'x'?`` for the closest registered names, or a list of what exists."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.6)
    if close:
        return " — did you mean " + " or ".join(repr(c) for c in close) + "?"
    return " (known: " + ", ".join(sorted(choices)) + ")" if choices else ""


@dataclass(frozen=True)
class Param:
    """A declared parameter of a plugin: name, default (``inspect.Parameter.empty`` if
    required) and annotation as a string."""

    name: str
    default: Any
    annotation: str

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def describe(self) -> str:
        ann = f": {self.annotation}" if self.annotation else ""
        return f"{self.name}{ann}" if self.required else f"{self.name}{ann} = {self.default!r}"


def declared_params(fn: Callable, exclude: tuple[str, ...] = ()) -> tuple[Param, ...]:
    """Keyword-only parameters of ``fn`` that a user may set from YAML.

    For initializers these are the arguments after ``*, layer``; for tasks those after ``*, seed``
    (the names in ``exclude`` are supplied by ntkbench). ``**kwargs`` is not a declaration.
    """
    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.name in exclude:
            continue
        ann = p.annotation
        if ann is inspect.Parameter.empty:
            ann_s = ""
        elif isinstance(ann, str):
            ann_s = ann
        else:
            ann_s = getattr(ann, "__name__", str(ann))
        out.append(Param(p.name, p.default, ann_s))
    return tuple(out)


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered plugin."""

    name: str
    obj: T
    origin: str = "builtin"
    params: tuple[Param, ...] = ()
    doc: str = ""

    def summary(self) -> str:
        """The docstring's first paragraph, on one line."""
        first = (self.doc or "").strip().split("\n\n")[0]
        return " ".join(line.strip() for line in first.splitlines())


@dataclass
class Registry(Generic[T]):
    """Name → plugin, with lazy entry-point discovery and helpful lookup errors."""

    kind: str
    group: str | None = None
    supplied: tuple[str, ...] = ()  # keyword arguments ntkbench passes itself, not user params
    builtin_module: str | None = None  # imported on first lookup; registers the built-ins
    _entries: dict[str, Entry[T]] = field(default_factory=dict)
    _discovered: bool = False

    def add(self, entry: Entry[T], *, replace: bool = False) -> Entry[T]:
        if entry.name in self._entries and not replace:
            prev = self._entries[entry.name]
            if prev.origin != entry.origin:
                raise RegistryError(
                    f"{self.kind} {entry.name!r} from {entry.origin} clashes with the one "
                    f"from {prev.origin}; pick another name"
                )
        self._entries[entry.name] = entry
        return entry

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        if self.builtin_module:
            importlib.import_module(self.builtin_module)
        for ep in entry_points(group=self.group) if self.group else ():
            if ep.name in self._entries:
                continue
            dist = getattr(ep, "dist", None)
            origin = f"entry point {dist.name if dist else ep.value}"
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must not break the others
                print(f"ntkbench: cannot load {self.kind} plugin {ep.name!r} ({ep.value}): "
                      f"{exc}", file=sys.stderr)
                continue
            self.add(self.make_entry(ep.name, obj, origin))

    def make_entry(self, name: str, obj: T, origin: str) -> Entry[T]:
        params = declared_params(obj, self.supplied) if callable(obj) else ()
        return Entry(name, obj, origin, params, inspect.getdoc(obj) or "")

    def get(self, name: str) -> Entry[T]:
        if name not in self._entries:
            self._discover()
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(
                f"unknown {self.kind} {name!r}{suggest(name, self.names())}"
            ) from None

    def __contains__(self, name: str) -> bool:
        self._discover()
        return name in self._entries

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._entries)

    def __iter__(self) -> Iterator[Entry[T]]:
        self._discover()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def register(self, name: str | None = None, *, origin: str = "builtin") -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(self.make_entry(name or obj.__name__, obj, origin))
            return obj

        return deco


initializers: Registry[Callable] = Registry(
    "initializer", INITIALIZER_GROUP, ("layer",), "ntkbench.initializers")
tasks: Registry[Callable] = Registry("task", "ntkbench.tasks", ("seed",), "ntkbench.data")
backends: Registry[Callable] = Registry("backend", "ntkbench.backends", (), "ntkbench.backends")


def register_initializer(name: str | None = None) -> Callable[[Callable], Callable]:
    """Decorator that registers ``fn(shape, rng, *, layer, **params) -> np.ndarray``."""
    return initializers.register(name, origin="registered in code")


def load_source(source: str, base_dir: Path | None = None) -> Callable:
    """Load ``path/to/file.py:function`` (relative to ``base_dir``) or ``module:function``."""
    if ":" not in source:
        raise RegistryError(
            f"source {source!r} must be 'path/to/file.py:function' or 'module:function'"
        )
    target, _, attr = source.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise RegistryError(f"source file {str(path)!r} does not exist")
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
        mod_name = f"ntkbench_plugin_{path.stem}_{digest}"
        module = sys.modules.get(mod_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                del sys.modules[mod_name]
                raise RegistryError(f"importing {str(path)!r} failed: {exc!r}") from exc
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise RegistryError(f"cannot import module {target!r}: {exc}") from exc
    try:
        fn = getattr(module, attr)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise RegistryError(
            f"{target!r} has no attribute {attr!r}{suggest(attr, names)}"
        ) from None
    if not callable(fn):
        raise RegistryError(f"{source!r} is not a function")
    return fn


def resolve_initializer(name: str, source: str | None = None,
                        base_dir: Path | None = None) -> Entry[Callable]:
    """The initializer entry for a suite's ``{name, source}``: registered, or loaded from source."""
    if source is None:
        return initializers.get(name)
    fn = load_source(source, base_dir)
    return initializers.make_entry(name, fn, source)
