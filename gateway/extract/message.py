"""Messages and forwarded messages (`message/rfc822` parts, attached `.eml` files): every
MIME part walked into text-bearing parts, with limits.

Walking a message is this format's extractor: a forwarded message inside a ZIP inside a
message is read the same way as the outer one, one level deeper, with its own subject and body
locations. Every leaf goes through `gateway.extract.extract_file`, which sniffs the real file
type. The walk is our own (the stdlib's is recursive and has no limits).
"""

from __future__ import annotations

import binascii
import quopri
from email.message import Message

from gateway import extract as extractors
from gateway.extract.base import Context, attachment_location
from gateway.extract.sniff import OCTET, sniff
from gateway.mime.headers import HEADER_DECODE_LIMIT, filename, raw_value, readable
from gateway.mime.headers import charset as part_charset
from gateway.mime.parse import parse
from gateway.model import Attachment

name = "message"
TYPES = ("message/rfc822",)

_SIGNATURES = {"application/pkcs7-signature", "application/x-pkcs7-signature",
               "application/pgp-signature"}
_OPAQUE = {"application/pkcs7-mime", "application/x-pkcs7-mime", "application/pgp-encrypted",
           "multipart/encrypted"}
_IDENTITY_ENCODINGS = ("", "7bit", "8bit", "binary")
_BODY_TYPES = ("text/plain", "text/html", "text/csv", "text/xml", "text/rtf", "message/rfc822")



def extract(data: bytes, ctx: Context, location: str, charset: str | None = None) -> None:
    """A forwarded message given as bytes (an attached .eml)."""
    walk_message(parse(data), ctx.deeper(), location)


def walk_message(msg: Message, ctx: Context, prefix: str = "", *,
                 subject: str | None = None) -> None:
    """Subject and every part of `msg`; locations are prefixed for forwarded messages.

    `subject`: the Subject as `headers(msg)` already decoded it (decoding is not free)."""
    raw_subject = raw_value(msg, "Subject") or ""
    if subject is None:
        subject = readable(raw_subject)
    if subject:
        ctx.add_text(subject, _child(prefix, "subject"), kind="subject")
    if len(raw_subject) > HEADER_DECODE_LIMIT:  # not decoded: held
        ctx.problem(_child(prefix, "subject"), "header too long to decode")
    _Walker(ctx, prefix).part(msg, ctx)


def _decode_forward(inner: list[Message], encoding: str) -> bytes | None:
    """The bytes of a forwarded message whose body was sent in a transfer encoding."""
    if len(inner) != 1 or not isinstance(inner[0], Message):
        return None
    try:
        encoded = inner[0].as_string() if inner[0].keys() else str(inner[0].get_payload())
        source = encoded.encode("ascii", "replace")
        if encoding == "base64":
            return binascii.a2b_base64(source)
        if encoding == "quoted-printable":
            return quopri.decodestring(source)
    except (binascii.Error, ValueError, TypeError, LookupError):
        return None
    return None  # x-uuencode and the like: not read, so held


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
        encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
        if encoding not in _IDENTITY_ENCODINGS:
            self.encoded_forward(inner, encoding, ctx, name, where)
            return
        for sub in inner:
            if isinstance(sub, Message):
                ctx.sink.attachments.append(Attachment(name, "message/rfc822",
                                                               len(str(sub))))
                walk_message(sub, ctx.deeper(), where)

    @staticmethod
    def encoded_forward(inner: list[Message], encoding: str, ctx: Context, name: str | None,
                        where: str) -> None:
        """A forwarded message sent base64 or quoted-printable (mail readers open it): the
        parser read the encoded text as a message; decode it and walk what it says. One
        that cannot be decoded is held."""
        data = _decode_forward(inner, encoding)
        if data is None:
            ctx.problem(where, "undecodable forwarded message")
            return
        ctx.sink.attachments.append(Attachment(name, "message/rfc822", len(data)))
        walk_message(parse(data), ctx.deeper(), where)

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
        charset = part_charset(part)
        if self.is_body(part, ctype, name):
            # A body stays a body if it is any kind of text (CSV or not: no need to tell
            # which), or anything else we do not read: text behind an image or audio
            # signature is still text. A document or archive is read as what it is.
            sniffed = sniff(payload, tabular=False)
            if sniffed in (*_BODY_TYPES, OCTET) or not extractors.reads(sniffed):
                if sniffed not in (*_BODY_TYPES, OCTET):  # what it looks like, recorded
                    ctx.sink.attachments.append(Attachment(None, sniffed, len(payload)))
                self.body(payload, ctx, ctype, charset)
                return
        extractors.extract_file(payload, ctx, self.leaf_location(name), filename=name,
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
        module = extractors.html if ctype == "text/html" else extractors.text
        extractors.run(module.TYPES[0], payload, ctx, where, charset)

    def leaf_location(self, name: str | None) -> str:
        return attachment_location(self.prefix, name or f"part {self.leaves}")


