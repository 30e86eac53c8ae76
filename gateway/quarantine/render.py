"""Turn entries and audit rows into what a reviewer reads at a terminal.

Held mail is hostile input: subjects and bodies may carry terminal escape sequences, so every
string from a message passes through `printable` before it reaches the screen.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from email.message import EmailMessage, Message

from gateway.quarantine.base import AuditRecord, Entry
from gateway.quarantine.times import as_utc

SHOWN_HEADERS = ("From", "Sender", "Reply-To", "To", "Cc", "Date", "Subject", "Message-ID",
                 "Authentication-Results", "DKIM-Signature")
TEXT_LIMIT = 6000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]+>", re.IGNORECASE | re.DOTALL)


def printable(text: str) -> str:
    """Drop control characters (escape sequences) but keep newlines and tabs."""
    return _CONTROL.sub("", text)


def one_line(text: str, width: int) -> str:
    flat = " ".join(printable(text).split())
    return flat if len(flat) <= width else flat[: max(width - 1, 0)] + "…"


def when(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M")


def entry_table(entries: Sequence[Entry]) -> str:
    """`quarantine list`: one line per entry, newest first."""
    if not entries:
        return "No quarantine entries match.\n"
    header = ("ID", "RECEIVED (UTC)", "STATUS", "RULES", "FROM", "RCPT", "SUBJECT")
    rows = [(e.id, when(e.received), e.status, ",".join(e.rules), one_line(e.mail_from, 32),
             _rcpt_summary(e), one_line(e.subject, 40)) for e in entries]
    return _table(header, rows) + f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}\n"


def audit_table(records: Sequence[AuditRecord]) -> str:
    if not records:
        return "No audit records match.\n"
    header = ("SEQ", "AT (UTC)", "ACTION", "ENTRY", "OPERATOR", "REASON")
    rows = [(str(r.seq), as_utc(r.at).strftime("%Y-%m-%d %H:%M:%S"), r.action,
             r.entry_id or "-", _who(r), one_line(r.reason, 50)) for r in records]
    return _table(header, rows)


def entry_details(entry: Entry, content: bytes | None) -> str:
    """`quarantine show`: metadata, why it was held, then what a reviewer needs to read."""
    out = [f"Quarantine entry {entry.id}",
           f"  Status:     {entry.status}",
           f"  Received:   {when(entry.received)} UTC from {entry.client_ip or 'unknown'}"
           f" (queue id {entry.queue_id or '-'})",
           f"  Sender:     {printable(entry.mail_from) or '<>'}",
           f"  Message-ID: {printable(entry.message_id or '-')}",
           f"  Subject:    {one_line(entry.subject, 200)}",
           f"  Size:       {entry.size} bytes, sha256 {entry.sha256}",
           "", "Recipients:"]
    out += [f"  {r.address}  {r.status}" + (f"  ({printable(r.detail)})" if r.detail else "")
            for r in entry.recipients]
    out += ["", "Why it was held:"]
    out += [f"  {m.get('rule', '?')}  {m.get('recipient', '')}  {m.get('action', '')}"
            f"{'  (monitor)' if m.get('monitor') else ''}  {printable(str(m.get('reason', '')))}"
            for m in entry.reasons] or ["  (no reasons recorded)"]
    out += _findings(entry)
    out += _message(content)
    return "\n".join(out) + "\n"


def _findings(entry: Entry) -> list[str]:
    out = ["", "Findings (detector, count, location):"]
    out += [f"  {f.get('detector')}  {f.get('count')}  {printable(str(f.get('location', '')))}"
            for f in entry.findings] or ["  (none)"]
    if entry.samples:
        out += ["", "Masked samples (reviewers only):"]
        out += [f"  {s.get('detector')}  {printable(str(s.get('location', '')))}  "
                f"{printable(str(s.get('sample', '')))}" for s in entry.samples]
    return out


def _message(content: bytes | None) -> list[str]:
    if content is None:
        return ["", "The held copy has been deleted."]
    try:
        msg = email.message_from_bytes(content, policy=email.policy.default)
    except Exception:  # a reviewer must still see the metadata of a message that won't parse
        return ["", "The message could not be parsed; use --raw to see it."]
    out = ["", "Headers:"]
    for name in SHOWN_HEADERS:
        out += [f"  {name}: {one_line(str(v), 300)}" for v in msg.get_all(name, [])]
    out += ["", "Text:"]
    text = _body_text(msg)
    if len(text) > TEXT_LIMIT:
        text = text[:TEXT_LIMIT] + "\n[... truncated; use --raw for the whole message]"
    out += ["  " + line for line in (text.splitlines() or ["(no text body)"])]
    attachments = list(_attachments(msg))
    if attachments:
        out += ["", "Attachments:"] + [f"  {a}" for a in attachments]
    return out


def _body_text(msg: Message) -> str:
    try:
        part = msg.get_body(preferencelist=("plain", "html")) if isinstance(
            msg, EmailMessage) else msg
        if part is None:
            return ""
        text = part.get_content()
        if not isinstance(text, str):
            return ""
        if part.get_content_subtype() == "html":
            text = html.unescape(_TAGS.sub(" ", text))
            text = re.sub(r"[ \t]+", " ", text)
            text = re.sub(r"\n\s*\n+", "\n\n", text)
    except Exception:  # broken encodings: show what can be shown
        return "(the text part could not be decoded; use --raw)"
    return printable(text).strip()


def _attachments(msg: Message) -> Iterable[str]:
    for part in msg.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        if filename or part.get_content_disposition() == "attachment":
            payload = part.get_payload(decode=True) or b""
            size = len(payload) if isinstance(payload, bytes) else 0
            name = one_line(filename or "(unnamed)", 80)
            yield f"{name}  {part.get_content_type()}  {size} bytes"


def _rcpt_summary(entry: Entry) -> str:
    first = one_line(entry.recipients[0].address, 28) if entry.recipients else "-"
    more = len(entry.recipients) - 1
    return first + (f" +{more}" if more > 0 else "")


def _who(record: AuditRecord) -> str:
    if record.operator == record.os_user:
        return record.operator
    return f"{record.operator} ({record.os_user})"


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in (header, *rows)]
    return "\n".join(lines) + "\n"
