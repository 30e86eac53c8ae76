"""Move a quarantine from the embedded SQLite file to a shared PostgreSQL database.

Everything is copied as it is, in one PostgreSQL transaction: entries with their ids, retry
keys, review status and leases, the held bytes, the P5/P6 contact history, the digest's
bookkeeping, the review console's accounts, scope rows and session secret, and the audit trail
row for row with its sequence numbers, timestamps and hashes, so the chain verifies on the new
database exactly as on the old one (`verify` runs after the copy). The target must be empty: an
audit chain cannot be spliced onto another one. The source is opened read-only and never
changed; stop the gateway (or every instance writing to it) first so that nothing is held in
the file after the copy began."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from gateway.quarantine import pgschema
from gateway.quarantine.audit import GENESIS
from gateway.quarantine.base import QuarantineError
from gateway.quarantine.postgres import PostgresStore, conninfo_with_defaults, redact
from gateway.quarantine.times import from_db

BATCH = 200  # rows per round trip; held messages can be megabytes each


@dataclass(frozen=True, slots=True)
class CopyReport:
    entries: int
    audit_rows: int
    contacts: int
    audit_head: str  # the last row's hash, the same on both sides


def copy_sqlite_to_postgres(source: Path, url: str, *, timeout: float = 30.0,
                            progress: Callable[[str, int], None] = lambda table, n: None
                            ) -> CopyReport:
    """Copy the SQLite quarantine at `source` into the (empty) PostgreSQL database at `url`."""
    if not source.exists():
        raise QuarantineError(f"no SQLite quarantine at {source}")
    src = sqlite3.connect(f"file:{source.resolve().as_posix()}?mode=ro", uri=True)
    try:
        src.execute("BEGIN")  # one snapshot of the source
        with psycopg.connect(conninfo_with_defaults(url, timeout), autocommit=True) as dst:
            pgschema.ensure(dst)
            with dst.transaction():
                dst.execute("SELECT pg_advisory_xact_lock(%s)", (pgschema.AUDIT_LOCK,))
                _require_empty(dst)
                report = _copy(src, dst, progress)
    except psycopg.Error as exc:
        raise QuarantineError(f"copy into {redact(url)} failed, nothing was copied: "
                              f"{(str(exc).strip().splitlines() or [type(exc).__name__])[0]}"
                              ) from None
    except sqlite3.Error as exc:
        raise QuarantineError(f"cannot read the SQLite quarantine {source}: {exc}") from None
    finally:
        src.close()
    store = PostgresStore(url, timeout=timeout)
    try:
        problems = store.verify()
    finally:
        store.close()
    if problems:
        raise QuarantineError("the copy does not verify: " + "; ".join(problems[:5]))
    return report


def _require_empty(dst: psycopg.Connection) -> None:
    for table in ("entries", "audit", "contacts", "review_accounts"):
        (count,) = dst.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[misc]
        if count:
            raise QuarantineError(f"the PostgreSQL quarantine is not empty ({count} rows in "
                                  f"{table}); copy into a new, empty database")


def _copy(src: sqlite3.Connection, dst: psycopg.Connection,
          progress: Callable[[str, int], None]) -> CopyReport:
    entries = _batches(src, dst, "entries", (
        "SELECT id, queue_id, received, client_ip, mail_from, message_id, subject, size, sha256,"
        " dedup_key, status, rules, reasons, findings, samples, updated, lease_owner,"
        " lease_until FROM entries ORDER BY received, id"),
        "INSERT INTO entries (id, queue_id, received, client_ip, mail_from, message_id, subject,"
        " size, sha256, dedup_key, status, rules, reasons, findings, samples, updated,"
        " lease_owner, lease_until) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, %s)", _entry_row, progress)
    _batches(src, dst, "entry_recipients", (
        "SELECT entry_id, address, status, updated, detail, rowid FROM entry_recipients"
        " ORDER BY entry_id, rowid"),
        "INSERT INTO entry_recipients (entry_id, address, status, updated, detail, position)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        lambda r: (r[0], r[1], r[2], from_db(r[3]), r[4], r[5]), progress)
    _batches(src, dst, "contents", "SELECT entry_id, data FROM contents",
             "INSERT INTO contents (entry_id, data) VALUES (%s, %s)",
             lambda r: (r[0], bytes(r[1])), progress)
    audit_rows = _batches(src, dst, "audit", (
        "SELECT seq, at, operator, os_user, action, entry_id, reason, detail, prev, hash"
        " FROM audit ORDER BY seq"),
        "INSERT INTO audit (seq, at, operator, os_user, action, entry_id, reason, detail, prev,"
        " hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", tuple, progress)
    has_key = any(col[1] == "message_key"
                  for col in src.execute("PRAGMA table_info(contacts)"))
    contacts = _batches(src, dst, "contacts", (
        "SELECT rowid, student_id, staff_id, at, "
        + ("message_key" if has_key else "NULL") + " FROM contacts ORDER BY rowid"),
        "INSERT INTO contacts (id, student_id, staff_id, at, message_key)"
        " VALUES (%s, %s, %s, %s, %s)",
        lambda r: (r[0], r[1], r[2], from_db(r[3]), r[4]), progress)
    if src.execute("SELECT 1 FROM sqlite_master WHERE name = 'digest_state'").fetchone():
        _batches(src, dst, "digest_state", "SELECT name, period_end FROM digest_state",
                 "INSERT INTO digest_state (name, period_end) VALUES (%s, %s)",
                 lambda r: (r[0], from_db(r[1])), progress)
    _copy_review(src, dst, progress)
    # New rows continue after the copied ones.
    for table, column in (("audit", "seq"), ("contacts", "id")):
        dst.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                    f" coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)")
    head = src.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return CopyReport(entries, audit_rows, contacts, head[0] if head else GENESIS)


def _copy_review(src: sqlite3.Connection, dst: psycopg.Connection,
                 progress: Callable[[str, int], None]) -> None:
    """The review console's tables. A file from before the console has none: its entries'
    rules become `entry_rules` rows (as the SQLite upgrade makes them), and no entry has
    schools (the directory's school column reaches only what is held from now on)."""
    tables = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "entry_rules" in tables:
        _batches(src, dst, "entry_rules", "SELECT entry_id, rule FROM entry_rules",
                 "INSERT INTO entry_rules (entry_id, rule) VALUES (%s, %s)", tuple, progress)
    else:
        dst.execute("INSERT INTO entry_rules (entry_id, rule) SELECT e.id, r.value"
                    " FROM entries e, jsonb_array_elements_text(e.rules) r"
                    " ON CONFLICT DO NOTHING")
    if "entry_schools" not in tables:
        return
    _batches(src, dst, "entry_schools", "SELECT entry_id, school FROM entry_schools",
             "INSERT INTO entry_schools (entry_id, school) VALUES (%s, %s)", tuple, progress)
    _batches(src, dst, "review_accounts", (
        "SELECT name, role, schools, rules, email, password_hash, disabled, created, updated,"
        " session_epoch FROM review_accounts ORDER BY name"),
        "INSERT INTO review_accounts (name, role, schools, rules, email, password_hash,"
        " disabled, created, updated, session_epoch)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        lambda r: (*r[:7], from_db(r[7]), from_db(r[8]), r[9]), progress)
    _batches(src, dst, "review_signin_failures", "SELECT key, at FROM review_signin_failures",
             "INSERT INTO review_signin_failures (key, at) VALUES (%s, %s)",
             lambda r: (r[0], from_db(r[1])), progress)
    # The session secret too: cookies issued by the SQLite console stay valid.
    _batches(src, dst, "review_state", "SELECT name, value FROM review_state",
             "INSERT INTO review_state (name, value) VALUES (%s, %s)", tuple, progress)


def _entry_row(r: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*r[:11], *(Jsonb(json.loads(text)) for text in r[11:15]), from_db(r[15]), r[16],
            from_db(r[17]) if r[17] else None)


def _batches(src: sqlite3.Connection, dst: psycopg.Connection, table: str, select: str,
             insert: str, convert: Callable[[tuple[Any, ...]], tuple[Any, ...]],
             progress: Callable[[str, int], None]) -> int:
    total = 0
    with dst.cursor() as cur:
        for batch in _chunks(src.execute(select)):
            cur.executemany(insert, [convert(row) for row in batch])
            total += len(batch)
    progress(table, total)
    return total


def _chunks(rows: sqlite3.Cursor) -> Iterator[list[tuple[Any, ...]]]:
    while batch := rows.fetchmany(BATCH):
        yield batch
