"""The quarantine store protocol: what the daemon and the review CLI need from any backend.

SQLite is the embedded default; a PostgreSQL backend implements the same protocol so that
several gateway instances can share one quarantine. Calls are synchronous (the daemon runs them
in a thread) and each one is a single committed, durable transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from gateway.model import ContactHistory, ContactQuery


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
        """Remember one P5/P6 contact (a no-op on a read-only store)."""
        ...

    def contact_counts(self, queries: Iterable[ContactQuery]) -> dict[ContactQuery, int]:
        """`count_contacts` for each query, in one read that never waits for a writer."""
        ...

    def purge_contacts(self, before: datetime) -> int:
        """Forget P5/P6 contacts recorded before `before`; returns how many."""
        ...

    def verify(self) -> list[str]:
        """Integrity problems (database, content hashes, audit chain); empty when sound."""
        ...

    def close(self) -> None: ...


ENTRY_STATUSES = ("held", "released", "deleted")


class QuarantineError(Exception):
    """A quarantine operation failed; the message is safe to show (no student data)."""


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
