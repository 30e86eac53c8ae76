"""The shared PostgreSQL quarantine: several gateway instances, one store.

Driver: psycopg 3 (the maintained successor of psycopg2, libpq underneath, so every libpq URL
option, TLS mode, password file and PG* environment variable works as in psql) with
psycopg_pool's thread-safe pool. The store's calls run in the daemon's worker threads like the
SQLite store's, so the synchronous driver keeps one implementation of each transaction and
nothing of it runs on the event loop.

What keeps several instances correct (each is one transaction):
- hold: an advisory lock on the retry key, so a client retrying on another instance while the
  first attempt is still committing finds that entry instead of making a second;
- release, delete: the entry's row is locked (SELECT … FOR UPDATE) while the lease is checked
  and taken, so of two reviewers pressing release at once one gets the lease and the other
  ReleaseBusy; purge locks the rows it removes, and a row removed meanwhile is skipped;
- P5/P6 contacts: an advisory lock per student-staff pair, taken in a fixed order (no
  deadlock), around the insert and the count;
- the digest: the period's row is locked and moved on by the one instance that claims it;
- the audit chain: an advisory lock around reading the chain's head and appending to it.

Faults: a connection that broke (server restart, failover) is dropped by the pool and a new one
made on the next call; every call waits at most `timeout` seconds for a connection and every
statement at most `timeout` seconds, and then raises StoreUnavailable (a hold that cannot be
written gets 451, so the client retries). Errors never carry the URL's password.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from gateway.model import ContactPlan, ContactQuery
from gateway.quarantine import audit as audit_chain
from gateway.quarantine import pgschema
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
    StoreUnavailable,
)
from gateway.quarantine.rows import (
    DIGEST,
    dedup_key,
    hold_audit_detail,
    is_retry,
    log_hold,
    new_entry_id,
)
from gateway.quarantine.times import as_utc, from_db, to_db, utcnow

log = structlog.get_logger("gateway.quarantine")

_ENTRY_COLUMNS = ("id, queue_id, received, client_ip, mail_from, message_id, subject, size, "
                  "sha256, status, rules, reasons, findings, samples")
POOL_SIZE = 8  # connections per instance: holds and P6 counts are short transactions
DEFAULT_TIMEOUT = 30.0  # seconds; below the processing deadline, so the client gets 451 in time


class PostgresStore:
    """QuarantineStore on a PostgreSQL database that several gateway instances share."""

    def __init__(self, url: str, *, readonly: bool = False, actor: Actor | None = None,
                 timeout: float = DEFAULT_TIMEOUT, pool_size: int = POOL_SIZE):
        self.url = url
        self.readonly = readonly
        self.actor = actor or Actor("gateway", "gateway")
        self.timeout = timeout
        conninfo = conninfo_with_defaults(url, timeout)
        self._pool = ConnectionPool(
            conninfo, min_size=1, max_size=max(pool_size, 1), open=False, timeout=timeout,
            name="quarantine", configure=self._configure, kwargs={"autocommit": True},
            check=ConnectionPool.check_connection, reconnect_timeout=timeout)
        # One direct connection first: it says why a server cannot be used (refused, wrong
        # password, unknown database, schema) where the pool would only time out.
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                self._configure(conn)
                _check_readonly(conn) if readonly else pgschema.ensure(conn)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"cannot use the quarantine database {redact(url)}: "
                                   f"{_describe(exc)}") from None
        self._pool.open(wait=False)

    def _configure(self, conn: psycopg.Connection) -> None:
        """Every statement bounded (a slow query becomes StoreUnavailable, not a stuck
        session); a read-only store cannot write even by mistake."""
        millis = int(self.timeout * 1000)
        conn.execute(f"SET statement_timeout = {millis}")
        conn.execute(f"SET lock_timeout = {millis}")
        conn.execute(f"SET idle_in_transaction_session_timeout = {millis * 2}")
        conn.execute("SET TIME ZONE 'UTC'")
        if self.readonly:
            conn.execute("SET default_transaction_read_only = on")

    # -- transactions ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self, *, write: bool) -> Iterator[psycopg.Cursor[Any]]:
        if write and self.readonly:
            raise QuarantineError("the quarantine is open read-only")
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                yield cur
        except PoolTimeout:
            raise StoreUnavailable("the quarantine database is unavailable (no connection "
                                   f"within {self.timeout:g} s)") from None
        except (psycopg.OperationalError, psycopg.errors.QueryCanceled,
                psycopg.errors.LockNotAvailable) as exc:
            raise StoreUnavailable(f"the quarantine database is unavailable: "
                                   f"{_describe(exc)}") from None

    # -- holding --------------------------------------------------------------------------
    def hold(self, request: HoldRequest) -> HoldResult:
        key = dedup_key(request)
        with self._tx(write=True) as db:
            # Another instance may be committing the same retry key right now.
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("hold", key),))
            row = db.execute("SELECT id, status, received FROM entries WHERE dedup_key = %s",
                             (key,)).fetchone()
            if row and is_retry(row[1], row[2], request):
                result = HoldResult(row[0], duplicate=True)
            else:
                if row:  # reviewed or old: the same message sent again is a new entry
                    db.execute("UPDATE entries SET dedup_key = dedup_key || ':' || id"
                               " WHERE id = %s", (row[0],))
                result = HoldResult(self._insert(db, request, key), duplicate=False)
        log_hold(request, result)
        return result

    def _insert(self, db: psycopg.Cursor[Any], request: HoldRequest, key: str) -> str:
        entry_id = new_entry_id(request.received)
        while db.execute("SELECT 1 FROM entries WHERE id = %s", (entry_id,)).fetchone():
            entry_id = new_entry_id(request.received)
        now = utcnow()
        db.execute(
            f"INSERT INTO entries ({_ENTRY_COLUMNS}, dedup_key, updated)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'held', %s, %s, %s, %s, %s, %s)",
            (entry_id, request.queue_id, as_utc(request.received), request.client_ip,
             request.mail_from, request.message_id, request.subject, len(request.content),
             hashlib.sha256(request.content).hexdigest(), _jsonb(request.rules),
             _jsonb(request.reasons), _jsonb(request.findings), _jsonb(request.samples),
             key, now))
        db.executemany(
            "INSERT INTO entry_recipients (entry_id, position, address, status, updated)"
            " VALUES (%s, %s, %s, 'held', %s)",
            [(entry_id, n, rcpt, now)
             for n, rcpt in enumerate(dict.fromkeys(request.recipients))])
        db.execute("INSERT INTO contents (entry_id, data) VALUES (%s, %s)",
                   (entry_id, request.content))
        self._audit(db, self.actor, "hold", entry_id, "held by policy",
                    hold_audit_detail(request))
        return entry_id

    def _audit(self, db: psycopg.Cursor[Any], actor: Actor, action: str,
               entry_id: str | None, reason: str, detail: dict[str, Any]) -> None:
        """One audit row, chained onto the head under the chain's lock (held to commit)."""
        db.execute("SELECT pg_advisory_xact_lock(%s)", (pgschema.AUDIT_LOCK,))
        audit_chain.append(db, actor, action, entry_id, reason, detail, mark="%s")

    # -- reading --------------------------------------------------------------------------
    def list_entries(self, query: EntryQuery | None = None) -> list[Entry]:
        where, params = _where(query or EntryQuery())
        limit = f" LIMIT {int(query.limit)}" if query and query.limit else ""
        with self._tx(write=False) as db:
            rows = db.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries e WHERE {where}"
                              f" ORDER BY received DESC, id{limit}", params).fetchall()
            recipients = _recipients(db, [r[0] for r in rows])
        return [_entry(row, recipients.get(row[0], ())) for row in rows]

    def get(self, entry_id: str) -> Entry:
        with self._tx(write=False) as db:
            full_id = _resolve(db, entry_id)
            row = db.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE id = %s",
                             (full_id,)).fetchone()
            recipients = _recipients(db, [full_id])
        return _entry(row, recipients.get(full_id, ()))

    def content(self, entry_id: str) -> bytes | None:
        with self._tx(write=False) as db:
            full_id = _resolve(db, entry_id)
            row = db.execute("SELECT data FROM contents WHERE entry_id = %s",
                             (full_id,)).fetchone()
        return bytes(row[0]) if row else None

    def audit(self, entry_id: str | None = None,
              since: datetime | None = None) -> list[AuditRecord]:
        clauses, params = ["true"], []
        with self._tx(write=False) as db:
            if entry_id:
                clauses.append("entry_id = %s")
                params.append(_resolve(db, entry_id, allow_purged=True))
            if since:
                clauses.append("at >= %s")
                params.append(to_db(since))
            rows = db.execute(
                "SELECT seq, at, operator, os_user, action, entry_id, reason, detail, hash"
                f" FROM audit WHERE {' AND '.join(clauses)} ORDER BY seq", params).fetchall()
        return [AuditRecord(r[0], from_db(r[1]), r[2], r[3], r[4], r[5], r[6],
                            json.loads(r[7]), r[8]) for r in rows]

    # -- review actions -------------------------------------------------------------------
    def claim_release(self, entry_id: str, actor: Actor, lease_seconds: float) -> tuple[str, ...]:
        now = utcnow()
        with self._tx(write=True) as db:
            full_id = _resolve(db, entry_id)
            _lock_entry_checking_lease(db, full_id, now)
            held = tuple(r[0] for r in db.execute(
                "SELECT address FROM entry_recipients WHERE entry_id = %s AND status = 'held'"
                " ORDER BY position", (full_id,)))
            if held:
                db.execute("UPDATE entries SET lease_owner = %s, lease_until = %s WHERE id = %s",
                           (actor.operator, now + timedelta(seconds=lease_seconds), full_id))
        return held

    def finish_release(self, entry_id: str, actor: Actor, reason: str,
                       delivered: tuple[str, ...], failed: dict[str, str]) -> Entry:
        now = utcnow()
        with self._tx(write=True) as db:
            full_id = _resolve(db, entry_id)
            db.execute("SELECT 1 FROM entries WHERE id = %s FOR UPDATE", (full_id,))
            for rcpt in delivered:
                db.execute("UPDATE entry_recipients SET status = 'released', updated = %s,"
                           " detail = 'delivered' WHERE entry_id = %s AND address = %s"
                           " AND status = 'held'", (now, full_id, rcpt))
            for rcpt, why in failed.items():
                db.execute("UPDATE entry_recipients SET updated = %s, detail = %s"
                           " WHERE entry_id = %s AND address = %s AND status = 'held'",
                           (now, why, full_id, rcpt))
            status = "held" if _count_held(db, full_id) else "released"
            db.execute("UPDATE entries SET status = %s, updated = %s, lease_owner = NULL,"
                       " lease_until = NULL WHERE id = %s", (status, now, full_id))
            self._audit(db, actor, "release" if delivered else "release_failed", full_id,
                        reason, {"delivered": list(delivered), "failed": failed})
        entry = self.get(full_id)
        log.info("quarantine_release", id=full_id, rules=list(entry.rules),
                 recipients=len(delivered), failed=len(failed), status=entry.status,
                 operator=actor.operator)
        return entry

    def delete(self, entry_id: str, actor: Actor, reason: str) -> bool:
        now = utcnow()
        with self._tx(write=True) as db:
            full_id = _resolve(db, entry_id)
            status, rules = _lock_entry_checking_lease(db, full_id, now,
                                                       skip_if_deleted=True)
            if status == "deleted":
                return False
            discarded = _count_held(db, full_id)
            db.execute("DELETE FROM contents WHERE entry_id = %s", (full_id,))
            db.execute("UPDATE entry_recipients SET status = 'deleted', updated = %s"
                       " WHERE entry_id = %s AND status = 'held'", (now, full_id))
            db.execute("UPDATE entries SET status = 'deleted', updated = %s WHERE id = %s",
                       (now, full_id))
            self._audit(db, actor, "delete", full_id, reason,
                        {"previous_status": status, "recipients": discarded})
        log.info("quarantine_delete", id=full_id, rules=rules, recipients=discarded,
                 operator=actor.operator)
        return True

    def purge(self, before: datetime, actor: Actor, reason: str,
              statuses: tuple[str, ...] = ()) -> list[str]:
        now = utcnow()
        sql = ("SELECT id, status, rules FROM entries WHERE received < %s"
               " AND (lease_until IS NULL OR lease_until < %s)")
        params: list[Any] = [as_utc(before), now]
        if statuses:
            sql += " AND status = ANY(%s)"
            params.append(list(statuses))
        with self._tx(write=True) as db:
            # Locked, so a concurrent purge waits and then finds these rows gone.
            rows = db.execute(sql + " ORDER BY received, id FOR UPDATE", params).fetchall()
            for entry_id, status, rules in rows:
                self._audit(db, actor, "purge", entry_id, reason,
                            {"status": status, "rules": rules})
                db.execute("DELETE FROM entries WHERE id = %s", (entry_id,))
        log.info("quarantine_purge", count=len(rows), before=before.isoformat(),
                 operator=actor.operator)
        return [r[0] for r in rows]

    def record(self, actor: Actor, action: str, entry_id: str | None, reason: str,
               detail: dict[str, Any]) -> None:
        with self._tx(write=True) as db:
            self._audit(db, actor, action, entry_id, reason, detail)
        log.info(f"quarantine_{action}", id=entry_id, operator=actor.operator)

    # -- reviewers' digest ----------------------------------------------------------------
    def claim_digest(self, until: datetime, interval: float) -> datetime | None:
        with self._tx(write=True) as db:
            created = db.execute(
                "INSERT INTO digest_state (name, period_end) VALUES (%s, %s)"
                " ON CONFLICT (name) DO NOTHING RETURNING name", (DIGEST, until)).fetchone()
            if created:
                return None
            (since,) = db.execute("SELECT period_end FROM digest_state WHERE name = %s"
                                  " FOR UPDATE", (DIGEST,)).fetchone()
            if since + timedelta(seconds=interval) > until:
                return None
            db.execute("UPDATE digest_state SET period_end = %s WHERE name = %s",
                       (until, DIGEST))
            return since  # type: ignore[no-any-return]

    def unclaim_digest(self, since: datetime, until: datetime) -> None:
        with self._tx(write=True) as db:
            db.execute("UPDATE digest_state SET period_end = %s WHERE name = %s"
                       " AND period_end = %s", (since, DIGEST, until))

    # -- P5/P6 contact history ------------------------------------------------------------
    def count_contacts(self, student_id: str, staff_id: str, since: datetime) -> int:
        return self.contact_counts([(student_id, staff_id, since)])[(student_id, staff_id, since)]

    def contact_counts(self, queries: Iterable[ContactQuery]) -> dict[ContactQuery, int]:
        queries = list(queries)
        if not queries:
            return {}
        with self._tx(write=False) as db:
            return {q: _count(db, q) for q in queries}

    def count_and_record(self, plan: ContactPlan, message_key: str) -> dict[ContactQuery, int]:
        if self.readonly or not plan.record:
            return self.contact_counts(plan.queries)
        at = as_utc(plan.at or utcnow())
        pairs = {(q[0], q[1]) for q in plan.queries} | set(plan.record)
        with self._tx(write=True) as db:
            # One pair's messages, on every instance, count and insert one after the other;
            # the locks in key order, so two messages sharing pairs cannot deadlock.
            for key in sorted({_lock_key("contact", *pair) for pair in pairs}):
                db.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            mine: dict[tuple[str, str], int] = {}
            for student_id, staff_id in plan.record:
                db.execute("INSERT INTO contacts (student_id, staff_id, at, message_key)"
                           " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                           (student_id, staff_id, at, message_key))
                mine[(student_id, staff_id)] = db.execute(
                    "SELECT id FROM contacts WHERE student_id = %s AND staff_id = %s"
                    " AND message_key = %s", (student_id, staff_id, message_key)).fetchone()[0]
            return {q: _count(db, q, mine.get((q[0], q[1]))) for q in plan.queries}

    def record_contact(self, student_id: str, staff_id: str, at: datetime) -> None:
        if self.readonly:
            return
        with self._tx(write=True) as db:
            db.execute("INSERT INTO contacts (student_id, staff_id, at) VALUES (%s, %s, %s)",
                       (student_id, staff_id, as_utc(at)))

    def purge_contacts(self, before: datetime) -> int:
        with self._tx(write=True) as db:
            return db.execute("DELETE FROM contacts WHERE at < %s",
                              (as_utc(before),)).rowcount

    # -- health and integrity -------------------------------------------------------------
    def check(self) -> bool:
        if self.readonly:
            return False
        try:
            with self._pool.connection(timeout=min(self.timeout, 5.0)) as conn:
                return conn.execute("SELECT NOT pg_is_in_recovery()").fetchone()[0] is True
        except (psycopg.Error, PoolTimeout):
            return False

    def verify(self) -> list[str]:
        with self._tx(write=False) as db:
            problems = _content_problems(db)
            problems += audit_chain.chain_problems(db)
        return problems

    def close(self) -> None:
        self._pool.close()


def migrate_database(url: str, *, timeout: float = DEFAULT_TIMEOUT,
                     progress: Callable[[int], None] = lambda version: None) -> tuple[int, int]:
    """`gateway quarantine migrate`: create or upgrade the schema; (from, to) versions."""
    try:
        with psycopg.connect(conninfo_with_defaults(url, timeout), autocommit=True) as conn:
            return pgschema.migrate(conn, progress)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"quarantine database {redact(url)}: {_describe(exc)}"
                               ) from None


