"""policies.yaml mistakes are reported with the exact FILE:LINE:COLUMN, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.directory import load_directory
from gateway.policy import wordlists
from gateway.policy.loader import load_policy
from gateway.yamlsrc import SourceErrors
from tests.factories import write_district_config

GOOD_HEAD = """\
version: 1
lexicons:
  harassment: [idiot]
notices:
  hello: "Hi {recipient}"
exemptions:
  - id: P3
    reason: reported
    when: {relationship: reported}
rules:
"""


def _errors(tmp_path: Path, rules: str, head: str = GOOD_HEAD) -> list[str]:
    settings = load_settings(write_district_config(tmp_path, policy=head + rules))
    with pytest.raises(SourceErrors) as info:
        load_policy(settings, load_directory(settings))
    return [str(e).split("policies.yaml:", 1)[1] for e in info.value.errors]


BROKEN = [
    ("unknown action", """\
  - id: A
    reason: r
    when: {sender: {role: staff}}
    action: hodl
""", "14:13: unknown action 'hodl' (did you mean 'hold'?)"),
    ("unknown rule key", """\
  - id: A
    reason: r
    when: {sender: {role: staff}}
    action: hold
    notfy: [sender]
""", "15:5: unknown key 'notfy' (did you mean 'notify'?)"),
    ("unknown condition key", """\
  - id: A
    reason: r
    when:
      recipeint: {role: staff}
    action: hold
""", "14:7: unknown key 'recipeint' (did you mean 'recipient'?)"),
    ("bad role", """\
  - id: A
    reason: r
    when: {sender: {role: stuff}}
    action: hold
""", "13:27: 'stuff' is not one of staff, student, parent, external (did you mean 'staff'?)"),
    ("unknown detector", """\
  - id: A
    reason: r
    when: {findings: {detector: ssnn}}
    action: hold
""", "13:33: unknown detector 'ssnn' (did you mean 'ssn'?)"),
    ("unknown lexicon", """\
  - id: A
    reason: r
    when:
      findings: {detector: ["lexicon:harassment", "lexicon:harrasment"]}
    action: hold
""", "14:51: unknown detector 'lexicon:harrasment' (did you mean 'lexicon:harassment'?)"),
    ("threshold type", """\
  - id: A
    reason: r
    when:
      findings: {detector: roster, min_distinct: five}
    action: hold
""", "14:50: 'min_distinct' must be an integer"),
    ("threshold bool", """\
  - id: A
    reason: r
    when:
      history: {within_days: 30, at_least: true}
    action: hold
""", "14:44: 'at_least' must be an integer, not true/false"),
    ("bad regex", """\
  - id: A
    reason: r
    when:
      subject: {matches: "grades ("}
    action: hold
""", "14:26: bad regular expression: missing ), unterminated subpattern at position 7"),
    ("unknown exemption", """\
  - id: A
    reason: r
    when: {sender: {role: staff}}
    exempt: [P33]
    action: hold
""", "14:14: unknown exemption 'P33' (did you mean 'P3'?)"),
    ("unknown notice", """\
  - id: A
    reason: r
    when: {sender: {role: staff}}
    action: annotate
    annotate: {notice: helo}
""", "15:24: unknown notice 'helo' (did you mean 'hello'?)"),
    ("duplicate id", """\
  - id: A
    reason: r
    when: {sender: {role: staff}}
    action: hold
  - id: A
    reason: r
    when: {sender: {role: staff}}
    action: hold
""", "15:9: duplicate id 'A'"),
    ("duplicate key", """\
  - id: A
    reason: r
    reason: s
    when: {sender: {role: staff}}
    action: hold
""", "13:5: duplicate key 'reason' (first defined on line 12)"),
    ("missing action", """\
  - id: A
    reason: r
    when: {sender: {role: staff}}
""", "11:5: a rule needs an 'action' (relay, annotate, hold, reject)"),
    ("bad mode", """\
  - id: A
    reason: r
    when: {sender: {role: staff}}
    action: hold
    mode: monitr
