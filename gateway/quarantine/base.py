"""The quarantine store protocol: what the daemon and the review CLI need from any backend.

SQLite is the embedded default; a PostgreSQL backend implements the same protocol so that
several gateway instances can share one quarantine. Calls are synchronous (the daemon runs them
in a thread) and each one is a single committed, durable transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from gateway.model import ContactHistory


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


@dataclass(frozen=True, slots=True)
class HoldResult:
    id: str
    duplicate: bool  # the same bytes and recipients were already held (a client retry)


class QuarantineStore(ContactHistory, Protocol):
    """Durable store for held copies, their review status, the audit trail and P6 history."""

    def hold(self, request: HoldRequest) -> HoldResult:
        """Write the held copy durably (committed and fsynced) before returning."""
        ...

    def close(self) -> None: ...
