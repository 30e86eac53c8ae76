"""`gateway quarantine …` end to end: real config, real database, real upstream over loopback.

Release talks to an aiosmtpd upstream served by the test's own event loop, so those commands
run as real subprocesses (`python -m gateway`), awaited; the rest run through `main()`.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import Settings
from gateway.quarantine import open_store
from tests.quarantine_helpers import (
    PARENT,
    STAFF,
    STUDENT_PERSONAL,
    DeadPort,
    hold_request,
    make_message,
    run_cli,
    write_config,
)


def hold(settings: Settings, content: bytes | None = None, **kw: object) -> str:
    store = open_store(settings)
    try:
        return store.hold(hold_request(content, **kw)).id  # type: ignore[arg-type]
    finally:
        store.close()


def cli(capsys: pytest.CaptureFixture[str], settings: Settings, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["quarantine", *args, "--config", str(settings.source)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return write_config(tmp_path)


# --- list / show / export -------------------------------------------------------------------

def test_list_json_shape(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    entry_id = hold(settings, recipients=(STUDENT_PERSONAL, PARENT), rules=("P1", "P7"))
    code, out, _ = cli(capsys, settings, "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert isinstance(rows, list) and len(rows) == 1
    row = rows[0]
    assert {"id", "status", "received", "mail_from", "recipients", "rules"} <= row.keys()
    assert row["id"] == entry_id and row["status"] == "held" and row["mail_from"] == STAFF
    assert row["recipients"] == [STUDENT_PERSONAL, PARENT]
    assert row["rules"] == ["P1", "P7"]
    # The masked sample (***-**-4321) is for `show` only. ("-4321", not "4321": a random
    # entry id or a timestamp may hold those four digits.)
    assert "-4321" not in out


def test_list_table_and_filters(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    p1 = hold(settings, make_message("Field trip"), rules=("P1",))
    p7 = hold(settings, make_message("Roster"), rules=("P7",), recipients=(PARENT,))
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
    content = make_message("Grades \x1b[2J", "Marks for the class are attached.\n",
                           attachment=b"name,grade\n")
    entry_id = hold(settings, content, rules=("P7",))
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
    content = make_message("Exact bytes", "naïve café\n")
    entry_id = hold(settings, content)
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


async def test_show_raw_as_subprocess(settings: Settings) -> None:
    content = make_message("Raw", "line one\n")
    entry_id = hold(settings, content)
    result = await run_cli("quarantine", "show", entry_id, "--raw",
                           "--config", str(settings.source))
    assert result.returncode == 0
    assert result.raw_stdout == content


def test_unknown_id_is_a_clear_error(settings: Settings,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    hold(settings)
    code, _, err = cli(capsys, settings, "show", "20990101-deadbeef")
    assert code == 1 and "no quarantine entry '20990101-deadbeef'" in err


# --- release ---------------------------------------------------------------------------------

async def test_hold_list_show_release_arrives_upstream_and_second_release_is_a_noop(
        tmp_path: Path, upstream) -> None:
    settings = write_config(tmp_path, upstream.port)
    content = make_message("Permission slip")
    entry_id = hold(settings, content, recipients=(STUDENT_PERSONAL, PARENT))
    args = ("--config", str(settings.source))
    listed = json.loads((await run_cli("quarantine", "list", "--json", *args)).stdout)
    assert [(e["id"], e["status"]) for e in listed] == [(entry_id, "held")]
    shown = await run_cli("quarantine", "show", entry_id, *args)
    assert shown.returncode == 0 and "Subject: Permission slip" in shown.stdout
    result = await run_cli("quarantine", "release", entry_id, "--reason",
                           "parent confirmed the trip", "--operator", "principal.jones", *args)
    assert result.returncode == 0, result.stderr
    assert f"released to {STUDENT_PERSONAL}" in result.stdout
    assert len(upstream.messages) == 1
    arrived = upstream.messages[0]
    assert arrived.mail_from == STAFF
    assert sorted(arrived.rcpt_tos) == sorted([STUDENT_PERSONAL, PARENT])
    assert arrived.content.endswith(content)
    assert arrived.content.startswith(b"Received: ")

    again = await run_cli("quarantine", "release", entry_id, "--reason", "again", *args)
    assert again.returncode == 0
    assert "nothing to do" in again.stdout
    assert len(upstream.messages) == 1

    listed = json.loads((await run_cli("quarantine", "list", "--json", *args)).stdout)
    assert listed[0]["status"] == "released"
    audit = json.loads((await run_cli("quarantine", "audit", entry_id, "--json", *args)).stdout)
    assert [(a["action"], a["operator"], a["reason"]) for a in audit] == [
        ("hold", "gateway", "held by policy"),
        ("release", "principal.jones", "parent confirmed the trip")]
    assert audit[1]["os_user"]


async def test_release_with_upstream_down_stays_held(tmp_path: Path) -> None:
    dead = DeadPort()
    try:
        settings = write_config(tmp_path, dead.port)
        entry_id = hold(settings)
        result = await run_cli("quarantine", "release", entry_id, "--reason", "ok",
                               "--config", str(settings.source))
    finally:
        dead.close()
    assert result.returncode != 0
    assert f"NOT released to {STUDENT_PERSONAL}" in result.stdout
    assert "stays held" in result.stderr
    store = open_store(settings)
    try:
        entry = store.get(entry_id)
        assert entry.status == "held" and entry.held_recipients == (STUDENT_PERSONAL,)
        assert "upstream unavailable" in entry.recipients[0].detail
        assert [r.action for r in store.audit(entry_id)] == ["hold", "release_failed"]
        assert store.content(entry_id) is not None
    finally:
        store.close()


async def test_release_partly_refused_keeps_the_refused_recipient_held(
        tmp_path: Path, upstream) -> None:
    upstream.behaviour.refuse_rcpt.add(PARENT)
    settings = write_config(tmp_path, upstream.port)
    entry_id = hold(settings, recipients=(STUDENT_PERSONAL, PARENT))
    args = ("--config", str(settings.source))
    result = await run_cli("quarantine", "release", entry_id, "--reason", "ok", *args)
    assert result.returncode == 1
    assert f"NOT released to {PARENT}: upstream refused: 550" in result.stdout
    assert [m.rcpt_tos for m in upstream.messages] == [[STUDENT_PERSONAL]]

    upstream.behaviour.refuse_rcpt.clear()  # the address was fixed upstream; try again
    result = await run_cli("quarantine", "release", entry_id, "--reason", "retry", *args)
    assert result.returncode == 0, result.stderr
    assert [m.rcpt_tos for m in upstream.messages] == [[STUDENT_PERSONAL], [PARENT]]


async def test_release_of_deleted_entry_is_refused(tmp_path: Path, upstream) -> None:
    settings = write_config(tmp_path, upstream.port)
    entry_id = hold(settings)
    args = ("--config", str(settings.source))
    deleted = await run_cli("quarantine", "delete", entry_id, "--reason", "spam", *args)
    assert deleted.returncode == 0
    result = await run_cli("quarantine", "release", entry_id, "--reason", "oops", *args)
    assert result.returncode == 1 and "deleted" in result.stderr
    assert upstream.messages == []


def test_release_while_another_release_runs_is_refused(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.quarantine.base import Actor

    entry_id = hold(settings)
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
    entry_id = hold(settings)
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
    from datetime import UTC, datetime, timedelta

    old = hold(settings, make_message("old"), received=datetime.now(UTC) - timedelta(days=45))
    new = hold(settings, make_message("new"))
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
    entry_id = hold(settings, make_message("Roster for Friday"), rules=("P8",))
    code, out, _ = cli(capsys, settings, "digest", "--since", "1h")
    assert code == 0
    assert "To: principal@staff.example.org" in out and entry_id in out
    assert "Roster for Friday" in out and "-4321" not in out  # no SSN, masked or not
