"""`gateway.mime.params` must read header parameters exactly as the stdlib's Message does.

Header values are generated from the pieces that change how `email.message` splits, unquotes
and decodes parameters (quotes, semicolons inside quotes, RFC 2231 names, quoted pairs, angle
brackets, blanks, repeated and empty parameters, 8-bit bytes), and each lookup is compared with
`get_boundary`, `get_filename() or get_param("name")` and `get_content_charset`.
"""

from __future__ import annotations

import random
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from gateway.mime import params as mimeparams

TYPES = ("multipart/mixed", "text/plain", "application/pdf", "", "boundary=first",
         "attachment", "inline", "TEXT/Plain ")
NAMES = ("boundary", "Boundary", "filename", "FILENAME", "name", "charset", "Charset",
         "filename*", "name*0", "name*1*", "charset*", "x-other", "", "nam e")
VALUES = ('abc', '"abc"', '"a;b"', '"a b "', "<abc>", '"<abc>"', "", '""', '"', 'a"b',
          '"a\\"b"', "a\\b", "utf-8", "UTF-8", "iso-8859-1''%41%42", "us-ascii'en'x",
          " spaced ", '"=?utf-8?q?caf=C3=A9?="', "caf\xc3\xa9", '"x;y";z', "'q'", "a=b")
SEPARATORS = (";", "; ", ";;", " ;", ";\r\n ", "; ;")


def header_values(rng: random.Random, count: int) -> list[bytes]:
    out = []
    for _ in range(count):
        text = rng.choice(TYPES)
        for _ in range(rng.randint(0, 4)):
            pair = rng.choice(NAMES)
            if rng.random() < 0.9:
                pair += rng.choice(("=", " = ", "="))
                pair += rng.choice(VALUES)
            text += rng.choice(SEPARATORS) + pair
        out.append(text.encode("latin-1"))
    return out


def message(content_type: bytes, disposition: bytes | None) -> Message:
    raw = b"Content-Type: " + content_type + b"\r\n"
    if disposition is not None:
        raw += b"Content-Disposition: " + disposition + b"\r\n"
    return BytesParser(policy=compat32).parsebytes(raw + b"\r\nbody\r\n")


def stdlib(msg: Message) -> tuple[object, object, object]:
    def attempt(call):  # the stdlib can raise on odd RFC 2231 input; so may we, identically
        try:
            return call()
        except Exception as exc:
            return type(exc)
    return (attempt(msg.get_boundary),
            attempt(lambda: msg.get_filename() or msg.get_param("name")),
            attempt(msg.get_content_charset))


def ours(msg: Message) -> tuple[object, object, object]:
    def attempt(call):
        try:
            return call()
        except Exception as exc:
            return type(exc)
    return (attempt(lambda: mimeparams.boundary(msg)),
            attempt(lambda: mimeparams.filename(msg)),
            attempt(lambda: mimeparams.content_charset(msg)))


def test_parameters_match_the_stdlib() -> None:
    rng = random.Random(2231)
    types = header_values(rng, 4000)
    dispositions = header_values(rng, 4000)
    fast = 0
    for content_type, disposition in zip(types, dispositions, strict=True):
        for disp in (disposition, None):
            msg = message(content_type, disp)
            assert ours(msg) == stdlib(msg), (content_type, disp)
            fast += mimeparams._param(msg, "boundary", "content-type") is not mimeparams._STDLIB
    assert fast > 2000  # most generated headers took the short cut, not the stdlib


def test_plain_headers_take_the_short_cut() -> None:
    msg = message(b'multipart/mixed; boundary="===b=="; charset=UTF-8',
                  b'attachment; filename="roster.csv"')
    assert mimeparams._param(msg, "boundary", "content-type") == "===b=="
    assert (mimeparams.boundary(msg), mimeparams.filename(msg),
            mimeparams.content_charset(msg)) == ("===b==", "roster.csv", "utf-8")


def test_rfc2231_and_quoted_pairs_go_to_the_stdlib() -> None:
    msg = message(b"text/plain; name*=utf-8''caf%C3%A9.txt", None)
    assert mimeparams._param(msg, "name", "content-type") is mimeparams._STDLIB
    assert mimeparams.filename(msg) == msg.get_filename() or msg.get_param("name")
    msg = message(b'text/plain; name="a\\"b.txt"', None)
    assert mimeparams._param(msg, "name", "content-type") is mimeparams._STDLIB
    assert mimeparams.filename(msg) == 'a"b.txt'
