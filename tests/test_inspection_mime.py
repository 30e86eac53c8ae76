"""The MIME walk: every part, forwarded mail, charsets, broken encodings, names, HTML."""

from __future__ import annotations

import base64
from email.message import EmailMessage

import pytest

from tests.inspection_helpers import by_detector, detectors, make_inspector, message, xlsx


@pytest.fixture(scope="module")
def inspector():
    return make_inspector()


def _raw(headers: str, body: bytes) -> bytes:
    return headers.replace("\n", "\r\n").encode() + b"\r\n" + body


def locations(result, detector):
    return {f.location for f in by_detector(result).get(detector, [])}


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


@pytest.mark.parametrize(("charset", "body"), [
    ("us-ascii", "José Núñez: suspension".encode()),  # UTF-8 labelled as ASCII
    ("iso-8859-1", "José Núñez: suspension".encode()),  # UTF-8 labelled as Latin-1
    ("x-unknown-charset", "José Núñez: suspension".encode()),
    (None, "José Núñez: suspension".encode("cp1252")),  # no label, Windows-1252 bytes
    ("utf-8", "José Núñez: suspension".encode("cp1252")),  # wrong label, invalid UTF-8
])
def test_charsets_fall_back_sensibly(inspector, charset, body):
    ctype = "text/plain" + (f"; charset={charset}" if charset else "")
    raw = _raw(f"Subject: x\nContent-Type: {ctype}\nContent-Transfer-Encoding: 8bit\n", body)
    assert {"student_name", "record_category"} <= detectors(inspector.inspect(raw))


def test_broken_quoted_printable_and_base64_are_tolerated(inspector):
    qp = b"SSN: 524=2D61=2D3378 =ZZ broken=\r\n soft break\r\n"
    raw = _raw("Subject: x\nContent-Type: text/plain\nContent-Transfer-Encoding: "
               "quoted-printable\n", qp)
    assert "ssn" in detectors(inspector.inspect(raw))
    b64 = base64.b64encode(b"SSN 524-61-3378 ok").decode()
    raw = _raw("Subject: x\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n",
               f"{b64[:8]}*%$\r\n{b64[8:]}===\r\n".encode())
    result = inspector.inspect(raw)
    assert "ssn" in detectors(result) and result.complete


def test_rfc2047_and_rfc2231_file_names_are_decoded(inspector):
    body = (b'--b\r\nContent-Type: text/plain\r\n\r\nx\r\n'
            b'--b\r\nContent-Type: application/octet-stream; name="=?utf-8?B?w6lsw6h2ZXMuY3N2?="'
            b'\r\nContent-Disposition: attachment\r\n\r\na,b\r\n1,2\r\n'
            b"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment;"
            b" filename*=utf-8''not%C3%A9s.txt\r\n\r\nhello\r\n--b--\r\n")
    raw = _raw('Subject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n',
               body)
    names = [a.filename for a in inspector.inspect(raw).attachments]
    assert names == ["élèves.csv", "notés.txt"]


def test_html_entities_split_words_hidden_text_and_scripts(inspector):
    html = ("<html><head><style>.x{display:none}</style></head><body>"
            "<div>Al<span>ex</span>&nbsp;Jo&#110;es</div><div class='x' style='display:none'>"
            "has an &#73;EP</div><script>var iep = 'Sam Lee IEP';</script></body></html>")
    result = inspector.inspect(message("x", html=html))
    assert locations(result, "student_name") == {"body (html)"}
    assert by_detector(result)["student_name"][0].students == frozenset({"482913"})


def test_subject_and_header_facts(inspector):
    raw = _raw("From: =?utf-8?q?Jane_Sm=C3=AFth?= <js@staff.example>\n"
               "Subject: =?utf-8?B?U2FtIExlZSDigJMgYXR0ZW5kYW5jZQ==?=\nMessage-ID: <m1@x>\n"
               "DKIM-Signature: v=1; a=rsa-sha256; d=x\nContent-Type: text/plain\n", b"hello\r\n")
    result = inspector.inspect(raw)
    assert result.subject == "Sam Lee – attendance"
    assert (result.message_id, result.from_header) == ("<m1@x>", "Jane Smïth <js@staff.example>")
    assert result.has_dkim_signature
    assert locations(result, "record_category") == {"subject"}


def test_file_type_comes_from_content_not_name(inspector):
    book = xlsx([["Student ID", "Grade"], ["482913", "F"]])
    raw = message("x", attachments=[("notes.txt", book, "text/plain")])
    result = inspector.inspect(raw)
    assert result.attachments[0].content_type.endswith("spreadsheetml.sheet")
    assert locations(result, "student_number") == {"attachment notes.txt, sheet 1"}


def test_inline_pgp_and_smime_are_uninspectable(inspector):
    pgp = message("-----BEGIN PGP MESSAGE-----\nhQEMA5...\n-----END PGP MESSAGE-----\n")
    smime = _raw("Subject: x\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data;"
                 " name=smime.p7m\nContent-Transfer-Encoding: base64\n",
                 b"MIAGCSqGSIb3DQEHA6CA\r\n")
    for raw in (pgp, smime):
        result = inspector.inspect(raw)
        assert detectors(result) == {"uninspectable"} and not result.complete


def test_garbage_is_never_an_exception(inspector):
    for raw in (b"", b"\x00\xff" * 100, b"Content-Type: multipart/mixed; boundary=\r\n\r\n--",
                b"Subject: =?utf-8?B?####?=\r\n\r\nx", b"\r\n" * 1000):
        result = inspector.inspect(raw)
        assert isinstance(result.findings, tuple)


def test_file_name_and_charset_shortcuts_agree_with_the_stdlib_lookups():
    """filename() and _charset() skip parsing headers that cannot hold the parameter."""
    import itertools
    from email.message import Message

    from gateway.mime.headers import charset as _charset
    from gateway.mime.headers import filename

    dispositions = [None, "inline", "attachment", 'attachment; filename="a.csv"',
                    "attachment; FILENAME=b.pdf", "attachment; filename*=utf-8''%C3%A9.txt",
                    "attachment; filename*0=a; filename*1=b", "attachment; file name=x",
                    'attachment; note="name"', "attachment; size=3"]
    types = [None, "text/plain", 'text/plain; charset="utf-8"', "text/plain; CHARSET=Latin-1",
             'application/pdf; name="x.pdf"', "text/plain; charset*=utf-8''x", "text/html; Name=y",
             "text/plain; format=flowed", 'text/plain; x="charset=utf-8"']
    for cd, ct in itertools.product(dispositions, types):
        part = Message()
        if cd is not None:
            part["Content-Disposition"] = cd
        if ct is not None:
            part["Content-Type"] = ct
        stdlib_name = part.get_filename() or part.get_param("name")
        assert (filename(part) is None) == (not stdlib_name), (cd, ct)
        assert _charset(part) == part.get_content_charset(), (cd, ct)
