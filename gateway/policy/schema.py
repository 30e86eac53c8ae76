"""Typed access to a located YAML tree, collecting errors with their line and column.

The policy loader asks "give me the list at rules.3.notify, each item one of these" and gets
a clean value or a default plus an error pointing at the exact spot in the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.yamlsrc import Located, SourceError, YamlPath, did_you_mean

_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "a list", dict: "a mapping"}


class Reader:
    def __init__(self, located: Located):
        self.src = located
        self.errors: list[SourceError] = []

    def fail(self, path: YamlPath, message: str, *, key: bool = False,
             code: str = "invalid") -> None:
        error = self.src.error(path, message, key=key, code=code)
        if error not in self.errors:
            self.errors.append(error)

    @staticmethod
    def hint(word: str, choices: Iterable[str]) -> str:
        return did_you_mean(str(word), [str(c) for c in choices])

    def value(self, path: YamlPath) -> Any:
        node: Any = self.src.data
        for key in path:
            if isinstance(node, dict):
                node = node.get(key)
            elif isinstance(node, list) and isinstance(key, int) and key < len(node):
                node = node[key]
            else:
                return None
        return node

    def mapping(self, path: YamlPath, allowed: set[str] | None) -> dict[Any, Any]:
        """The mapping at `path` ({} if absent); unknown keys reported with a suggestion."""
        node = self.value(path)
        if node is None:
            return {}
        if not isinstance(node, dict):
            self.fail(path, f"'{_last(path)}' must be a mapping")
            return {}
        if allowed is not None:
            for key in node:
                if key not in allowed:
                    self.fail((*path, str(key)), f"unknown key '{key}'"
                              + self.hint(str(key), sorted(allowed)), key=True,
                              code="unknown-key")
        return node

    def seq(self, path: YamlPath) -> list[Any]:
        node = self.value(path)
        if node is None:
            return []
        if not isinstance(node, list):
            self.fail(path, f"'{_last(path)}' must be a list")
            return []
        return node

    def get(self, path: YamlPath, kind: type | tuple[type, ...], default: Any) -> Any:
        value = self.value(path)
        if value is None:
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.fail(path, f"'{_last(path)}' must be {_kind(kinds)}, not true/false")
            return default
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kinds):
            self.fail(path, f"'{_last(path)}' must be {_kind(kinds)}")
            return default
        return value

    def number(self, path: YamlPath, default: Any, *, kind: type = int,
               minimum: float = 0) -> Any:
        value = self.get(path, kind, default)
        if value is not None and value is not default and value < minimum:
            self.fail(path, f"'{_last(path)}' must be at least {minimum}")
            return default
        return value

    def required_str(self, path: YamlPath, missing: str) -> str | None:
        value = self.get(path, str, None)
        if value is None:
            if self.value(path) is None:
                self.fail(path[:-1], missing, code="missing")
            return None
        if not value.strip():
            self.fail(path, f"'{_last(path)}' must not be empty")
            return None
        return value.strip()

    def choice(self, path: YamlPath, choices: Iterable[str], default: str) -> str:
        options = tuple(choices)
        value = self.get(path, str, None)
        if value is None:
            return default
        if value not in options:
            self.fail(path, f"'{_last(path)}' must be one of {', '.join(options)}, not "
                      f"'{value}'" + self.hint(value, options))
            return default
        return value

    def str_list(self, path: YamlPath) -> tuple[str, ...]:
        """A list of strings; a single string is accepted as a one-item list."""
        node = self.value(path)
        if node is None:
            return ()
        if isinstance(node, str):
            return (node,)
        if not isinstance(node, list):
            self.fail(path, f"'{_last(path)}' must be a list of strings")
            return ()
        out = []
        for i, item in enumerate(node):
            if isinstance(item, str | int) and not isinstance(item, bool) and str(item).strip():
                out.append(str(item).strip())
            else:
                self.fail((*path, i), "must be a non-empty string")
        return tuple(out)

    def choice_list(self, path: YamlPath, choices: Iterable[str]) -> tuple[str, ...]:
        options = tuple(choices)
        values = self.str_list(path)
        node = self.value(path)
        out = []
        for i, value in enumerate(values):
            if value in options:
                out.append(value)
            else:
                where = (*path, i) if isinstance(node, list) else path
                self.fail(where, f"'{value}' is not one of {', '.join(options)}"
                          + self.hint(value, options))
        return tuple(out)


def _last(path: YamlPath) -> str:
    for part in reversed(path):
        if isinstance(part, str):
            return part
    return "value"


def _kind(kinds: tuple[type, ...]) -> str:
    return " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
