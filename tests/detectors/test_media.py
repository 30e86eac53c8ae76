"""Audio and video attachments, recognised by content."""

from __future__ import annotations

from tests.factories import by_detector, message


def test_media_by_content(engine_inspector):
    raw = message("x", attachments=[("song.txt", b"ID3\x03" + b"\x00" * 40, "text/plain")])
    assert by_detector(engine_inspector.inspect(raw))["media"][0].sample == "audio/mpeg"
