"""The MIME walk: every part, forwarded mail, attached .eml, broken encodings, file names,
header facts, encrypted mail, garbage, and a Subject too long to decode."""

from __future__ import annotations

import base64
import quopri
from email.message import EmailMessage

import pytest

from tests.factories import (
    detectors,
    locations,
    message,
    raw_message,
    stepped_inspector,
    uninspectable_reasons,
    zip_of,
)


def test_nested_multiparts_reach_plain_and_html_bodies(inspector):
    msg = EmailMessage()
    msg["Subject"] = "hi"
    msg.set_content("Sam Lee was absent on Monday.")
    msg.add_alternative("<p>Alex Jones has a <b>504 plan</b>.</p>", subtype="html")
    outer = EmailMessage()
    outer["Subject"] = "outer"
    outer.make_mixed()
    outer.attach(msg)
    result = inspector.inspect(outer.as_bytes())
    assert locations(result, "student_name") == {"body", "body (html)"}


def test_forwarded_message_is_walked_with_its_own_locations(inspector):
    inner = EmailMessage()
    inner["Subject"] = "Sam Lee transcript"
    inner.set_content("SSN: 524-61-3378")
    outer = EmailMessage()
    outer["Subject"] = "Fwd"
    outer.set_content("fyi")
    outer.add_attachment(inner)
    result = inspector.inspect(outer.as_bytes())
    assert locations(result, "ssn") == {"forwarded message, body"}
    assert locations(result, "student_name") == {"forwarded message, subject"}


def test_attached_eml_is_recognised_by_content(inspector):
    inner = EmailMessage()
    inner["From"] = "a@example.org"
    inner["To"] = "b@example.org"
    inner["Subject"] = "old"
    inner.set_content("Student ID 600123 moved.")
    raw = message("see", attachments=[("fwd.eml", inner.as_bytes(), "application/octet-stream")])
    result = inspector.inspect(raw)
    assert locations(result, "student_number_format") == {"attachment fwd.eml/body"}


def test_broken_quoted_printable_and_base64_are_tolerated(inspector):
    qp = b"SSN: 524=2D61=2D3378 =ZZ broken=\r\n soft break\r\n"
    raw = raw_message("Subject: x\nContent-Type: text/plain\nContent-Transfer-Encoding: "
                      "quoted-printable\n", qp)
    assert "ssn" in detectors(inspector.inspect(raw))
    b64 = base64.b64encode(b"SSN 524-61-3378 ok").decode()
    raw = raw_message("Subject: x\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n",
                      f"{b64[:8]}*%$\r\n{b64[8:]}===\r\n".encode())
    result = inspector.inspect(raw)
    assert "ssn" in detectors(result) and result.complete


def test_rfc2047_and_rfc2231_file_names_are_decoded(inspector):
    body = (b'--b\r\nContent-Type: text/plain\r\n\r\nx\r\n'
            b'--b\r\nContent-Type: application/octet-stream; name="=?utf-8?B?w6lsw6h2ZXMuY3N2?="'
            b'\r\nContent-Disposition: attachment\r\n\r\na,b\r\n1,2\r\n'
            b"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment;"
            b" filename*=utf-8''not%C3%A9s.txt\r\n\r\nhello\r\n--b--\r\n")
    raw = raw_message('Subject: x\nMIME-Version: 1.0\n'
                      'Content-Type: multipart/mixed; boundary="b"\n', body)
    names = [a.filename for a in inspector.inspect(raw).attachments]
    assert names == ["élèves.csv", "notés.txt"]


def test_subject_and_header_facts(inspector):
    raw = raw_message("From: =?utf-8?q?Jane_Sm=C3=AFth?= <js@staff.example>\n"
                      "Subject: =?utf-8?B?U2FtIExlZSDigJMgYXR0ZW5kYW5jZQ==?=\nMessage-ID: <m1@x>\n"
                      "DKIM-Signature: v=1; a=rsa-sha256; d=x\nContent-Type: text/plain\n",
                      b"hello\r\n")
    result = inspector.inspect(raw)
    assert result.subject == "Sam Lee – attendance"
    assert (result.message_id, result.from_header) == ("<m1@x>", "Jane Smïth <js@staff.example>")
    assert result.has_dkim_signature
    assert locations(result, "record_category") == {"subject"}


