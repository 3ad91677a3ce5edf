"""What a bad configuration file produces: one `ConfigError` per problem, on one line.

`ConfigProblems` carries every problem of a file at once, for `relconsole check`; it
is itself the first of them, so code that only knows `ConfigError` still works.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from relconsole.suggest import one_line

KeyPath = tuple[str | int, ...]


def format_key(path: Iterable[str | int]) -> str:
    """("release", "steps", 2, "weight") -> "release.steps[2].weight"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            if not text or re.search(r"[\s.\[\]\"']", text) or not text.isprintable():
                out += f"[{json.dumps(text, ensure_ascii=False)}]"
            else:
                out += f".{text}" if out else text
    return out


def line_near(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of a key path, or of its nearest parent that is in the file."""
    path = tuple(path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


class ConfigError(Exception):
    """One problem with a configuration file, ready to print on one line.

    str(err) looks like
    ``relconsole.yaml:14: release.steps[2].weight: weights must increase (50 after 50).
    Make each step's weight larger than the one before.``
    """

    def __init__(
        self,
        path: Path | str | None,
        line: int | None,
        key: str,
        problem: str,
        hint: str = "",
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        # A key may hold anything YAML allows; the message must still be one line.
        self.key = "".join(c if c.isprintable() else repr(c)[1:-1] for c in key)
        self.problem = one_line(problem).rstrip(".")
        hint = one_line(hint)
        if hint and not hint.endswith((".", "?", "!")):
            hint += "."
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        key = f"{self.key}: " if self.key else ""
        text = f"{where}{key}{self.problem}."
        return f"{text} {self.hint}" if self.hint else text

    def __repr__(self) -> str:
        return f"ConfigError({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # keep pickling (multiprocessing, xdist) working
        return (ConfigError, (self.path, self.line, self.key, self.problem, self.hint))


def by_line(problems: Iterable[ConfigError]) -> list[ConfigError]:
    """Sorted by line, file-wide problems (no line) last; ties keep the order found."""
    return sorted(problems, key=lambda e: e.line if e.line is not None else math.inf)


class ConfigProblems(ConfigError):
    """Every problem found in one file, sorted by line (`load_config(..., collect=True)`).

    It reads as its first problem, so a caller that catches ConfigError and prints one
    line still prints something true; `problems` holds them all.
    """

    def __init__(self, problems: Sequence[ConfigError]) -> None:
        if not problems:
            raise ValueError("ConfigProblems needs at least one problem")
        self.problems = by_line(problems)
        first = self.problems[0]
        super().__init__(first.path, first.line, first.key, first.problem, first.hint)

    def __repr__(self) -> str:
        return f"ConfigProblems({[str(p) for p in self.problems]!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (ConfigProblems, (self.problems,))
