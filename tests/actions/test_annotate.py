"""annotate(): notices on top of the plain and HTML bodies, MIME structure and charsets kept;
a body that cannot be rebuilt (found by fuzzing) falls back to headers only."""

from __future__ import annotations

from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from gateway.actions.annotate import annotate, split_head
from gateway.model import Annotation

NOTICE = "NOTICE: reply only to alex@students.d230.example"
ANN = Annotation((("X-District-Policy", "P5; annotate"),), None, NOTICE)
TAG = Annotation((("X-District-Policy", "P13; annotate"),), "[UNVERIFIED]", "CAUTION: unverified")


def _parse(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=email_policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _alternative() -> bytes:
    msg = EmailMessage()
    msg["From"] = "a@gmail.example"
    msg["To"] = "jsmith@staff.d230.example"
    msg["Subject"] = "homework"
    msg.set_content("Hello Ms Smith,\nhere is my essay.\n")
    msg.add_alternative("<html><body class='x'><p>Hello Ms Smith</p></body></html>",
                        subtype="html")
    msg.add_attachment(b"%PDF-1.4 binary\x00\xff", maintype="application", subtype="pdf",
                       filename="essay.pdf")
    return msg.as_bytes()


def test_multipart_alternative_gets_notice_in_both_bodies() -> None:
    raw = _alternative()
    out = _parse(annotate(raw, [ANN], body_notice=True))
    assert out["X-District-Policy"] == "P5; annotate"
    plain = out.get_body(("plain",))
    html = out.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().startswith(NOTICE)
    assert "Hello Ms Smith,\nhere is my essay." in plain.get_content()
    html_text = html.get_content()
    assert html_text.index("<body class='x'>") < html_text.index("NOTICE") < \
        html_text.index("<p>Hello")
    (att,) = list(out.iter_attachments())
    assert att.get_content() == b"%PDF-1.4 binary\x00\xff"
    assert [p.get_content_type() for p in out.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html",
        "application/pdf"]


def test_html_only_message() -> None:
    msg = MIMEText("<p>Salut</p>", "html", "utf-8")
    msg["Subject"] = "x"
    out = _parse(annotate(msg.as_bytes(), [ANN], body_notice=True))
    body = out.get_body(("html",))
    assert body is not None
    text = body.get_content()
    assert text.startswith("<div") and "NOTICE: reply only to" in text
    assert text.endswith("<p>Salut</p>")


def test_latin1_quoted_printable_keeps_its_charset() -> None:
    msg = MIMEText("Le café est fermé.\n", "plain", "iso-8859-1")
    msg["Subject"] = "caf"
    raw = msg.as_bytes()
    out = _parse(annotate(raw, [ANN], body_notice=True))
    assert out.get_content_charset() == "iso-8859-1"
    assert out.get_content().endswith("Le café est fermé.\n")
    assert out.get_content().startswith(NOTICE)


def test_notice_the_charset_cannot_carry_switches_the_part_to_utf8() -> None:
    msg = MIMEText("Le café.\n", "plain", "iso-8859-1")
    ann = Annotation((), None, "Reply to Łukasz Żółw at his District account")
    out = _parse(annotate(msg.as_bytes(), [ann], body_notice=True))
    assert out.get_content_charset() == "utf-8"
    assert out.get_content().startswith("Reply to Łukasz Żółw")
    assert "Le café." in out.get_content()


def test_html_in_a_narrow_charset_uses_character_references() -> None:
    msg = MIMEText("<html><body><p>caf\xe9</p></body></html>", "html", "iso-8859-1")
    ann = Annotation((), None, "Łukasz")
    out = _parse(annotate(msg.as_bytes(), [ann], body_notice=True))
    assert out.get_content_charset() == "iso-8859-1"
    text = out.get_content()
    assert "&#321;ukasz" in text and "café" in text


def test_base64_part_round_trips() -> None:
    msg = MIMEMultipart()
    part = MIMEText("Grüße aus der Schule\n", "plain", "utf-8")  # utf-8 → base64
    msg.attach(part)
    out = _parse(annotate(msg.as_bytes(), [ANN], body_notice=True))
    (body,) = [p for p in out.walk() if p.get_content_type() == "text/plain"]
    assert body["Content-Transfer-Encoding"] == "base64"
    assert body.get_content().endswith("Grüße aus der Schule\n")


def test_headers_only_leaves_body_and_subject_bytes_untouched() -> None:
    raw = _alternative().replace(b"\n", b"\r\n")
    raw = b"DKIM-Signature: v=1; a=rsa-sha256; d=gmail.example; b=abc\r\n" + raw
    out = annotate(raw, [ANN, TAG], body_notice=False)
    assert split_head(out)[2] == split_head(raw)[2]
    head = split_head(out)[0]
    assert b"X-District-Policy: P5; annotate\r\n" in head
    assert b"X-District-Policy: P13; annotate\r\n" in head
    assert b"Subject: homework\r\n" in head
    assert b"\n" not in head.replace(b"\r\n", b"")


def test_crlf_message_stays_crlf() -> None:
    raw = _alternative().replace(b"\n", b"\r\n")
    out = annotate(raw, [ANN], body_notice=True)
    assert b"\n" not in out.replace(b"\r\n", b"")
    assert _parse(out).get_body(("plain",)).get_content().startswith(NOTICE)


SUBJECTS = [
    (b"Subject: lunch\n", "[UNVERIFIED] lunch"),
    (b"Subject: Re: [UNVERIFIED] lunch\n", "Re: [UNVERIFIED] lunch"),
    (b"Subject: =?utf-8?q?=5BUNVERIFIED=5D_caf=C3=A9?=\n", "[UNVERIFIED] café"),
    (b"", "[UNVERIFIED]"),
]


def test_subject_tag_added_once() -> None:
    for header, expected in SUBJECTS:
        raw = b"From: x@y.example\n" + header + b"\nbody\n"
        out = _parse(annotate(raw, [TAG, TAG], body_notice=True))
        assert out["Subject"] == expected


def test_spoofed_policy_headers_are_replaced() -> None:
    raw = b"From: x@y.example\nX-District-Policy: none; relay\nSubject: s\n\nbody\n"
    out = _parse(annotate(raw, [ANN], body_notice=False))
    assert out.get_all("X-District-Policy") == ["P5; annotate"]


def test_forwarded_message_inside_is_not_annotated() -> None:
    inner = MIMEText("inner text\n")
    outer = MIMEMultipart()
    outer.attach(MIMEText("outer text\n"))
    fwd = MIMEBase("message", "rfc822")
    fwd.set_payload([inner])
    outer.attach(fwd)
    out = _parse(annotate(outer.as_bytes(), [ANN], body_notice=True))
    texts = [p for p in out.walk() if p.get_content_type() == "text/plain"]
    assert texts[0].get_content().startswith(NOTICE)
    assert texts[1].get_content() == "inner text\n"


def test_several_notices_combine_and_no_annotations_is_identity() -> None:
    raw = _alternative()
    assert annotate(raw, [], body_notice=True) == raw
    out = _parse(annotate(raw, [ANN, TAG], body_notice=True))
    plain = out.get_body(("plain",))
    assert isinstance(plain, Message)
    text = plain.get_content()
    assert text.index(NOTICE) < text.index("CAUTION: unverified") < text.index("Hello")


# --- inputs found by fuzzing (bench/fuzz_inspect.py) ---------------------------------------
_ANNOTATION = (Annotation(headers=(("X-Policy", "P5"),), subject_tag="[EXT]",
                          notice="From outside."),)


@pytest.mark.parametrize("raw", [
    # a charset the codec machinery accepts but cannot decode with: UnicodeError, not
    # UnicodeDecodeError (idna: "label empty")
    b"Subject: hi\nContent-Type: text/plain; charset=idna\n\na..b\n",
    # nesting deeper than the email generator's recursion: RecursionError
    b"Subject: hi\n" + b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n'
                                % (i, i) for i in range(1200))
    + b"Content-Type: text/plain\n\nx\n",
])
def test_annotate_falls_back_to_headers_when_the_body_cannot_be_rebuilt(raw: bytes) -> None:
    out = annotate(raw, _ANNOTATION, body_notice=True)
    head, _, body = out.partition(b"\n\n")
    assert b"X-Policy: P5" in head and b"Subject: [EXT] hi" in head
    assert body == raw.partition(b"\n\n")[2]  # body untouched, no half-written notice


def test_annotate_subject_with_an_unknown_encoded_word_charset() -> None:
    raw = b"Subject: =?u\xfff-8?q?x?=\nContent-Type: text/plain\n\nbody\n"  # was CharsetError
    out = annotate(raw, _ANNOTATION, body_notice=True)
    assert b"Subject: [EXT] =?u\xfff-8?q?x?=" in out and b"From outside." in out
