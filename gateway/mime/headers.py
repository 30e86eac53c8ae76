"""Header facts and header decoding: RFC 2047 words, RFC 2231 parameters, raw 8-bit text.

We do our own header decoding (RFC 2047, raw UTF-8 in headers) on a compat32 tree: it never
raises on malformed headers, and the stdlib's decoder is quadratic on hostile input (see
HEADER_DECODE_LIMIT).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from email.header import decode_header
from email.message import Message

from gateway.mime import params as mimeparams
from gateway.mime.charset import decode


@dataclass(frozen=True, slots=True)
class Headers:
    """The few top-level header facts the policy needs."""

    subject: str = ""
    message_id: str | None = None
    from_header: str | None = None
    has_dkim_signature: bool = False
    reply_to: str | None = None


_FACTS = frozenset({"subject", "message-id", "from", "reply-to"})


def headers(msg: Message) -> Headers:
    # One pass over the header fields for all five facts (the first of each name counts):
    # asking for each by name walked every field five times, for every message.
    found: dict[str, str] = {}
    dkim = False
    for key, value in msg.raw_items():
        key = key.lower()
        if key in _FACTS:
            found.setdefault(key, value)
        elif key == "dkim-signature":
            dkim = True

    def text(name: str) -> str:
        raw = found.get(name)
        return readable(_as_text(raw)) if raw is not None else ""

    return Headers(text("subject"), text("message-id").strip() or None,
                   text("from") or None, dkim, text("reply-to") or None)


# The stdlib's decode_header is quadratic in the encoded words on one line (1 MB of them took
# 22 s of CPU, out of reach of the time budget). Longer values are not decoded: their text is
# read raw, and a Subject that long makes the message uninspectable (see walk_message).
HEADER_DECODE_LIMIT = 16 * 1024


def header_text(msg: Message, name: str) -> str:
    """A header as readable text: RFC 2047 words decoded, raw 8-bit read as UTF-8."""
    return readable(raw_value(msg, name) or "")


def raw_value(msg: Message, name: str) -> str | None:
    name = name.lower()
    raw = next((v for k, v in msg.raw_items() if k.lower() == name), None)
    return None if raw is None else _as_text(raw)


def _as_text(raw: object) -> str:
    """A raw header value with its undecodable 8-bit bytes read as UTF-8."""
    return str(raw).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def readable(value: str) -> str:
    if len(value) > HEADER_DECODE_LIMIT or "=?" not in value:
        # No encoded word can start without "=?": decode_header would return the value.
        return " ".join(value.split())
    try:
        chunks = decode_header(value)
    except Exception:  # malformed encoded words: keep the raw text
        return " ".join(value.split())
    text = "".join(c if isinstance(c, str) else decode(c, cs) for c, cs in chunks)
    return " ".join(text.split())


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


def charset(part: Message) -> str | None:
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

