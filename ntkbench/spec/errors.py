"""What is wrong with a spec file, and where: the values every reader reports into."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec file: where (file, 1-based line, field) and what."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}"


class SpecError(Exception):
    """A suite or task file that cannot be used; ``problems`` lists everything found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(dict.fromkeys(problems))
        super().__init__("\n".join(map(str, self.problems)))
