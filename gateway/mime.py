"""Walk a message into text-bearing parts: every MIME part, forwarded messages, attachments.

Parsing uses the compat32 policy on purpose: it never raises on malformed headers and tolerates
broken base64/quoted-printable (decoding what it can). We do our own header decoding (RFC 2047,
raw UTF-8 in headers) and our own walk (the stdlib's is recursive and has no limits).
Every leaf goes through `gateway.extract.extract_file`, which sniffs the real file type.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from gateway import extract, mimeparams
from gateway.extract.base import Context, attachment_location
from gateway.extract.sniff import OCTET, sniff
from gateway.extract.text import decode
from gateway.mimeparse import parse_fast
from gateway.model import Attachment

_SIGNATURES = {"application/pkcs7-signature", "application/x-pkcs7-signature",
               "application/pgp-signature"}
_OPAQUE = {"application/pkcs7-mime", "application/x-pkcs7-mime", "application/pgp-encrypted",
           "multipart/encrypted"}
_BODY_TYPES = ("text/plain", "text/html", "text/csv", "text/xml", "text/rtf", "message/rfc822")


@dataclass(frozen=True, slots=True)
class Headers:
    """The few top-level header facts the policy needs."""

    subject: str = ""
    message_id: str | None = None
    from_header: str | None = None
    has_dkim_signature: bool = False


def parse(raw: bytes) -> Message:
    """The message tree, exactly as `BytesParser(policy=compat32)` builds it (faster for the
    plain shapes most mail has: see `gateway.mimeparse`)."""
    msg = parse_fast(raw)
    return msg if msg is not None else BytesParser(policy=compat32).parsebytes(raw)


def headers(msg: Message) -> Headers:
    message_id = header_text(msg, "Message-ID").strip() or None
    return Headers(header_text(msg, "Subject"), message_id,
                   header_text(msg, "From") or None, "DKIM-Signature" in msg)


# The stdlib's decode_header is quadratic in the encoded words on one line (1 MB of them took
# 22 s of CPU, out of reach of the time budget). Longer values are not decoded: their text is
# read raw, and a Subject that long makes the message uninspectable (see walk_message).
HEADER_DECODE_LIMIT = 16 * 1024


def header_text(msg: Message, name: str) -> str:
    """A header as readable text: RFC 2047 words decoded, raw 8-bit read as UTF-8."""
    return _readable(_raw_value(msg, name) or "")


def _raw_value(msg: Message, name: str) -> str | None:
    raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    if raw is None:
        return None
    return str(raw).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _readable(value: str) -> str:
    if len(value) > HEADER_DECODE_LIMIT:
        return " ".join(value.split())
    try:
        chunks = decode_header(value)
    except Exception:  # malformed encoded words: keep the raw text
        return " ".join(value.split())
    text = "".join(c if isinstance(c, str) else decode(c, cs) for c, cs in chunks)
    return " ".join(text.split())


def walk_bytes(data: bytes, ctx: Context, prefix: str) -> None:
    """A forwarded message given as bytes (an attached .eml)."""
    walk_message(parse(data), ctx.deeper(), prefix)


def walk_message(msg: Message, ctx: Context, prefix: str = "", *,
                 subject: str | None = None) -> None:
    """Subject and every part of `msg`; locations are prefixed for forwarded messages.

    `subject`: the Subject as `headers(msg)` already decoded it (decoding is not free)."""
    raw_subject = _raw_value(msg, "Subject") or ""
    if subject is None:
        subject = _readable(raw_subject)
    if subject:
        ctx.add_text(subject, _child(prefix, "subject"), kind="subject")
    if len(raw_subject) > HEADER_DECODE_LIMIT:  # not decoded: held
        ctx.problem(_child(prefix, "subject"), "header too long to decode")
    _Walker(ctx, prefix).part(msg, ctx)


def _child(prefix: str, label: str) -> str:
    if not prefix:
        return label
    return f"{prefix}/{label}" if prefix.startswith("attachment ") else f"{prefix}, {label}"


class _Walker:
    """Iterates one message's MIME tree, numbering bodies and unnamed parts."""

    def __init__(self, ctx: Context, prefix: str):
        self.prefix = prefix
        self.leaves = 0
        self.bodies: dict[str, int] = {}

    def part(self, part: Message, ctx: Context) -> None:
        ctype = part.get_content_type()
        where = self.prefix or "message"
        if ctx.out_of_time(where) or not ctx.take_part(where) or ctx.too_deep(where):
            return
        if ctype == "message/rfc822" and isinstance(part.get_payload(), list):
            self.forwarded(part, ctx)
        elif ctype in _OPAQUE:
            ctx.problem(self.leaf_location(filename(part)),
                        "encrypted or opaque-signed (S/MIME, PGP)")
        elif part.is_multipart():
            for sub in part.get_payload():
                if isinstance(sub, Message):
                    self.part(sub, ctx.deeper())
        else:
            self.leaf(part, ctx, ctype)

    def forwarded(self, part: Message, ctx: Context) -> None:
        name = filename(part)
        where = (attachment_location(self.prefix, name) if name
                 else _child(self.prefix, "forwarded message"))
        inner = part.get_payload()
        for sub in inner:
            if isinstance(sub, Message):
                ctx.sink.attachments.append(Attachment(name, "message/rfc822",
                                                               len(str(sub))))
                walk_message(sub, ctx.deeper(), where)

    def leaf(self, part: Message, ctx: Context, ctype: str) -> None:
        self.leaves += 1
        if ctype in _SIGNATURES:
            return
        name = filename(part)  # once: each header parameter lookup re-parses the header
        try:
            payload = part.get_payload(decode=True) or b""
        except Exception:
            ctx.problem(self.leaf_location(name), "undecodable part")
            return
        charset = _charset(part)
        # A body stays a body if it is any kind of text (CSV or not): no need to tell which.
        if (self.is_body(part, ctype, name)
                and sniff(payload, tabular=False) in (*_BODY_TYPES, OCTET)):
            self.body(payload, ctx, ctype, charset)
            return
        extract.extract_file(payload, ctx, self.leaf_location(name), filename=name,
                             declared=ctype, charset=charset)

    @staticmethod
    def is_body(part: Message, ctype: str, name: str | None) -> bool:
        return (ctype in ("text/plain", "text/html") and name is None
                and part.get_content_disposition() != "attachment")

    def body(self, payload: bytes, ctx: Context, ctype: str, charset: str | None) -> None:
        label = "body (html)" if ctype == "text/html" else "body"
        seen = self.bodies.get(label, 0)
        self.bodies[label] = seen + 1
        where = _child(self.prefix, label if not seen else f"{label} {seen + 1}")
        limit = ctx.budget.limits.max_part_bytes
        if len(payload) > limit:
            ctx.problem(where, "part size limit")
            payload = payload[:limit]
        module = extract.html if ctype == "text/html" else extract.text
        extract.run(module.TYPES[0], payload, ctx, where, charset)

    def leaf_location(self, name: str | None) -> str:
        return attachment_location(self.prefix, name or f"part {self.leaves}")


