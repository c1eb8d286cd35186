"""Reading a YAML spec file: its data, the line of every key and item, and field names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ntkbench.spec.errors import Problem

Loc = tuple[Any, ...]  # a path into a YAML document: ("initializers", 1, "name")


@dataclass
class Doc:
    """A parsed YAML file: its data, the line of every key / item, and where problems go."""

    file: str
    data: Any
    lines: dict[Loc, int]
    problems: list[Problem]

    def line(self, loc: Loc) -> int | None:
        """Line of ``loc``, or of its nearest enclosing entry that the file spells out."""
        for k in range(len(loc), -1, -1):
            if loc[:k] in self.lines:
                return self.lines[loc[:k]]
        return None

    def error(self, loc: Loc, message: str) -> None:
        self.problems.append(Problem(self.file, self.line(loc), field_name(loc), message))


def read_yaml(path: Path, file: str, problems: list[Problem]) -> Doc | None:
    """Parse ``path`` into a :class:`Doc` whose data is a mapping, or record why not."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(Problem(file, None, "file", f"cannot read: {exc.strerror or exc}"))
        return None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = f" ({exc.context})" if exc.context else ""
        problems.append(Problem(file, mark.line + 1 if mark else None, "yaml",
                                f"invalid YAML: {exc.problem}{context}"))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(file, None, "yaml", f"invalid YAML: {exc}"))
        return None
    doc = Doc(file, data, {(): node.start_mark.line + 1 if node else 1}, problems)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else show(data)
        doc.error((), f"expected a mapping of fields (key: value lines), got {got}")
        return None
    _map_lines(node, (), doc)
    return doc


def _map_lines(node: yaml.Node, loc: Loc, doc: Doc) -> None:
    """Record the 1-based line of every mapping key and sequence item below ``node``."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key: Any = key_node.value
            if key_node.tag.endswith(":int"):
                key = int(key.replace("_", ""), 0)
            sub = loc + (key,)
            if sub in doc.lines and key != "<<":
                doc.lines[sub] = key_node.start_mark.line + 1
                doc.error(sub, f"duplicate key {key!r}: it is already set above")
            doc.lines[sub] = key_node.start_mark.line + 1
            _map_lines(value_node, sub, doc)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            doc.lines[loc + (i,)] = item.start_mark.line + 1
            _map_lines(item, loc + (i,), doc)


def field_name(loc: Loc) -> str:
    """``("initializers", 1, "name")`` → ``initializers[1].name``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "top level"


def show(value: Any) -> str:
    """A YAML value as an error message quotes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        kind = "mapping" if isinstance(value, dict) else "list"
        return f"an empty {kind}" if not value else f"a {kind}"
    return repr(value)
