"""The SQLite quarantine schema and its migrations (tracked in `PRAGMA user_version`).

Why this shape:
- `entries` holds the metadata a reviewer filters on; the message bytes live in `contents`
  so that listing never reads megabytes of mail.
- `dedup_key` is UNIQUE: a client retrying after a 4xx (same bytes, same recipients) finds the
  entry it already created instead of a second copy.
- `audit` is append-only: triggers abort any UPDATE or DELETE, and every row carries the hash
  of the previous one, so a row removed behind SQLite's back shows up in `verify`.
- `contacts` is the P5/P6 history (student → staff member, per message), kept in the same file
  so it survives restarts with the quarantine. `message_key` (version 2) makes recording
  idempotent per message: a client's retry is not a second contact.
- `digest_state` (version 2) remembers where the last reviewers' digest ended, so a restart
  neither repeats nor skips a period.
- `entry_rules` and `entry_schools` (version 3) are an entry's rules and schools as rows, so
  the review console's scope is a join in SQL; `review_accounts`, `review_signin_failures` and
  `review_state` are the console's accounts, sign-in throttling and session secret.

An older schema is upgraded when the store opens: one process owns an SQLite file, and the
upgrade is one transaction (a copy of the file is its backup).
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 3

_V1 = """
CREATE TABLE entries (
    id          TEXT PRIMARY KEY,
    queue_id    TEXT NOT NULL,
    received    TEXT NOT NULL,
    client_ip   TEXT,
    mail_from   TEXT NOT NULL,
    message_id  TEXT,
    subject     TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    dedup_key   TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL CHECK (status IN ('held', 'released', 'deleted')),
    rules       TEXT NOT NULL,
    reasons     TEXT NOT NULL,
    findings    TEXT NOT NULL,
    samples     TEXT NOT NULL,
    updated     TEXT NOT NULL,
    lease_owner TEXT,
    lease_until TEXT
);
CREATE INDEX entries_received ON entries (received);
CREATE INDEX entries_status ON entries (status, received);

CREATE TABLE entry_recipients (
    entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    address  TEXT NOT NULL,
    status   TEXT NOT NULL CHECK (status IN ('held', 'released', 'deleted')),
    updated  TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (entry_id, address)
);
CREATE INDEX entry_recipients_address ON entry_recipients (address);

CREATE TABLE contents (
    entry_id TEXT PRIMARY KEY REFERENCES entries (id) ON DELETE CASCADE,
    data     BLOB NOT NULL
);

CREATE TABLE audit (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    operator TEXT NOT NULL,
    os_user  TEXT NOT NULL,
    action   TEXT NOT NULL,
    entry_id TEXT,
    reason   TEXT NOT NULL,
    detail   TEXT NOT NULL,
    prev     TEXT NOT NULL,
    hash     TEXT NOT NULL
);
CREATE INDEX audit_entry ON audit (entry_id, seq);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit trail is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit trail is append-only'); END;

CREATE TABLE contacts (
    student_id TEXT NOT NULL,
    staff_id   TEXT NOT NULL,
    at         TEXT NOT NULL
);
CREATE INDEX contacts_pair ON contacts (student_id, staff_id, at);
"""

_V2 = """
ALTER TABLE contacts ADD COLUMN message_key TEXT;
CREATE UNIQUE INDEX contacts_message ON contacts (student_id, staff_id, message_key);

CREATE TABLE digest_state (
    name       TEXT PRIMARY KEY,
    period_end TEXT NOT NULL
);
"""

# Version 3, the review console: who may see an entry is decided in SQL, so the rules and the
# schools of an entry are rows one can join on (portable SQL, no JSON functions at query
# time); accounts, sign-in failures and the console's secret live here so that several
# console instances share them.
_V3 = """
CREATE TABLE entry_rules (
    entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    rule     TEXT NOT NULL,
    PRIMARY KEY (entry_id, rule)
);
CREATE INDEX entry_rules_rule ON entry_rules (rule, entry_id);
INSERT OR IGNORE INTO entry_rules (entry_id, rule)
    SELECT e.id, j.value FROM entries e, json_each(e.rules) j;

CREATE TABLE entry_schools (
    entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    school   TEXT NOT NULL,
    PRIMARY KEY (entry_id, school)
);
CREATE INDEX entry_schools_school ON entry_schools (school, entry_id);

CREATE TABLE review_accounts (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('administrator', 'reviewer')),
    schools       TEXT NOT NULL,
    rules         TEXT NOT NULL,
    email         TEXT,
    password_hash TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created       TEXT NOT NULL,
    updated       TEXT NOT NULL,
    session_epoch INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE review_signin_failures (
    key TEXT NOT NULL,
    at  TEXT NOT NULL
);
CREATE INDEX review_signin_failures_key ON review_signin_failures (key, at);

CREATE TABLE review_state (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2, 3: _V3}


def configure(conn: sqlite3.Connection, *, readonly: bool = False) -> None:
    """Connection settings that make a commit durable and let daemon and CLI share the file."""
    conn.execute("PRAGMA busy_timeout = 15000")
    conn.execute("PRAGMA foreign_keys = ON")
    if readonly:
        return
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"cannot switch the quarantine database to WAL ({mode})")
    conn.execute("PRAGMA synchronous = FULL")  # fsync the WAL on every commit
    conn.execute("PRAGMA secure_delete = ON")  # deleted mail is overwritten, not just unlinked


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to SCHEMA_VERSION, one transaction per step."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"quarantine database schema {current} is newer than this gateway ({SCHEMA_VERSION})")
    for version in range(current + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] < version:
                for statement in _statements(MIGRATIONS[version]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (triggers contain inner semicolons)."""
    out: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    return [s for s in out if s]
