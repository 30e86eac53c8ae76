"""What only the PostgreSQL store does: its schema's versions (created on an empty database,
refused when older or newer until `gateway quarantine migrate`), the copy of an SQLite
quarantine with its audit chain, passwords kept out of messages, and a server that goes away
and comes back. Against a real server (tests.pgserver)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from gateway.cli import main
from gateway.cli.dryrun import read_only_history
from gateway.quarantine import open_store, pgschema
from gateway.quarantine.base import Actor, SchemaMismatch, StoreUnavailable
from gateway.quarantine.postgres import PostgresStore, conninfo_with_defaults, redact
from gateway.quarantine.sqlite import SQLiteStore
from tests.factories import (
    PARENT,
    STUDENT_PERSONAL,
    held_message,
    hold_request,
    write_quarantine_settings,
)
from tests.pgserver import PostgresServer, remove, start_server

REVIEWER = Actor("principal.jones", "gateway")


def test_two_instances_starting_on_an_empty_database_create_the_schema_once(
        postgres_url: str) -> None:
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def open_one() -> None:
        try:
            start.wait()
            stores.append(PostgresStore(postgres_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT version FROM gateway_schema").fetchall() == [
            (pgschema.SCHEMA_VERSION,)]
    for s in stores:
        s.close()


def _set_version(url: str, version: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE gateway_schema SET version = %s", (version,))


def test_a_newer_schema_is_refused(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    _set_version(postgres_url, pgschema.SCHEMA_VERSION + 1)
    with pytest.raises(SchemaMismatch, match="newer than this gateway"):
        PostgresStore(postgres_url)


def test_an_older_schema_is_refused_until_migrate_upgrades_it(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A later gateway version adds a step; the running database is one version behind."""
    PostgresStore(postgres_url).close()
    nxt = pgschema.SCHEMA_VERSION + 1
    monkeypatch.setattr(pgschema, "SCHEMA_VERSION", nxt)
    monkeypatch.setitem(pgschema.MIGRATIONS, nxt,
                        "CREATE TABLE next_step (x integer); INSERT INTO next_step VALUES (1);")
    settings = write_quarantine_settings(tmp_path, url=postgres_url)
    with pytest.raises(SchemaMismatch, match="gateway quarantine migrate"):
        open_store(settings)
    assert main(["quarantine", "migrate", "--config", str(settings.source)]) == 0
    out = capsys.readouterr().out
    assert f"upgraded from version {nxt - 1} to {nxt}" in out and "passfile" in out
    assert main(["quarantine", "migrate", "--config", str(settings.source)]) == 0
    assert f"schema version {nxt}, current" in capsys.readouterr().out  # a second run: no-op
    open_store(settings).close()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM next_step").fetchone() == (1,)


