"""YAML loading that remembers where every value came from.

Operators fix YAML by line and column, so every error anywhere in the project (config,
policies, policy tests) is a `SourceError` that prints as `FILE:LINE:COLUMN: message`.
Duplicate keys are errors (PyYAML silently keeps the last one).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

YamlPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class SourceError:
    """One problem in a source file; `code` is a stable identifier for scripts."""

    file: str
    line: int
    column: int
    message: str
    code: str = "invalid"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class SourceErrors(Exception):
    """All the problems found in one or more files, collected rather than stopping at the first."""

    def __init__(self, errors: Iterable[SourceError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass(slots=True)
class Located:
    """Plain Python data from a YAML file plus the line/column of every key and value."""

    file: str
    data: Any
    marks: dict[YamlPath, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[YamlPath, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: YamlPath, *, key: bool = False) -> tuple[int, int]:
        """Line and column (1-based) of the value at `path`, or of its key when key=True.

        Falls back to the nearest enclosing node so that an error about a missing key points
        at the mapping that should have held it.
        """
        table = self.key_marks if key else self.marks
        while path:
            if path in table:
                return table[path]
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), (1, 1))

    def error(self, path: YamlPath, message: str, *, key: bool = False,
              code: str = "invalid") -> SourceError:
        line, col = self.where(path, key=key)
        return SourceError(self.file, line, col, message, code)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' suffix when a close choice exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def load_yaml(path: str | Path, *, display_name: str | None = None) -> Located:
    """Read a YAML file into plain data with positions; raise SourceErrors on any problem."""
    name = display_name or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceErrors([SourceError(name, 1, 1, f"cannot read file: {_os_reason(exc)}",
                                        "unreadable")]) from None
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> Located:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise SourceErrors([SourceError(name, line, col, f"YAML syntax: {problem}",
                                        "yaml-syntax")]) from None
    located = Located(name, None)
    errors: list[SourceError] = []
    if node is None:
        located.data = {}
        located.marks[()] = (1, 1)
        return located
    located.data = _convert(node, (), located, errors)
    if errors:
        raise SourceErrors(errors)
    return located


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _convert(node: yaml.Node, path: YamlPath, located: Located,
             errors: list[SourceError]) -> Any:
    located.marks[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar_value(key_node)
            if isinstance(key, list | dict):
                line, col = _mark(key_node)
                errors.append(SourceError(located.file, line, col, "a key must be a scalar"))
                continue
            key_path = (*path, str(key))
            if key in result:
                line, col = _mark(key_node)
                first = located.key_marks[key_path][0]
                errors.append(SourceError(located.file, line, col,
                                          f"duplicate key '{key}' (first defined on line {first})",
                                          "duplicate-key"))
                continue
            located.key_marks[key_path] = _mark(key_node)
            result[key] = _convert(value_node, key_path, located, errors)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), located, errors) for i, item in enumerate(node.value)]
    return _scalar_value(node)


def _scalar_value(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return []
    # Resolves int/bool/null/timestamps by tag exactly as yaml.safe_load does.
    return _CONSTRUCTOR.construct_object(node, deep=True)


_CONSTRUCTOR = yaml.SafeLoader("")


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return "not valid UTF-8"
