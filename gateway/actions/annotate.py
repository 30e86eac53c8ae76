"""Annotate a relayed copy: policy headers, an optional subject tag and a notice on top.

Pure bytes → bytes. The message keeps its MIME structure: only the first plain-text and the
first HTML body part get the notice, each re-encoded in its own charset and transfer encoding
(a part whose charset cannot carry the notice moves to UTF-8; HTML uses character references
instead). Header changes are made on the raw header block, so the body bytes of a
headers-only annotation are exactly what the sender's DKIM signature covered.
"""

from __future__ import annotations

import base64
import html
import quopri
import re
from collections.abc import Sequence
from email import message_from_bytes
from email import policy as email_policy
from email.generator import BytesGenerator
from email.header import Header, decode_header, make_header
from email.message import Message
from io import BytesIO

import structlog

from gateway.mime.headers import HEADER_DECODE_LIMIT
from gateway.model import Annotation

log = structlog.get_logger("gateway.actions.annotate")

_SEPARATOR = "-" * 60
_HTML_NOTICE = ('<div style="border:2px solid #b00;padding:8px;margin:0 0 12px 0;'
                'font-family:sans-serif;font-size:13px">{}</div>')
_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def annotate(raw: bytes, annotations: Sequence[Annotation], *, body_notice: bool) -> bytes:
    """Apply every annotation; body_notice=False leaves Subject and body untouched
    (headers only), e.g. for DKIM-signed mail from outside."""
    if not annotations:
        return raw
    notices = list(dict.fromkeys(a.notice.strip() for a in annotations if a.notice))
    tags = list(dict.fromkeys(a.subject_tag.strip() for a in annotations if a.subject_tag))
    headers = [h for a in annotations for h in a.headers]
    out = raw
    if body_notice and notices:
        try:
            out = add_body_notice(out, "\n\n".join(notices))
        except Exception as exc:  # MIME the email package cannot rebuild: headers and tag only
            log.warning("annotate_body_failed", error=type(exc).__name__)
    head, sep, body = split_head(out)
    if body_notice:
        for tag in tags:
            head = tag_subject(head, tag, sep)
    head = replace_headers(head, headers, sep)
    return head + body


# --- the header block, edited as bytes ------------------------------------------------------

