"""Small messages with PDFs decided on the event loop while the PDF helper reads them.

`PdfHelper.submit` drives a helper job from the loop (real helper process, real signals);
`pdfjobs` starts the PDFs before the walk and files their text in its place, with the same
result as inspecting in a thread; the server falls back to a thread whenever that cannot be
done (helper busy, PDFium failed, a document that is not a PDF).
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import threading
from dataclasses import replace
from typing import Any

import aiosmtplib
import pytest
from structlog.testing import capture_logs

from gateway.config import InspectionSettings
from gateway.dispatch import pdfjobs
from gateway.extract.base import Venue
from gateway.inspect import Inspector, WalkedMessage
from gateway.model import Inspection
from gateway.pdfhelper import client as pdfhelper
from tests.factories import (
    LEXICONS,
    NEWSLETTER_PDF,
    ROSTER_PDF,
    STUDENTS,
    crlf,
    detectors,
    message,
    pdf,
    write_settings,
    xlsx,
)
from tests.harness import send

pytestmark = pytest.mark.skipif(not pdfhelper.available(), reason="pypdfium2 not installed")


SENDER = "teacher@staff.example.org"
STUDENT = "student@students.example.org"


def inspector(time_budget: float = 30.0) -> Inspector:
    limits = replace(InspectionSettings(), time_budget=time_budget, pdf_engine="pdfium")
    return Inspector(limits, r"\b\d{6}\b", STUDENTS, LEXICONS)


async def on_loop(insp: Inspector, raw: bytes) -> tuple[Inspection | None, pdfjobs.Deferral]:
    """What the dispatcher does (`pdfjobs.inspect`), keeping the deferral to look at; None:
    the message is to be read in a thread."""
    made: list[pdfjobs.Deferral] = []

    class Seen(pdfjobs.Deferral):
        def __init__(self, limits: InspectionSettings, helper: pdfhelper.PdfHelper) -> None:
            super().__init__(limits, helper)
            made.append(self)

    real = pdfjobs.Deferral
    pdfjobs.Deferral = Seen  # type: ignore[misc]
    try:
        result = await pdfjobs.inspect(insp.begin, insp.finish, raw, insp.limits,
                                      pdfhelper.shared())
    finally:
        pdfjobs.Deferral = real  # type: ignore[misc]
    return result, made[0]


async def gone(pid: int, within: float = 10.0) -> bool:
    for _ in range(int(within / 0.01)):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        await asyncio.sleep(0.01)
    return False


@pytest.fixture
def helper():
    helper = pdfhelper.PdfHelper()
    helper.start()
    yield helper
    helper.close()


async def test_a_job_driven_by_the_loop_reads_what_page_texts_reads(helper) -> None:
    assert await helper.submit(ROSTER_PDF, 30, 10_000) == helper.page_texts(ROSTER_PDF, 30, 10_000)
    # Larger than a pipe's buffer: the request is written as the helper takes it.
    big = pdf([[f"line {i} " + "x" * 60 for i in range(40)] for _ in range(60)])
    assert len(big) > 1 << 17
    assert await helper.submit(big, 30, 10**7) == helper.page_texts(big, 30, 10**7)


async def test_no_job_when_the_helper_is_busy_or_not_running(helper) -> None:
    assert pdfhelper.PdfHelper().submit(ROSTER_PDF, 30, 10_000) is None  # never started
    assert helper._lock.acquire()  # another thread is reading a PDF
    try:
        assert helper.submit(ROSTER_PDF, 30, 10_000) is None
    finally:
        helper._lock.release()
    assert await helper.submit(ROSTER_PDF, 30, 10_000)


async def test_a_hung_helper_is_killed_at_the_deadline(helper) -> None:
    hung = helper.pid
    assert hung is not None
    os.kill(hung, signal.SIGSTOP)
    with pytest.raises(pdfhelper.HelperTimeout):
        await helper.submit(ROSTER_PDF, 0.3, 10_000)
    assert await gone(hung)  # killed, and reaped by a thread (never waited for on the loop)
    assert not helper._lock.locked()
    assert helper.page_texts(ROSTER_PDF, 30, 10_000)[1] == "second page"  # a new helper


async def test_a_helper_that_dies_mid_job_fails_the_job(helper) -> None:
    victim = helper.pid
    assert victim is not None
    os.kill(victim, signal.SIGSTOP)
    job = helper.submit(ROSTER_PDF, 30, 10_000)
    assert job is not None
    await asyncio.sleep(0.1)
    os.kill(victim, signal.SIGKILL)
    with pytest.raises(pdfhelper.HelperFailed):
        await job
    assert not helper._lock.locked()
    assert helper.page_texts(ROSTER_PDF, 30, 10_000)[0].startswith("Student ID")


async def test_a_job_that_cannot_be_set_up_leaves_the_helper_free(helper, monkeypatch) -> None:
    def broken(self: object) -> None:
        raise RuntimeError("a bug between taking the lock and writing the job")

    monkeypatch.setattr(pdfhelper._Job, "_write", broken)
    with pytest.raises(RuntimeError):
        helper.submit(ROSTER_PDF, 30, 10_000)
    monkeypatch.undo()
    assert not helper._lock.locked() and helper.pid is None  # stopped: it may have a job
    assert helper.submit(ROSTER_PDF, 30, 10_000) is None  # the next PDF goes to a thread ...
    pages = helper.page_texts(ROSTER_PDF, 30, 10_000)  # ... which starts a new helper
    assert await helper.submit(ROSTER_PDF, 30, 10_000) == pages


async def test_a_cancelled_job_does_not_leave_a_reply_in_the_pipe(helper) -> None:
    first = helper.pid
    job = helper.submit(ROSTER_PDF, 30, 10_000)
    assert job is not None
    job.cancel()  # the message's deadline: its reply would be read by the next job
    await asyncio.sleep(0)
    assert not helper._lock.locked() and helper.pid != first
    assert helper.page_texts(NEWSLETTER_PDF, 30, 10_000) == ["The concert moves to Friday."]


@pytest.mark.parametrize("raw", [
    crlf(message("see attached", attachments=[("r.pdf", ROSTER_PDF, "application/pdf")])),
    message("LF line ends: found by the walk", attachments=[("r.pdf", ROSTER_PDF,
                                                                "application/pdf")]),
    crlf(message("two", attachments=[("a.pdf", NEWSLETTER_PDF, "application/pdf"),
                                     ("r.pdf", ROSTER_PDF, "application/pdf"),
                                     ("n.txt", b"Sam Lee 517204 IEP", "text/plain")])),
    crlf(message("not a PDF", attachments=[("r.pdf", b"%PDF-1.7\n" + b"\x00" * 900,
                                            "application/pdf")])),
])
async def test_the_loop_finds_what_a_thread_finds_in_the_same_order(raw: bytes) -> None:
    insp = inspector()
    in_thread = await asyncio.to_thread(insp.inspect, raw)
    result, deferral = await on_loop(insp, raw)
    assert result == in_thread
    assert deferral.pending  # the PDFs were really read through the deferral


async def test_the_pdf_starts_before_the_walk_and_is_read_once() -> None:
    insp = inspector()
    raw = crlf(message("see attached", attachments=[("r.pdf", ROSTER_PDF, "application/pdf")]))
    assert pdfjobs.pdf_parts(raw, 2) == [ROSTER_PDF]
    result, deferral = await on_loop(insp, raw)
    assert list(deferral.jobs) == [ROSTER_PDF] and len(deferral.pending) == 1
    assert "student_number" in detectors(result)


async def test_a_pdf_that_crashes_pdfium_is_left_for_the_thread() -> None:
    """pypdf reads what PDFium crashed on, and pypdf never runs on the loop."""
    insp = inspector()
    helper = pdfhelper.shared()
    helper.start()
    assert helper.pid is not None
    os.kill(helper.pid, signal.SIGSTOP)
    raw = crlf(message("see attached", attachments=[("r.pdf", ROSTER_PDF, "application/pdf")]))
    deferral = pdfjobs.Deferral(insp.limits, pdfhelper.shared())
    assert insp.begin(raw, deferral).elsewhere is None
    asyncio.get_running_loop().call_later(0.1, os.kill, helper.pid, signal.SIGKILL)
    await deferral.wait()
    assert deferral.settle() is False


class RecordingInspector:
    """The real inspector, both ways; remembers on which thread each step ran."""

    def __init__(self) -> None:
        self.inner = inspector()
        self.loop_thread = threading.get_ident()
        self.steps: list[tuple[str, bool]] = []
        self.results: list[Inspection] = []

    def inspect(self, raw: bytes) -> Inspection:
        self.steps.append(("inspect", threading.get_ident() == self.loop_thread))
        self.results.append(self.inner.inspect(raw))
        return self.results[-1]

    def begin(self, raw: bytes, venue: Venue | None = None) -> WalkedMessage:
        self.steps.append(("begin", threading.get_ident() == self.loop_thread))
        return self.inner.begin(raw, venue)

    def finish(self, walked: WalkedMessage) -> Inspection:
        self.results.append(self.inner.finish(walked))
        return self.results[-1]


def pdf_settings(tmp_path: Any, port: int) -> Any:
    settings = write_settings(tmp_path, port)
    return replace(settings, inspection=replace(settings.inspection, pdf_engine="pdfium"))


async def test_the_gateway_decides_a_small_pdf_message_on_the_loop(
        tmp_path: Any, upstream: Any, gateways: Any) -> None:
    recorder = RecordingInspector()
    gw = await gateways(pdf_settings(tmp_path, upstream.port), inspector=recorder)
    pdfhelper.shared().start()  # as the daemon does when it starts (not yet running: a thread)
    raw = crlf(message("see attached", attachments=[("r.pdf", ROSTER_PDF, "application/pdf")]))
    _, reply = await send(gw.port, SENDER, [STUDENT], raw)
    assert reply.startswith("2.0.0 Ok: queued as "), reply
    assert recorder.steps == [("begin", True)]
    assert "student_number" in detectors(recorder.results[0])


@pytest.mark.parametrize("case", ["busy helper", "a workbook too"])
async def test_the_gateway_goes_to_a_thread_when_the_loop_cannot_do_it(
        tmp_path: Any, upstream: Any, gateways: Any, case: str) -> None:
    recorder = RecordingInspector()
    gw = await gateways(pdf_settings(tmp_path, upstream.port), inspector=recorder)
    files = [("r.pdf", ROSTER_PDF, "application/pdf")]
    if case == "a workbook too":
        files.append(("r.xlsx", xlsx([["Student ID"], ["517204"]]),
                      "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
    helper = pdfhelper.shared()
    helper.start()
    busy = case == "busy helper" and helper._lock.acquire()
    if busy:  # another PDF has the helper for a moment: the thread waits its turn
        asyncio.get_running_loop().call_later(0.2, helper._lock.release)
    _, reply = await send(gw.port, SENDER, [STUDENT], crlf(message("x", attachments=files)))
    assert reply.startswith("2.0.0 Ok: queued as "), reply
    expected = [("inspect", False)] if case == "a workbook too" else [("begin", True),
                                                                      ("inspect", False)]
    assert recorder.steps == expected
    assert "student_number" in detectors(recorder.results[-1])


async def test_a_queued_pdf_that_cannot_start_sends_the_message_to_a_thread(monkeypatch) -> None:
    """The second PDF of a message waits for the first; if it then cannot be started, the
    message is decided in a thread instead of waiting for its deadline."""
    insp = inspector()
    pdfhelper.shared().start()
    real_submit = pdfhelper.PdfHelper.submit
    calls = []

    def submit_once(self: pdfhelper.PdfHelper, *args: Any) -> Any:
        calls.append(args)
        if len(calls) > 1:
            raise RuntimeError("cannot start the second job")
        return real_submit(self, *args)

    monkeypatch.setattr(pdfhelper.PdfHelper, "submit", submit_once)
    raw = crlf(message("two", attachments=[("a.pdf", NEWSLETTER_PDF, "application/pdf"),
                                           ("r.pdf", ROSTER_PDF, "application/pdf")]))
    deferral = pdfjobs.Deferral(insp.limits, pdfhelper.shared())
    assert insp.begin(raw, deferral).elsewhere is None
    await asyncio.wait_for(deferral.wait(), 10)
    assert len(calls) == 2
    assert deferral.settle() is False


async def test_with_pypdf_configured_no_helper_job_is_started() -> None:
    limits = replace(InspectionSettings(), pdf_engine="pypdf")
    insp = Inspector(limits, r"\b\d{6}\b", STUDENTS, LEXICONS)
    pdfhelper.shared().start()
    raw = crlf(message("see attached", attachments=[("r.pdf", ROSTER_PDF, "application/pdf")]))
    deferral = pdfjobs.Deferral(limits, pdfhelper.shared())
    assert insp.begin(raw, deferral).elsewhere == "application/pdf"
    assert deferral.jobs == {}


async def test_pdfs_next_to_each_other_keep_their_order() -> None:
    """Found by review: two PDFs with no text part between them share a place; both with
    findings, the loop must list them in the thread's order."""
    a = pdf([["Student ID 482913 Alex Jones"]])
    b = pdf([["Student ID 517204 Sam Lee"]])
    raw = crlf(message("two", attachments=[("a.pdf", a, "application/pdf"),
                                           ("b.pdf", b, "application/pdf")]))
    insp = inspector()
    in_thread = await asyncio.to_thread(insp.inspect, raw)
    result, _ = await on_loop(insp, raw)
    assert result == in_thread
    assert [f.location for f in result.findings][:1] == ["attachment a.pdf"]


