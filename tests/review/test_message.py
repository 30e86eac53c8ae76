"""Held mail made safe for a browser: sanitised HTML, text, attachments by position."""

from __future__ import annotations

from gateway.review.message import attachment, safe_message, sanitise_html
from tests.factories import crlf, message


def test_scripts_styles_images_and_handlers_are_removed() -> None:
    cleaned = sanitise_html(
        "<style>body{background:url(https://t.example/x)}</style>"
        "<p style='color:red' onmouseover='x()'>Hi<script>steal()</script></p>"
        "<img src=https://t.example/pixel.gif><iframe src=https://evil.example></iframe>"
        "<form action=https://evil.example><input name=p></form>"
        "<a href='data:text/html,x'>d</a><a href='mailto:a@b.example'>m</a>")
    for gone in ("<style", "t.example", "style=", "onmouseover", "<script", "steal",
                 "<img", "<iframe", "evil.example", "<form", "<input", "data:"):
        assert gone not in cleaned, gone
    assert "<p>Hi</p>" in cleaned
    assert 'href="mailto:a@b.example"' in cleaned


def test_plain_text_stays_text_and_control_characters_go() -> None:
    shown = safe_message(crlf(message("Line one\x1b[2J\n<b>not markup</b>\n")))
    assert shown.html is None and shown.text is not None
    assert "\x1b" not in shown.text and "<b>not markup</b>" in shown.text  # escaped later
    assert ("Subject", "Note") in shown.headers


def test_attachments_are_found_by_position_not_name() -> None:
    raw = crlf(message("see files", attachments=[
        ("Alex Jones IEP.pdf", b"%PDF-1.4 one", "application/pdf"),
        ("roster.csv", b"a,b\n", "text/csv")]))
    shown = safe_message(raw)
    assert [(a.index, a.filename) for a in shown.attachments] == [
        (0, "Alex Jones IEP.pdf"), (1, "roster.csv")]
    found = attachment(raw, 1)
    assert found is not None and found[1] == b"a,b\n"  # base64: the bytes as attached
    assert attachment(raw, 2) is None


def test_unparseable_or_deleted_messages_say_so() -> None:
    assert safe_message(None).problem == "The held copy has been deleted."
    shown = safe_message(b"Subject: x\r\nContent-Type: text/plain; charset=bogus-9\r\n"
                         b"Content-Transfer-Encoding: base64\r\n\r\n!!!!\r\n")
    assert shown.headers == (("Subject", "x"),) and shown.text == ""  # shown, not raised
    garbage = safe_message(b"\xff\xfe no headers at all")
    assert garbage.text is not None and "no headers at all" in garbage.text