def split_head(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """(header block incl. final line ending, line ending, blank line + body)."""
    crlf = raw.find(b"\r\n\r\n")
    lf = raw.find(b"\n\n")
    if crlf != -1 and (lf == -1 or crlf < lf):
        return raw[:crlf + 2], b"\r\n", raw[crlf + 2:]
    if lf != -1:
        return raw[:lf + 1], b"\n", raw[lf + 1:]
    sep = b"\r\n" if b"\r\n" in raw else b"\n"
    head = raw if raw.endswith(sep) or not raw else raw + sep
    return head, sep, sep


def _header_fields(head: bytes, sep: bytes) -> list[bytes]:
    """Header fields, each with its continuation lines."""
    fields: list[bytes] = []
    for line in head.split(sep)[:-1] if head.endswith(sep) else head.split(sep):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += sep + line
        else:
            fields.append(line)
    return fields


def _name(field: bytes) -> str:
    return field.split(b":", 1)[0].strip().decode("ascii", "replace").lower()


def replace_headers(head: bytes, headers: Sequence[tuple[str, str]], sep: bytes) -> bytes:
    """Drop incoming headers with the names we set (no spoofed verdicts), then add ours on
    top."""
    if not headers:
        return head
    names = {n.lower() for n, _ in headers}
    kept = [f for f in _header_fields(head, sep) if _name(f) not in names]
    added = [f"{n}: {_encode_value(v)}".encode("ascii") for n, v in dict.fromkeys(headers)]
    return sep.join([*added, *kept]) + sep


def _encode_value(value: str) -> str:
    value = " ".join(value.split())
    return value if value.isascii() else Header(value, "utf-8").encode()


def tag_subject(head: bytes, tag: str, sep: bytes) -> bytes:
    """Prefix the subject once: a tag already present anywhere (a reply, "Re: [TAG] ...")
    is not added again."""
    fields = _header_fields(head, sep)
    for i, field in enumerate(fields):
        if _name(field) != "subject":
            continue
        value = field.split(b":", 1)[1]
        if tag.casefold() in _decoded(value).casefold():
            return head
        fields[i] = b"Subject: " + _encode_value(tag).encode("ascii") + b" " + value.lstrip()
        return sep.join(fields) + sep
    fields.append(b"Subject: " + _encode_value(tag).encode("ascii"))
    return sep.join(fields) + sep


def _decoded(value: bytes) -> str:
    text = value.decode("ascii", "replace")
    if len(text) > HEADER_DECODE_LIMIT:  # decode_header is quadratic: compare the raw text
        return text
    try:
        return str(make_header(decode_header(text)))
    except Exception:  # CharsetError, LookupError, UnicodeError...: compare the raw text
        return text


# --- the notice in the body -----------------------------------------------------------------

def add_body_notice(raw: bytes, notice: str) -> bytes:
    """Put the notice on top of the first plain and first HTML body part; leave the rest."""
    msg = message_from_bytes(raw, policy=email_policy.compat32)
    done: set[str] = set()
    for part in _body_parts(msg):
        subtype = part.get_content_subtype()
        if subtype in done:
            continue
        if _insert(part, notice, html_part=subtype == "html"):
            done.add(subtype)
    if not done:
        return raw
    sep = b"\r\n" if split_head(raw)[1] == b"\r\n" else b"\n"
    buf = BytesIO()
    gen_policy = email_policy.compat32.clone(linesep=sep.decode("ascii"))
    BytesGenerator(buf, mangle_from_=False, maxheaderlen=0, policy=gen_policy).flatten(msg)
    return buf.getvalue()


def _body_parts(msg: Message) -> list[Message]:
    """Text parts that are the message body: not attachments, not inside forwarded mail."""
    out: list[Message] = []
    stack = [msg]
    while stack:
        part = stack.pop(0)
        if part.is_multipart():
            if part.get_content_type() != "message/rfc822":
                stack[0:0] = [p for p in part.get_payload() if isinstance(p, Message)]
            continue
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        if part.get_content_type() in ("text/plain", "text/html") and disposition != "attachment":
            out.append(part)
    return out


def _insert(part: Message, notice: str, *, html_part: bool) -> bool:
    charset = part.get_content_charset() or "us-ascii"
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return False
    try:
        text = data.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return False  # an unknown or lying charset: leave the part as it was
    nl = "\r\n" if "\r\n" in text else "\n"
    if html_part:
        new = _html_with_notice(text, notice, charset)
    else:
        new = notice.replace("\n", nl) + nl + _SEPARATOR + nl + nl + text
    try:
        encoded = new.encode(charset)
    except UnicodeEncodeError:
        charset, encoded = "utf-8", new.encode("utf-8")
        part.set_param("charset", "utf-8")
    _set_encoded_payload(part, encoded)
    return True


def _html_with_notice(text: str, notice: str, charset: str) -> str:
    block = _HTML_NOTICE.format(html.escape(notice.strip()).replace("\n", "<br>\n"))
    try:
        block.encode(charset)
    except (UnicodeEncodeError, LookupError):
        block = block.encode("ascii", "xmlcharrefreplace").decode("ascii")
    match = _BODY_TAG.search(text)
    if match is None:
        return block + text
    return text[:match.end()] + block + text[match.end():]


def _set_encoded_payload(part: Message, data: bytes) -> None:
    """Store bytes with the part's transfer encoding (8-bit content becomes quoted-printable
    only when the part was declared 7bit, which cannot carry it)."""
    cte = (part.get("Content-Transfer-Encoding") or "7bit").strip().lower()
    if cte == "base64":
        payload = base64.encodebytes(data).decode("ascii")
    elif cte == "quoted-printable" or (not data.isascii() and cte not in ("8bit", "binary")):
        payload = quopri.encodestring(data.replace(b"\r\n", b"\n")).decode("ascii")
        cte = "quoted-printable"
    else:
        payload = data.decode("ascii", "surrogateescape")
    del part["Content-Transfer-Encoding"]
    part["Content-Transfer-Encoding"] = cte
    part.set_payload(payload)
