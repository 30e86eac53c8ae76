"""Messages and forwarded messages (`message/rfc822` parts, attached `.eml` files): every
MIME part walked into text-bearing parts, with limits.

Walking a message is this format's extractor: a forwarded message inside a ZIP inside a
message is read the same way as the outer one, one level deeper, with its own subject and body
locations. Every leaf goes through `gateway.extract.extract_file`, which sniffs the real file
type. The walk is our own (the stdlib's is recursive and has no limits).
"""

from __future__ import annotations

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
        charset = part_charset(part)
        # A body stays a body if it is any kind of text (CSV or not): no need to tell which.
        if (self.is_body(part, ctype, name)
                and sniff(payload, tabular=False) in (*_BODY_TYPES, OCTET)):
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


