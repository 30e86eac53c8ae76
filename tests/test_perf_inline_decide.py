"""Which messages are decided on the event loop, and that a disguised file never is.

Small messages are inspected on the loop with text extractors only (`dispatch.TEXT_ONLY`):
a thread hand-off costs more than a CSV. A part that sniffs as anything else, whatever it was
declared as, sends the whole decision to a thread, where it is inspected in full. The real
inspector is used, wrapped only to record the thread it ran on.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from gateway import extract
from gateway.dispatch import TEXT_ONLY
from gateway.extract.base import Budget, Context, Sink, Venue
from gateway.inspect import Draft
from gateway.model import Inspection
from tests import inspection_helpers as h
from tests.conftest import write_settings
from tests.core_helpers import send

SENDER = "teacher@staff.example.org"
STUDENT = "student@students.example.org"
ROSTER = b"Student ID,Name,Grade\r\n482913,Alex Jones,B\r\n517204,Sam Lee,A\r\n"


class RecordingInspector:
    """The real inspector; remembers whether each message was inspected on the loop."""

    def __init__(self) -> None:
        self.inner = h.make_inspector()
        self.on_loop: list[bool] = []
        self.loop_thread = threading.get_ident()
        self.results: list[Inspection] = []

    def inspect(self, raw: bytes) -> Inspection:
        return self.finish(self.begin(raw))

    def begin(self, raw: bytes, venue: Venue | None = None) -> Draft:
        return self.inner.begin(raw, venue)

    def finish(self, draft: Draft) -> Inspection:
        """Called once per message, where its inspection completes."""
        result = self.inner.finish(draft)
        self.on_loop.append(threading.get_ident() == self.loop_thread)
        self.results.append(result)
        return result


def with_attachment(name: str, data: bytes, declared: str) -> bytes:
    return h.message("Here it is.", attachments=[(name, data, declared)]).replace(
        b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.mark.parametrize(("name", "data", "declared", "on_loop"), [
    ("roster.csv", ROSTER, "text/csv", True),
    ("notes.txt", b"Alex Jones, 482913, failed the test\r\n", "text/plain", True),
    ("logo.png", h.PNG, "image/png", True),
    ("roster.zip", h.zip_of([("r.csv", ROSTER)]), "text/csv", False),  # disguised archive
    ("roster.pdf", h.pdf([["Alex Jones 482913"]]), "image/png", False),  # disguised PDF
    ("roster.xlsx", h.xlsx([["Student ID", "Name"], ["482913", "Alex Jones"]]),
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", False),
])
async def test_text_is_decided_on_the_loop_and_any_other_file_in_a_thread(
        tmp_path: Any, upstream: Any, gateways: Any, name: str, data: bytes, declared: str,
        on_loop: bool) -> None:
    inspector = RecordingInspector()
    gw = await gateways(write_settings(tmp_path, upstream.port), inspector=inspector)
    _, reply = await send(gw.port, SENDER, [STUDENT], with_attachment(name, data, declared))
    assert reply.startswith("2.0.0 Ok: queued as "), reply
    assert inspector.on_loop == [on_loop]
    [result] = inspector.results
    assert result.complete
    # Inspected in full wherever it ran: the attached roster's students are found.
    if name != "logo.png":
        assert any(f.detector in ("student_id", "roster", "student_name")
                   for f in result.findings), result.findings


def test_the_loop_reads_text_and_leaves_any_other_file_for_a_thread() -> None:
    limits = h.make_settings().inspection
    ctx = Context(Budget(limits), Sink(), venue=TEXT_ONLY)
    extract.extract_file(h.zip_of([("r.csv", ROSTER)]), ctx, "attachment a.zip")
    assert not ctx.sink.parts and ctx.sink.elsewhere == "application/zip"
    extract.extract_file(h.zip_of([("r.csv", ROSTER)]), ctx.deeper(), "attachment b.zip")
    assert ctx.sink.elsewhere == "application/zip"  # the first one is what is reported
    extract.extract_file(ROSTER, ctx, "attachment r.csv")
    assert ctx.sink.parts  # text extractors run as usual
    in_thread = Context(Budget(limits), Sink())  # no venue: every format is read in place
    extract.extract_file(h.zip_of([("r.csv", ROSTER)]), in_thread, "attachment a.zip")
    assert any("a.zip/r.csv" in p.location for p in in_thread.sink.parts)
    assert in_thread.sink.elsewhere is None