def filename(part: Message) -> str | None:
    """The file name from Content-Disposition or Content-Type, RFC 2231 and 2047 decoded."""
    if not (_mentions(part, "content-disposition", "name")
            or _mentions(part, "content-type", "name")):
        return None  # no parameter can be called (file)name: skip parsing both headers
    try:
        name = mimeparams.filename(part)
    except Exception:
        return None
    if isinstance(name, tuple):  # an RFC 2231 triple from get_param
        name = decode(name[2].encode("latin-1", "replace"), name[0])
    if not name:
        return None
    name = str(name).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if "=?" in name and len(name) <= HEADER_DECODE_LIMIT:
        with contextlib.suppress(Exception):
            name = "".join(c if isinstance(c, str) else decode(c, cs)
                           for c, cs in decode_header(name))
    return " ".join(name.replace("/", "_").replace("\\", "_").split()) or None


def _charset(part: Message) -> str | None:
    if not _mentions(part, "content-type", "charset"):
        return None
    try:
        return mimeparams.content_charset(part)
    except Exception:
        return None


def _mentions(part: Message, header: str, word: str) -> bool:
    """Does the (first) header's value contain `word`, in any case? If not, no parameter of
    that name can be in it (the stdlib lowercases parameter names the same way), and the
    header need not be parsed: each parameter lookup parses it again."""
    value = part.get(header)
    return value is not None and word in str(value).lower()
