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
MAX_VALUES = 100_000  # per document, after alias expansion


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
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or a NUL in the path
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
        started = exc.context_mark
        if exc.problem and exc.context and started is not None and started.line + 1 != line:
            # PyYAML notices an unclosed bracket or quote where the next thing fails to fit,
            # often lines later; say where the unfinished part began, which is what to fix.
            problem += (f" ({exc.context.removeprefix('while ')} that starts at line "
                        f"{started.line + 1}, column {started.column + 1})")
        raise SourceErrors([SourceError(name, line, col, f"YAML syntax: {problem}",
                                        "yaml-syntax")]) from None
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow (NUL, ...)
        line, col = _position(text, getattr(exc, "position", 0))
        char = getattr(exc, "character", None)
        problem = (f"character #x{char:04x} is not allowed" if isinstance(char, int)
                   else "invalid YAML")
        raise SourceErrors([SourceError(name, line, col, f"YAML syntax: {problem}",
                                        "yaml-syntax")]) from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise SourceErrors([SourceError(name, 1, 1, "YAML syntax: nested too deeply",
                                        "yaml-syntax")]) from None
    located = Located(name, None)
    errors: list[SourceError] = []
    if node is None:
        located.data = {}
        located.marks[()] = (1, 1)
        return located
    try:
        located.data = _Converter(located, errors).convert(node, ())
    except RecursionError:
        errors.append(SourceError(name, 1, 1, "YAML: nested too deeply"))
    if errors:
        raise SourceErrors(errors)
    return located


def _position(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    position = max(0, min(position, len(text)))
    return text.count("\n", 0, position) + 1, position - text.rfind("\n", 0, position)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Converter:
    """Node tree → plain data. Aliases share nodes, so a cycle is reported rather than
    followed, and the expanded size is bounded ("billion laughs": a few lines that expand to
    billions of values)."""

    def __init__(self, located: Located, errors: list[SourceError]):
        self.located = located
        self.errors = errors
        self.active: set[int] = set()  # ids of the collection nodes being converted
        self.left = MAX_VALUES
        self.constructor = yaml.SafeLoader("")  # per document: it caches every node it saw

    def fail(self, node: yaml.Node, message: str) -> None:
        line, col = _mark(node)
        self.errors.append(SourceError(self.located.file, line, col, message))

    def convert(self, node: yaml.Node, path: YamlPath) -> Any:
        located = self.located
        located.marks[path] = _mark(node)
        self.left -= 1
        if self.left < 0:
            if self.left == -1:
                self.fail(node, f"YAML: more than {MAX_VALUES} values once aliases are "
                          "expanded")
            return None
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            return self.scalar(node)
        if id(node) in self.active:
            self.fail(node, "YAML: an alias refers to a node that contains it")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: YamlPath) -> dict[Any, Any]:
        located = self.located
        result: dict[Any, Any] = {}
        first: dict[Any, int] = {}  # key (and its text) -> line, for duplicate reports
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.fail(key_node, "YAML merge keys (<<) are not supported")
                continue
            key = self.scalar(key_node)
            if isinstance(key, list | dict):
                self.fail(key_node, "a key must be a scalar")
                continue
            key_path = (*path, str(key))
            line = first.get(key, first.get(str(key)))
            if line is not None:
                kline, kcol = _mark(key_node)
                self.errors.append(SourceError(
                    located.file, kline, kcol,
                    f"duplicate key '{key}' (first defined on line {line})", "duplicate-key"))
                continue
            first[key] = first[str(key)] = _mark(key_node)[0]
            located.key_marks[key_path] = _mark(key_node)
            result[key] = self.convert(value_node, key_path)
        return result

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return []
        # Resolves int/bool/null/timestamps by tag exactly as yaml.safe_load does.
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:  # an unknown tag (!foo, !!python/..., <<)
            self.fail(node, f"YAML: {exc.problem or 'bad value'}")
        except (ValueError, OverflowError, TypeError) as exc:  # 2020-13-45, a 5000-digit int
            self.fail(node, f"YAML: bad value ({exc})")
        return None


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return "not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else "bad file name"
