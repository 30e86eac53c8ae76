"""`gateway quarantine …` in-process, on a real config and a real database.

(The commands that need a subprocess, such as release to a live upstream, are in
tests/integration/test_quarantine_cli.py.)"""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import Settings
from gateway.quarantine import open_store
from gateway.quarantine.base import Actor
from tests.factories import (
    PARENT,
    STUDENT_PERSONAL,
    TEACHER,
    held_message,
    hold_in_store,
    write_quarantine_settings,
)


def cli(capsys: pytest.CaptureFixture[str], settings: Settings, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["quarantine", *args, "--config", str(settings.source)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return write_quarantine_settings(tmp_path)


# --- list / show / export -------------------------------------------------------------------
def test_list_json_shape(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    entry_id = hold_in_store(settings, recipients=(STUDENT_PERSONAL, PARENT), rules=("P1", "P7"))
    code, out, _ = cli(capsys, settings, "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert isinstance(rows, list) and len(rows) == 1
    row = rows[0]
    assert {"id", "status", "received", "mail_from", "recipients", "rules"} <= row.keys()
    assert row["id"] == entry_id and row["status"] == "held" and row["mail_from"] == TEACHER
    assert row["recipients"] == [STUDENT_PERSONAL, PARENT]
    assert row["rules"] == ["P1", "P7"]
    # The masked sample (***-**-4321) is for `show` only. ("-4321", not "4321": a random
    # entry id or a timestamp may hold those four digits.)
    assert "-4321" not in out


def test_list_table_and_filters(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    p1 = hold_in_store(settings, held_message("Field trip"), rules=("P1",))
    p7 = hold_in_store(settings, held_message("Roster"), rules=("P7",), recipients=(PARENT,))
    code, out, _ = cli(capsys, settings, "list")
    assert code == 0 and p1 in out and p7 in out and "Roster" in out and "2 entries" in out
    _, out, _ = cli(capsys, settings, "list", "--json", "--rule", "P7")
    assert [r["id"] for r in json.loads(out)] == [p7]
    _, out, _ = cli(capsys, settings, "list", "--json", "--recipient", PARENT)
    assert [r["id"] for r in json.loads(out)] == [p7]
    _, out, _ = cli(capsys, settings, "list", "--json", "--status", "released")
    assert json.loads(out) == []
    _, out, _ = cli(capsys, settings, "list", "--json", "--since", "1h")
    assert len(json.loads(out)) == 2


def test_list_before_the_daemon_ever_ran_creates_nothing(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, settings, "list", "--json")
    assert code == 0 and json.loads(out) == []
    assert settings.quarantine.path is not None and not settings.quarantine.path.exists()


def test_show_gives_reasons_headers_text_and_samples(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    content = held_message("Grades \x1b[2J", "Marks for the class are attached.\n",
                           attachment=b"name,grade\n")
    entry_id = hold_in_store(settings, content, rules=("P7",))
    code, out, _ = cli(capsys, settings, "show", entry_id[:13])
    assert code == 0
    for expected in (entry_id, "P7 matched", "Subject: Grades", "Marks for the class",
                     "grades.csv", "ssn  1  attachment grades.csv", "***-**-4321"):
        assert expected in out
    assert "\x1b" not in out  # hostile escape sequences never reach the terminal
    code, out, _ = cli(capsys, settings, "show", entry_id, "--json")
    assert json.loads(out)["reasons"][0]["rule"] == "P7"


def test_export_gives_the_exact_bytes_privately(
        settings: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    content = held_message("Exact bytes", "naïve café\n")
    entry_id = hold_in_store(settings, content)
    target = tmp_path / "out.eml"
    code, _, _ = cli(capsys, settings, "export", entry_id, "-o", str(target),
                     "--operator", "it.admin")
    assert code == 0
    assert target.read_bytes() == content
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    store = open_store(settings)
    try:
        export = store.audit(entry_id)[-1]
        assert (export.action, export.operator) == ("export", "it.admin")
    finally:
        store.close()


def test_unknown_id_is_a_clear_error(settings: Settings,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    hold_in_store(settings)
    code, _, err = cli(capsys, settings, "show", "20990101-deadbeef")
    assert code == 1 and "no quarantine entry '20990101-deadbeef'" in err


# --- release ---------------------------------------------------------------------------------
def test_release_while_another_release_runs_is_refused(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    entry_id = hold_in_store(settings)
    store = open_store(settings)
    try:
        store.claim_release(entry_id, Actor("other.reviewer", "gateway"), 600)
    finally:
        store.close()
    code, _, err = cli(capsys, settings, "release", entry_id, "--reason", "ok")
    assert code == 1 and "being released by other.reviewer" in err


# --- delete / purge / audit / verify --------------------------------------------------------
def test_delete_requires_a_reason_and_is_audited(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    entry_id = hold_in_store(settings)
    with pytest.raises(SystemExit):
        main(["quarantine", "delete", entry_id, "--config", str(settings.source)])
    code, out, _ = cli(capsys, settings, "delete", entry_id, "--reason", "not a record",
                       "--operator", "it.admin")
    assert code == 0 and "deleted" in out
    code, out, _ = cli(capsys, settings, "delete", entry_id, "--reason", "again")
    assert code == 0 and "already deleted" in out
    code, out, _ = cli(capsys, settings, "audit", entry_id)
    assert code == 0 and "delete" in out and "it.admin" in out and "not a record" in out
    code, out, err = cli(capsys, settings, "show", entry_id, "--raw")
    assert code == 1 and "deleted" in err


def test_purge_retention_leaves_audit_rows(settings: Settings,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    old = hold_in_store(settings, held_message("old"),
                        received=datetime.now(UTC) - timedelta(days=45))
    new = hold_in_store(settings, held_message("new"))
    code, out, _ = cli(capsys, settings, "purge", "--older-than", "30d", "--dry-run")
    assert code == 0 and "would purge 1 entry" in out and old in out
    code, out, _ = cli(capsys, settings, "purge", "--older-than", "30d")
    assert code == 0 and "purged 1 entry" in out
    _, out, _ = cli(capsys, settings, "list", "--json")
    assert [r["id"] for r in json.loads(out)] == [new]
    _, out, _ = cli(capsys, settings, "audit", "--json")
    actions = [(a["action"], a["entry_id"]) for a in json.loads(out)]
    assert ("purge", old) in actions and ("hold", old) in actions
    code, out, _ = cli(capsys, settings, "verify")
    assert code == 0 and "chain intact" in out


def test_bad_duration_is_a_usage_error(settings: Settings) -> None:
    with pytest.raises(SystemExit) as info:
        main(["quarantine", "purge", "--older-than", "thirty days",
              "--config", str(settings.source)])
    assert info.value.code == 2


def test_bad_config_is_reported_with_position(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "gateway.yaml"
    bad.write_text("quarantine:\n  urll: x\n")
    code = main(["quarantine", "list", "--config", str(bad)])
    assert code == 2
    assert f"{bad}:2:3:" in capsys.readouterr().err


def test_digest_preview(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    entry_id = hold_in_store(settings, held_message("Roster for Friday"), rules=("P8",))
    code, out, _ = cli(capsys, settings, "digest", "--since", "1h")
    assert code == 0
    assert "To: principal@staff.example.org" in out and entry_id in out
    assert "Roster for Friday" in out and "-4321" not in out  # no SSN, masked or not
