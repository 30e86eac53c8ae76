"""`gateway check`, `gateway policy validate` and `gateway policy test` end to end (in-process).

Most tests swap in a scripted inspector (findings named in an X-Test-Finding header) so they
pin this area's behaviour; the shipped cases run with the real inspection when it is present.
"""

from __future__ import annotations

import json
import re
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway import runtime
from gateway.cli import main
from gateway.model import Finding, Inspection
from tests.policy_helpers import REPO, STAFF, STUDENTS, write_config


class ScriptedInspector:
    def inspect(self, raw: bytes) -> Inspection:
        msg = message_from_bytes(raw)
        findings = []
        for value in msg.get_all("X-Test-Finding") or []:
            detector, count, location = value.split(" ", 2)
            findings.append(Finding(detector, int(count), location))
        return Inspection(tuple(findings), (), str(msg.get("Subject", "")), None,
                          msg.get("From"), False, True)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "build_inspector",
                        lambda settings, directory, lexicons: ScriptedInspector())


def _eml(tmp_path: Path, *, sender: str, to: list[str], cc: list[str] = (),
         findings: list[str] = ()) -> Path:
    msg = EmailMessage()
    msg["From"] = f"Someone <{sender}>"
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = "test"
    for value in findings:
        msg["X-Test-Finding"] = value
    msg.set_content("hello\n")
    path = tmp_path / "m.eml"
    path.write_bytes(msg.as_bytes())
    return path


