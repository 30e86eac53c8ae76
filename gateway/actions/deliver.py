"""Deliver a message's copies upstream: one SMTP transaction per distinct annotated copy.

The daemon relaying a decided message and a reviewer releasing a held one send the same way:
recipients whose verdicts add the same annotations share one copy, every copy gets the same
`Received:` line, and copies that differ go out side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from gateway.actions.annotate import annotate
from gateway.model import Annotation

# What one group of recipients gets added (their verdicts' annotations), and whether the
# annotation may touch the body and Subject.
CopyKind = tuple[tuple[Annotation, ...], bool]
Result = TypeVar("Result", covariant=True)


class Send(Protocol[Result]):
    """One copy upstream (`gateway.smtp.client.Relay.send`)."""

    def __call__(self, mail_from: str, rcpts: tuple[str, ...], content: bytes, *,
                 crlf_only: bool = False) -> Awaitable[Result]: ...


def copy_content(content: bytes, annotations: tuple[Annotation, ...],
                 body_notice: bool) -> bytes:
    """The bytes a group of recipients gets: the message as received, or annotated."""
    if not annotations:
        return content
    return annotate(content, annotations, body_notice=body_notice)


async def send_copies(send: Send[Result], mail_from: str,
                      groups: Mapping[CopyKind, Sequence[str]], content: bytes, trace: bytes,
                      *, received_crlf_only: bool,
                      seal: Callable[[bytes], bytes] | None = None) -> list[Result]:
    """Every group's copy, in the order of `groups`. `received_crlf_only`: the server checked
    the received content for bare CR or LF, so an unannotated copy is not counted again (an
    annotated one is rebuilt by the email package and always checked). `seal` ARC-seals the
    copies the annotations changed (`gateway.auth.seal`)."""
    def changed(kind: CopyKind) -> bytes:
        copy = copy_content(content, *kind)
        return seal(copy) if seal is not None and kind[0] else copy

    sends = [send(mail_from, tuple(rcpts), trace + changed(kind),
                  crlf_only=received_crlf_only and not kind[0])
             for kind, rcpts in groups.items()]
    if len(sends) == 1:  # the usual case: no task per copy
        return [await sends[0]]
    return list(await asyncio.gather(*sends))