def test_a_database_with_foreign_tables_is_not_taken_over(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE entries (id text)")
    with pytest.raises(SchemaMismatch, match="not a gateway quarantine"):
        PostgresStore(postgres_url)


def test_a_readonly_store_creates_nothing(postgres_url: str) -> None:
    with pytest.raises(StoreUnavailable, match="no gateway schema"):
        PostgresStore(postgres_url, readonly=True)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT to_regclass('gateway_schema')").fetchone() == (None,)


@pytest.mark.parametrize("url, shown", [
    ("postgresql://gw:s3cret@db.example/q", "postgresql://gw:…@db.example/q"),
    ("postgresql://gw@db.example/q?password=s3cret&sslmode=require",
     "postgresql://gw@db.example/q?password=…&sslmode=require"),
    ("postgresql://db.example/q?sslmode=verify-full", "postgresql://db.example/q?sslmode=verify-full"),
])
def test_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_a_connect_timeout_is_added_only_when_the_url_has_none() -> None:
    assert "connect_timeout=7" in conninfo_with_defaults("postgresql://h/q", 7)
    assert conninfo_with_defaults("postgresql://h/q?connect_timeout=3&application_name=x",
                                  7) == "postgresql://h/q?connect_timeout=3&application_name=x"


def test_a_wrong_password_is_a_clear_error_without_the_password(
        postgres_server: PostgresServer) -> None:
    url = postgres_server.url().split("?")[0].replace("postgres@", "postgres:wr0ng@")
    with pytest.raises(StoreUnavailable) as info:
        PostgresStore(url + "?connect_timeout=3", timeout=3)
    assert "wr0ng" not in str(info.value)
    assert "password authentication failed" in str(info.value)


# --- the copy of an SQLite quarantine ----------------------------------------------------------

def test_copy_moves_everything_and_the_audit_chain_still_verifies(
        tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    sqlite_path = tmp_path / "old" / "quarantine.db"
    sqlite_path.parent.mkdir()
    old = SQLiteStore(sqlite_path)
    now = datetime.now(UTC)
    kept = old.hold(hold_request(recipients=(STUDENT_PERSONAL, PARENT), rules=("P1", "P7")))
    released = old.hold(hold_request(held_message("released")))
    old.claim_release(released.id, REVIEWER, 60)
    old.finish_release(released.id, REVIEWER, "fine", (STUDENT_PERSONAL,), {})
    gone = old.hold(hold_request(held_message("gone")))
    old.delete(gone.id, REVIEWER, "not a record")
    purged = old.hold(hold_request(held_message("old"), received=now - timedelta(days=90)))
    old.purge(now - timedelta(days=60), REVIEWER, "retention")
    for days in (1, 2, 40):
        old.record_contact("482913", "T1", now - timedelta(days=days))
    old.claim_digest(now, 3600)
    before = ([e.public() for e in old.list_entries()], [a.public() for a in old.audit()],
              {e: old.content(e) for e in (kept.id, released.id, gone.id)})
    old.close()

    settings = write_quarantine_settings(tmp_path, url=postgres_url)
    assert main(["quarantine", "copy", "--from", f"sqlite:///{sqlite_path}",
                 "--config", str(settings.source)]) == 0
    assert "copied 3 entries, 7 audit records (chain verified" in capsys.readouterr().out

    new = open_store(settings)
    try:
        after = ([e.public() for e in new.list_entries()], [a.public() for a in new.audit()],
                 {e: new.content(e) for e in (kept.id, released.id, gone.id)})
        assert after == before
        assert new.verify() == []
        assert [a.action for a in new.audit(purged.id)] == ["hold", "purge"]
        assert new.count_contacts("482913", "T1", now - timedelta(days=30)) == 2
        assert new.claim_digest(now + timedelta(minutes=1), 3600) is None  # period kept
        new.hold(hold_request(held_message("after the move")))  # the chain continues
        assert new.verify() == [] and len(new.audit()) == 8
    finally:
        new.close()
    # A second copy would splice two chains: refused, nothing changed.
    assert main(["quarantine", "copy", "--from", str(sqlite_path),
                 "--config", str(settings.source)]) == 1
    assert "not empty" in capsys.readouterr().err


# --- the server goes away and comes back ---------------------------------------------------------

@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    """A server of this module's own, stopped and started by its tests."""
    server = start_server()
    if server is None:
        pytest.skip("PostgreSQL is not installed")
    yield server
    remove(server)


def test_a_server_that_goes_away_is_unavailable_then_reconnected(
        own_server: PostgresServer) -> None:
    url = own_server.url(own_server.create_database())
    store = PostgresStore(url, timeout=2)
    try:
        first = store.hold(hold_request(held_message("before")))
        assert store.check()
        own_server.stop()
        with pytest.raises(StoreUnavailable):
            store.hold(hold_request(held_message("while down")))
        assert not store.check()
        own_server.start()
        again = store.hold(hold_request(held_message("after")))
        assert store.check()
        assert {e.id for e in store.list_entries()} == {first.id, again.id}
        assert store.verify() == []
    finally:
        if not (own_server.datadir / "postmaster.pid").exists():
            own_server.start()  # for the next test, whatever failed here
        store.close()


def test_a_slow_statement_is_cut_off_at_the_store_timeout(own_server: PostgresServer) -> None:
    url = own_server.url(own_server.create_database())
    store = PostgresStore(url, timeout=1)
    blocker = psycopg.connect(url)
    try:
        held = store.hold(hold_request())
        blocker.execute("SELECT 1 FROM entries WHERE id = %s FOR UPDATE", (held.id,))
        with pytest.raises(StoreUnavailable):  # waits on the row lock, then gives up
            store.delete(held.id, REVIEWER, "x")
        blocker.rollback()
        assert store.delete(held.id, REVIEWER, "x")
    finally:
        blocker.close()
        store.close()


def test_gateway_check_reads_the_shared_history_and_records_nothing(
        tmp_path: Path, postgres_url: str) -> None:
    settings = write_quarantine_settings(tmp_path, url=postgres_url)
    with read_only_history(settings) as history:  # no schema yet: an empty history
        assert history.count_contacts("482913", "T1", datetime.now(UTC) - timedelta(days=30)) == 0
    store = open_store(settings)
    now = datetime.now(UTC)
    store.record_contact("482913", "T1", now - timedelta(days=1))
    store.close()
    with read_only_history(settings) as history:
        assert history.count_contacts("482913", "T1", now - timedelta(days=30)) == 1
        history.record_contact("482913", "T1", now)  # type: ignore[attr-defined]
    assert rows_of(postgres_url, "SELECT count(*) FROM contacts") == [(1,)]


def rows_of(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()
