"""Properties of the message walk over generated MIME trees (Hypothesis): student data in any
text part, under any transfer encoding, charset, nesting or leading bytes, is found or the
message is held as incomplete; and inspection never raises.

Short by default; `HYPOTHESIS_PROFILE=long` runs many more (profiles in tests/conftest.py).
"""

from __future__ import annotations

import base64
import quopri

from hypothesis import given
from hypothesis import strategies as st

from gateway.inspect import Inspector
from gateway.model import Inspection
from tests.factories import make_inspector

RECORD = "Student ID 482913, Alex Jones: IEP review pending."
INSPECTOR: Inspector = make_inspector()

prose = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                max_size=200)
charsets = st.sampled_from(["utf-8", "iso-8859-1", "utf-16", "windows-1252", "us-ascii"])
encodings = st.sampled_from(["7bit", "8bit", "base64", "quoted-printable"])
prefixes = st.sampled_from([b"", b"GIF89a ", b"ID3 ", b"\xff\xfb\x90 ", b"\x89PNG\r\n\x1a\n"])
kinds = st.sampled_from(["plain", "html", "attachment"])


def _encoded(data: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.encodebytes(data).replace(b"\n", b"\r\n")
    if encoding == "quoted-printable":
        return quopri.encodestring(data.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@st.composite
def text_part(draw: st.DrawFn, carries_record: bool) -> tuple[bytes, bool]:
    """One leaf part; True when it carries the record in a form a reader would see."""
    text = draw(prose) + (" " + RECORD + " " if carries_record else " ") + draw(prose)
    charset = draw(charsets)
    if charset == "us-ascii" or charset == "iso-8859-1":
        text = text.encode(charset, "replace").decode(charset)
    kind = draw(kinds)
    encoding = draw(encodings)
    if encoding in ("7bit", "8bit") and charset == "utf-16":
        encoding = "base64"  # UTF-16 has NUL bytes: no mail client sends it unencoded
    body = text.encode(charset, "replace")
    if kind == "html":
        body = b"<html><body><p>" + body.replace(b"<", b" ") + b"</p></body></html>"
        if charset == "utf-16":
            body = ("<html><body><p>" + text.replace("<", " ") + "</p></body></html>"
                    ).encode("utf-16")
    if kind != "html" and charset != "utf-16":
        body = draw(prefixes) + body
    ctype = "text/html" if kind == "html" else "text/plain"
    disposition = ('Content-Disposition: attachment; filename="notes.txt"\r\n'
                   if kind == "attachment" else "")
    head = (f"Content-Type: {ctype}; charset={charset}\r\n{disposition}"
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n").encode()
    return head + _encoded(body, encoding), carries_record


@st.composite
def tree(draw: st.DrawFn, depth: int = 0) -> tuple[bytes, bool]:
    """A part: a leaf, a multipart of parts, or a forwarded message in a transfer encoding."""
    shape = draw(st.sampled_from(["leaf", "multipart", "forwarded"] if depth < 3 else ["leaf"]))
    if shape == "leaf":
        return draw(text_part(draw(st.booleans())))
    if shape == "forwarded":
        inner, found = draw(tree(depth + 1))
        message = b"From: a@example.org\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n" + inner
        encoding = draw(st.sampled_from(["7bit", "base64", "quoted-printable"]))
        head = f"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
        return head.encode() + _encoded(message, encoding), found
    children = draw(st.lists(tree(depth + 1), min_size=1, max_size=3))
    boundary = f"b{depth}{draw(st.integers(0, 10**6))}"
    subtype = draw(st.sampled_from(["mixed", "alternative", "related"]))
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part, _ in children)
    body += b"--" + boundary.encode() + b"--\r\n"
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
    return head + body, any(found for _, found in children)


@given(tree())
def test_a_record_in_any_text_part_is_found_or_the_message_is_held(part) -> None:
    content, carries_record = part
    raw = b"From: t@staff.example.org\r\nSubject: note\r\nMIME-Version: 1.0\r\n" + content
    result = INSPECTOR.inspect(raw)
    assert isinstance(result, Inspection)
    found = {f.detector for f in result.findings}
    if carries_record:
        assert "student_number" in found or not result.complete, raw[:600]


@given(st.binary(max_size=3000), st.sampled_from([b"", b"Content-Type: multipart/mixed; "
                                                   b"boundary=x\r\n\r\n--x\r\n"]))
def test_inspection_never_raises_on_arbitrary_bytes(data: bytes, head: bytes) -> None:
    result = INSPECTOR.inspect(head + data)
    assert isinstance(result, Inspection)