async def test_the_extracted_text_limit_sends_the_message_to_a_thread() -> None:
    """Found by review: which part the limit cuts depends on the order text is filed in, and
    the loop files a PDF after the parts that follow it. The thread decides such a message."""
    limits = replace(InspectionSettings(), pdf_engine="pdfium", max_extracted_bytes=60)
    insp = Inspector(limits, r"\b\d{6}\b", STUDENTS, LEXICONS)
    raw = crlf(message("hi", attachments=[("a.pdf", ROSTER_PDF, "application/pdf"),
                                          ("n.txt", b"Sam Lee 517204 IEP " * 3,
                                           "text/plain")]))
    result, _ = await on_loop(insp, raw)
    assert result is None


async def test_a_pdf_with_more_text_than_the_loop_may_scan_goes_to_a_thread() -> None:
    """A few KB of PDF can hold megabytes of text; the loop gets at most LOOP_TEXT_LIMIT."""
    insp = inspector()
    lines = [f"line {i} of a long report " + "x" * 70 for i in range(60)]
    big = pdf([lines for _ in range(pdfjobs.LOOP_TEXT_LIMIT // 5000 + 2)])  # > the limit
    raw = crlf(message("long", attachments=[("r.pdf", big, "application/pdf")]))
    result, _ = await on_loop(insp, raw)
    assert result is None
    helper = pdfhelper.shared()
    job = helper.submit(big, 30, 100)  # asked for 100 characters, the first page has more
    assert job is not None
    with pytest.raises(pdfhelper.TooMuchText):
        await job
    assert not helper._lock.locked()


async def test_a_pdf_the_walk_does_not_read_is_not_waited_for() -> None:
    """A base64 PDF quoted inside a text body is guessed by the quick search but never read
    by the walk: the message does not wait for it."""
    quoted = b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" \
        + base64.encodebytes(ROSTER_PDF).replace(b"\n", b"\r\n")
    raw = crlf(message("see below\n--x\n" + quoted.decode() + "\n--x--\n"))
    assert pdfjobs.pdf_parts(raw, 2) == [ROSTER_PDF]
    insp = inspector()
    pdfhelper.shared().start()
    result, deferral = await on_loop(insp, raw)
    assert deferral.pending == [] and deferral.jobs == {} and len(deferral._unused) == 1
    await asyncio.wait(deferral._unused)  # it runs out by itself (before this test's loop ends)
    assert result == await asyncio.to_thread(insp.inspect, raw)


async def test_a_pdf_the_helper_cannot_finish_in_time_is_held_and_logs_no_content() -> None:
    """Fail closed on the loop path too: the PDF is uninspectable (the message is held), and
    the helper's log lines carry no student data."""
    insp = inspector(time_budget=0.5)
    helper = pdfhelper.shared()
    helper.start()
    assert helper.pid is not None
    os.kill(helper.pid, signal.SIGSTOP)  # a PDF that never finishes
    raw = crlf(message("see attached", attachments=[("r.pdf", ROSTER_PDF, "application/pdf")]))
    with capture_logs() as logs:
        result, _ = await on_loop(insp, raw)
    assert not result.complete
    assert any(f.detector == "uninspectable" and "time budget exceeded" in f.location
               for f in result.findings)
    assert any(entry["event"] == "pdf_helper_killed" for entry in logs)
    for value in ("482913", "Alex", "Jones"):
        assert value not in repr(logs)


async def test_the_processing_deadline_while_the_helper_reads_gives_451_and_frees_it(
        tmp_path: Any, upstream: Any, gateways: Any) -> None:
    """No 250 for a message not decided: the deadline passes while the loop waits for the
    helper; the client gets 451, nothing is relayed, and the next PDF finds the helper free."""
    settings = pdf_settings(tmp_path, upstream.port)
    settings = replace(settings, smtp=replace(settings.smtp, processing_deadline=0.5))
    recorder = RecordingInspector()
    gw = await gateways(settings, inspector=recorder)
    helper = pdfhelper.shared()
    helper.start()
    stuck = helper.pid
    assert stuck is not None
    os.kill(stuck, signal.SIGSTOP)
    raw = crlf(message("see attached", attachments=[("r.pdf", ROSTER_PDF, "application/pdf")]))
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await send(gw.port, SENDER, [STUDENT], raw)
    assert info.value.code == 451
    assert recorder.steps == [("begin", True)] and upstream.messages == []
    assert await gone(stuck)  # the job was cancelled: the helper killed, never left hanging
    assert not helper._lock.locked()
    assert helper.page_texts(NEWSLETTER_PDF, 30, 10_000) == ["The concert moves to Friday."]
