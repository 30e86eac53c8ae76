"""`mime.parse` skips the stdlib's line-by-line body reader for single-part mail.

The short cut must build exactly what `BytesParser(policy=compat32)` builds, for every way the
header block can end (CRLF, LF, CR, none, a non-header line, continuation lines, a Unix From
line) and for multipart and message types, which always take the full parser.
"""

from __future__ import annotations

import itertools
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from gateway import mime

HEADER_LINES = (b"Subject: hello", b"X-Folded: one\r\n two", b"not a header line",
                b"From someone@example.org", b"Content-Type: text/plain; charset=utf-8",
                b"Content-Type: multipart/mixed; boundary=b", b"Content-Type: message/rfc822",
                b"Content-Type: application/pdf", b"Subject: caf\xc3\xa9")
ENDS = (b"\r\n", b"\n", b"\r")
BODIES = (b"", b"body text\r\n", b"\r\nleading blank\r\n", b"--b\r\nX: y\r\n\r\npart\r\n--b--\r\n",
          b"Subject: inner\r\n\r\ninner body\r\n", b"8bit \xff\xfe body\n")


def shape(msg: Message) -> tuple[object, ...]:
    payload = msg.get_payload()
    if isinstance(payload, list):
        payload = [shape(p) for p in payload]
    return (list(msg.raw_items()), payload, [type(d) for d in msg.defects],
            msg.get_unixfrom(), msg.get_content_type(), msg.is_multipart())


def cases() -> list[bytes]:
    out = []
    for n in (0, 1, 2):
        for lines in itertools.product(HEADER_LINES, repeat=n):
            for end, blank in itertools.product(ENDS, ENDS):
                for body in BODIES:
                    head = b"".join(line + end for line in lines)
                    out.append(head + blank + body)
                    out.append(head + body)  # no blank line at all
    return out


def test_short_cut_builds_what_the_stdlib_builds() -> None:
    checked = 0
    for raw in cases():
        full = BytesParser(policy=compat32).parsebytes(raw)
        assert shape(mime.parse(raw)) == shape(full), raw
        checked += 1
    assert checked > 2000


def test_short_cut_is_taken_for_plain_mail_and_not_for_multipart() -> None:
    plain = b"Subject: x\r\nContent-Type: text/plain\r\n\r\n" + b"line\r\n" * 1000
    assert mime._header_end(plain) == plain.index(b"\r\n\r\n") + 4
    assert mime.parse(plain).get_payload() == "line\r\n" * 1000
    multipart = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n"
    assert mime.parse(multipart).is_multipart()
