"""The console's store methods, each test on SQLite and on a real PostgreSQL server: scope in
SQL, counts, search, audit by scope, accounts, sessions ended in the store, sign-in failures
and the secret shared by several store instances, the upgrades of older schemas, and the copy
of the console's tables from SQLite into PostgreSQL."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from gateway.cli import main
from gateway.quarantine import (
    Actor,
    EntryNotFound,
    QuarantineError,
    QuarantineStore,
    SQLiteStore,
    open_store,
    pgschema,
)
from gateway.quarantine.reviewbase import EVERYTHING, Account, QueueQuery, Scope
from gateway.quarantine.schema import _V1
from tests.factories import PARENT, held_message, hold_request, write_quarantine_settings
from tests.quarantine.conftest import Backend

IT = Actor("it", "root")
NOW = datetime.now(UTC)


@pytest.fixture
def store(backend: Backend) -> Iterator[QuarantineStore]:
    """The store of each backend (this module's tests all run on both)."""
    s = backend.open()
    yield s
    s.close()


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


def test_the_console_secret_is_made_once_by_instances_starting_together(
        backend: Backend) -> None:
    stores = [backend.open() for _ in range(4)]
    got: list[str] = []
    start = threading.Barrier(len(stores))

    def make(store: QuarantineStore, mine: str) -> None:
        start.wait()
        got.append(store.console_secret("s", mine))

    threads = [threading.Thread(target=make, args=(s, f"secret-{i}"))
               for i, s in enumerate(stores)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in stores:
            s.close()
    assert len(got) == 4 and len(set(got)) == 1 and got[0].startswith("secret-")


def test_sign_in_failures_are_counted_across_instances(backend: Backend) -> None:
    """Two console instances on one store: a guesser switching between them is counted
    once per attempt, whichever instance took it."""
    first, second = backend.open(), backend.open()
    try:
        threads = [threading.Thread(target=s.record_signin_failure,
                                    args=(("account:jones", "client:10.0.0.9"), NOW))
                   for s in (first, second) * 3]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        since = NOW - timedelta(minutes=15)
        assert first.signin_failures("account:jones", since) == 6
        assert second.signin_failures("client:10.0.0.9", since) == 6
        second.clear_signin_failures("account:jones")
        assert first.signin_failures("account:jones", since) == 0
    finally:
        first.close()
        second.close()


def test_sign_out_disable_and_a_new_password_end_sessions(store: QuarantineStore) -> None:
    store.add_account(Account("jones", "reviewer", ("Lincoln",), password_hash="h1"), IT)
    start = store.account("jones")
    assert start is not None and start.session_epoch == 0
    store.end_sessions("Jones")
    assert store.account("jones").session_epoch == 1
    assert store.update_account("jones", IT, email="j@x.example").session_epoch == 1
    assert store.update_account("jones", IT, password_hash="h2").session_epoch == 2
    assert store.update_account("jones", IT, disabled=True).session_epoch == 3
    assert store.update_account("jones", IT, disabled=False).session_epoch == 3
    assert "h2" not in str([a.detail for a in store.audit()])  # never the hash itself


def test_a_sqlite_version_1_database_is_upgraded_with_its_rules_joinable(tmp_path: Path) -> None:
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


def test_a_postgres_version_1_database_is_migrated_with_its_rules_joinable(
        tmp_path: Path, postgres_url: str) -> None:
    """A database made before the console: refused until `gateway quarantine migrate`, which
    makes the existing entries' rules joinable."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(pgschema.MIGRATIONS[1])
        conn.execute("INSERT INTO gateway_schema (version) VALUES (1)")
        conn.execute("INSERT INTO entries VALUES ('20250101-aaaa0001', 'Q', now(), NULL, 'a@b',"
                     " NULL, 's', 1, 'x', 'k', 'held', '[\"P7\", \"P8\"]', '[]', '[]', '[]',"
                     " now(), NULL, NULL)")
        conn.execute("INSERT INTO entry_recipients VALUES ('20250101-aaaa0001', 0, %s, 'held',"
                     " now(), '')", (PARENT,))
    settings = write_quarantine_settings(tmp_path, url=postgres_url)
    with pytest.raises(QuarantineError, match="gateway quarantine migrate"):
        open_store(settings)
    assert main(["quarantine", "migrate", "--config", str(settings.source)]) == 0
    store = open_store(settings)
    try:
        found, total = store.queue(QueueQuery(scope=Scope(rules=frozenset({"P8"}))))
        assert total == 1 and found[0].rules == ("P7", "P8") and found[0].schools == ()
        store.add_account(Account("admin", "administrator"), IT)
    finally:
        store.close()


def test_copy_to_postgres_brings_the_console_along(tmp_path: Path, postgres_url: str) -> None:
    sqlite_path = tmp_path / "old" / "quarantine.db"
    sqlite_path.parent.mkdir()
    old = SQLiteStore(sqlite_path)
    lincoln = hold(old, "trip", ("Lincoln",), ("P1", "P7"))
    hold(old, "other", ("Washington",))
    old.add_account(Account("jones", "reviewer", ("Lincoln",), email="j@x.example",
                            password_hash="h"), IT)
    old.end_sessions("jones")
    old.record_signin_failure(("client:10.0.0.9",), NOW)
    secret = old.console_secret("review_session_secret", "kept")
    old.close()
    settings = write_quarantine_settings(tmp_path, url=postgres_url)
    assert main(["quarantine", "copy", "--from", str(sqlite_path),
                 "--config", str(settings.source)]) == 0
    new = open_store(settings)
    try:
        jones = new.account("jones")
        assert jones is not None and jones.password_hash == "h" and jones.session_epoch == 1
        found, total = new.queue(QueueQuery(scope=jones.scope))
        assert total == 1 and found[0].id == lincoln and found[0].schools == ("Lincoln",)
        assert new.queue_counts(jones.scope).held_by_rule == {"P1": 1, "P7": 1}
        assert new.signin_failures("client:10.0.0.9", NOW - timedelta(minutes=1)) == 1
        assert new.console_secret("review_session_secret", "new") == secret
    finally:
        new.close()
