"""Release a held copy to its still-held recipients through the upstream.

Why a lease: the send happens outside any database transaction (it may take a minute), so two
reviewers releasing the same entry at once must not both send it. `claim_release` leases the
held recipients; the lease ends when the outcome is recorded, or expires if the releasing
process dies, so an entry can never be stuck.

Only recipients the upstream accepted become `released`; a refusal or an unreachable upstream
leaves them held (with the upstream's answer recorded) so nothing is lost and a later release
can try again. Released recipients are never sent a second copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from gateway.actions import deliver
from gateway.actions.deliver import send_copies
from gateway.actions.trace import received_header
from gateway.model import Annotation, Envelope
from gateway.quarantine.base import Actor, Entry, QuarantineStore


class SendResult(Protocol):
    """The part of gateway.smtp.client.RelayResult a release needs."""

    @property
    def accepted(self) -> tuple[str, ...]: ...

    @property
    def refused(self) -> dict[str, tuple[int, str]]: ...

    @property
    def temporary(self) -> tuple[int, str] | None: ...

    @property
    def cause(self) -> str: ...


Send = deliver.Send[SendResult]


@dataclass(frozen=True, slots=True)
class ReleaseOutcome:
    entry: Entry  # as it stands after the attempt
    attempted: tuple[str, ...] = ()  # empty: nothing was still held (idempotent no-op)
    delivered: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def nothing_to_do(self) -> bool:
        return not self.attempted

    @property
    def complete(self) -> bool:
        return bool(self.attempted) and not self.failed


async def release_entry(store: QuarantineStore, entry_id: str, actor: Actor, reason: str,
                        send: Send, *, hostname: str, lease_seconds: float,
                        seal: Callable[[bytes], bytes] | None = None) -> ReleaseOutcome:
    """Send the held copy once to every still-held recipient and record what happened.
    `seal` ARC-seals the copies annotations change, as the daemon does."""
    entry = await asyncio.to_thread(store.get, entry_id)
    held = await asyncio.to_thread(store.claim_release, entry.id, actor, lease_seconds)
    if not held:
        return ReleaseOutcome(entry)
    delivered: tuple[str, ...] = ()
    failed = {rcpt: "release interrupted" for rcpt in held}
    try:
        content = await asyncio.to_thread(store.content, entry.id)
        if content is None:
            failed = {rcpt: "held copy missing" for rcpt in held}
        else:
            delivered, failed = await _send_copies(entry, held, content, send, hostname,
                                                   seal)
    finally:
        entry = await asyncio.to_thread(store.finish_release, entry.id, actor, reason,
                                        delivered, failed)
    return ReleaseOutcome(entry, held, delivered, failed)


async def _send_copies(entry: Entry, held: tuple[str, ...], content: bytes, send: Send,
                       hostname: str, seal: Callable[[bytes], bytes] | None
                       ) -> tuple[tuple[str, ...], dict[str, str]]:
    """One transaction per distinct annotated copy, as the daemon relays them."""
    groups = annotated_groups(entry, held)
    results = await send_copies(send, entry.mail_from, groups, content,
                                trace_header(entry, hostname), received_crlf_only=False,
                                seal=seal)
    delivered: list[str] = []
    failed: dict[str, str] = {}
    for rcpts, result in zip(groups.values(), results, strict=True):
        ok, bad = split_outcome(result, rcpts)
        delivered += ok
        failed.update(bad)
    return tuple(delivered), failed


def annotated_groups(entry: Entry, held: tuple[str, ...]
                     ) -> dict[tuple[tuple[Annotation, ...], bool], tuple[str, ...]]:
    """Held recipients grouped by the annotations their verdict carried (most have none)."""
    groups: dict[tuple[tuple[Annotation, ...], bool], list[str]] = {}
    for rcpt in held:
        reasons = [r for r in entry.reasons
                   if r.get("recipient") == rcpt and isinstance(r.get("annotation"), dict)]
        annotations = tuple(Annotation.from_dict(r["annotation"]) for r in reasons)
        body_notice = all(r.get("body_notice", True) for r in reasons)
        groups.setdefault((annotations, body_notice), []).append(rcpt)
    return {key: tuple(rcpts) for key, rcpts in groups.items()}


def split_outcome(result: SendResult,
                  held: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
    """Per recipient: delivered, or why not (the upstream's own words)."""
    if result.temporary is not None:
        return (), {rcpt: f"upstream unavailable: {result.cause}" for rcpt in held}
    accepted = set(result.accepted)
    delivered = tuple(r for r in held if r in accepted)
    failed: dict[str, str] = {}
    for rcpt in held:
        if rcpt in accepted:
            continue
        reply = result.refused.get(rcpt)
        failed[rcpt] = (f"upstream refused: {reply[0]} {reply[1]}" if reply
                        else "upstream gave no answer for this recipient")
    return delivered, failed


def trace_header(entry: Entry, hostname: str) -> bytes:
    """The same `Received:` line a relayed copy gets, describing the original hop."""
    envelope = Envelope(mail_from=entry.mail_from, rcpt_tos=(), content=b"",
                        client_ip=entry.client_ip, queue_id=entry.queue_id,
                        received_at=entry.received)
    return received_header(envelope, hostname)
