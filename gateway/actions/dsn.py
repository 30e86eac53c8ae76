"""Delivery status notifications (RFC 3464) for recipients refused after the client got 250.

Why: the gateway answers the whole message with one reply (as Amavis does); a recipient that
policy or the upstream refused while others were delivered must not vanish silently, so its
sender gets a bounce. Bounces never carry the original body (it may hold student data); only
the headers needed to recognise the message.
"""

from __future__ import annotations

import email.utils
import uuid
from collections.abc import Mapping
from email.parser import BytesHeaderParser

HEADERS_TO_RETURN = ("From", "To", "Cc", "Subject", "Date", "Message-ID")
FOLD_AT = 78  # RFC 5322's recommended line length; folded at whitespace where there is some
MAX_LINE = 998  # RFC 5322's limit, CRLF not counted: strict servers refuse longer lines


def build_dsn(*, original: bytes, mail_from: str, postmaster: str, reporting_mta: str,
              queue_id: str, failures: Mapping[str, tuple[int, str]]) -> bytes:
    """A multipart/report bounce listing each failed recipient with its SMTP reply.

    Assembled by hand: the email package cannot serialise a message/delivery-status part
    built from scratch.
    """
    boundary = f"dsn-{uuid.uuid4().hex}"
    headers = [
        f"From: Mail Delivery System <{postmaster}>",
        f"To: <{mail_from}>",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {email.utils.formatdate(localtime=False)}",
        f"Message-ID: {email.utils.make_msgid(domain=reporting_mta)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
    ]
    parts = [
        ("text/plain; charset=utf-8", _human_text(reporting_mta, failures)),
        ("message/delivery-status", _status_text(reporting_mta, queue_id, failures)),
        ("text/rfc822-headers; charset=utf-8", _original_headers(original)),
    ]
    lines = [*headers, "", "This is a MIME-encapsulated delivery status notification."]
    for content_type, body in parts:
        lines += [f"--{boundary}", f"Content-Type: {content_type}", "", body.rstrip("\n")]
    lines += [f"--{boundary}--", ""]
    return "\r\n".join(line.replace("\n", "\r\n") for line in lines).encode("utf-8")


def _human_text(reporting_mta: str, failures: Mapping[str, tuple[int, str]]) -> str:
    lines = [f"This is the mail gateway at {reporting_mta}.", "",
             "Your message could not be delivered to the following recipients:", ""]
    for rcpt, (code, text) in failures.items():
        lines.append(folded(f"  <{rcpt}>:", f"{code} {text}", indent="    "))
    lines += ["", "The message was delivered to any recipients not listed here.", ""]
    return "\n".join(lines)


def _status_text(reporting_mta: str, queue_id: str,
                 failures: Mapping[str, tuple[int, str]]) -> str:
    blocks = [f"Reporting-MTA: dns; {reporting_mta}\nX-Queue-ID: {queue_id}\n"]
    for rcpt, (code, text) in failures.items():
        status = _enhanced_status(code, text)
        blocks.append(f"{folded('Final-Recipient:', f'rfc822; {rcpt}')}\nAction: failed\n"
                      f"Status: {status}\n{folded('Diagnostic-Code:', f'smtp; {code} {text}')}\n")
    return "\n".join(blocks)


def _enhanced_status(code: int, text: str) -> str:
    first = text.split(" ", 1)[0]
    parts = first.split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return first
    return f"{str(code)[0]}.0.0"


def _original_headers(original: bytes) -> str:
    parsed = BytesHeaderParser().parsebytes(original[:65536])
    lines = [folded(f"{name}:", str(parsed[name])) for name in HEADERS_TO_RETURN
             if parsed[name]]
    return "\n".join(lines)


def folded(label: str, value: str, *, indent: str = " ") -> str:
    """`label value` as lines of at most FOLD_AT characters, broken at whitespace (a long
    folded To: stays folded), each continuation starting with `indent`; a single word too
    long for MAX_LINE is cut, so no line ever exceeds it."""
    lines: list[str] = []
    line = label
    for word in value.split():
        if line != label and len(line) + 1 + len(word) > FOLD_AT:
            lines.append(line)
            line = (indent + word)[:MAX_LINE]
        else:
            line = f"{line} {word}"[:MAX_LINE]
    lines.append(line)
    return "\n".join(lines)