def test_check_json_shape(tmp_path: Path, scripted: None,
                          capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    eml = _eml(tmp_path, sender=f"jsmith@{STAFF}", to=["someone@example.com"],
               cc=[f"alex@{STUDENTS}"], findings=["ssn 1 attachment grades.xlsx"])
    assert main(["check", "--config", str(config), "--json", str(eml)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sender"] == {"address": f"jsmith@{STAFF}", "role": "staff",
                             "district_account": True}
    first, second = out["recipients"]
    assert {k: first[k] for k in ("address", "role", "district_account", "action", "rules")} \
        == {"address": "someone@example.com", "role": "external", "district_account": False,
            "action": "hold", "rules": ["P7", "P9"]}
    assert (second["address"], second["action"], second["rules"]) == \
        (f"alex@{STUDENTS}", "relay", [])
    assert first["reasons"][0]["rule"] == "P7"
    assert out["findings"] == [{"detector": "ssn", "count": 1, "distinct": 1,
                                "location": "attachment grades.xlsx"}]
    assert not (tmp_path / "var").exists()  # a dry run creates no database


def test_check_envelope_options_and_untrusted_client(tmp_path: Path, scripted: None,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    eml = _eml(tmp_path, sender="ignored@example.com", to=["ignored@example.com"])
    argv = ["check", "--config", str(config), "--json", "--mail-from", f"jsmith@{STAFF}",
            "--rcpt", f"mbrown@{STAFF}", "--rcpt", "alexj@gmail.example",
            "--client-ip", "198.51.100.4", str(eml)]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(r["address"], r["action"], r["rules"]) for r in out["recipients"]] == [
        (f"mbrown@{STAFF}", "annotate", ["P13"]),
        ("alexj@gmail.example", "hold", ["P1", "P13"])]
    assert out["client"] == {"ip": "198.51.100.4", "trusted": False}


def test_check_readable_output_explains(tmp_path: Path, scripted: None,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    eml = _eml(tmp_path, sender="alexj@gmail.example", to=[f"jsmith@{STAFF}"])
    assert main(["check", "--config", str(config), str(eml)]) == 0
    text = capsys.readouterr().out
    assert "sender    alexj@gmail.example (student, personal account)" in text
    assert f"recipient jsmith@{STAFF} (staff, District account): ANNOTATE" in text
    assert "P5 annotate: student personal address writing to a staff District account" in text


@pytest.mark.parametrize("client_ip", ["notanip", "198.51.100", "300.1.2.3"])
def test_check_refuses_a_client_ip_that_is_not_an_address(
        tmp_path: Path, scripted: None, client_ip: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A typo must not silently run the message as from some untrusted client."""
    config = write_config(tmp_path)
    eml = _eml(tmp_path, sender=f"jsmith@{STAFF}", to=[f"alex@{STUDENTS}"])
    assert main(["check", "--config", str(config), "--client-ip", client_ip, str(eml)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "is not an IPv4 or IPv6 address" in captured.err


@pytest.mark.parametrize("problem", ["missing eml", "broken config"])
def test_check_unreadable_input_is_an_error(tmp_path: Path, scripted: None, problem: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    eml = _eml(tmp_path, sender=f"jsmith@{STAFF}", to=[f"alex@{STUDENTS}"])
    if problem == "missing eml":
        eml = tmp_path / "nope.eml"
    else:
        config.write_text("listen: [\n")
    assert main(["check", "--config", str(config), str(eml)]) != 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip()


def test_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "validate", "--config", str(write_config(tmp_path))]) == 0
    assert "valid" in capsys.readouterr().out


def test_validate_reports_every_file(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    policy = (REPO / "config" / "policies.yaml").read_text()
    policy = policy.replace("    action: hold\n\n  # P2", "    action: hodl\n\n  # P2")
    line = policy.splitlines().index("    action: hodl") + 1
    people = "address,role,person_id,name,supervisor,students\nx@y.example,boss,T1,X,,\n"
    config = write_config(tmp_path, policy=policy, people=people)
    assert main(["policy", "validate", "--config", str(config)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert any(e.endswith(f"policies.yaml:{line}:13: unknown action 'hodl' "
                          "(did you mean 'hold'?)") for e in err)
    assert any("people.csv:2:1: row skipped: the role column must be" in e for e in err)
    # Nothing else on stderr: each line is one error, as the SPEC's format says.
    assert err and all(re.match(r"^\S+:\d+:\d+: ", e) for e in err), err


def test_check_config_fails_on_skipped_directory_rows_as_validate_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The daemon starts without a broken row; a check before a start or reload fails on it
    (like `policy validate`), so a CI gate on either command sees the same verdict."""
    people = (f"address,role,person_id,name,supervisor,students\n"
              f"jsmith@{STAFF},staff,T1,Jo Smith,,\nx@y.example,boss,T2,X,,\n")
    relationships = "staff_id,student_id,relationship,reported_to,reported_on\n"
    config = write_config(tmp_path, people=people, relationships=relationships)
    assert main(["serve", "--check-config", "--config", str(config)]) == 1
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert "valid" not in captured.out
    assert len(err) == 1 and "people.csv:3:1: row skipped: the role column must be" in err[0]
    assert all(re.match(r"^\S+:\d+:\d+: ", e) for e in err), err
    assert main(["policy", "validate", "--config", str(config)]) == 1
    # With a policy error as well, both commands name both problems, nothing else.
    policy = (REPO / "config" / "policies.yaml").read_text().replace(
        "    action: hold\n\n  # P2", "    action: hodl\n\n  # P2")
    config = write_config(tmp_path, policy=policy, people=people, relationships=relationships)
    capsys.readouterr()
    for argv in (["serve", "--check-config"], ["policy", "validate"]):
        assert main([*argv, "--config", str(config)]) == 1
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 2 and "row skipped" in err[0] and "unknown action 'hodl'" in err[1]


def test_policy_test_reports_failures_with_position(tmp_path: Path, scripted: None,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    cases = tmp_path / "cases.yaml"
    cases.write_text(f"""\
- name: right
  mail_from: jsmith@{STAFF}
  rcpt: [alexj@gmail.example]
  expect: {{alexj@gmail.example: {{action: hold, rules: [P1]}}}}
- name: wrong
  mail_from: jsmith@{STAFF}
  rcpt: alex@{STUDENTS}
  expect:
    alex@{STUDENTS}: hold
""")
    assert main(["policy", "test", "--config", str(config), str(cases)]) == 1
    out = capsys.readouterr().out
    assert "pass  right" in out
    assert "FAIL  wrong" in out
    assert f"cases.yaml:9:5: alex@{STUDENTS}: expected hold, got relay (rules: none)" in out
    assert "1 passed, 1 failed" in out


def test_policy_test_bad_case_file(tmp_path: Path, scripted: None,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    cases = tmp_path / "cases.yaml"
    cases.write_text("- name: x\n  mail_from: a@b.example\n  rcpt: [c@d.example]\n"
                     "  expect: {c@d.example: hodl}\n")
    assert main(["policy", "test", "--config", str(config), str(cases)]) == 2
    assert "cases.yaml:4:25: 'c@d.example' must be one of relay, annotate, hold, reject" \
        in capsys.readouterr().err


def test_shipped_cases_pass_with_real_inspection(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("gateway.inspect", reason="inspection not built yet")
    files = sorted(str(p) for p in (REPO / "tests" / "policy").glob("*.yaml"))
    status = main(["policy", "test", "--config", str(REPO / "config" / "gateway.yaml"),
                   *files])
    out = capsys.readouterr().out
    assert status == 0, out
