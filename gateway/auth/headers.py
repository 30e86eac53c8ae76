"""The header side of authentication: our `Authentication-Results:` (RFC 8601) on top, and
what arrived from outside claiming to be ours taken away first.

Bytes in, bytes out, on the raw header block: the body and every other header stay exactly
as received, so signatures over them still verify downstream.
"""

from __future__ import annotations

import re

from gateway.model import AuthResults

GATEWAY_HEADER_PREFIX = b"x-district-"
# An RFC 8601 authserv-id: the first token of the value, after any comment.
_AUTHSERV = re.compile(rb"^\s*(?:\([^)]*\)\s*)*([^\s;()]+)")
_VALUE_SAFE = re.compile(r"[^\x21-\x7e]")


def strip_forged(content: bytes, authserv_id: str) -> bytes:
    """`content` without the Authentication-Results headers under our authserv-id and without
    any X-District-* header: from outside, they are forgeries of our own verdicts."""
    head_end, sep = _head_end(content)
    if head_end < 0:
        return content
    ours = authserv_id.lower().encode("ascii")
    kept: list[bytes] = []
    dropped = False
    for field in _fields(content[:head_end], sep):
        name, _, value = field.partition(b":")
        lowered = name.strip().lower()
        if lowered.startswith(GATEWAY_HEADER_PREFIX) or (
                lowered == b"authentication-results" and _authserv(value) == ours):
            dropped = True
            continue
        kept.append(field)
    if not dropped:
        return content
    return b"".join(f + sep for f in kept) + content[head_end:]


def _authserv(value: bytes) -> bytes:
    match = _AUTHSERV.match(value.replace(b"\r\n", b" ").replace(b"\n", b" "))
    return match.group(1).lower() if match else b""


def _head_end(content: bytes) -> tuple[int, bytes]:
    """Offset just past the header block's last line ending, and that line ending."""
    crlf = content.find(b"\r\n\r\n")
    if crlf != -1:
        return crlf + 2, b"\r\n"
    lf = content.find(b"\n\n")
    return (lf + 1, b"\n") if lf != -1 else (-1, b"\r\n")


def _fields(head: bytes, sep: bytes) -> list[bytes]:
    fields: list[bytes] = []
    for line in head.split(sep)[:-1]:
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += sep + line
        else:
            fields.append(line)
    return fields


def authentication_results(authserv_id: str, results: AuthResults) -> bytes:
    """Our Authentication-Results header field, folded, with CRLF."""
    parts = [authserv_id]
    for check in results.checks:
        item = f"{check.method}={check.result}"
        if check.reason:
            item += f" ({_comment(check.reason)})"
        for ptype, value in check.properties:
            item += f" {ptype}={_value(value)}"
        parts.append(item)
    if len(parts) == 1:
        parts.append("none")
    return ("Authentication-Results: " + ";\r\n\t".join(parts) + "\r\n").encode("ascii",
                                                                                 "replace")


def _comment(text: str) -> str:
    return re.sub(r"[()\\\r\n]", " ", text).encode("ascii", "replace").decode("ascii")[:200]


def _value(value: str) -> str:
    """A property value: a token as it is, anything else quoted (RFC 8601 2.2)."""
    value = value.encode("idna").decode("ascii") if not value.isascii() else value
    if value and not _VALUE_SAFE.search(value) and not any(c in value for c in '();"\\'):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace(
        "\n", " ") + '"'


def with_results(content: bytes, authserv_id: str, results: AuthResults) -> bytes:
    """The message with forged headers removed and our results on top."""
    return authentication_results(authserv_id, results) + strip_forged(content, authserv_id)
