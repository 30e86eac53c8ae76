"""A faster route to the exact message tree `BytesParser(policy=compat32)` builds.

Why: the stdlib's FeedParser reads every body line through a Python-level line buffer that also
checks each line against the enclosing multipart boundaries. For mail with a base64 attachment
that was the largest single cost of inspection (15–40 % of it). Here each header block is read
by FeedParser's own rules (`_header_fields`), a single-part body becomes its payload in one
slice, and a multipart body is cut at its boundary lines found by `str.find`.

Exactness is the rule, not an aim: anything whose parse would not be the plain case (a defect
of any kind, bare CR line ends, message/* parts, multipart/digest, a missing or doubled boundary,
a part without a clean header block) makes `parse_fast` return None, and the caller uses the
stdlib parser on the whole message. tests/mime/test_parse.py compares both trees over
thousands of generated and mutated messages.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from itertools import pairwise

from gateway.mime import params as mimeparams

_PLAIN_CTE = ("7bit", "8bit", "binary")


def parse(raw: bytes) -> Message:
    """The message tree, exactly as `BytesParser(policy=compat32)` builds it; faster for the
    plain shapes most mail has (`parse_fast`)."""
    msg = parse_fast(raw)
    return msg if msg is not None else BytesParser(policy=compat32).parsebytes(raw)
_FIELD_NAME = re.compile(r"[\041-\071\073-\176]+")  # email.feedparser.headerRE


class _NotPlain(Exception):
    """The message needs the stdlib parser (a defect, or a shape not handled here)."""


def parse_fast(raw: bytes) -> Message | None:
    """The same tree as the stdlib parser, or None when this message must go through it."""
    if raw.count(b"\r") != raw.count(b"\r\n"):
        return None  # a bare CR ends a line for the stdlib but not for the regexes below
    try:
        return _message(raw.decode("ascii", "surrogateescape"))
    except _NotPlain:
        return None


_MAX_DEPTH = 60  # nested multiparts; deeper goes to the stdlib (this recursion uses 2 frames
#                  a level, the stdlib's fewer: it parses a depth of 500 this would not reach)


def _message(text: str, *, before_boundary: bool = False, depth: int = 0) -> Message:
    """One message or part; `before_boundary`: a boundary line follows `text` (RFC 2046: the
    line end before it belongs to the boundary, so the payload or epilogue loses one)."""
    split = _header_end(text)
    if not split or depth > _MAX_DEPTH:
        raise _NotPlain
    msg = Message(policy=compat32)
    for name, value in _header_fields(text[:split]):
        msg.set_raw(name, value)
    maintype = msg.get_content_maintype()
    if maintype == "message":
        raise _NotPlain
    if maintype == "multipart":
        _multipart(msg, text[split:], depth)
        if before_boundary:  # FeedParser: an empty epilogue becomes None (not one emptied)
            msg.epilogue = None if msg.epilogue == "" else _without_final_eol(msg.epilogue)
    else:
        body = text[split:]
        msg.set_payload(_without_final_eol(body) if before_boundary else body)
    return msg


def _header_fields(block: str) -> list[tuple[str, str]]:
    """(name, value) pairs as FeedParser and compat32's `header_source_parse` make them.

    `block` runs to its blank line. Only lines FeedParser would file the ordinary way are
    accepted: `Name: value` with a name of printable ASCII other than the colon, or a folded
    continuation. A Unix From line, a first line that is a continuation, an empty name, or any
    other line (where the stdlib would start the body early and note a defect) is not plain.
    """
    fields: list[tuple[str, str]] = []
    name, pieces = "", []  # the header being read and its source lines
    for line in block.split("\n")[:-2]:  # not the blank line, nor the "" after its "\n"
        if line[:1] in (" ", "\t"):
            if not name:
                raise _NotPlain
            pieces.append(line + "\n")
            continue
        if name:
            fields.append((name, "".join(pieces).rstrip("\r\n")))
        name, colon, value = line.partition(":")
        if not colon or not _FIELD_NAME.fullmatch(name):
            raise _NotPlain
        pieces = [value.lstrip(" \t") + "\n"]
    if name:
        fields.append((name, "".join(pieces).rstrip("\r\n")))
    return fields


def _header_end(text: str) -> int:
    """Offset just past the blank line that ends the header block; 0 when not plainly there."""
    crlf = text.find("\r\n\r\n")
    lf = text.find("\n\n", 0, crlf if crlf >= 0 else len(text))  # only an earlier one matters
    if lf < 0:
        return crlf + 4 if crlf > 0 else 0
    return lf + 2 if lf > 0 and "\r" not in text[:lf] else 0


def _multipart(msg: Message, body: str, depth: int) -> None:
    """Parts, preamble and epilogue as FeedParser sets them for a well-formed multipart."""
    boundary = mimeparams.boundary(msg)
    cte = str(msg.get("content-transfer-encoding", "8bit")).lower()
    if boundary is None or cte not in _PLAIN_CTE or msg.get_content_subtype() == "digest":
        raise _NotPlain
    if "\n" in boundary or "\r" in boundary:
        raise _NotPlain  # FeedParser compares line by line: such a boundary never matches
    # FeedParser's boundary line: the separator, "--" if closing, blanks, the line end. Matched
    # with the "\n" before it, a literal the regex engine can skip to (with "^" and MULTILINE,
    # or a look-behind, it tries every position: 25x slower), so the body gets a "\n" in
    # front. The line end is only looked at, so the next boundary line can use it.
    body = "\n" + body
    found = boundary_lines(body, boundary)
    if not found or found[0][2]:
        raise _NotPlain  # no opening boundary: the stdlib records a defect
    if not found[-1][2]:
        raise _NotPlain  # no closing boundary: a defect
    # (where the boundary line starts, where the next line starts)
    lines = [(start + 1, end + _eol_length(body, end)) for start, end, _ in found]
    if lines[0][0] > 1:
        msg.preamble = _without_final_eol(body[1:lines[0][0]])
    parts = []
    for (_, part_start), (part_end, _) in pairwise(lines):
        if part_end == part_start:
            raise _NotPlain  # doubled boundary lines: FeedParser skips them specially
        parts.append(_message(body[part_start:part_end], before_boundary=True, depth=depth + 1))
    msg.set_payload(parts)
    msg.epilogue = body[lines[-1][1]:]


def boundary_lines(body: str, boundary: str) -> list[tuple[int, int, bool]]:
    """(start, end, closing) of each boundary line up to the first closing one: what
    `re.finditer(rf"\\n--{re.escape(boundary)}(--)?[ \\t]*(?=\\r\\n|\\n|\\Z)", body)` finds, from
    the "\\n" before it to its line end (not included).

    By str.find, not that regex: every message has a boundary of its own, so the regex would
    be compiled for every multipart message (about 0.1-0.2 ms each, more than the search)
    and would churn the `re` module's cache."""
    marker = "\n--" + boundary
    size = len(body)
    found: list[tuple[int, int, bool]] = []
    at = body.find(marker)
    while at >= 0:
        end = at + len(marker)
        closing = body.startswith("--", end)
        if closing:
            end += 2
        while end < size and body[end] in " \t":
            end += 1
        if end == size or body[end] == "\n" or body.startswith("\r\n", end):
            found.append((at, end, closing))
            if closing:
                break
            at = body.find(marker, end)
        else:  # not a boundary line (a longer word, or text after it): look further on
            at = body.find(marker, at + 1)
    return found


def _eol_length(text: str, at: int) -> int:
    return 2 if text.startswith("\r\n", at) else 1 if text.startswith("\n", at) else 0


def _without_final_eol(text: str) -> str:
    """What FeedParser's `NLCRE_eol` strip leaves (its regex tries every position: slow)."""
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith(("\n", "\r")) else text
