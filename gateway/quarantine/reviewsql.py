"""The review console's store methods (`reviewbase.ReviewStore`), written once for both
databases.

`ReviewSQL` is part of `SQLStore` (sqlstore.py) and uses what a backend supplies there: the
transaction (`_tx`), how timestamps travel (`_time`, `_datetime`) and the row lock
(`FOR_UPDATE`). The SQL is what SQLite and PostgreSQL both speak: no JSON functions (an entry's
rules and schools are rows in `entry_rules` and `entry_schools`), `ON CONFLICT DO NOTHING`,
`LIKE … ESCAPE`, `?` placeholders.

What holds with several console instances on one PostgreSQL database: accounts, sign-in
failures and the session secret are rows every instance reads, so a throttle counts the
failures made on any instance, a disabled account or an ended session is refused by all of
them, and the first instance to start stores the secret the others then use.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from gateway.quarantine.base import (
    Actor,
    AuditRecord,
    Entry,
    EntryNotFound,
    QuarantineError,
)
from gateway.quarantine.reviewbase import ROLES, Account, QueueCounts, QueueQuery, Scope
from gateway.quarantine.rows import escape_like
from gateway.quarantine.times import from_db, utcnow

_ACCOUNT_COLUMNS = ("name, role, schools, rules, email, password_hash, disabled, created,"
                    " session_epoch")
_AUDIT_COLUMNS = "seq, at, operator, os_user, action, entry_id, reason, detail, hash"


def scope_condition(scope: Scope, alias: str = "e") -> tuple[str, list[Any]]:
    """SQL that is true for the entries `scope` may see (an empty scope sees nothing)."""
    if scope.everything:
        return "1 = 1", []
    parts: list[str] = []
    params: list[Any] = []
    if scope.schools:
        parts.append("EXISTS (SELECT 1 FROM entry_schools s WHERE s.entry_id = "
                     f"{alias}.id AND s.school IN ({_marks(scope.schools)}))")
        params.extend(sorted(scope.schools))
    if scope.rules:
        parts.append("EXISTS (SELECT 1 FROM entry_rules r WHERE r.entry_id = "
                     f"{alias}.id AND r.rule IN ({_marks(scope.rules)}))")
        params.extend(sorted(scope.rules))
    return ("(" + " OR ".join(parts) + ")" if parts else "1 = 0"), params


class ReviewSQL:
    """`ReviewStore` over a backend's connections and transactions (see sqlstore.py)."""

    FOR_UPDATE: str
    _tx: Any  # SQLStore._tx
    _load_entries: Any  # SQLStore._load_entries
    _audit: Any  # SQLStore._audit
    _time: Any  # SQLStore._time
    _datetime: Any  # SQLStore._datetime

    def _queue_condition(self, query: QueueQuery) -> tuple[str, list[Any]]:
        """The scope plus the page's filters, as one WHERE clause over `entries e`."""
        clauses, params = [], []
        scope_sql, scope_params = scope_condition(query.scope)
        clauses.append(scope_sql)
        params += scope_params
        if query.status:
            clauses.append("e.status = ?")
            params.append(query.status)
        if query.school:
            clauses.append("EXISTS (SELECT 1 FROM entry_schools fs WHERE fs.entry_id = e.id"
                           " AND fs.school = ?)")
            params.append(query.school)
        if query.rule:
            clauses.append("EXISTS (SELECT 1 FROM entry_rules fr WHERE fr.entry_id = e.id"
                           " AND fr.rule = ?)")
            params.append(query.rule)
        if query.received_before:
            clauses.append("e.received < ?")
            params.append(self._time(query.received_before))
        if query.received_since:
            clauses.append("e.received >= ?")
            params.append(self._time(query.received_since))
        if query.ids:
            clauses.append(f"e.id IN ({_marks(query.ids)})")
            params.extend(query.ids)
        if query.text and query.text.strip():
            pattern = "%" + escape_like(query.text.strip().lower()) + "%"
            fields = ("e.id", "e.mail_from", "e.subject", "coalesce(e.message_id, '')")
            ors = [f"lower({f}) LIKE ? ESCAPE '\\'" for f in fields]
            ors.append("EXISTS (SELECT 1 FROM entry_recipients tr WHERE tr.entry_id = e.id"
                       " AND lower(tr.address) LIKE ? ESCAPE '\\')")
            clauses.append("(" + " OR ".join(ors) + ")")
            params += [pattern] * len(ors)
        return " AND ".join(clauses), params

    # -- scoped reads -----------------------------------------------------------------------
    def queue(self, query: QueueQuery) -> tuple[list[Entry], int]:
        where, params = self._queue_condition(query)
        with self._tx(write=False) as db:
            total = int(db.execute(f"SELECT count(*) FROM entries e WHERE {where}",
                                   params).fetchone()[0])
            ids = [r[0] for r in db.execute(
                f"SELECT e.id FROM entries e WHERE {where} ORDER BY e.received, e.id"
                " LIMIT ? OFFSET ?", [*params, int(query.limit), int(query.offset)]).fetchall()]
            entries = self._load_entries(db, ids)
        return entries, total

    def queue_counts(self, scope: Scope) -> QueueCounts:
        where, params = scope_condition(scope)
        held = f"{where} AND e.status = 'held'"
        with self._tx(write=False) as db:
            by_status = {status: int(n) for status, n in db.execute(
                f"SELECT e.status, count(*) FROM entries e WHERE {where} GROUP BY e.status",
                params).fetchall()}
            by_rule = {rule: int(n) for rule, n in db.execute(
                "SELECT x.rule, count(*) FROM entry_rules x JOIN entries e ON e.id = x.entry_id"
                f" WHERE {held} GROUP BY x.rule ORDER BY x.rule", params).fetchall()}
            by_school = {school: int(n) for school, n in db.execute(
                "SELECT x.school, count(*) FROM entry_schools x JOIN entries e"
                f" ON e.id = x.entry_id WHERE {held} GROUP BY x.school ORDER BY x.school",
                params).fetchall()}
            oldest = db.execute(f"SELECT min(e.received) FROM entries e WHERE {held}",
                                params).fetchone()[0]
        return QueueCounts(by_status, by_rule, by_school,
                           self._datetime(oldest) if oldest else None)

    def get_scoped(self, entry_id: str, scope: Scope) -> Entry:
        where, params = scope_condition(scope)
        with self._tx(write=False) as db:
            ids = [r[0] for r in db.execute(
                f"SELECT e.id FROM entries e WHERE e.id = ? AND {where}",
                [entry_id, *params]).fetchall()]
            entries = self._load_entries(db, ids)
        if not entries:  # the same answer for "no such entry" and "not yours"
            raise EntryNotFound(f"no quarantine entry '{entry_id}'")
        return entries[0]

    def audit_scoped(self, scope: Scope, entry_id: str | None = None,
                     limit: int = 500) -> list[AuditRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        if not scope.everything:
            where, scope_params = scope_condition(scope)
            clauses.append(f"a.entry_id IN (SELECT e.id FROM entries e WHERE {where})")
            params += scope_params
        if entry_id:
            clauses.append("a.entry_id = ?")
            params.append(entry_id)
        sql = f"SELECT {_AUDIT_COLUMNS} FROM audit a"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        with self._tx(write=False) as db:
            rows = db.execute(sql + " ORDER BY a.seq DESC LIMIT ?",
                              [*params, int(limit)]).fetchall()
        # The audit keeps its timestamps as the text it hashed, on both databases.
        return [AuditRecord(r[0], from_db(r[1]), r[2], r[3], r[4], r[5], r[6],
                            json.loads(r[7]), r[8]) for r in rows]

    # -- accounts ---------------------------------------------------------------------------
    def add_account(self, account: Account, actor: Actor) -> None:
        _check_role(account.role)
        now = self._time(utcnow())
        name = account.name.strip().lower()
        with self._tx(write=True) as db:
            added = db.execute(
                f"INSERT INTO review_accounts ({_ACCOUNT_COLUMNS}, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (name) DO NOTHING",
                (name, account.role, json.dumps(list(account.schools)),
                 json.dumps(list(account.rules)), account.email, account.password_hash,
                 int(account.disabled), now, now)).rowcount
            if not added:
                raise QuarantineError(f"an account named '{name}' already exists")
            self._audit(db, actor, "account_add", None, "account created",
                        {"account": name, "role": account.role,
                         "schools": list(account.schools), "rules": list(account.rules),
                         "password": account.password_hash is not None})

    def update_account(self, name: str, actor: Actor, *, disabled: bool | None = None,
                       password_hash: str | None = None, role: str | None = None,
                       schools: tuple[str, ...] | None = None,
                       rules: tuple[str, ...] | None = None,
                       email: str | None = None) -> Account:
        name = name.strip().lower()
        changes: dict[str, Any] = {}
        if disabled is not None:
            changes["disabled"] = int(disabled)
        if password_hash is not None:
            changes["password_hash"] = password_hash
        if role is not None:
            _check_role(role)
            changes["role"] = role
        if schools is not None:
            changes["schools"] = json.dumps(list(schools))
        if rules is not None:
            changes["rules"] = json.dumps(list(rules))
        if email is not None:
            changes["email"] = email or None
        # Disabling an account or setting its password ends the sessions it has: a stolen
        # session must not outlive the change made because of it.
        end_sessions = bool(disabled) or password_hash is not None
        with self._tx(write=True) as db:
            if not db.execute(f"SELECT 1 FROM review_accounts WHERE name = ?{self.FOR_UPDATE}",
                              (name,)).fetchone():
                raise QuarantineError(f"no account named '{name}'")
            if changes:
                sets = ", ".join(f"{column} = ?" for column in changes)
                epoch = ", session_epoch = session_epoch + 1" if end_sessions else ""
                db.execute(f"UPDATE review_accounts SET {sets}{epoch}, updated = ?"
                           " WHERE name = ?", [*changes.values(), self._time(utcnow()), name])
                shown = {k: (v if k != "password_hash" else "changed")
                         for k, v in changes.items()}
                self._audit(db, actor, "account_change", None, "account changed",
                            {"account": name, **shown})
            row = db.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM review_accounts WHERE name = ?",
                             (name,)).fetchone()
        return self._account(row)

    def end_sessions(self, name: str) -> None:
        with self._tx(write=True) as db:
            db.execute("UPDATE review_accounts SET session_epoch = session_epoch + 1"
                       " WHERE name = ?", (name.strip().lower(),))

    def account(self, name: str) -> Account | None:
        with self._tx(write=False) as db:
            row = db.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM review_accounts WHERE name = ?",
                             (name.strip().lower(),)).fetchone()
        return self._account(row) if row else None

    def accounts(self) -> list[Account]:
        with self._tx(write=False) as db:
            rows = db.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM review_accounts"
                              " ORDER BY name").fetchall()
        return [self._account(r) for r in rows]

    def _account(self, row: tuple[Any, ...]) -> Account:
        name, role, schools, rules, email, password_hash, disabled, created, epoch = row
        return Account(name, role, tuple(json.loads(schools)), tuple(json.loads(rules)), email,
                       password_hash, bool(disabled), self._datetime(created), int(epoch))

    # -- sign-in throttling -----------------------------------------------------------------
    def record_signin_failure(self, keys: tuple[str, ...], at: datetime) -> None:
        with self._tx(write=True) as db:
            for key in keys:
                db.execute("INSERT INTO review_signin_failures (key, at) VALUES (?, ?)",
                           (key, self._time(at)))

    def signin_failures(self, key: str, since: datetime) -> int:
        with self._tx(write=False) as db:
            return int(db.execute("SELECT count(*) FROM review_signin_failures"
                                  " WHERE key = ? AND at >= ?",
                                  (key, self._time(since))).fetchone()[0])

    def clear_signin_failures(self, key: str, before: datetime | None = None) -> None:
        with self._tx(write=True) as db:
            if before is None:
                db.execute("DELETE FROM review_signin_failures WHERE key = ?", (key,))
            else:
                db.execute("DELETE FROM review_signin_failures WHERE at < ?",
                           (self._time(before),))

    def console_secret(self, name: str, make: str) -> str:
        # Two instances starting at once: the second INSERT waits for the first's commit,
        # then does nothing, and both read the one stored value.
        with self._tx(write=True) as db:
            db.execute("INSERT INTO review_state (name, value) VALUES (?, ?)"
                       " ON CONFLICT (name) DO NOTHING", (name, make))
            return str(db.execute("SELECT value FROM review_state WHERE name = ?",
                                  (name,)).fetchone()[0])


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise QuarantineError(f"role must be one of {', '.join(ROLES)}")


def _marks(values: Any) -> str:
    return ", ".join("?" * len(values))
