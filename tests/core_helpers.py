"""Small stand-ins for the pure core so SMTP-level tests control the decision exactly.

They are test doubles for *policy content* only; everything on the wire (SMTP, relay, store)
stays real.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib

from gateway.config import Settings
from gateway.model import (
    Action,
    Annotation,
    ContactHistory,
    ContactQuery,
    Decision,
    Envelope,
    Inspection,
    Party,
    Role,
    RuleMatch,
    Verdict,
)
from gateway.runtime import Runtime
from gateway.service.listener import Gateway


class DomainDirectory:
    def __init__(self, settings: Settings):
        self.settings = settings

    def party(self, address: str) -> Party:
        domain = address.rpartition("@")[2].lower()
        if domain in self.settings.district.staff_domains:
            return Party(address.lower(), Role.STAFF, True)
        if domain in self.settings.district.student_domains:
            return Party(address.lower(), Role.STUDENT, True)
        return Party(address.lower(), Role.EXTERNAL, False)


class NullInspector:
    def inspect(self, raw: bytes) -> Inspection:
        return Inspection()


class ExplodingInspector:
    def inspect(self, raw: bytes) -> Inspection:
        raise RuntimeError("boom")


@dataclass
class ScriptedPolicy:
    """Decides by recipient address: {address: Action}; everyone else is relayed."""

    actions: dict[str, Action] = field(default_factory=dict)
    annotation: Annotation = field(
        default_factory=lambda: Annotation(headers=(("X-Test-Annotated", "yes"),)))
    lexicons: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def contact_queries(self, envelope: Envelope, sender: Party,
                        recipients: Sequence[Party]) -> frozenset[ContactQuery]:
        return frozenset()  # it never asks the history

    def decide(self, envelope: Envelope, sender: Party, recipients: Sequence[Party],
               inspection: Inspection, history: ContactHistory) -> Decision:
        verdicts = []
        for party in recipients:
            action = self.actions.get(party.address, Action.RELAY)
            matches: tuple[RuleMatch, ...] = ()
            if action is not Action.RELAY:
                matches = (RuleMatch("T1", action, "scripted for the test",
                                     annotation=self.annotation
                                     if action is Action.ANNOTATE else None),)
            verdicts.append(Verdict(party, action, matches))
        return Decision(envelope, sender, tuple(verdicts), inspection)


def runtime_for(settings: Settings, policy: Any = None, inspector: Any = None) -> Runtime:
    return Runtime(settings, DomainDirectory(settings), inspector or NullInspector(),
                   policy or ScriptedPolicy())


async def start_gateway(settings: Settings, policy: Any = None, store: Any = None,
                        inspector: Any = None) -> Gateway:
    gateway = Gateway(settings, runtime_for(settings, policy, inspector), store)
    await gateway.start()
    return gateway


def make_message(subject: str = "Hello", body: str = "Hi there.\n", *,
                 sender: str = "teacher@staff.example.org",
                 to: str = "student@students.example.org", size: int = 0) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = "<test@example.org>"
    if size:
        body = body + ("x" * 75 + "\n") * (size // 76)
    msg.set_content(body)
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def send(port: int, mail_from: str, rcpts: Sequence[str],
               content: bytes) -> tuple[dict[str, Any], str]:
    """Send with aiosmtplib; returns (per-recipient errors, final reply)."""
    return await aiosmtplib.send(content, sender=mail_from, recipients=list(rcpts),
                                 hostname="127.0.0.1", port=port, timeout=30, start_tls=False)


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def self_signed(tmp_path: Path, name: str = "gw.test") -> tuple[Path, Path]:
    """A throwaway certificate and key (openssl), for STARTTLS on either side of the hop."""
    cert, key = tmp_path / f"{name}.cert.pem", tmp_path / f"{name}.key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key
