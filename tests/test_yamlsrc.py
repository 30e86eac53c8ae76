"""YAML sources: hostile or broken input (found by fuzzing) is a SourceError with a position,
never a crash, a hang or a blow-up in memory."""

from __future__ import annotations

import pytest

from gateway.yamlsrc import SourceErrors, parse_yaml


def _yaml_errors(text: str) -> list[str]:
    with pytest.raises(SourceErrors) as info:
        parse_yaml(text, "f.yaml")
    return [str(e) for e in info.value.errors]


@pytest.mark.parametrize(("text", "where"), [
    ("\x00\x01garbage", "f.yaml:1:1:"),  # binary garbage: PyYAML's ReaderError
    ("a: b\nc: \x07", "f.yaml:2:4:"),
])
def test_yaml_control_characters_are_a_source_error(text: str, where: str) -> None:
    errors = _yaml_errors(text)
    assert errors[0].startswith(where) and "not allowed" in errors[0]


@pytest.mark.parametrize("text", ["[" * 3000 + "]" * 3000,
                                  "".join("  " * i + "a:\n" for i in range(1500))])
def test_yaml_deep_nesting_is_a_source_error(text: str) -> None:
    assert "nested too deeply" in _yaml_errors(text)[0]


@pytest.mark.parametrize("text", ["a: &x [*x]", "&x {a: *x}"])
def test_yaml_recursive_alias_is_a_source_error(text: str) -> None:
    assert "alias refers to a node that contains it" in _yaml_errors(text)[0]


def test_yaml_billion_laughs_is_bounded() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    assert "once aliases are expanded" in _yaml_errors("\n".join(lines))[0]


def test_yaml_small_aliases_still_work() -> None:
    assert parse_yaml("a: &x [1, 2]\nb: *x\n", "f.yaml").data == {"a": [1, 2], "b": [1, 2]}


@pytest.mark.parametrize(("text", "message"), [
    ("a: !foo bar", "f.yaml:1:4: YAML: could not determine a constructor for the tag '!foo'"),
    ("a: !!python/object:os.system x", "f.yaml:1:4: YAML: could not determine a constructor"),
    ("a: 2020-13-45", "f.yaml:1:4: YAML: bad value (month must be in 1..12)"),
    ("a: " + "9" * 5000, "f.yaml:1:4: YAML: bad value"),
    ("a: !!pairs 5", "f.yaml:1:4: YAML: expected a sequence"),
    ("b: &x {c: 1}\nd:\n  <<: *x\n", "f.yaml:3:3: YAML merge keys (<<) are not supported"),
])
def test_yaml_bad_scalars_and_tags_are_source_errors(text: str, message: str) -> None:
    assert _yaml_errors(text)[0].startswith(message)


def test_yaml_keys_equal_as_values_are_duplicates() -> None:
    # 1 and 1.0 are the same dict key but different texts: was a KeyError
    assert _yaml_errors("1: a\n1.0: b")[0] == ("f.yaml:2:1: duplicate key '1.0' "
                                                "(first defined on line 1)")
