"""The audit trail's hash chain: each row commits to the one before it.

Triggers in both databases already refuse UPDATE and DELETE on the audit table, but anyone
holding the file (or the database owner's password) can drop a trigger. Chaining the rows makes
such an edit visible: `verify` recomputes the chain and names the first row that does not fit.
Appends must be serialised (the caller's transaction holds the chain's lock), or two writers
would both chain onto the same row. The row hashes its timestamp as the text stored, so a copy
from one database to the other keeps the chain intact.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol

from gateway.quarantine.base import Actor
from gateway.quarantine.times import to_db, utcnow

GENESIS = "0" * 64
_COLUMNS = "seq, at, operator, os_user, action, entry_id, reason, detail, prev, hash"


def row_hash(prev: str, at: str, operator: str, os_user: str, action: str,
             entry_id: str | None, reason: str, detail: str) -> str:
    payload = json.dumps([prev, at, operator, os_user, action, entry_id, reason, detail],
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class Cursor(Protocol):
    """What both stores' connections offer (sqlite3's, and psycopg's behind `?` translation)."""

    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...


def append(db: Cursor, actor: Actor, action: str, entry_id: str | None,
           reason: str, detail: dict[str, Any]) -> None:
    """Add one audit row; the caller's write transaction serialises the chain."""
    last = db.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    prev = last[0] if last else GENESIS
    at = to_db(utcnow())
    detail_text = json.dumps(detail, ensure_ascii=False, sort_keys=True)
    digest = row_hash(prev, at, actor.operator, actor.os_user, action, entry_id, reason,
                      detail_text)
    db.execute(
        "INSERT INTO audit (at, operator, os_user, action, entry_id, reason, detail, prev, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (at, actor.operator, actor.os_user, action, entry_id, reason, detail_text, prev, digest))


def chain_problems(db: Cursor) -> list[str]:
    """Every place where the stored chain does not recompute (empty when intact)."""
    problems: list[str] = []
    expected_prev = GENESIS
    for row in db.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq"):
        seq, at, operator, os_user, action, entry_id, reason, detail, prev, digest = row
        if prev != expected_prev:
            problems.append(f"audit row {seq}: does not follow the previous row "
                            "(a row was removed or reordered)")
        if row_hash(prev, at, operator, os_user, action, entry_id, reason, detail) != digest:
            problems.append(f"audit row {seq}: content does not match its hash (edited)")
        expected_prev = digest
    return problems