# --- URLs -----------------------------------------------------------------------------------

def conninfo_with_defaults(url: str, timeout: float) -> str:
    """The operator's URL, with a connect timeout when it names none (libpq waits forever
    by default) and the application name that shows the gateway in pg_stat_activity."""
    try:
        given = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise QuarantineError(f"quarantine.url {redact(url)} is not a valid PostgreSQL URL: "
                              f"{_describe(exc)}") from None
    extra = []
    if "connect_timeout" not in given:
        extra.append(f"connect_timeout={max(2, int(timeout))}")
    if "application_name" not in given:
        extra.append("application_name=district-mail-gateway")
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)


def redact(url: str) -> str:
    """The URL without any password (in the user part or a `password=` option)."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        userinfo, host = rest.split("@", 1)
        rest = userinfo.split(":", 1)[0] + ("@" if ":" not in userinfo else ":…@") + host
    base, q, query = rest.partition("?")
    if q:
        parts = [("password=…" if p.lower().startswith("password=") else p)
                 for p in query.split("&")]
        rest = base + "?" + "&".join(parts)
    return scheme + sep + rest


def _describe(exc: BaseException) -> str:
    """A driver error's first line (libpq's messages name host and user, not passwords)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --- helpers ----------------------------------------------------------------------------------

def _check_readonly(conn: psycopg.Connection) -> None:
    """A read-only store (gateway check, the review CLI's reading commands) needs the schema
    to be the one it reads, and creates nothing."""
    version = pgschema.schema_version(conn)
    if version is not None and version != pgschema.SCHEMA_VERSION:
        pgschema.ensure(conn)  # raises the SchemaMismatch that explains it
    if version is None:
        raise StoreUnavailable("the quarantine database has no gateway schema yet (start "
                               "the gateway once, or run `gateway quarantine migrate`)")


