"""The quarantine store protocol: what the daemon and the review CLI need from any backend.

Two implementations of one SQL (sqlstore.py): `SQLiteStore` (sqlite.py), the embedded default
for one instance, and `PostgresStore` (postgres.py), which several gateway instances share.
Calls are synchronous (the daemon runs them in a worker thread, never on the event loop) and
each one is a single committed, durable transaction that is correct when other processes call
the same method on the same database at the same moment.

Adding a method: declare it here with what it promises under concurrency, write it once in
sqlstore.py (`?` placeholders; `_serialise` and `FOR_UPDATE` where concurrent writers must
wait for each other, which PostgreSQL needs and SQLite's single writer makes free), and add its
tests to tests/quarantine/test_store.py, which runs every test against both backends (a real
PostgreSQL server included).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from gateway.model import ContactHistory, ContactPlan, ContactQuery


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """A copy to hold: the exact bytes received plus why, without student data in the metadata."""

    queue_id: str
    received: datetime
    client_ip: str | None
    mail_from: str
    recipients: tuple[str, ...]
    message_id: str | None
    subject: str
    content: bytes
    rules: tuple[str, ...]
    reasons: tuple[dict[str, Any], ...]  # [{"recipient", "rule", "reason", "action"}]
    findings: tuple[dict[str, Any], ...]  # Finding.public() dicts
    samples: tuple[dict[str, Any], ...] = field(default=())  # masked samples, reviewers only
    schools: tuple[str, ...] = ()  # the sender's and held recipients' schools (review scope)


@dataclass(frozen=True, slots=True)
class HoldResult:
    id: str
    duplicate: bool  # the same bytes and recipients were already held (a client retry)


class QuarantineStore(ContactHistory, Protocol):
    """Durable store for held copies, their review status, the audit trail and P6 history."""

    def hold(self, request: HoldRequest) -> HoldResult:
        """Write the held copy durably (committed and fsynced) before returning."""
        ...

    def list_entries(self, query: EntryQuery | None = None) -> list[Entry]:
        """Entries matching `query`, newest first (no content is loaded)."""
        ...

    def held_summary(self) -> tuple[int, datetime | None]:
        """How many entries await review and when the oldest of them was received (None when
        none do): one cheap indexed query, for the daemon's metrics."""
        ...

    def get(self, entry_id: str) -> Entry:
        """One entry by id or unique id prefix; raises EntryNotFound."""
        ...

    def content(self, entry_id: str) -> bytes | None:
        """The held copy's exact bytes (None once deleted)."""
        ...

    def claim_release(self, entry_id: str, actor: Actor, lease_seconds: float) -> tuple[str, ...]:
        """Lease the still-held recipients for one release attempt (empty: nothing to do).

        Raises ReleaseBusy while another release of the entry holds an unexpired lease.
        """
        ...

    def finish_release(self, entry_id: str, actor: Actor, reason: str,
                       delivered: tuple[str, ...], failed: dict[str, str]) -> Entry:
        """Record a release attempt's per-recipient outcome and the audit row; drop the lease."""
        ...

    def delete(self, entry_id: str, actor: Actor, reason: str) -> bool:
        """Discard the held copy (metadata and audit stay); False if it was already deleted."""
        ...

    def purge(self, before: datetime, actor: Actor, reason: str,
              statuses: tuple[str, ...] = ()) -> list[str]:
        """Remove entries received before `before` (optionally only those statuses)."""
        ...

    def audit(self, entry_id: str | None = None,
              since: datetime | None = None) -> list[AuditRecord]:
        """The append-only audit trail, oldest first."""
        ...

    def record(self, actor: Actor, action: str, entry_id: str | None, reason: str,
               detail: dict[str, Any]) -> None:
        """Append one audit row for an action that changes nothing else (e.g. export)."""
        ...

    def record_contact(self, student_id: str, staff_id: str, at: datetime) -> None:
        """Remember one P5/P6 contact outside any message (a no-op on a read-only store)."""
        ...

    def count_and_record(self, plan: ContactPlan, message_key: str) -> dict[ContactQuery, int]:
        """Record the message's contacts and count, per query, the contacts before them: one
        transaction, serialised per student-staff pair across every process sharing the
        store, so N messages of one pair decided at once see 0, 1, …, N-1. Idempotent per
        `message_key`: a client's retry of the same message is not counted twice, and is
        answered the counts its first attempt saw. A read-only store only counts."""
        ...

    def contact_counts(self, queries: Iterable[ContactQuery]) -> dict[ContactQuery, int]:
        """`count_contacts` for each query, in one read that never waits for a writer."""
        ...

    def purge_contacts(self, before: datetime) -> int:
        """Forget P5/P6 contacts recorded before `before`; returns how many."""
        ...

    def claim_digest(self, until: datetime, interval: float) -> datetime | None:
        """Claim the reviewers' digest period ending at `until`: its start when a digest is
        due (the last claimed period ended `interval` seconds or more before `until`), else
        None. Exactly one of several instances asking at once gets it. The very first call
        starts the first period and returns None."""
        ...

    def unclaim_digest(self, since: datetime, until: datetime) -> None:
        """Give back a claimed period whose digest could not be sent, so the next one covers
        it (unless another claim has moved on meanwhile)."""
        ...

    def check(self) -> bool:
        """Can the store take a hold right now? (readiness; quick, never raises)."""
        ...

    def verify(self) -> list[str]:
        """Integrity problems (database, content hashes, audit chain); empty when sound."""
        ...

    def close(self) -> None: ...


