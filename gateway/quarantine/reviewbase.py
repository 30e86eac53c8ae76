"""What the review console needs from a store, beyond the daemon's and the CLI's protocol.

Kept apart from `base.QuarantineStore` because only the console needs it; both backends
implement it in one SQL (`reviewsql.py`, part of `sqlstore.SQLStore`). The rule that matters
here: **scope is applied in the query**. A reviewer's `Scope` goes into every read as SQL
conditions, so an entry outside it is never loaded, whatever page or id a request names.

Accounts, sign-in failures and the console's session secret live in the store too: several
console instances behind a load balancer must agree on who may sign in and must accept each
other's session cookies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from gateway.quarantine.base import Actor, AuditRecord, Entry

ROLES = ("administrator", "reviewer")


@dataclass(frozen=True, slots=True)
class Scope:
    """The entries one account may see: all of them, or those of some schools or rules."""

    everything: bool = False
    schools: frozenset[str] = frozenset()
    rules: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.everything or self.schools or self.rules)


EVERYTHING = Scope(everything=True)


@dataclass(frozen=True, slots=True)
class Account:
    """A console account. OIDC accounts are named by the e-mail address the provider vouches
    for and have no password; local accounts have an argon2 hash."""

    name: str
    role: str  # administrator | reviewer
    schools: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    email: str | None = None  # where the reviewer's digest goes (None: no digest)
    password_hash: str | None = None
    disabled: bool = False
    created: datetime | None = None
    # Goes up when the account's sessions must end (sign-out, disabled, new password); a
    # session cookie carries the value it began with and is refused once it differs.
    session_epoch: int = 0

    @property
    def scope(self) -> Scope:
        if self.role == "administrator":
            return EVERYTHING
        return Scope(schools=frozenset(self.schools), rules=frozenset(self.rules))


@dataclass(frozen=True, slots=True)
class QueueQuery:
    """A page of the queue: always within `scope`, oldest first."""

    scope: Scope
    status: str | None = "held"  # None: every status
    school: str | None = None
    rule: str | None = None
    received_before: datetime | None = None  # "older than" filter
    received_since: datetime | None = None
    text: str | None = None  # search: id, sender, recipient, subject, Message-ID
    ids: tuple[str, ...] = ()  # only these (bulk actions re-read their entries in scope)
    limit: int = 200
    offset: int = 0


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """Counts of entries within a scope, for the queue page's summary and filters."""

    by_status: dict[str, int] = field(default_factory=dict)
    held_by_rule: dict[str, int] = field(default_factory=dict)
    held_by_school: dict[str, int] = field(default_factory=dict)
    oldest_held: datetime | None = None


class ReviewStore(Protocol):
    """Console reads (scoped), account keeping and sign-in throttling."""

    def queue(self, query: QueueQuery) -> tuple[list[Entry], int]:
        """Entries matching `query` within its scope, oldest first, and how many match."""
        ...

    def queue_counts(self, scope: Scope) -> QueueCounts: ...

    def get_scoped(self, entry_id: str, scope: Scope) -> Entry:
        """One entry by exact id; EntryNotFound when it does not exist or is out of scope."""
        ...

    def audit_scoped(self, scope: Scope, entry_id: str | None = None,
                     limit: int = 500) -> list[AuditRecord]:
        """Audit rows, newest first: of entries within scope (all rows for EVERYTHING)."""
        ...

    def add_account(self, account: Account, actor: Actor) -> None:
        """Create an account (QuarantineError if the name is taken); audited."""
        ...

    def update_account(self, name: str, actor: Actor, *, disabled: bool | None = None,
                       password_hash: str | None = None, role: str | None = None,
                       schools: tuple[str, ...] | None = None,
                       rules: tuple[str, ...] | None = None,
                       email: str | None = None) -> Account:
        """Change an account (QuarantineError if unknown); audited, never the hash itself.
        Disabling it or setting its password ends its sessions."""
        ...

    def end_sessions(self, name: str) -> None:
        """End every session of the account, on every console instance (sign-out)."""
        ...

    def account(self, name: str) -> Account | None: ...

    def accounts(self) -> list[Account]: ...

    def record_signin_failure(self, keys: tuple[str, ...], at: datetime) -> None: ...

    def signin_failures(self, key: str, since: datetime) -> int: ...

    def clear_signin_failures(self, key: str, before: datetime | None = None) -> None:
        """Forget the failures of `key` (a successful sign-in), or every key's before a time."""
        ...

    def console_secret(self, name: str, make: str) -> str:
        """The stored value of `name`, storing `make` first if there is none (one winner)."""
        ...
