"""ZIP archives: members found at their path inside nested archives, and a decompression bomb
refused without being inflated."""

from __future__ import annotations

import io
import zipfile

from tests.factories import (
    MP3,
    attached,
    by_detector,
    make_inspector,
    uninspectable_reasons,
    zip_of,
)


def test_zip_recursion_locations_and_media_inside(inspector):
    inner = zip_of([("deep/list.csv", b"Student ID,Name\n482913,Alex Jones\n"), ("v.mp3", MP3)])
    result = inspector.inspect(attached("outer.zip", zip_of([("inner.zip", inner)])))
    found = by_detector(result)
    assert {f.location for f in found["student_number"]} == {
        "attachment outer.zip/inner.zip/deep/list.csv"}
    assert {f.location for f in found["media"]} == {"attachment outer.zip/inner.zip/v.mp3"}


def test_decompression_bomb_is_not_inflated():
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.txt", b"0" * (8 * 1024 * 1024))
    result = make_inspector(max_expansion_ratio=100).inspect(attached("bomb.zip", bomb.getvalue()))
    assert uninspectable_reasons(result) == {"expansion ratio limit (possible decompression bomb)"}
