"""The inspection builders under their former module name, kept only for bench/bench_inspect.py
and bench/fuzz_inspect.py (`from tests import inspection_helpers as h`). The tests use
tests.factories; delete this module once bench/ imports that instead."""

from __future__ import annotations

from tests.factories import (
    LEXICONS,
    MP3,
    MP4,
    OLE,
    PNG,
    STUDENTS,
    FakeDirectory,
    by_detector,
    detectors,
    docx,
    encrypted_pdf,
    make_inspector,
    make_settings,
    message,
    pdf,
    xlsx,
    zip_of,
)

__all__ = ["LEXICONS", "MP3", "MP4", "OLE", "PNG", "STUDENTS", "FakeDirectory", "by_detector",
           "detectors", "docx", "encrypted_pdf", "make_inspector", "make_settings", "message",
           "pdf", "xlsx", "zip_of"]
