"""The SQLite quarantine store: exact bytes, duplicates, audit, leases, contact history (also
read while a writer holds the database), concurrent writers, and log events without
student data."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.config import Settings
from gateway.quarantine import open_store
from gateway.quarantine.base import (
    Actor,
    EntryNotFound,
    EntryQuery,
    HoldResult,
    QuarantineError,
    ReleaseBusy,
)
from gateway.quarantine.sqlite import SQLiteStore
from tests.factories import (
    PARENT,
    STUDENT_PERSONAL,
    held_message,
    hold_request,
    write_quarantine_settings,
)

REVIEWER = Actor("principal.jones", "gateway")


def test_hold_keeps_exact_bytes_and_metadata(store) -> None:
    content = held_message("Grades for period 3", attachment=b"name,grade\nA,B\n")
    result = store.hold(hold_request(content, recipients=(STUDENT_PERSONAL, PARENT),
                                     rules=("P1", "P7"), subject="Grades for period 3"))
    assert not result.duplicate
    entry = store.get(result.id)
    assert store.content(result.id) == content
    assert entry.status == "held"
    assert entry.held_recipients == (STUDENT_PERSONAL, PARENT)
    assert entry.rules == ("P1", "P7")
    assert entry.size == len(content)
    assert entry.subject == "Grades for period 3"
    assert entry.findings[0]["detector"] == "ssn"
    assert "sample" not in str(entry.public())  # masked samples stay out of list --json


def test_same_request_held_twice_is_one_entry(store) -> None:
    request = hold_request()
    first = store.hold(request)
    again = store.hold(hold_request(request.content, queue_id="QID-RETRY"))
    assert again.duplicate and again.id == first.id
    assert len(store.list_entries()) == 1
    assert [r.action for r in store.audit()] == ["hold"]


def test_different_recipients_or_bytes_are_different_entries(store) -> None:
    content = held_message()
    a = store.hold(hold_request(content))
    b = store.hold(hold_request(content, recipients=(PARENT,)))
    c = store.hold(hold_request(content + b"\r\n"))
    assert len({a.id, b.id, c.id}) == 3


def test_same_message_after_review_or_retry_window_is_a_new_entry(store) -> None:
    """Only a retry of a still-held copy is a duplicate. The same bytes sent again after a
    reviewer released the first copy, or days later (a script without Date/Message-ID), are
    a new message: swallowing them with 250 would lose mail."""
    request = hold_request()
    held = store.hold(request)
    assert store.hold(request) == HoldResult(held.id, duplicate=True)  # a retry after 4xx
    store.claim_release(held.id, REVIEWER, 60)
    store.finish_release(held.id, REVIEWER, "ok", (STUDENT_PERSONAL,), {})
    again = store.hold(request)
    assert not again.duplicate and again.id != held.id
    later = hold_request(held_message("weekly"), received=datetime.now(UTC) - timedelta(days=6))
    first = store.hold(later)
    resent = store.hold(replace(later, received=datetime.now(UTC)))
    assert not resent.duplicate and resent.id != first.id


def test_list_filters(store) -> None:
    now = datetime.now(UTC)
    old = store.hold(hold_request(held_message("old"), received=now - timedelta(days=10)))
    p7 = store.hold(hold_request(held_message("p7"), rules=("P7",), recipients=(PARENT,)))
    p1 = store.hold(hold_request(held_message("p1"), rules=("P1",)))
    store.delete(p1.id, REVIEWER, "spam")

    def ids(**kw: object) -> list[str]:
        return [e.id for e in store.list_entries(EntryQuery(**kw))]  # type: ignore[arg-type]

    assert set(ids()) == {old.id, p7.id, p1.id}
    assert ids(rule="P7") == [p7.id]
    assert ids(recipient=PARENT.upper()) == [p7.id]
    assert set(ids(status="held")) == {old.id, p7.id}
    assert set(ids(since=now - timedelta(days=1))) == {p7.id, p1.id}
    assert ids(before=now - timedelta(days=1)) == [old.id]


def test_get_by_unique_prefix_and_errors(store) -> None:
    held = store.hold(hold_request())
    assert store.get(held.id[:12]).id == held.id
    with pytest.raises(EntryNotFound):
        store.get("20990101-00000000")


def test_delete_discards_copy_keeps_metadata_and_audits(store) -> None:
    held = store.hold(hold_request())
    assert store.delete(held.id, REVIEWER, "personal mail, not a record")
    assert not store.delete(held.id, REVIEWER, "again")
    entry = store.get(held.id)
    assert entry.status == "deleted"
    assert store.content(held.id) is None
    rows = store.audit(held.id)
    assert [(r.action, r.operator, r.reason) for r in rows] == [
        ("hold", "gateway", "held by policy"),
        ("delete", "principal.jones", "personal mail, not a record")]
    assert store.verify() == []


def test_purge_removes_old_entries_and_audits_each(store) -> None:
    now = datetime.now(UTC)
    old = store.hold(hold_request(held_message("old"), received=now - timedelta(days=40)))
    new = store.hold(hold_request(held_message("new"), received=now - timedelta(days=2)))
    purged = store.purge(now - timedelta(days=30), REVIEWER, "retention")
    assert purged == [old.id]
    assert [e.id for e in store.list_entries()] == [new.id]
    with pytest.raises(EntryNotFound):
        store.get(old.id)
    assert [r.action for r in store.audit(old.id)] == ["hold", "purge"]
    assert store.verify() == []


def test_purge_can_be_limited_to_statuses(store) -> None:
    now = datetime.now(UTC)
    held = store.hold(hold_request(held_message("a"), received=now - timedelta(days=40)))
    gone = store.hold(hold_request(held_message("b"), received=now - timedelta(days=40)))
    store.delete(gone.id, REVIEWER, "x")
    assert store.purge(now, REVIEWER, "retention", ("deleted",)) == [gone.id]
    assert [e.id for e in store.list_entries()] == [held.id]


def test_audit_rows_cannot_be_updated_or_deleted(settings: Settings, store) -> None:
    store.hold(hold_request())
    conn = sqlite3.connect(settings.quarantine.path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit SET operator = 'someone else'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit")
    finally:
        conn.close()
    assert len(store.audit()) == 1


def test_verify_notices_an_audit_row_removed_behind_the_triggers(settings: Settings,
                                                                  store) -> None:
    for subject in ("a", "b", "c"):
        store.hold(hold_request(held_message(subject)))
    assert store.verify() == []
    conn = sqlite3.connect(settings.quarantine.path)
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.execute("DELETE FROM audit WHERE seq = 2")
    conn.commit()
    conn.close()
    problems = store.verify()
    assert any("audit row 3" in p for p in problems)


def test_verify_notices_a_tampered_held_copy(settings: Settings, store) -> None:
    held = store.hold(hold_request())
    conn = sqlite3.connect(settings.quarantine.path)
    conn.execute("UPDATE contents SET data = ? WHERE entry_id = ?", (b"x" * 10, held.id))
    conn.commit()
    conn.close()
    assert store.verify() == [f"entry {held.id}: held copy does not match its hash"]


def test_release_lease_stops_a_concurrent_release(store) -> None:
    held = store.hold(hold_request(recipients=(STUDENT_PERSONAL, PARENT)))
    assert store.claim_release(held.id, REVIEWER, 300) == (STUDENT_PERSONAL, PARENT)
    with pytest.raises(ReleaseBusy):
        store.claim_release(held.id, Actor("it.admin", "root"), 300)
    with pytest.raises(ReleaseBusy):
        store.delete(held.id, Actor("it.admin", "root"), "x")
    entry = store.finish_release(held.id, REVIEWER, "ok", (PARENT,),
                                 {STUDENT_PERSONAL: "upstream refused: 550 no"})
    assert entry.status == "held"
    assert {r.address: r.status for r in entry.recipients} == {
        STUDENT_PERSONAL: "held", PARENT: "released"}
    # The lease is gone, and only the still-held recipient is offered again.
    assert store.claim_release(held.id, REVIEWER, 300) == (STUDENT_PERSONAL,)


def test_expired_lease_does_not_block_forever(store) -> None:
    held = store.hold(hold_request())
    store.claim_release(held.id, REVIEWER, 0)  # a releasing process that died at once
    assert store.claim_release(held.id, REVIEWER, 60) == (STUDENT_PERSONAL,)


def test_contact_history_counts_within_thirty_days(settings: Settings, store) -> None:
    now = datetime.now(UTC)
    for days_ago in (45, 31, 20, 3, 0):
        store.record_contact("100234", "T-17", now - timedelta(days=days_ago))
    store.record_contact("100234", "T-99", now)
    store.record_contact("999999", "T-17", now)
    window = now - timedelta(days=30)
    assert store.count_contacts("100234", "T-17", window) == 3
    assert store.count_contacts("100234", "T-99", window) == 1
    assert store.count_contacts("555555", "T-17", window) == 0
    store.close()
    reopened = open_store(settings)  # history survives a restart
    try:
        assert reopened.count_contacts("100234", "T-17", window) == 3
        assert reopened.purge_contacts(now - timedelta(days=30)) == 2
        assert reopened.count_contacts("100234", "T-17", now - timedelta(days=90)) == 3
    finally:
        reopened.close()


def test_readonly_store_reads_history_and_records_nothing(settings: Settings, store) -> None:
    now = datetime.now(UTC)
    store.record_contact("100234", "T-17", now)
    readonly = open_store(settings, readonly=True)
    try:
        readonly.record_contact("100234", "T-17", now)
        assert readonly.count_contacts("100234", "T-17", now - timedelta(days=30)) == 1
        with pytest.raises(QuarantineError):
            readonly.hold(hold_request())
    finally:
        readonly.close()
    assert store.count_contacts("100234", "T-17", now - timedelta(days=30)) == 1


def test_daemon_and_cli_write_at_the_same_time(settings: Settings, store) -> None:
    """Two connections (daemon holding, CLI deleting) wait on each other, never fail."""
    other = SQLiteStore(settings.quarantine.path)  # type: ignore[arg-type]
    errors: list[BaseException] = []
    held_ids: list[str] = []

    def daemon() -> None:
        try:
            for i in range(60):
                held_ids.append(store.hold(hold_request(held_message(f"m{i}"))).id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reviewer() -> None:
        try:
            for i in range(60):
                other.record_contact(str(i), "T-1", datetime.now(UTC))
                for entry in other.list_entries(EntryQuery(status="held", limit=1)):
                    other.delete(entry.id, REVIEWER, "cleanup")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=daemon), threading.Thread(target=reviewer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert errors == []
    assert len(held_ids) == 60
    assert store.verify() == []


def test_log_events_carry_ids_rules_counts_and_no_student_data(tmp_path: Path) -> None:
    store = open_store(write_quarantine_settings(tmp_path))
    reviewer = Actor("principal.jones", "gateway")
    try:
        with structlog.testing.capture_logs() as events:
            held = store.hold(hold_request(recipients=(STUDENT_PERSONAL, PARENT),
                                           rules=("P7",)))
            store.claim_release(held.id, reviewer, 60)
            store.finish_release(held.id, reviewer, "Jane Doe's IEP, ok to send",
                                 (PARENT,), {STUDENT_PERSONAL: "550 no"})
            store.delete(held.id, reviewer, "Jane Doe's IEP")
            store.purge(datetime.now(UTC) + timedelta(seconds=1), reviewer, "retention")
    finally:
        store.close()
    names = [e["event"] for e in events]
    assert names == ["quarantine_hold", "quarantine_release", "quarantine_delete",
                     "quarantine_purge"]
    assert events[0]["id"] == held.id and events[0]["rules"] == ["P7"]
    assert events[0]["recipients"] == 2
    text = repr(events)
    # "-4321": the SSN masked or not; a bare "4321" can turn up in a random id or a timestamp.
    for secret in ("-4321", "Jane", STUDENT_PERSONAL, PARENT, "Report cards"):
        assert secret not in text


AT = datetime(2026, 9, 1, tzinfo=UTC)


def test_the_store_answers_while_a_writer_holds_the_database(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    store = SQLiteStore(path)
    for days in (1, 2, 40):
        store.record_contact("482913", "T1", AT - timedelta(days=days))
    week, month = AT - timedelta(days=7), AT - timedelta(days=30)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
    writer.execute("INSERT INTO contacts (student_id, staff_id, at) VALUES ('482913', 'T1', ?)",
                   ((AT - timedelta(hours=1)).isoformat(),))
    answers: list[dict[Any, int]] = []
    with store._lock:  # and this store's own writer, as while a hold is being fsynced
        reader = threading.Thread(target=lambda: answers.append(store.contact_counts(
            [("482913", "T1", week), ("482913", "T1", month), ("517204", "T1", week)])))
        reader.start()
        reader.join(5)
        assert not reader.is_alive(), "the reader waited for the writer"
    writer.execute("ROLLBACK")
    writer.close()
    assert answers == [{("482913", "T1", week): 2, ("482913", "T1", month): 2,
                        ("517204", "T1", week): 0}]
    assert store.count_contacts("482913", "T1", month - timedelta(days=30)) == 3
    store.close()


def test_held_summary_counts_what_awaits_review_and_the_oldest(store) -> None:
    assert store.held_summary() == (0, None)
    now = datetime.now(UTC).replace(microsecond=0)
    oldest = store.hold(hold_request(received=now - timedelta(days=3), queue_id="Q1"))
    store.hold(hold_request(received=now - timedelta(hours=1), queue_id="Q2",
                            subject="Other"))
    reviewed = store.hold(hold_request(received=now - timedelta(days=9), queue_id="Q3",
                                       subject="Reviewed"))
    store.delete(reviewed.id, REVIEWER, "not needed")
    assert store.held_summary() == (2, now - timedelta(days=3))
    store.delete(oldest.id, REVIEWER, "done")
    assert store.held_summary() == (1, now - timedelta(hours=1))


def test_held_summary_uses_the_status_index(store) -> None:
    with store._tx(write=False) as db:
        plan = db.execute("EXPLAIN QUERY PLAN SELECT COUNT(*), MIN(received) FROM entries "
                          "WHERE status = 'held'").fetchall()
    assert any("entries_status" in str(row) for row in plan), plan
