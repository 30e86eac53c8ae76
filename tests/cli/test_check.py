"""`gateway check` in-process, with the header-scripted inspector (tests/cli/conftest.py): the
JSON shape, envelope options, the readable explanation, and input errors."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.cli import main
from tests.factories import STAFF_DOMAIN, STUDENT_DOMAIN, write_district_config


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
    config = write_district_config(tmp_path)
    eml = _eml(tmp_path, sender=f"jsmith@{STAFF_DOMAIN}", to=["someone@example.com"],
               cc=[f"alex@{STUDENT_DOMAIN}"], findings=["ssn 1 attachment grades.xlsx"])
    assert main(["check", "--config", str(config), "--json", str(eml)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sender"] == {"address": f"jsmith@{STAFF_DOMAIN}", "role": "staff",
                             "district_account": True}
    first, second = out["recipients"]
    assert {k: first[k] for k in ("address", "role", "district_account", "action", "rules")} \
        == {"address": "someone@example.com", "role": "external", "district_account": False,
            "action": "hold", "rules": ["P7", "P9"]}
    assert (second["address"], second["action"], second["rules"]) == \
        (f"alex@{STUDENT_DOMAIN}", "relay", [])
    assert first["reasons"][0]["rule"] == "P7"
    assert out["findings"] == [{"detector": "ssn", "count": 1, "distinct": 1,
                                "location": "attachment grades.xlsx"}]
    assert not (tmp_path / "var").exists()  # a dry run creates no database


def test_check_envelope_options_and_untrusted_client(tmp_path: Path, scripted: None,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = write_district_config(tmp_path)
    eml = _eml(tmp_path, sender="ignored@example.com", to=["ignored@example.com"])
    argv = ["check", "--config", str(config), "--json", "--mail-from", f"jsmith@{STAFF_DOMAIN}",
            "--rcpt", f"mbrown@{STAFF_DOMAIN}", "--rcpt", "alexj@gmail.example",
            "--client-ip", "198.51.100.4", "--helo", "mx.example.com", "--no-dns", str(eml)]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(r["address"], r["action"], r["rules"]) for r in out["recipients"]] == [
        (f"mbrown@{STAFF_DOMAIN}", "annotate", ["P13"]),
        ("alexj@gmail.example", "hold", ["P1", "P13"])]
    assert out["client"] == {"ip": "198.51.100.4", "trusted": False, "helo": "mx.example.com"}
    assert out["authentication"]["checked"] is False


def test_check_readable_output_explains(tmp_path: Path, scripted: None,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = write_district_config(tmp_path)
    eml = _eml(tmp_path, sender="alexj@gmail.example", to=[f"jsmith@{STAFF_DOMAIN}"])
    assert main(["check", "--config", str(config), str(eml)]) == 0
    text = capsys.readouterr().out
    assert "sender    alexj@gmail.example (student, personal account)" in text
    assert f"recipient jsmith@{STAFF_DOMAIN} (staff, District account): ANNOTATE" in text
    assert "P5 annotate: student personal address writing to a staff District account" in text


@pytest.mark.parametrize("client_ip", ["notanip", "198.51.100", "300.1.2.3"])
def test_check_refuses_a_client_ip_that_is_not_an_address(
        tmp_path: Path, scripted: None, client_ip: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A typo must not silently run the message as from some untrusted client."""
    config = write_district_config(tmp_path)
    eml = _eml(tmp_path, sender=f"jsmith@{STAFF_DOMAIN}", to=[f"alex@{STUDENT_DOMAIN}"])
    assert main(["check", "--config", str(config), "--client-ip", client_ip, str(eml)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "is not an IPv4 or IPv6 address" in captured.err


@pytest.mark.parametrize("problem", ["missing eml", "broken config"])
def test_check_unreadable_input_is_an_error(tmp_path: Path, scripted: None, problem: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = write_district_config(tmp_path)
    eml = _eml(tmp_path, sender=f"jsmith@{STAFF_DOMAIN}", to=[f"alex@{STUDENT_DOMAIN}"])
    if problem == "missing eml":
        eml = tmp_path / "nope.eml"
    else:
        config.write_text("listen: [\n")
    assert main(["check", "--config", str(config), str(eml)]) != 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip()
