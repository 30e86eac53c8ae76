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


def _auth_case(name: str, auth: str, client_ip: str = "203.0.113.9", action: str = "relay",
               mail_from: str = f"principal@{STAFF_DOMAIN}") -> str:
    return f"""\
- name: {name}
  mail_from: {mail_from}
  from: principal@{STAFF_DOMAIN}
  rcpt: [mbrown@{STAFF_DOMAIN}]
  client_ip: {client_ip}
  auth: {auth}
  expect: {{mbrown@{STAFF_DOMAIN}: {action}}}
"""


def test_recorded_authentication_decides_p13(tmp_path: Path, scripted: None,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = write_district_config(tmp_path)
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        _auth_case("verified", "{spf: pass, dkim: pass, dmarc: pass, from_domain_verified: true}")
        + _auth_case("dkim only", "{dkim: pass}", mail_from="bounce@mailer.example")
        + _auth_case("unverified", "{spf: fail, dmarc: fail}", action="annotate")
        + _auth_case("outside spf pass", "{spf: pass}", mail_from="x@lookalike.example",
                     action="annotate")
        + _auth_case("dns failed", "{spf: temperror, dmarc: temperror}", action="annotate"))
    status = main(["policy", "test", "--config", str(config), str(cases)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "5 passed, 0 failed" in out
    # Without `auth:` the same verified mail is decided as not authenticated: tagged.
    cases.write_text(_auth_case("verified", "{dmarc: pass}").replace("  auth: {dmarc: pass}\n",
                                                                      ""))
    assert main(["policy", "test", "--config", str(config), str(cases)]) == 1
    assert "expected relay, got annotate (rules: P13)" in capsys.readouterr().out


def test_auth_errors_name_their_position(tmp_path: Path, scripted: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = write_district_config(tmp_path)
    cases = tmp_path / "cases.yaml"
    cases.write_text(_auth_case("typo", "{spf: passed, dkm: pass}")
                     + _auth_case("contradiction", "{dmarc: fail, from_domain_verified: true}")
                     + _auth_case("aligned", "{spf: pass, dmarc: fail}")
                     + _auth_case("scalar", "pass"))
    assert main(["policy", "test", "--config", str(config), str(cases)]) == 2
    err = capsys.readouterr().err
    assert "cases.yaml:6:15: 'spf' must be one of pass, fail, softfail" in err
    assert "(did you mean 'pass'?)" in err
    assert "cases.yaml:6:23: unknown key 'dkm' (did you mean 'dkim'?)" in err
    assert "cases.yaml:13:45: 'from_domain_verified: true' contradicts 'dmarc: fail'" in err
    assert "cases.yaml:20:28: an SPF or DKIM pass aligned with the From domain verifies it" in err
    assert "cases.yaml:27:9: 'auth' must be a mapping" in err


def test_auth_on_a_trusted_client_is_a_failure(tmp_path: Path, scripted: None,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = write_district_config(tmp_path)
    cases = tmp_path / "cases.yaml"
    cases.write_text(_auth_case("trusted", "{dmarc: pass}", client_ip="127.0.0.1"))
    assert main(["policy", "test", "--config", str(config), str(cases)]) == 1
    assert ("cases.yaml:6:3: 'auth' is for mail from an untrusted client_ip; 127.0.0.1 is in "
            "trusted_networks") in capsys.readouterr().out