""", "15:11: 'mode' must be one of enforce, monitor, not 'monitr' (did you mean 'monitor'?)"),
]


@pytest.mark.parametrize(("label", "rules", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_error_points_at_line_and_column(tmp_path: Path, label: str, rules: str,
                                         expected: str) -> None:
    assert expected in _errors(tmp_path, rules)


def test_unknown_placeholder_in_notice(tmp_path: Path) -> None:
    head = GOOD_HEAD.replace('"Hi {recipient}"', '"Hi {student_adress}"')
    errors = _errors(tmp_path, "", head)
    assert errors[0].startswith("5:10: unknown placeholder '{student_adress}' "
                                "(did you mean 'student_address'?)")


def test_all_errors_are_collected(tmp_path: Path) -> None:
    errors = _errors(tmp_path, """\
  - id: A
    reason: r
    when: {sender: {role: stuff}}
    action: hodl
  - id: B
    reason: r
    when: {findings: {detector: nope}}
    action: hold
""")
    assert len(errors) == 3


def test_shipped_policy_is_valid_and_complete(tmp_path: Path) -> None:
    settings = load_settings(write_district_config(tmp_path))
    policy = load_policy(settings, load_directory(settings))
    ids = [r.id for r in policy.rules]
    for rule in ("P1", "P2", "P5", "P6", "P7", "P8", "P9", "P10", "P11", "P12", "P13", "P14",
                 "P15"):
        assert rule in ids
    assert [e.id for e in policy.exemptions] == ["P3"]
    assert policy.lexicons["restricted_subjects"] == ()
    assert policy.lexicons["harassment"]
    exempted = {r.id for r in policy.rules if r.exempt}
    assert exempted == {"P1", "P2", "P5", "P6", "P14", "P15"}  # never P7-P12


def test_unreadable_policy_file(tmp_path: Path) -> None:
    settings = load_settings(write_district_config(tmp_path))
    (tmp_path / "policies.yaml").unlink()
    with pytest.raises(SourceErrors) as info:
        load_policy(settings, load_directory(settings))
    assert "policies.yaml:1:1: cannot read file" in str(info.value)


def _lexicons(tmp_path: Path, lexicons: str) -> dict[str, tuple[str, ...]]:
    policy = f"version: 1\nlexicons:\n{lexicons}rules: []\n"
    settings = load_settings(write_district_config(tmp_path, policy=policy))
    return dict(load_policy(settings, load_directory(settings)).lexicons)


def test_a_lexicon_of_packaged_words_own_terms_and_exceptions(tmp_path: Path) -> None:
    lexicons = _lexicons(tmp_path, """\
  harassment:
    packaged: [better-profanity]
    terms: [watch your back, Kill  Yourself]
    except: [hell, DAMN, kill yourself]
  plain: [one, two]
""")
    words = lexicons["harassment"]
    assert "bitch" in words and "watch your back" in words and len(words) > 800
    assert "hell" not in words and "damn" not in words and "Kill  Yourself" not in words
    assert lexicons["plain"] == ("one", "two")


def test_a_lexicon_of_own_terms_only(tmp_path: Path) -> None:
    assert _lexicons(tmp_path, "  harassment: {terms: [a, b]}\n") == {"harassment": ("a", "b")}


def test_an_unknown_packaged_list_points_at_its_line(tmp_path: Path) -> None:
    head = "version: 1\nlexicons:\n  harassment:\n    packaged: [beter-profanity]\n"
    errors = _errors(tmp_path, "  []\n", head=head.replace("version: 1\n", "version: 1\n")
                     + "rules:\n")
    assert errors == ["4:16: unknown packaged word list 'beter-profanity' (did you mean "
                      "'better-profanity'?); known: better-profanity"]


def test_a_missing_word_list_package_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(wordlists.importlib.util, "find_spec", lambda _name: None)
    head = "version: 1\nlexicons:\n  harassment: {packaged: [better-profanity]}\nrules:\n"
    errors = _errors(tmp_path, "  []\n", head=head)
    assert errors == ["3:27: the Python package 'better_profanity' is not installed"]
