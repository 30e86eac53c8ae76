"""The console's store methods on SQLite: scope in SQL, counts, search, audit by scope,
accounts, sign-in failures, the shared secret, and the upgrade of a version-1 database."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.quarantine import (
    Actor,
    EntryNotFound,
    QuarantineError,
    QuarantineStore,
    SQLiteStore,
    open_store,
)
from gateway.quarantine.reviewbase import EVERYTHING, Account, QueueQuery, Scope
from gateway.quarantine.schema import _V1
from tests.factories import PARENT, held_message, hold_request

IT = Actor("it", "root")
NOW = datetime.now(UTC)


def hold(store: QuarantineStore, subject: str, schools: tuple[str, ...] = (),
         rules: tuple[str, ...] = ("P1",), minutes_ago: int = 0) -> str:
    request = hold_request(held_message(subject), rules=rules, queue_id=subject,
                           received=NOW - timedelta(minutes=minutes_ago))
    return store.hold(dataclasses.replace(request, schools=schools)).id


def test_scope_by_school_or_rule_oldest_first(store: QuarantineStore) -> None:
    new = hold(store, "new", ("Lincoln",), minutes_ago=1)
    old = hold(store, "old", ("Lincoln", "Roosevelt"), minutes_ago=9)
    p10 = hold(store, "p10", (), ("P10",))
    hold(store, "other", ("Washington",))
    lincoln = Scope(schools=frozenset({"Lincoln"}))
    entries, total = store.queue(QueueQuery(scope=lincoln))
    assert [e.id for e in entries] == [old, new] and total == 2
    assert entries[0].schools == ("Lincoln", "Roosevelt")
    both = Scope(schools=frozenset({"Lincoln"}), rules=frozenset({"P10"}))
    assert {e.id for e in store.queue(QueueQuery(scope=both))[0]} == {old, new, p10}
    assert store.queue(QueueQuery(scope=EVERYTHING))[1] == 4
    page, total = store.queue(QueueQuery(scope=EVERYTHING, limit=1, offset=1))
    assert len(page) == 1 and total == 4


def test_counts_are_within_scope(store: QuarantineStore) -> None:
    hold(store, "a", ("Lincoln",), ("P1", "P7"), minutes_ago=30)
    gone = hold(store, "b", ("Lincoln",))
    hold(store, "c", ("Washington",))
    store.delete(gone, IT, "test")
    counts = store.queue_counts(Scope(schools=frozenset({"Lincoln"})))
    assert counts.by_status == {"held": 1, "deleted": 1}
    assert counts.held_by_rule == {"P1": 1, "P7": 1}
    assert counts.held_by_school == {"Lincoln": 1}
    assert counts.oldest_held is not None and counts.oldest_held < NOW - timedelta(minutes=29)


def test_get_scoped_hides_what_is_outside(store: QuarantineStore) -> None:
    mine = hold(store, "mine", ("Lincoln",))
    other = hold(store, "other", ("Washington",))
    scope = Scope(schools=frozenset({"Lincoln"}))
    assert store.get_scoped(mine, scope).id == mine
    with pytest.raises(EntryNotFound):
        store.get_scoped(other, scope)
    with pytest.raises(EntryNotFound):
        store.get_scoped(mine[:10], scope)  # no prefixes in the console: exact ids only


def test_search_matches_fields_and_escapes_like_wildcards(store: QuarantineStore) -> None:
    trip = hold(store, "Trip 100% paid", ("Lincoln",))
    hold(store, "Grades", ("Lincoln",))
    scope = Scope(schools=frozenset({"Lincoln"}))
    for text in ("trip", "100%", trip[-6:]):
        found, _ = store.queue(QueueQuery(scope=scope, status=None, text=text))
        assert [e.id for e in found] == [trip], text
    for text in ("TEACHER@staff", "kid.home"):  # sender, recipient: both entries have them
        assert store.queue(QueueQuery(scope=scope, status=None, text=text))[1] == 2
    assert store.queue(QueueQuery(scope=scope, status=None, text="_"))[1] == 0
    assert store.queue(QueueQuery(scope=Scope(schools=frozenset({"X"})), status=None,
                                  text="trip"))[1] == 0


def test_audit_by_scope(store: QuarantineStore) -> None:
    mine = hold(store, "mine", ("Lincoln",))
    other = hold(store, "other", ("Washington",))
    store.record(IT, "view", mine, "looked", {})
    store.add_account(Account("x", "administrator"), IT)
    rows = store.audit_scoped(Scope(schools=frozenset({"Lincoln"})))
    assert [(r.action, r.entry_id) for r in rows] == [("view", mine), ("hold", mine)]
    everything = store.audit_scoped(EVERYTHING)
    assert everything[0].action == "account_add"  # newest first, account rows for admins
    assert other in {r.entry_id for r in everything}


def test_accounts_and_failures(store: QuarantineStore) -> None:
    store.add_account(Account("Principal@Staff.example.org", "reviewer", ("Lincoln",)), IT)
    found = store.account("principal@staff.example.org")
    assert found is not None and found.scope == Scope(schools=frozenset({"Lincoln"}))
    with pytest.raises(QuarantineError):
        store.add_account(Account("principal@staff.example.org", "reviewer"), IT)
    with pytest.raises(QuarantineError):
        store.add_account(Account("y", "superuser"), IT)
    with pytest.raises(QuarantineError):
        store.update_account("nobody", IT, disabled=True)
    changed = store.update_account("principal@staff.example.org", IT, rules=("P10",))
    assert changed.rules == ("P10",) and changed.schools == ("Lincoln",)
    store.record_signin_failure(("account:a", "client:1"), NOW)
    store.record_signin_failure(("account:a",), NOW - timedelta(hours=1))
    assert store.signin_failures("account:a", NOW - timedelta(minutes=5)) == 1
    store.clear_signin_failures("", before=NOW - timedelta(minutes=5))
    assert store.signin_failures("account:a", NOW - timedelta(days=1)) == 1
    store.clear_signin_failures("account:a")
    assert store.signin_failures("account:a", NOW - timedelta(days=1)) == 0


def test_the_console_secret_is_made_once(store: QuarantineStore,
                                         settings: Settings) -> None:
    first = store.console_secret("s", "one")
    other = open_store(settings)
    try:
        assert other.console_secret("s", "two") == first == "one"
    finally:
        other.close()


def test_a_version_1_database_is_upgraded_with_its_rules_joinable(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    db = sqlite3.connect(path)
    db.executescript(_V1)
    db.execute("INSERT INTO entries VALUES ('20250101-aaaa0001', 'Q', "
               "'2025-01-01T00:00:00.000000Z', NULL, 'a@b', NULL, 's', 1, 'x', 'k', 'held', "
               "'[\"P7\", \"P8\"]', '[]', '[]', '[]', '2025-01-01T00:00:00.000000Z', NULL, NULL)")
    db.execute("INSERT INTO entry_recipients VALUES ('20250101-aaaa0001', ?, 'held', "
               "'2025-01-01T00:00:00.000000Z', '')", (PARENT,))
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = SQLiteStore(path)
    try:
        found, total = store.queue(QueueQuery(scope=Scope(rules=frozenset({"P8"}))))
        assert total == 1 and found[0].rules == ("P7", "P8") and found[0].schools == ()
    finally:
        store.close()