ENTRY_STATUSES = ("held", "released", "deleted")


def contact_key(mail_from: str, content: bytes) -> str:
    """Which message recorded a contact: the same bytes from the same sender are the same
    message (a client's retry after a 4xx, possibly on another instance)."""
    text = hashlib.sha256(content).hexdigest() + "\0" + mail_from.lower()
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class QuarantineError(Exception):
    """A quarantine operation failed; the message is safe to show (no student data)."""


class StoreUnavailable(QuarantineError):
    """The database cannot be reached or did not answer in time (the daemon answers 451)."""


class SchemaMismatch(QuarantineError):
    """The database's schema is not the one this gateway writes (upgrade it on purpose)."""


class EntryNotFound(QuarantineError):
    pass


class ReleaseBusy(QuarantineError):
    pass


@dataclass(frozen=True, slots=True)
class Actor:
    """Who does something: the name given (--operator) and the OS account that ran it."""

    operator: str
    os_user: str


@dataclass(frozen=True, slots=True)
class RecipientState:
    address: str
    status: str  # held | released | deleted
    updated: datetime
    detail: str = ""  # outcome of the last release attempt, e.g. "550 5.1.1 unknown user"


@dataclass(frozen=True, slots=True)
class Entry:
    """One held copy's metadata: everything a reviewer sees except the message itself."""

    id: str
    queue_id: str
    received: datetime
    client_ip: str | None
    mail_from: str
    message_id: str | None
    subject: str
    size: int
    sha256: str
    status: str
    rules: tuple[str, ...]
    reasons: tuple[dict[str, Any], ...]
    findings: tuple[dict[str, Any], ...]
    samples: tuple[dict[str, Any], ...]
    recipients: tuple[RecipientState, ...]
    schools: tuple[str, ...] = ()

    @property
    def held_recipients(self) -> tuple[str, ...]:
        return tuple(r.address for r in self.recipients if r.status == "held")

    def public(self) -> dict[str, Any]:
        """The `quarantine list --json` shape: no masked samples."""
        return {
            "id": self.id, "status": self.status, "received": self.received.isoformat(),
            "mail_from": self.mail_from, "recipients": [r.address for r in self.recipients],
            "recipient_status": {r.address: r.status for r in self.recipients},
            "rules": list(self.rules), "subject": self.subject, "message_id": self.message_id,
            "size": self.size, "client_ip": self.client_ip, "queue_id": self.queue_id,
            "findings": list(self.findings),
        }


@dataclass(frozen=True, slots=True)
class EntryQuery:
    status: str | None = None
    rule: str | None = None
    recipient: str | None = None
    since: datetime | None = None
    before: datetime | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: datetime
    operator: str
    os_user: str
    action: str  # hold | release | release_failed | delete | purge
    entry_id: str | None
    reason: str
    detail: dict[str, Any]
    hash: str

    def public(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at.isoformat(), "operator": self.operator,
                "os_user": self.os_user, "action": self.action, "entry_id": self.entry_id,
                "reason": self.reason, "detail": self.detail, "hash": self.hash}
