"""The embedded SQLite quarantine: held copies, review status, audit trail, P6 contact history.

Durability: WAL with synchronous=FULL means `hold` returns only after its transaction (entry,
recipients, bytes and audit row together) is fsynced; a crash leaves the whole entry or none.
Sharing: the daemon and the review CLI open the same file; writers take the lock up front
(BEGIN IMMEDIATE) and wait on each other through the busy timeout instead of failing.
One connection per store, guarded by a lock, because the daemon calls from worker threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from gateway.model import ContactQuery
from gateway.quarantine import audit as audit_chain
from gateway.quarantine.base import (
    Actor,
    AuditRecord,
    Entry,
    EntryNotFound,
    EntryQuery,
    HoldRequest,
    HoldResult,
    QuarantineError,
    RecipientState,
    ReleaseBusy,
)
from gateway.quarantine.schema import configure, migrate
from gateway.quarantine.sqlite_review import SQLiteReviewMixin
from gateway.quarantine.times import from_db, to_db, utcnow

log = structlog.get_logger("gateway.quarantine")

# A sending MTA retries a 4xx for up to 5 days (Postfix maximal_queue_lifetime); within that
# window the same bytes to the same recipients are its retry, not a new message.
RETRY_WINDOW = timedelta(days=5)
_ENTRY_COLUMNS = ("id, queue_id, received, client_ip, mail_from, message_id, subject, size, "
                  "sha256, status, rules, reasons, findings, samples")


def dedup_key(request: HoldRequest) -> str:
    """Same bytes, same sender, same recipient set → same key (a client's retry after 4xx)."""
    recipients = sorted({r.lower() for r in request.recipients})
    text = "\0".join([hashlib.sha256(request.content).hexdigest(), request.mail_from.lower(),
                      *recipients])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class SQLiteStore(SQLiteReviewMixin):
    """QuarantineStore (and the console's ReviewStore) on one SQLite file, or `:memory:` for
    an empty read-only stand-in."""

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

    # -- transactions ---------------------------------------------------------------------
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

    # -- holding --------------------------------------------------------------------------
    def hold(self, request: HoldRequest) -> HoldResult:
        key = dedup_key(request)
        with self._tx(write=True) as db:
            row = db.execute("SELECT id, status, received FROM entries WHERE dedup_key = ?",
                             (key,)).fetchone()
            if row and row[1] == "held" and from_db(row[2]) >= request.received - RETRY_WINDOW:
                result = HoldResult(row[0], duplicate=True)  # the client's retry after a 4xx
            else:
                if row:  # reviewed or old: the same message sent again is a new entry
                    db.execute("UPDATE entries SET dedup_key = dedup_key || ':' || id"
                               " WHERE id = ?", (row[0],))
                result = HoldResult(self._insert(db, request, key), duplicate=False)
        log.info("quarantine_hold", id=result.id, rules=list(request.rules),
                 recipients=len(set(request.recipients)), size=len(request.content),
                 duplicate=result.duplicate)
        return result

    def _insert(self, db: sqlite3.Connection, request: HoldRequest, key: str) -> str:
        entry_id = _new_id(db, request.received)
        now = to_db(utcnow())
        db.execute(
            f"INSERT INTO entries ({_ENTRY_COLUMNS}, dedup_key, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'held', ?, ?, ?, ?, ?, ?)",
            (entry_id, request.queue_id, to_db(request.received), request.client_ip,
             request.mail_from, request.message_id, request.subject, len(request.content),
             hashlib.sha256(request.content).hexdigest(), _json(list(request.rules)),
             _json(list(request.reasons)), _json(list(request.findings)),
             _json(list(request.samples)), key, now))
        db.executemany(
            "INSERT INTO entry_recipients (entry_id, address, status, updated)"
            " VALUES (?, ?, 'held', ?)",
            [(entry_id, rcpt, now) for rcpt in dict.fromkeys(request.recipients)])
        db.execute("INSERT INTO contents (entry_id, data) VALUES (?, ?)",
                   (entry_id, request.content))
        db.executemany("INSERT INTO entry_rules (entry_id, rule) VALUES (?, ?)",
                       [(entry_id, rule) for rule in dict.fromkeys(request.rules)])
        db.executemany("INSERT INTO entry_schools (entry_id, school) VALUES (?, ?)",
                       [(entry_id, school) for school in dict.fromkeys(request.schools)])
        audit_chain.append(db, self.actor, "hold", entry_id, "held by policy",
                           {"rules": list(request.rules),
                            "recipients": len(set(request.recipients))})
        return entry_id

    # -- reading --------------------------------------------------------------------------
    def list_entries(self, query: EntryQuery | None = None) -> list[Entry]:
        where, params = _where(query or EntryQuery())
        limit = f" LIMIT {int(query.limit)}" if query and query.limit else ""
        with self._tx(write=False) as db:
            rows = db.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries e WHERE {where}"
                              f" ORDER BY received DESC, id{limit}", params).fetchall()
            return self._entries(db, rows)

    def get(self, entry_id: str) -> Entry:
        with self._tx(write=False) as db:
            return self._load_entries(db, [_resolve(db, entry_id)])[0]

    def _load_entries(self, db: sqlite3.Connection, ids: list[str]) -> list[Entry]:
        """Entries by exact id, in the order given (ids that do not exist are skipped)."""
        found: dict[str, tuple[Any, ...]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for row in db.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE id IN"
                                  f" ({', '.join('?' * len(chunk))})", chunk):
                found[row[0]] = row
        return self._entries(db, [found[i] for i in ids if i in found])

    def _entries(self, db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[Entry]:
        ids = [r[0] for r in rows]
        recipients = _recipients(db, ids)
        schools = _schools(db, ids)
        return [_entry(row, recipients.get(row[0], ()), schools.get(row[0], ()))
                for row in rows]

    def content(self, entry_id: str) -> bytes | None:
        with self._tx(write=False) as db:
            full_id = _resolve(db, entry_id)
            row = db.execute("SELECT data FROM contents WHERE entry_id = ?",
                             (full_id,)).fetchone()
        return bytes(row[0]) if row else None

    def audit(self, entry_id: str | None = None,
              since: datetime | None = None) -> list[AuditRecord]:
        clauses, params = ["1 = 1"], []
        with self._tx(write=False) as db:
            if entry_id:
                clauses.append("entry_id = ?")
                params.append(_resolve(db, entry_id, allow_purged=True))
            if since:
                clauses.append("at >= ?")
                params.append(to_db(since))
            rows = db.execute(
                "SELECT seq, at, operator, os_user, action, entry_id, reason, detail, hash"
                f" FROM audit WHERE {' AND '.join(clauses)} ORDER BY seq", params).fetchall()
        return [AuditRecord(r[0], from_db(r[1]), r[2], r[3], r[4], r[5], r[6], json.loads(r[7]),
                            r[8]) for r in rows]

    # -- review actions -------------------------------------------------------------------
    def claim_release(self, entry_id: str, actor: Actor, lease_seconds: float) -> tuple[str, ...]:
        now = utcnow()
        with self._tx(write=True) as db:
            full_id = _resolve(db, entry_id)
            _check_lease(db, full_id, now)
            held = tuple(r[0] for r in db.execute(
                "SELECT address FROM entry_recipients WHERE entry_id = ? AND status = 'held'"
                " ORDER BY rowid", (full_id,)))
            if held:
                db.execute("UPDATE entries SET lease_owner = ?, lease_until = ? WHERE id = ?",
                           (actor.operator, to_db(now + timedelta(seconds=lease_seconds)),
                            full_id))
        return held

    def finish_release(self, entry_id: str, actor: Actor, reason: str,
                       delivered: tuple[str, ...], failed: dict[str, str]) -> Entry:
        now = to_db(utcnow())
        with self._tx(write=True) as db:
            full_id = _resolve(db, entry_id)
            for rcpt in delivered:
                db.execute("UPDATE entry_recipients SET status = 'released', updated = ?,"
                           " detail = 'delivered' WHERE entry_id = ? AND address = ?"
                           " AND status = 'held'", (now, full_id, rcpt))
            for rcpt, why in failed.items():
                db.execute("UPDATE entry_recipients SET updated = ?, detail = ?"
                           " WHERE entry_id = ? AND address = ? AND status = 'held'",
                           (now, why, full_id, rcpt))
            status = "held" if _count_held(db, full_id) else "released"
            db.execute("UPDATE entries SET status = ?, updated = ?, lease_owner = NULL,"
                       " lease_until = NULL WHERE id = ?", (status, now, full_id))
            audit_chain.append(db, actor, "release" if delivered else "release_failed",
                               full_id, reason,
                               {"delivered": list(delivered), "failed": failed})
        entry = self.get(full_id)
        log.info("quarantine_release", id=full_id, rules=list(entry.rules),
                 recipients=len(delivered), failed=len(failed), status=entry.status,
                 operator=actor.operator)
        return entry

    def delete(self, entry_id: str, actor: Actor, reason: str) -> bool:
        now = utcnow()
        with self._tx(write=True) as db:
            full_id = _resolve(db, entry_id)
            status, rules = db.execute("SELECT status, rules FROM entries WHERE id = ?",
                                       (full_id,)).fetchone()
            if status == "deleted":
                return False
            _check_lease(db, full_id, now)
            discarded = _count_held(db, full_id)
            db.execute("DELETE FROM contents WHERE entry_id = ?", (full_id,))
            db.execute("UPDATE entry_recipients SET status = 'deleted', updated = ?"
                       " WHERE entry_id = ? AND status = 'held'", (to_db(now), full_id))
            db.execute("UPDATE entries SET status = 'deleted', updated = ? WHERE id = ?",
                       (to_db(now), full_id))
            audit_chain.append(db, actor, "delete", full_id, reason,
                               {"previous_status": status, "recipients": discarded})
        log.info("quarantine_delete", id=full_id, rules=json.loads(rules),
                 recipients=discarded, operator=actor.operator)
        return True

    def purge(self, before: datetime, actor: Actor, reason: str,
              statuses: tuple[str, ...] = ()) -> list[str]:
        now = to_db(utcnow())
        sql = ("SELECT id, status, rules FROM entries WHERE received < ?"
               " AND (lease_until IS NULL OR lease_until < ?)")
        params: list[Any] = [to_db(before), now]
        if statuses:
            sql += f" AND status IN ({', '.join('?' * len(statuses))})"
            params.extend(statuses)
        with self._tx(write=True) as db:
            rows = db.execute(sql + " ORDER BY received", params).fetchall()
            for entry_id, status, rules in rows:
                audit_chain.append(db, actor, "purge", entry_id, reason,
                                   {"status": status, "rules": json.loads(rules)})
                db.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
        log.info("quarantine_purge", count=len(rows), before=before.isoformat(),
                 operator=actor.operator)
        return [r[0] for r in rows]

    def record(self, actor: Actor, action: str, entry_id: str | None, reason: str,
               detail: dict[str, Any]) -> None:
        with self._tx(write=True) as db:
            audit_chain.append(db, actor, action, entry_id, reason, detail)
        log.info(f"quarantine_{action}", id=entry_id, operator=actor.operator)

    # -- integrity ------------------------------------------------------------------------
    def verify(self) -> list[str]:
        with self._tx(write=False) as db:
            problems = [r[0] for r in db.execute("PRAGMA integrity_check") if r[0] != "ok"]
            problems += [f"dangling reference in {r[0]}"
                         for r in db.execute("PRAGMA foreign_key_check")]
            problems += _content_problems(db)
            problems += audit_chain.chain_problems(db)
        return problems

    # -- P5/P6 contact history (model.ContactHistory) --------------------------------------
    def count_contacts(self, student_id: str, staff_id: str, since: datetime) -> int:
        return self.contact_counts([(student_id, staff_id, since)])[(student_id, staff_id, since)]

    def contact_counts(self, queries: Iterable[ContactQuery]) -> dict[ContactQuery, int]:
        if self.path == ":memory:":  # the empty stand-in: its one connection is all there is
            with self._tx(write=False) as db:
                return {q: _count(db, q) for q in queries}
        db = self._reader()
        db.execute("BEGIN")  # one snapshot for all of them
        try:
            return {q: _count(db, q) for q in queries}
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

    def record_contact(self, student_id: str, staff_id: str, at: datetime) -> None:
        if self.readonly:
            return  # `gateway check` reads the history but records nothing
        with self._tx(write=True) as db:
            db.execute("INSERT INTO contacts (student_id, staff_id, at) VALUES (?, ?, ?)",
                       (student_id, staff_id, to_db(at)))

    def purge_contacts(self, before: datetime) -> int:
        with self._tx(write=True) as db:
            return db.execute("DELETE FROM contacts WHERE at < ?", (to_db(before),)).rowcount

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


def _count(db: sqlite3.Connection, query: ContactQuery) -> int:
    student_id, staff_id, since = query
    return int(db.execute(
        "SELECT count(*) FROM contacts WHERE student_id = ? AND staff_id = ? AND at >= ?",
        (student_id, staff_id, to_db(since))).fetchone()[0])


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _new_id(db: sqlite3.Connection, received: datetime) -> str:
    """`YYYYMMDD-xxxxxxxx`: readable on a phone call, sortable, unguessable enough."""
    while True:
        candidate = f"{received:%Y%m%d}-{secrets.token_hex(4)}"
        if not db.execute("SELECT 1 FROM entries WHERE id = ?", (candidate,)).fetchone():
            return candidate


def _resolve(db: sqlite3.Connection, entry_id: str, *, allow_purged: bool = False) -> str:
    """An exact id, or a unique prefix of one (at least 4 characters)."""
    entry_id = entry_id.strip()
    if db.execute("SELECT 1 FROM entries WHERE id = ?", (entry_id,)).fetchone():
        return entry_id
    if allow_purged and db.execute("SELECT 1 FROM audit WHERE entry_id = ? LIMIT 1",
                                   (entry_id,)).fetchone():
        return entry_id
    if len(entry_id) >= 4:
        pattern = entry_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = db.execute("SELECT id FROM entries WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                          (pattern,)).fetchall()
        if len(rows) == 1:
            return str(rows[0][0])
        if len(rows) > 1:
            raise EntryNotFound(f"quarantine id '{entry_id}' is ambiguous; give more of it")
    raise EntryNotFound(f"no quarantine entry '{entry_id}'")


def _check_lease(db: sqlite3.Connection, entry_id: str, now: datetime) -> None:
    owner, until = db.execute("SELECT lease_owner, lease_until FROM entries WHERE id = ?",
                              (entry_id,)).fetchone()
    if until and from_db(until) > now:
        raise ReleaseBusy(f"entry {entry_id} is being released by {owner} right now "
                          f"(lease until {until}); try again later")


def _count_held(db: sqlite3.Connection, entry_id: str) -> int:
    return int(db.execute("SELECT count(*) FROM entry_recipients WHERE entry_id = ?"
                          " AND status = 'held'", (entry_id,)).fetchone()[0])


def _where(query: EntryQuery) -> tuple[str, list[Any]]:
    clauses, params = ["1 = 1"], []
    if query.status:
        clauses.append("e.status = ?")
        params.append(query.status)
    if query.rule:
        clauses.append("EXISTS (SELECT 1 FROM json_each(e.rules) WHERE value = ?)")
        params.append(query.rule)
    if query.recipient:
        clauses.append("EXISTS (SELECT 1 FROM entry_recipients r WHERE r.entry_id = e.id"
                       " AND lower(r.address) = lower(?))")
        params.append(query.recipient)
    if query.since:
        clauses.append("e.received >= ?")
        params.append(to_db(query.since))
    if query.before:
        clauses.append("e.received < ?")
        params.append(to_db(query.before))
    return " AND ".join(clauses), params


def _recipients(db: sqlite3.Connection,
                ids: list[str]) -> dict[str, tuple[RecipientState, ...]]:
    out: dict[str, list[RecipientState]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = db.execute(
            "SELECT entry_id, address, status, updated, detail FROM entry_recipients"
            f" WHERE entry_id IN ({', '.join('?' * len(chunk))}) ORDER BY rowid", chunk)
        for entry_id, address, status, updated, detail in rows:
            out.setdefault(entry_id, []).append(
                RecipientState(address, status, from_db(updated), detail))
    return {k: tuple(v) for k, v in out.items()}


def _schools(db: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for entry_id, school in db.execute(
                "SELECT entry_id, school FROM entry_schools"
                f" WHERE entry_id IN ({', '.join('?' * len(chunk))}) ORDER BY school", chunk):
            out.setdefault(entry_id, []).append(school)
    return {k: tuple(v) for k, v in out.items()}


def _entry(row: tuple[Any, ...], recipients: tuple[RecipientState, ...],
           schools: tuple[str, ...] = ()) -> Entry:
    (entry_id, queue_id, received, client_ip, mail_from, message_id, subject, size, sha256,
     status, rules, reasons, findings, samples) = row
    return Entry(entry_id, queue_id, from_db(received), client_ip, mail_from, message_id,
                 subject, size, sha256, status, tuple(json.loads(rules)),
                 tuple(json.loads(reasons)), tuple(json.loads(findings)),
                 tuple(json.loads(samples)), recipients, schools)


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
    for (entry_id,) in db.execute("SELECT id FROM entries e WHERE NOT EXISTS (SELECT 1 FROM"
                                  " entry_recipients r WHERE r.entry_id = e.id)"):
        problems.append(f"entry {entry_id}: has no recipients")
    return problems
