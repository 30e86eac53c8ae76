"""The embedded SQLite quarantine: held copies, review status, audit trail, P6 contact history.

Durability: WAL with synchronous=FULL means `hold` returns only after its transaction (entry,
recipients, bytes and audit row together) is fsynced; a crash leaves the whole entry or none.
Sharing: the daemon and the review CLI open the same file; writers take the lock up front
(BEGIN IMMEDIATE) and wait on each other through the busy timeout instead of failing, so every
write transaction runs alone and the shared SQL (sqlstore.py) needs no row locks here.
One connection per store, guarded by a lock, because the daemon calls from worker threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.model import ContactQuery
from gateway.quarantine import audit as audit_chain
from gateway.quarantine.base import Actor, QuarantineError
from gateway.quarantine.rows import to_json
from gateway.quarantine.schema import configure, migrate
from gateway.quarantine.sqlstore import SQLStore
from gateway.quarantine.times import from_db, to_db


class SQLiteStore(SQLStore):
    """QuarantineStore (and the console's ReviewStore) on one SQLite file, or `:memory:` for
    an empty read-only stand-in."""

    RULE_FILTER = "EXISTS (SELECT 1 FROM json_each(e.rules) WHERE value = ?)"
    RECIPIENT_ORDER = "rowid"
    CONTACT_ID = "rowid"

    def __init__(self, path: Path | str, *, readonly: bool = False,
                 actor: Actor | None = None):
        self.path = str(path)
        self.readonly = readonly
        self.actor = actor or Actor("gateway", "gateway")
        self._lock = threading.RLock()
        self._conn = _connect(self.path, readonly)
        # P6 counts are read on connections of their own, one per thread, outside `_lock`:
        # in WAL mode a reader sees the last commit and never waits for the writer's fsync.
        self._readers = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_conns_lock = threading.Lock()  # never held while a database call runs

    # -- the shared SQL's needs -----------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        if write and self.readonly:
            raise QuarantineError("the quarantine is open read-only")
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _time(self, moment: datetime) -> str:
        return to_db(moment)

    def _datetime(self, value: Any) -> datetime:
        return from_db(value)

    def _json(self, value: Any) -> str:
        return to_json(value)

    def _unjson(self, value: Any) -> Any:
        return json.loads(value)

    def _insert_recipients(self, db: sqlite3.Connection, entry_id: str,
                           recipients: Iterable[str], now: Any) -> None:
        db.executemany("INSERT INTO entry_recipients (entry_id, address, status, updated)"
                       " VALUES (?, ?, 'held', ?)", [(entry_id, rcpt, now) for rcpt in recipients])

    # -- what only SQLite does ------------------------------------------------------------
    def verify(self) -> list[str]:
        with self._tx(write=False) as db:
            problems = [r[0] for r in db.execute("PRAGMA integrity_check") if r[0] != "ok"]
            problems += [f"dangling reference in {r[0]}"
                         for r in db.execute("PRAGMA foreign_key_check")]
            problems += _content_problems(db)
            problems += self._entry_problems(db)
            problems += audit_chain.chain_problems(db)
        return problems

    def contact_counts(self, queries: Iterable[ContactQuery]) -> dict[ContactQuery, int]:
        if self.path == ":memory:":  # the empty stand-in: its one connection is all there is
            return super().contact_counts(queries)
        db = self._reader()
        db.execute("BEGIN")  # one snapshot for all of them
        try:
            return {q: self._count(db, q) for q in queries}
        finally:
            db.execute("COMMIT")

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            conn = _connect(self.path, readonly=True)
            with self._reader_conns_lock:
                self._reader_conns.append(conn)
            self._readers.conn = conn
        return conn

    def check(self) -> bool:
        return not self.readonly and (self.path == ":memory:" or os.access(self.path, os.W_OK))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
        with self._reader_conns_lock:
            for conn in self._reader_conns:
                conn.close()


# --- helpers ------------------------------------------------------------------------------

def _connect(path: str, readonly: bool) -> sqlite3.Connection:
    memory = path == ":memory:"
    if readonly and not memory:
        target, uri = f"file:{Path(path).resolve().as_posix()}?mode=ro", True
    else:
        target, uri = path, False
    conn = sqlite3.connect(target, timeout=15.0, isolation_level=None,
                           check_same_thread=False, uri=uri)
    try:
        configure(conn, readonly=readonly or memory)
        if not readonly or memory:
            migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _content_problems(db: sqlite3.Connection) -> list[str]:
    problems = []
    rows = db.execute("SELECT e.id, e.status, e.size, e.sha256, c.data FROM entries e"
                      " LEFT JOIN contents c ON c.entry_id = e.id")
    for entry_id, status, size, digest, data in rows:
        if data is None:
            if status != "deleted":
                problems.append(f"entry {entry_id}: held copy is missing")
        elif len(data) != size or hashlib.sha256(data).hexdigest() != digest:
            problems.append(f"entry {entry_id}: held copy does not match its hash")
    return problems
