"""The soak's upstream: an SMTP server that records every message it accepts, and misbehaves
when told to.

    python bench/soaksink.py PORT RECORD_FILE CONTROL_FILE

Every accepted message is appended to RECORD_FILE as one JSON line (envelope, the gateway's
queue id from its `Received:` header, the soak tokens found in the message, and for a bounce
the recipients it reports) before `250` is sent: what this server answered 250 for is on
record even if it is SIGKILLed a moment later, as a real MTA's queue file would be. Nothing
else of the message is kept.

CONTROL_FILE holds one word, re-read whenever it changes, so the soak can switch faults on and
off without restarting the server:

- `ok`: accept everything (except recipients whose local part starts with `gone`: 550, always);
- `slow SECONDS`: take the message (record it) and answer only that much later, as an MTA
  whose reply is late: past the gateway's upstream timeout the gateway answers 451 for a copy
  the upstream has, and the client's retry delivers it again (RFC 1047);
- `tempfail`: 451 to MAIL FROM;
- `reject`: 554 at the end of DATA (nothing recorded).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

TOKEN = re.compile(rb"soak-[0-9a-z]+-\d+")
# A relayed copy names its queue id in the gateway's Received: header, a bounce in its report.
QUEUE_ID = re.compile(rb"\(district-gateway\) with ESMTP id ([0-9A-Z]+)|X-Queue-ID: ([0-9A-Z]+)")
FINAL_RECIPIENT = re.compile(rb"^Final-Recipient: rfc822; ?(\S+)", re.MULTILINE | re.IGNORECASE)


class Control:
    """The fault mode, read from a file only when its modification time changes."""

    def __init__(self, path: Path):
        self.path = path
        self.stamp = -1
        self.mode = "ok"
        self.arg = 0.0

    def current(self) -> tuple[str, float]:
        try:
            stamp = self.path.stat().st_mtime_ns
        except OSError:
            return "ok", 0.0
        if stamp != self.stamp:
            self.stamp = stamp
            words = self.path.read_text().split() or ["ok"]
            self.mode = words[0]
            self.arg = float(words[1]) if len(words) > 1 else 0.0
        return self.mode, self.arg


class RecordingHandler:
    def __init__(self, record: Path, control: Control):
        # O_APPEND: one write() per record, each line whole even if the process dies mid-run.
        self.fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.control = control

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if self.control.current()[0] == "tempfail":
            return "451 4.3.0 soak sink: try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address.lower().startswith("gone"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mode, seconds = self.control.current()
        if mode == "reject":
            return "554 5.7.1 soak sink: message refused"
        content = envelope.original_content or b""
        found = QUEUE_ID.search(content)
        queue_id = (found.group(1) or found.group(2)).decode() if found else None
        dsn = not envelope.mail_from or envelope.mail_from == "<>"
        record = {"mail_from": envelope.mail_from or "", "rcpts": list(envelope.rcpt_tos),
                  "queue_id": queue_id,
                  "tokens": sorted({t.decode() for t in TOKEN.findall(content)}),
                  "dsn": dsn,
                  "failed": [r.decode().strip("<>") for r in FINAL_RECIPIENT.findall(content)]}
        os.write(self.fd, json.dumps(record).encode() + b"\n")
        if mode == "slow":
            await asyncio.sleep(seconds)
        return "250 2.0.0 Ok: recorded"


async def main(port: int, record: Path, control: Path) -> None:
    handler = RecordingHandler(record, Control(control))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, enable_SMTPUTF8=True, decode_data=False, ident="soak-sink"),
        host="127.0.0.1", port=port, reuse_address=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
