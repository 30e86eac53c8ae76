"""The one header the gateway adds to every relayed copy (RFC 5321 §4.4 trace)."""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime

from gateway.model import Envelope

_UNSAFE = re.compile(r"[^A-Za-z0-9.\-:\[\]_]")


def received_header(envelope: Envelope, hostname: str) -> bytes:
    """`Received:` naming the client, this hop and the queue id, folded like Postfix's."""
    helo = _UNSAFE.sub("", envelope.helo or "unknown")[:255] or "unknown"
    ip = envelope.client_ip or "unknown"
    when = envelope.received_at or datetime.now(UTC)
    date = email.utils.format_datetime(when)
    return (f"Received: from {helo} ([{ip}])\r\n\tby {hostname} (district-gateway) "
            f"with ESMTP id {envelope.queue_id};\r\n\t{date}\r\n").encode("ascii", "replace")
