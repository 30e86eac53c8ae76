"""The quarantine store protocol, every test once on SQLite and once on a real PostgreSQL
server: exact bytes, duplicates, audit, leases, contact history, the digest's period, and what
several processes doing the same thing at the same moment must get (one hold, one release, one
delete, one digest, exact P6 counts, an intact audit chain). Log events carry no student data.
Each concurrent test opens one store per simulated instance: its own connections, as another
gateway process would have."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog

from gateway.model import ContactPlan
from gateway.quarantine.base import (
    Actor,
    EntryNotFound,
    EntryQuery,
    HoldResult,
    QuarantineError,
    QuarantineStore,
    ReleaseBusy,
)
from tests.factories import (
    PARENT,
    STUDENT_PERSONAL,
    held_message,
    hold_request,
)
from tests.quarantine.conftest import Backend

REVIEWER = Actor("principal.jones", "gateway")


@pytest.fixture
def store(backend: Backend) -> Iterator[QuarantineStore]:
    s = backend.open()
    yield s
    s.close()


def at_once(backend: Backend, n: int, work: Callable[[QuarantineStore, int], Any]) -> list[Any]:
    """`work(store, i)` in n threads, each with a store of its own (one per instance), started
    together; the results in order. An exception in any thread fails the test."""
    stores = [backend.open() for _ in range(n)]
    start = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = work(stores[i], i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    if errors:
        raise errors[0]
    return results


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


def test_audit_rows_cannot_be_updated_or_deleted(backend: Backend, store) -> None:
    store.hold(hold_request())
    for statement in ("UPDATE audit SET operator = 'someone else'", "DELETE FROM audit"):
        with pytest.raises(Exception, match="append-only"):
            backend.raw(statement)
    if backend.name == "postgresql":
        with pytest.raises(Exception, match="append-only"):
            backend.raw("TRUNCATE audit")
    assert len(store.audit()) == 1


def test_verify_notices_an_audit_row_removed_behind_the_triggers(backend: Backend,
                                                                  store) -> None:
    for subject in ("a", "b", "c"):
        store.hold(hold_request(held_message(subject)))
    assert store.verify() == []
    if backend.name == "sqlite":
        backend.raw("DROP TRIGGER audit_no_delete")
    else:
        backend.raw("ALTER TABLE audit DISABLE TRIGGER audit_no_change")
    backend.raw("DELETE FROM audit WHERE seq = 2")
    problems = store.verify()
    assert any("audit row 3" in p for p in problems)


def test_verify_notices_a_tampered_held_copy(backend: Backend, store) -> None:
    held = store.hold(hold_request())
    backend.raw("UPDATE contents SET data = ? WHERE entry_id = ?", (b"x" * 10, held.id))
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


def test_contact_history_counts_within_thirty_days(backend: Backend, store) -> None:
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
    reopened = backend.open()  # history survives a restart
    try:
        assert reopened.count_contacts("100234", "T-17", window) == 3
        assert reopened.purge_contacts(now - timedelta(days=30)) == 2
        assert reopened.count_contacts("100234", "T-17", now - timedelta(days=90)) == 3
    finally:
        reopened.close()


def test_readonly_store_reads_history_and_records_nothing(backend: Backend, store) -> None:
    now = datetime.now(UTC)
    store.record_contact("100234", "T-17", now)
    readonly = backend.open(readonly=True)
    try:
        readonly.record_contact("100234", "T-17", now)
        assert readonly.count_contacts("100234", "T-17", now - timedelta(days=30)) == 1
        with pytest.raises(QuarantineError):
            readonly.hold(hold_request())
        plan = ContactPlan(frozenset({("100234", "T-17", now - timedelta(days=1))}),
                           (("100234", "T-17"),), now)
        assert readonly.count_and_record(plan, "k") == {("100234", "T-17",
                                                         now - timedelta(days=1)): 1}
    finally:
        readonly.close()
    assert store.count_contacts("100234", "T-17", now - timedelta(days=30)) == 1


def test_daemon_and_cli_write_at_the_same_time(backend: Backend, store) -> None:
    """Two connections (daemon holding, CLI deleting) wait on each other, never fail."""
    other = backend.open()
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


def test_log_events_carry_ids_rules_counts_and_no_student_data(backend: Backend) -> None:
    store = backend.open()
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




# --- P5/P6: count and record in one transaction -----------------------------------------------

NOW = datetime.now(UTC)
MONTH = NOW - timedelta(days=30)
PAIR = ("482913", "T1")


def plan(*pairs: tuple[str, str], at: datetime = NOW) -> ContactPlan:
    return ContactPlan(frozenset((*p, MONTH) for p in pairs), pairs, at)


def test_count_and_record_counts_the_contacts_before_this_one(store) -> None:
    store.record_contact(*PAIR, NOW - timedelta(days=40))  # outside the window
    store.record_contact(*PAIR, NOW - timedelta(days=3))
    assert store.count_and_record(plan(PAIR), "m1") == {(*PAIR, MONTH): 1}
    assert store.count_and_record(plan(PAIR), "m2") == {(*PAIR, MONTH): 2}
    assert store.count_contacts(*PAIR, MONTH) == 3


def test_a_retry_of_the_same_message_is_not_a_second_contact(store) -> None:
    first = store.count_and_record(plan(PAIR), "m1")
    store.count_and_record(plan(PAIR), "m2")
    assert store.count_and_record(plan(PAIR), "m1") == first  # the retry sees what it saw
    assert store.count_contacts(*PAIR, MONTH) == 2


def test_a_plan_without_contacts_to_record_only_counts(store) -> None:
    store.record_contact(*PAIR, NOW)
    only_counts = ContactPlan(frozenset({(*PAIR, MONTH)}), (), NOW)
    assert store.count_and_record(only_counts, "m1") == {(*PAIR, MONTH): 1}
    assert store.count_contacts(*PAIR, MONTH) == 1


def test_contacts_of_one_pair_at_the_same_moment_on_several_instances_count_exactly(
        backend: Backend) -> None:
    """Eight messages of one student to one teacher decided at once, each on its own
    instance: they see 0..7 earlier contacts, one each, never two the same (lost update)."""
    other = ("517204", "T1")
    seen = at_once(backend, 8, lambda s, i: s.count_and_record(plan(PAIR, other), f"m{i}"))
    assert sorted(c[(*PAIR, MONTH)] for c in seen) == list(range(8))
    assert sorted(c[(*other, MONTH)] for c in seen) == list(range(8))
    check = backend.open()
    try:
        assert check.count_contacts(*PAIR, MONTH) == 8
    finally:
        check.close()


# --- several instances, one store ---------------------------------------------------------------

def test_a_retry_on_another_instance_at_the_same_moment_is_held_once(backend: Backend) -> None:
    request = hold_request()
    results = at_once(backend, 4, lambda s, i: s.hold(replace(request, queue_id=f"Q{i}")))
    assert len({r.id for r in results}) == 1
    assert sorted(r.duplicate for r in results) == [False, True, True, True]
    check = backend.open()
    try:
        assert len(check.list_entries()) == 1
        assert [r.action for r in check.audit()] == ["hold"]
    finally:
        check.close()


def test_two_reviewers_pressing_release_at_once_get_one_lease(backend: Backend, store) -> None:
    held = store.hold(hold_request(recipients=(STUDENT_PERSONAL, PARENT)))

    def claim(s: QuarantineStore, i: int) -> Any:
        try:
            return s.claim_release(held.id, Actor(f"reviewer{i}", "gateway"), 300)
        except ReleaseBusy:
            return "busy"

    results = at_once(backend, 4, claim)
    assert sorted(map(str, results)).count("busy") == 3
    assert [r for r in results if r != "busy"] == [(STUDENT_PERSONAL, PARENT)]


def test_a_delete_from_several_instances_at_once_happens_once(backend: Backend, store) -> None:
    held = store.hold(hold_request())
    results = at_once(backend, 4, lambda s, i: s.delete(held.id, REVIEWER, f"dup {i}"))
    assert sorted(results) == [False, False, False, True]
    assert [r.action for r in store.audit(held.id)] == ["hold", "delete"]


def test_purges_from_several_instances_at_once_remove_each_entry_once(
        backend: Backend, store) -> None:
    old = NOW - timedelta(days=40)
    ids = {store.hold(hold_request(held_message(f"m{i}"), received=old)).id for i in range(5)}
    results = at_once(backend, 3, lambda s, i: s.purge(NOW - timedelta(days=30), REVIEWER,
                                                       "retention"))
    purged = [entry_id for r in results for entry_id in r]
    assert sorted(purged) == sorted(ids)  # each once, by whichever instance got there first
    assert [r.action for r in store.audit()].count("purge") == 5
    assert store.verify() == []


def test_the_audit_chain_stays_verifiable_with_concurrent_writers(backend: Backend,
                                                                   store) -> None:
    def work(s: QuarantineStore, i: int) -> None:
        for n in range(5):
            held = s.hold(hold_request(held_message(f"w{i}-{n}")))
            s.record(REVIEWER, "export", held.id, "check", {"n": n})

    at_once(backend, 4, work)
    assert len(store.audit()) == 40
    assert store.verify() == []


def test_the_digest_period_is_claimed_by_one_instance(backend: Backend, store) -> None:
    start = NOW - timedelta(hours=2)
    assert store.claim_digest(start, 3600) is None  # the first call starts the first period
    assert store.claim_digest(start + timedelta(minutes=30), 3600) is None  # not due yet
    due = start + timedelta(hours=1)
    claims = at_once(backend, 4, lambda s, i: s.claim_digest(due, 3600))
    assert [c for c in claims if c is not None] == [start]
    # A digest that could not be sent gives its period back; the next claim covers it.
    store.unclaim_digest(start, due)
    later = due + timedelta(minutes=1)
    assert store.claim_digest(later, 3600) == start
    assert store.claim_digest(later, 3600) is None


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
