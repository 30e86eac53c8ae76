"""`gateway quarantine …` as real subprocesses (`python -m gateway`), awaited, so a release can
talk to an aiosmtpd upstream served by the test's own event loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.quarantine import open_store
from tests.factories import (
    PARENT,
    STUDENT_PERSONAL,
    TEACHER,
    held_message,
    hold_in_store,
    write_quarantine_settings,
)
from tests.harness import DeadPort, run_cli


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return write_quarantine_settings(tmp_path)


async def test_show_raw_as_subprocess(settings: Settings) -> None:
    content = held_message("Raw", "line one\n")
    entry_id = hold_in_store(settings, content)
    result = await run_cli("quarantine", "show", entry_id, "--raw",
                           "--config", str(settings.source))
    assert result.returncode == 0
    assert result.raw_stdout == content


async def test_hold_list_show_release_arrives_upstream_and_second_release_is_a_noop(
        tmp_path: Path, upstream) -> None:
    settings = write_quarantine_settings(tmp_path, upstream.port)
    content = held_message("Permission slip")
    entry_id = hold_in_store(settings, content, recipients=(STUDENT_PERSONAL, PARENT))
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
    assert arrived.mail_from == TEACHER
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
        settings = write_quarantine_settings(tmp_path, dead.port)
        entry_id = hold_in_store(settings)
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
    settings = write_quarantine_settings(tmp_path, upstream.port)
    entry_id = hold_in_store(settings, recipients=(STUDENT_PERSONAL, PARENT))
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
    settings = write_quarantine_settings(tmp_path, upstream.port)
    entry_id = hold_in_store(settings)
    args = ("--config", str(settings.source))
    deleted = await run_cli("quarantine", "delete", entry_id, "--reason", "spam", *args)
    assert deleted.returncode == 0
    result = await run_cli("quarantine", "release", entry_id, "--reason", "oops", *args)
    assert result.returncode == 1 and "deleted" in result.stderr
    assert upstream.messages == []
