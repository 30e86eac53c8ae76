"""`gateway policy test`: failures reported with their position, a bad case file refused,
and the shipped cases (tests/policy/cases/) passing with the real inspection."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from tests.factories import REPO, STAFF_DOMAIN, STUDENT_DOMAIN, write_district_config


def test_policy_test_reports_failures_with_position(tmp_path: Path, scripted: None,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = write_district_config(tmp_path)
    cases = tmp_path / "cases.yaml"
    cases.write_text(f"""\
- name: right
  mail_from: jsmith@{STAFF_DOMAIN}
  rcpt: [alexj@gmail.example]
  expect: {{alexj@gmail.example: {{action: hold, rules: [P1]}}}}
- name: wrong
  mail_from: jsmith@{STAFF_DOMAIN}
  rcpt: alex@{STUDENT_DOMAIN}
  expect:
    alex@{STUDENT_DOMAIN}: hold
""")
    assert main(["policy", "test", "--config", str(config), str(cases)]) == 1
    out = capsys.readouterr().out
    assert "pass  right" in out
    assert "FAIL  wrong" in out
    assert f"cases.yaml:9:5: alex@{STUDENT_DOMAIN}: expected hold, got relay (rules: none)" in out
    assert "1 passed, 1 failed" in out


def test_policy_test_bad_case_file(tmp_path: Path, scripted: None,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = write_district_config(tmp_path)
    cases = tmp_path / "cases.yaml"
    cases.write_text("- name: x\n  mail_from: a@b.example\n  rcpt: [c@d.example]\n"
                     "  expect: {c@d.example: hodl}\n")
    assert main(["policy", "test", "--config", str(config), str(cases)]) == 2
    assert "cases.yaml:4:25: 'c@d.example' must be one of relay, annotate, hold, reject" \
        in capsys.readouterr().err


def test_shipped_cases_pass_with_real_inspection(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("gateway.inspect", reason="inspection not built yet")
    files = sorted(str(p) for p in (REPO / "tests" / "policy" / "cases").glob("*.yaml"))
    assert files
    status = main(["policy", "test", "--config", str(REPO / "config" / "gateway.yaml"),
                   *files])
    out = capsys.readouterr().out
    assert status == 0, out