def test_inline_pgp_and_smime_are_uninspectable(inspector):
    pgp = message("-----BEGIN PGP MESSAGE-----\nhQEMA5...\n-----END PGP MESSAGE-----\n")
    smime = raw_message("Subject: x\nContent-Type: application/pkcs7-mime; "
                        "smime-type=enveloped-data; name=smime.p7m\n"
                        "Content-Transfer-Encoding: base64\n",
                        b"MIAGCSqGSIb3DQEHA6CA\r\n")
    for raw in (pgp, smime):
        result = inspector.inspect(raw)
        assert detectors(result) == {"uninspectable"} and not result.complete


def test_garbage_is_never_an_exception(inspector):
    for raw in (b"", b"\x00\xff" * 100, b"Content-Type: multipart/mixed; boundary=\r\n\r\n--",
                b"Subject: =?utf-8?B?####?=\r\n\r\nx", b"\r\n" * 1000):
        result = inspector.inspect(raw)
        assert isinstance(result.findings, tuple)


def test_a_subject_of_a_million_encoded_words_is_held_not_decoded() -> None:
    # Found as: 1 MB of "=?utf-8?q?=FF=FE?=" words; the stdlib's decode_header is quadratic in
    # encoded words per line and took 22 s of CPU, beyond the reach of the time budget.
    subject = b" ".join([b"=?utf-8?q?=FF=FE?="] * 20_000)
    raw = b"Subject: " + subject + b"\r\nFrom: a@b.example\r\n\r\nhello\r\n"
    result = stepped_inspector(time_budget=60).inspect(raw)
    assert not result.complete
    assert any(f.location == "subject (header too long to decode)" for f in result.findings)
    short = b"Subject: =?utf-8?q?Student_ID_482913?=\r\n\r\nhello\r\n"
    assert "student_number" in {f.detector for f in stepped_inspector(60).inspect(short).findings}


RECORD = b"Student ID 482913, Alex Jones, grades: F in Algebra; IEP review pending.\r\n"
FORWARDED = b"From: a@example.org\r\nSubject: grades\r\n\r\n" + RECORD


def _forward(encoding: bytes, body: bytes) -> bytes:
    return raw_message("Content-Type: multipart/mixed; boundary=BB\n",
                       b"--BB\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
                       b"--BB\r\nContent-Type: message/rfc822\r\n"
                       b"Content-Transfer-Encoding: " + encoding + b"\r\n\r\n" + body +
                       b"\r\n--BB--\r\n")


@pytest.mark.parametrize(("encoding", "body"), [
    (b"base64", base64.encodebytes(FORWARDED).replace(b"\n", b"\r\n")),
    (b"quoted-printable", quopri.encodestring(FORWARDED)),
])
def test_a_forwarded_message_in_a_transfer_encoding_is_decoded_and_walked(
        inspector, encoding, body):
    result = inspector.inspect(_forward(encoding, body))
    assert {"student_number", "student_name"} <= detectors(result)
    assert locations(result, "student_number") == {"forwarded message, body"}
    assert result.complete


def test_a_forwarded_message_in_an_encoding_we_do_not_read_is_held(inspector):
    result = inspector.inspect(_forward(b"x-uuencode", b"begin 644 m.eml\r\n`\r\nend"))
    assert not result.complete
    assert uninspectable_reasons(result) == {"undecodable forwarded message"}


@pytest.mark.parametrize("prefix", [b"GIF89a ", b"ID3 ", b"\xff\xfb\x90 ", b"\x89PNG\r\n\x1a\n"])
def test_text_behind_an_image_or_audio_signature_is_read_as_text(inspector, prefix):
    body = raw_message("Content-Type: text/plain\n", prefix + RECORD)
    attached = message("hi", attachments=[("notes.txt", prefix + RECORD, "text/plain")])
    for raw, where in ((body, "body"), (attached, "attachment notes.txt")):
        result = inspector.inspect(raw)
        assert locations(result, "student_number") == {where}, prefix
        assert "record_category" in detectors(result)


def test_a_disguised_archive_in_a_text_body_is_still_opened(inspector):
    roster = zip_of([("r.csv", b"Student ID,Name\r\n482913,Alex Jones\r\n")])
    result = inspector.inspect(raw_message("Content-Type: text/plain\n", roster))
    assert any(loc.endswith("/r.csv") for loc in locations(result, "student_number"))