def _lock_key(kind: str, *parts: str) -> int:
    """A signed 64-bit advisory-lock key for a name (same in every instance)."""
    digest = hashlib.blake2b("\0".join((kind, *parts)).encode("utf-8", "surrogatepass"),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _jsonb(value: Iterable[Any]) -> Jsonb:
    return Jsonb(list(value), dumps=lambda v: json.dumps(v, ensure_ascii=False, default=str))


def _count(db: psycopg.Cursor[Any], query: ContactQuery, before_row: int | None = None) -> int:
    student_id, staff_id, since = query
    sql = "SELECT count(*) FROM contacts WHERE student_id = %s AND staff_id = %s AND at >= %s"
    params: list[Any] = [student_id, staff_id, as_utc(since)]
    if before_row is not None:
        sql += " AND id < %s"
        params.append(before_row)
    return int(db.execute(sql, params).fetchone()[0])


def _resolve(db: psycopg.Cursor[Any], entry_id: str, *, allow_purged: bool = False) -> str:
    """An exact id, or a unique prefix of one (at least 4 characters)."""
    entry_id = entry_id.strip()
    if db.execute("SELECT 1 FROM entries WHERE id = %s", (entry_id,)).fetchone():
        return entry_id
    if allow_purged and db.execute("SELECT 1 FROM audit WHERE entry_id = %s LIMIT 1",
                                   (entry_id,)).fetchone():
        return entry_id
    if len(entry_id) >= 4:
        pattern = entry_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = db.execute("SELECT id FROM entries WHERE id LIKE %s LIMIT 2",
                          (pattern,)).fetchall()
        if len(rows) == 1:
            return str(rows[0][0])
        if len(rows) > 1:
            raise EntryNotFound(f"quarantine id '{entry_id}' is ambiguous; give more of it")
    raise EntryNotFound(f"no quarantine entry '{entry_id}'")


def _lock_entry_checking_lease(db: psycopg.Cursor[Any], entry_id: str, now: datetime, *,
                               skip_if_deleted: bool = False) -> tuple[str, Any]:
    """Lock the entry's row to the end of the transaction, then check the release lease."""
    row = db.execute("SELECT status, rules, lease_owner, lease_until FROM entries"
                     " WHERE id = %s FOR UPDATE", (entry_id,)).fetchone()
    if row is None:
        raise EntryNotFound(f"no quarantine entry '{entry_id}'")
    status, rules, owner, until = row
    if skip_if_deleted and status == "deleted":
        return status, rules
    if until is not None and until > now:
        raise ReleaseBusy(f"entry {entry_id} is being released by {owner} right now "
                          f"(lease until {until.isoformat()}); try again later")
    return status, rules


def _count_held(db: psycopg.Cursor[Any], entry_id: str) -> int:
    return int(db.execute("SELECT count(*) FROM entry_recipients WHERE entry_id = %s"
                          " AND status = 'held'", (entry_id,)).fetchone()[0])


def _where(query: EntryQuery) -> tuple[str, list[Any]]:
    clauses, params = ["true"], []
    if query.status:
        clauses.append("e.status = %s")
        params.append(query.status)
    if query.rule:
        clauses.append("e.rules ? %s")
        params.append(query.rule)
    if query.recipient:
        clauses.append("EXISTS (SELECT 1 FROM entry_recipients r WHERE r.entry_id = e.id"
                       " AND lower(r.address) = lower(%s))")
        params.append(query.recipient)
    if query.since:
        clauses.append("e.received >= %s")
        params.append(as_utc(query.since))
    if query.before:
        clauses.append("e.received < %s")
        params.append(as_utc(query.before))
    return " AND ".join(clauses), params


def _recipients(db: psycopg.Cursor[Any],
                ids: list[str]) -> dict[str, tuple[RecipientState, ...]]:
    out: dict[str, list[RecipientState]] = {}
    if not ids:
        return {}
    rows = db.execute("SELECT entry_id, address, status, updated, detail FROM entry_recipients"
                      " WHERE entry_id = ANY(%s) ORDER BY entry_id, position", (ids,))
    for entry_id, address, status, updated, detail in rows:
        out.setdefault(entry_id, []).append(RecipientState(address, status, updated, detail))
    return {k: tuple(v) for k, v in out.items()}


def _entry(row: tuple[Any, ...], recipients: tuple[RecipientState, ...]) -> Entry:
    (entry_id, queue_id, received, client_ip, mail_from, message_id, subject, size, sha256,
     status, rules, reasons, findings, samples) = row
    return Entry(entry_id, queue_id, received, client_ip, mail_from, message_id, subject,
                 size, sha256, status, tuple(rules), tuple(reasons), tuple(findings),
                 tuple(samples), recipients)


def _content_problems(db: psycopg.Cursor[Any]) -> list[str]:
    """Held copies missing or not matching their hash; the server hashes them, so checking
    a large quarantine moves no mail over the network."""
    problems = []
    rows = db.execute("SELECT e.id, e.status, c.entry_id IS NOT NULL,"
                      " length(c.data) = e.size AND encode(sha256(c.data), 'hex') = e.sha256"
                      " FROM entries e LEFT JOIN contents c ON c.entry_id = e.id ORDER BY e.id")
    for entry_id, status, present, intact in rows.fetchall():
        if not present:
            if status != "deleted":
                problems.append(f"entry {entry_id}: held copy is missing")
        elif not intact:
            problems.append(f"entry {entry_id}: held copy does not match its hash")
    for (entry_id,) in db.execute("SELECT id FROM entries e WHERE NOT EXISTS (SELECT 1 FROM"
                                  " entry_recipients r WHERE r.entry_id = e.id)").fetchall():
        problems.append(f"entry {entry_id}: has no recipients")
    return problems
