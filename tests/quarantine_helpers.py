"""Factories for quarantine tests: real config files, real MIME, real subprocesses."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import socket
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from gateway.config import Settings, load_settings
from gateway.quarantine.base import HoldRequest

REPO = Path(__file__).resolve().parent.parent
STAFF = "teacher@staff.example.org"
STUDENT_PERSONAL = "kid.home@gmail.example"
PARENT = "parent@home.example"


def write_config(tmp_path: Path, upstream_port: int = 9, *, db: str = "qdir/quarantine.db",
                 extra: str = "") -> Settings:
    """gateway.yaml in tmp_path; the quarantine folder does not exist yet (we test its mode)."""
    text = f"""
upstream: {{host: 127.0.0.1, port: {upstream_port}, timeout: 5}}
district:
  staff_domains: [staff.example.org]
  student_domains: [students.example.org]
quarantine:
  url: "sqlite:///{db}"
  reviewers: [principal@staff.example.org]
smtp: {{hostname: gw.test}}
log: {{format: json}}
{extra}
"""
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return load_settings(path)


def make_message(subject: str = "Report cards", body: str = "Please see attached.\n",
                 *, sender: str = STAFF, to: str = STUDENT_PERSONAL,
                 attachment: bytes | None = None, msgid: str = "<q1@staff.example.org>") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = msgid
    msg["Date"] = "Fri, 31 Jan 2025 08:00:00 +0000"
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="text", subtype="csv", filename="grades.csv")
    return msg.as_bytes(policy=email.policy.SMTP)  # CRLF, as it travels over SMTP


def hold_request(content: bytes | None = None, *, recipients: tuple[str, ...] = (
                 STUDENT_PERSONAL,), rules: tuple[str, ...] = ("P1",),
                 received: datetime | None = None, mail_from: str = STAFF,
                 queue_id: str = "QID1", subject: str | None = None) -> HoldRequest:
    content = content if content is not None else make_message(subject or "Report cards")
    if subject is None:
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        subject = str(parsed.get("Subject", ""))
    return HoldRequest(
        queue_id=queue_id, received=received or datetime.now(UTC), client_ip="127.0.0.1",
        mail_from=mail_from, recipients=recipients, message_id="<q1@staff.example.org>",
        subject=subject, content=content, rules=rules,
        reasons=tuple({"recipient": r, "rule": rule, "reason": f"{rule} matched",
                       "action": "hold"} for r in recipients for rule in rules),
        findings=({"detector": "ssn", "count": 1, "distinct": 1,
                   "location": "attachment grades.csv"},),
        samples=({"detector": "ssn", "location": "attachment grades.csv",
                  "sample": "***-**-4321"},))


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str
    raw_stdout: bytes = b""


async def run_cli(*args: str) -> CliResult:
    """`python -m gateway ...` as a real subprocess, awaited so a test's upstream keeps serving."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, cwd=str(REPO), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(errors="replace"), err.decode(), out)


class DeadPort:
    """A loopback port that is bound but not listening: connections are refused, and no other
    process can take the port while the test runs."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()
