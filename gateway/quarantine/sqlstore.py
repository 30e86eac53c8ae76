"""The quarantine store's transactions, written once for both databases.

`SQLStore` implements the protocol (base.py) in SQL that SQLite and PostgreSQL both speak;
a backend subclass supplies the connection (`_tx`), how values travel (timestamps, JSON) and
how writers are serialised:
- SQLite takes the database's single write lock at BEGIN IMMEDIATE, so every write
  transaction already runs alone; `_serialise` and `FOR_UPDATE` do nothing there.
- PostgreSQL runs writers side by side, so each transaction names what it must have to itself
  (`_serialise`: an advisory lock per retry key, per student-staff pair, for the audit chain)
  and locks the rows it checks before changing them (`FOR_UPDATE`).
Statements use `?` placeholders; the PostgreSQL cursor translates them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import structlog

from gateway.model import ContactPlan, ContactQuery
from gateway.quarantine import audit as audit_chain
from gateway.quarantine.base import (
    Actor,
    AuditRecord,
    Entry,
    EntryNotFound,
    EntryQuery,
    HoldRequest,
    HoldResult,
    RecipientState,
    ReleaseBusy,
)
from gateway.quarantine.reviewsql import ReviewSQL
from gateway.quarantine.rows import (
    DIGEST,
    dedup_key,
    escape_like,
    hold_audit_detail,
    is_retry,
    log_hold,
    new_entry_id,
)
from gateway.quarantine.times import from_db, to_db, utcnow

log = structlog.get_logger("gateway.quarantine")

ENTRY_COLUMNS = ("id, queue_id, received, client_ip, mail_from, message_id, subject, size, "
                 "sha256, status, rules, reasons, findings, samples")
Cursor = Any  # sqlite3.Connection, or psycopg's cursor behind `?` translation


class SQLStore(ReviewSQL):
    """The protocol's transactions, and the review console's (reviewsql.py); see the module
    docstring for what a backend supplies."""

    readonly: bool
    actor: Actor
    FOR_UPDATE = ""  # appended to a SELECT of rows the transaction goes on to change
    RULE_FILTER = ""  # a condition on `e.rules` containing the rule `?`
    RECIPIENT_ORDER = ""  # the order recipients were given in
    CONTACT_ID = ""  # the contacts column that grows with each insert

    # -- what a backend supplies -----------------------------------------------------------
    def _tx(self, *, write: bool) -> contextlib.AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _serialise(self, db: Cursor, *names: tuple[str, ...]) -> None:
        """Have the named things to this transaction alone until it ends."""

    def _time(self, moment: datetime) -> Any:
        raise NotImplementedError

    def _datetime(self, value: Any) -> datetime:
        raise NotImplementedError

    def _json(self, value: Any) -> Any:
        raise NotImplementedError

    def _unjson(self, value: Any) -> Any:
        raise NotImplementedError

    def _insert_recipients(self, db: Cursor, entry_id: str, recipients: Iterable[str],
                           now: Any) -> None:
        raise NotImplementedError

    # -- holding --------------------------------------------------------------------------
    def hold(self, request: HoldRequest) -> HoldResult:
        key = dedup_key(request)
        with self._tx(write=True) as db:
            # Another instance may be committing the same retry key right now.
            self._serialise(db, ("hold", key))
            row = db.execute("SELECT id, status, received FROM entries WHERE dedup_key = ?",
                             (key,)).fetchone()
            if row and is_retry(row[1], self._datetime(row[2]), request):
                result = HoldResult(row[0], duplicate=True)  # the client's retry after a 4xx
            else:
                if row:  # reviewed or old: the same message sent again is a new entry
                    db.execute("UPDATE entries SET dedup_key = dedup_key || ':' || id"
                               " WHERE id = ?", (row[0],))
                result = HoldResult(self._insert(db, request, key), duplicate=False)
        log_hold(request, result)
        return result

    def _insert(self, db: Cursor, request: HoldRequest, key: str) -> str:
        entry_id = new_entry_id(request.received)
        while db.execute("SELECT 1 FROM entries WHERE id = ?", (entry_id,)).fetchone():
            entry_id = new_entry_id(request.received)
        now = self._time(utcnow())
        db.execute(
            f"INSERT INTO entries ({ENTRY_COLUMNS}, dedup_key, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'held', ?, ?, ?, ?, ?, ?)",
            (entry_id, request.queue_id, self._time(request.received), request.client_ip,
             request.mail_from, request.message_id, request.subject, len(request.content),
             hashlib.sha256(request.content).hexdigest(), self._json(list(request.rules)),
             self._json(list(request.reasons)), self._json(list(request.findings)),
             self._json(list(request.samples)), key, now))
        self._insert_recipients(db, entry_id, dict.fromkeys(request.recipients), now)
        db.execute("INSERT INTO contents (entry_id, data) VALUES (?, ?)",
                   (entry_id, request.content))
        # The rules and schools as rows: the review console's scope is a join on them.
        for rule in dict.fromkeys(request.rules):
            db.execute("INSERT INTO entry_rules (entry_id, rule) VALUES (?, ?)",
                       (entry_id, rule))
        for school in dict.fromkeys(request.schools):
            db.execute("INSERT INTO entry_schools (entry_id, school) VALUES (?, ?)",
                       (entry_id, school))
        self._audit(db, self.actor, "hold", entry_id, "held by policy",
                    hold_audit_detail(request))
        return entry_id

    def _audit(self, db: Cursor, actor: Actor, action: str, entry_id: str | None,
               reason: str, detail: dict[str, Any]) -> None:
        """One audit row, chained onto the head; the chain is this transaction's until it
        ends, so concurrent writers chain one after the other."""
        self._serialise(db, ("audit",))
        audit_chain.append(db, actor, action, entry_id, reason, detail)

    # -- reading --------------------------------------------------------------------------
    def list_entries(self, query: EntryQuery | None = None) -> list[Entry]:
        where, params = self._where(query or EntryQuery())
        limit = f" LIMIT {int(query.limit)}" if query and query.limit else ""
        with self._tx(write=False) as db:
            rows = db.execute(f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE {where}"
                              f" ORDER BY received DESC, id{limit}", params).fetchall()
            return self._entries(db, rows)

    def get(self, entry_id: str) -> Entry:
        with self._tx(write=False) as db:
            return self._load_entries(db, [_resolve(db, entry_id)])[0]

    def _load_entries(self, db: Cursor, ids: list[str]) -> list[Entry]:
        """Entries by exact id, in the order given (ids that do not exist are skipped)."""
        found: dict[str, tuple[Any, ...]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for row in db.execute(f"SELECT {ENTRY_COLUMNS} FROM entries WHERE id IN"
                                  f" ({', '.join('?' * len(chunk))})", chunk).fetchall():
                found[row[0]] = row
        return self._entries(db, [found[i] for i in ids if i in found])

    def _entries(self, db: Cursor, rows: list[tuple[Any, ...]]) -> list[Entry]:
        """Rows of ENTRY_COLUMNS made into entries, with their recipients and schools."""
        ids = [r[0] for r in rows]
        recipients = self._recipients(db, ids)
        schools = _schools(db, ids)
        return [self._entry(row, recipients.get(row[0], ()), schools.get(row[0], ()))
                for row in rows]

    def held_summary(self) -> tuple[int, datetime | None]:
        # Served by the (status, received) index: no table scan however large the store.
        with self._tx(write=False) as db:
            count, oldest = db.execute(
                "SELECT COUNT(*), MIN(received) FROM entries WHERE status = 'held'").fetchone()
        return int(count), self._datetime(oldest) if oldest else None

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
                params.append(to_db(since))  # the audit keeps the text it hashed
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
            self._lock_entry(db, full_id, now)
            held = tuple(r[0] for r in db.execute(
                "SELECT address FROM entry_recipients WHERE entry_id = ? AND status = 'held'"
                f" ORDER BY {self.RECIPIENT_ORDER}", (full_id,)).fetchall())
            if held:
                db.execute("UPDATE entries SET lease_owner = ?, lease_until = ? WHERE id = ?",
                           (actor.operator, self._time(now + timedelta(seconds=lease_seconds)),
                            full_id))
        return held

    def finish_release(self, entry_id: str, actor: Actor, reason: str,
                       delivered: tuple[str, ...], failed: dict[str, str]) -> Entry:
        now = self._time(utcnow())
        with self._tx(write=True) as db:
            full_id = _resolve(db, entry_id)
            db.execute(f"SELECT 1 FROM entries WHERE id = ?{self.FOR_UPDATE}", (full_id,))
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
            status, rules = self._lock_entry(db, full_id, now, skip_if_deleted=True)
            if status == "deleted":
                return False
            discarded = _count_held(db, full_id)
            db.execute("DELETE FROM contents WHERE entry_id = ?", (full_id,))
            db.execute("UPDATE entry_recipients SET status = 'deleted', updated = ?"
                       " WHERE entry_id = ? AND status = 'held'", (self._time(now), full_id))
            db.execute("UPDATE entries SET status = 'deleted', updated = ? WHERE id = ?",
                       (self._time(now), full_id))
            self._audit(db, actor, "delete", full_id, reason,
                        {"previous_status": status, "recipients": discarded})
        log.info("quarantine_delete", id=full_id, rules=rules, recipients=discarded,
                 operator=actor.operator)
        return True

    def purge(self, before: datetime, actor: Actor, reason: str,
              statuses: tuple[str, ...] = ()) -> list[str]:
        sql = ("SELECT id, status, rules FROM entries WHERE received < ?"
               " AND (lease_until IS NULL OR lease_until < ?)")
        params: list[Any] = [self._time(before), self._time(utcnow())]
        if statuses:
            sql += f" AND status IN ({', '.join('?' * len(statuses))})"
            params.extend(statuses)
        with self._tx(write=True) as db:
            # Locked where writers run side by side: a concurrent purge waits, then finds
            # these rows gone and skips them.
            rows = db.execute(f"{sql} ORDER BY received, id{self.FOR_UPDATE}",
                              params).fetchall()
            for entry_id, status, rules in rows:
                self._audit(db, actor, "purge", entry_id, reason,
                            {"status": status, "rules": self._unjson(rules)})
                db.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
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
            created = db.execute("INSERT INTO digest_state (name, period_end) VALUES (?, ?)"
                                 " ON CONFLICT (name) DO NOTHING",
                                 (DIGEST, self._time(until))).rowcount
            if created:
                return None  # the first period starts now
            (end,) = db.execute("SELECT period_end FROM digest_state WHERE name = ?"
                                f"{self.FOR_UPDATE}", (DIGEST,)).fetchone()
            since = self._datetime(end)
            if since + timedelta(seconds=interval) > until:
                return None
            db.execute("UPDATE digest_state SET period_end = ? WHERE name = ?",
                       (self._time(until), DIGEST))
            return since

    def unclaim_digest(self, since: datetime, until: datetime) -> None:
        with self._tx(write=True) as db:
            db.execute("UPDATE digest_state SET period_end = ? WHERE name = ?"
                       " AND period_end = ?", (self._time(since), DIGEST, self._time(until)))

    # -- P5/P6 contact history ------------------------------------------------------------
    def count_contacts(self, student_id: str, staff_id: str, since: datetime) -> int:
        return self.contact_counts([(student_id, staff_id, since)])[(student_id, staff_id, since)]

    def contact_counts(self, queries: Iterable[ContactQuery]) -> dict[ContactQuery, int]:
        with self._tx(write=False) as db:
            return {q: self._count(db, q) for q in queries}

    def count_and_record(self, plan: ContactPlan, message_key: str) -> dict[ContactQuery, int]:
        if self.readonly or not plan.record:
            return self.contact_counts(plan.queries)
        at = self._time(plan.at or utcnow())
        pairs = {(q[0], q[1]) for q in plan.queries} | set(plan.record)
        with self._tx(write=True) as db:
            # One pair's messages count and insert one after the other, on every instance.
            self._serialise(db, *(("contact", *pair) for pair in pairs))
            mine: dict[tuple[str, str], int] = {}
            for student_id, staff_id in plan.record:
                db.execute("INSERT INTO contacts (student_id, staff_id, at, message_key)"
                           " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                           (student_id, staff_id, at, message_key))
                mine[(student_id, staff_id)] = db.execute(
                    f"SELECT {self.CONTACT_ID} FROM contacts WHERE student_id = ?"
                    " AND staff_id = ? AND message_key = ?",
                    (student_id, staff_id, message_key)).fetchone()[0]
            return {q: self._count(db, q, mine.get((q[0], q[1]))) for q in plan.queries}

    def _count(self, db: Cursor, query: ContactQuery, before_row: int | None = None) -> int:
        """Contacts of the pair since the query's time; with `before_row`, only those recorded
        before that row (the message's own contact and later ones do not count)."""
        student_id, staff_id, since = query
        sql = "SELECT count(*) FROM contacts WHERE student_id = ? AND staff_id = ? AND at >= ?"
        params: list[Any] = [student_id, staff_id, self._time(since)]
        if before_row is not None:
            sql += f" AND {self.CONTACT_ID} < ?"
            params.append(before_row)
        return int(db.execute(sql, params).fetchone()[0])

    def record_contact(self, student_id: str, staff_id: str, at: datetime) -> None:
        if self.readonly:
            return  # `gateway check` reads the history but records nothing
        with self._tx(write=True) as db:
            db.execute("INSERT INTO contacts (student_id, staff_id, at) VALUES (?, ?, ?)",
                       (student_id, staff_id, self._time(at)))

    def purge_contacts(self, before: datetime) -> int:
        with self._tx(write=True) as db:
            return int(db.execute("DELETE FROM contacts WHERE at < ?",
                                  (self._time(before),)).rowcount)

    # -- helpers --------------------------------------------------------------------------
    def _lock_entry(self, db: Cursor, entry_id: str, now: datetime, *,
                    skip_if_deleted: bool = False) -> tuple[str, Any]:
        """Lock the entry's row to the end of the transaction, then check the release lease
        (ReleaseBusy while another release holds it). Returns its status and rules."""
        row = db.execute("SELECT status, rules, lease_owner, lease_until FROM entries"
                         f" WHERE id = ?{self.FOR_UPDATE}", (entry_id,)).fetchone()
        if row is None:
            raise EntryNotFound(f"no quarantine entry '{entry_id}'")
        status, rules, owner, until = row
        if not (skip_if_deleted and status == "deleted") and until is not None:
            until_at = self._datetime(until)
            if until_at > now:
                raise ReleaseBusy(f"entry {entry_id} is being released by {owner} right now "
                                  f"(lease until {to_db(until_at)}); try again later")
        return status, self._unjson(rules)

    def _where(self, query: EntryQuery) -> tuple[str, list[Any]]:
        clauses, params = ["1 = 1"], []
        if query.status:
            clauses.append("e.status = ?")
            params.append(query.status)
        if query.rule:
            clauses.append(self.RULE_FILTER)
            params.append(query.rule)
        if query.recipient:
            clauses.append("EXISTS (SELECT 1 FROM entry_recipients r WHERE r.entry_id = e.id"
                           " AND lower(r.address) = lower(?))")
            params.append(query.recipient)
        if query.since:
            clauses.append("e.received >= ?")
            params.append(self._time(query.since))
        if query.before:
            clauses.append("e.received < ?")
            params.append(self._time(query.before))
        return " AND ".join(clauses), params

    def _recipients(self, db: Cursor, ids: list[str]) -> dict[str, tuple[RecipientState, ...]]:
        out: dict[str, list[RecipientState]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = db.execute(
                "SELECT entry_id, address, status, updated, detail FROM entry_recipients"
                f" WHERE entry_id IN ({', '.join('?' * len(chunk))})"
                f" ORDER BY entry_id, {self.RECIPIENT_ORDER}", chunk).fetchall()
            for entry_id, address, status, updated, detail in rows:
                out.setdefault(entry_id, []).append(
                    RecipientState(address, status, self._datetime(updated), detail))
        return {k: tuple(v) for k, v in out.items()}

    def _entry(self, row: tuple[Any, ...], recipients: tuple[RecipientState, ...],
               schools: tuple[str, ...] = ()) -> Entry:
        (entry_id, queue_id, received, client_ip, mail_from, message_id, subject, size, sha256,
         status, rules, reasons, findings, samples) = row
        return Entry(entry_id, queue_id, self._datetime(received), client_ip, mail_from,
                     message_id, subject, size, sha256, status, tuple(self._unjson(rules)),
                     tuple(self._unjson(reasons)), tuple(self._unjson(findings)),
                     tuple(self._unjson(samples)), recipients, schools)

    def _entry_problems(self, db: Cursor) -> list[str]:
        return [f"entry {entry_id}: has no recipients" for (entry_id,) in db.execute(
            "SELECT id FROM entries e WHERE NOT EXISTS (SELECT 1 FROM entry_recipients r"
            " WHERE r.entry_id = e.id) ORDER BY id").fetchall()]


def _resolve(db: Cursor, entry_id: str, *, allow_purged: bool = False) -> str:
    """An exact id, or a unique prefix of one (at least 4 characters)."""
    entry_id = entry_id.strip()
    if db.execute("SELECT 1 FROM entries WHERE id = ?", (entry_id,)).fetchone():
        return entry_id
    if allow_purged and db.execute("SELECT 1 FROM audit WHERE entry_id = ? LIMIT 1",
                                   (entry_id,)).fetchone():
        return entry_id
    if len(entry_id) >= 4:
        pattern = escape_like(entry_id) + "%"
        rows = db.execute("SELECT id FROM entries WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                          (pattern,)).fetchall()
        if len(rows) == 1:
            return str(rows[0][0])
        if len(rows) > 1:
            raise EntryNotFound(f"quarantine id '{entry_id}' is ambiguous; give more of it")
    raise EntryNotFound(f"no quarantine entry '{entry_id}'")


def _count_held(db: Cursor, entry_id: str) -> int:
    return int(db.execute("SELECT count(*) FROM entry_recipients WHERE entry_id = ?"
                          " AND status = 'held'", (entry_id,)).fetchone()[0])


def _schools(db: Cursor, ids: list[str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for entry_id, school in db.execute(
                "SELECT entry_id, school FROM entry_schools"
                f" WHERE entry_id IN ({', '.join('?' * len(chunk))})"
                " ORDER BY entry_id, school", chunk).fetchall():
            out.setdefault(entry_id, []).append(school)
    return {k: tuple(v) for k, v in out.items()}
