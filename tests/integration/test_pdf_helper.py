"""The PDF helper process under faults: a hang is killed at the deadline, a crash mid-job fails
closed, and the next PDF gets a fresh helper. Real processes and real signals throughout."""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import sys
import threading
from dataclasses import replace

import pytest

from gateway.config import InspectionSettings, LogSettings
from gateway.inspect import Inspector
from gateway.pdfhelper import client as pdfhelper
from gateway.service.logsetup import configure_logging
from tests.factories import (
    LEXICONS,
    ROSTER_PDF,
    STUDENTS,
    attached,
    detectors,
    encrypted_pdf,
    message,
    pdf,
    pdf_with_content,
)

pytestmark = pytest.mark.skipif(not pdfhelper.available(), reason="pypdfium2 not installed")


@pytest.fixture
def helper():
    h = pdfhelper.PdfHelper()
    yield h
    h.close()


def inspector(time_budget: float = 30.0) -> Inspector:
    limits = replace(InspectionSettings(), time_budget=time_budget, pdf_engine="pdfium")
    return Inspector(limits, r"\b\d{6}\b", STUDENTS, LEXICONS)


def with_pdf(data: bytes) -> bytes:
    return attached("r.pdf", data, "application/pdf")


def test_pages_come_back_in_order_from_a_separate_process(helper):
    assert helper.page_texts(ROSTER_PDF, 30, 10_000) == ["Student ID 482913 Alex Jones",
                                                         "second page"]
    assert helper.pid not in (None, os.getpid())


def test_a_hung_helper_is_killed_at_the_deadline_and_replaced(helper):
    helper.page_texts(ROSTER_PDF, 30, 10_000)
    hung = helper.pid
    assert hung is not None
    os.kill(hung, signal.SIGSTOP)  # stands for a parser stuck in a loop
    with pytest.raises(pdfhelper.HelperTimeout):
        helper.page_texts(ROSTER_PDF, 0.5, 10_000)
    with pytest.raises(ProcessLookupError):
        os.kill(hung, 0)  # killed and reaped, not left behind
    assert helper.page_texts(ROSTER_PDF, 30, 10_000)[0].startswith("Student ID")
    assert helper.pid != hung


def test_a_helper_that_dies_mid_job_fails_that_job_only(helper):
    helper.page_texts(ROSTER_PDF, 30, 10_000)
    victim = helper.pid
    assert victim is not None
    os.kill(victim, signal.SIGSTOP)  # hold it inside the job ...
    outcome: list[BaseException | list[str]] = []

    def job() -> None:
        try:
            outcome.append(helper.page_texts(ROSTER_PDF, 60, 10_000))
        except BaseException as exc:  # the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=job)
    thread.start()
    thread.join(0.3)
    os.kill(victim, signal.SIGKILL)  # ... and crash it there
    thread.join(30)
    assert len(outcome) == 1 and type(outcome[0]) is pdfhelper.HelperFailed
    assert helper.page_texts(ROSTER_PDF, 30, 10_000)[1] == "second page"


def test_inspection_holds_what_the_helper_could_not_read():
    insp = inspector(time_budget=1.0)
    assert "student_number" in detectors(insp.inspect(with_pdf(ROSTER_PDF)))
    helper = pdfhelper.shared()
    assert helper.pid is not None
    os.kill(helper.pid, signal.SIGSTOP)
    result = insp.inspect(with_pdf(ROSTER_PDF))
    assert not result.complete
    assert any(f.detector == "uninspectable" and f.location.endswith("(time budget exceeded)")
               for f in result.findings)
    garbage = insp.inspect(with_pdf(b"%PDF-1.7\n" + os.urandom(2000)))
    assert not garbage.complete  # unreadable: held, and the helper is still usable after it
    assert "student_number" in detectors(insp.inspect(with_pdf(ROSTER_PDF)))


def test_a_pdf_that_crashes_the_helper_is_read_by_pypdf_instead():
    insp = inspector()
    insp.inspect(with_pdf(ROSTER_PDF))
    helper = pdfhelper.shared()
    victim = helper.pid
    assert victim is not None
    os.kill(victim, signal.SIGSTOP)
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(insp.inspect(with_pdf(ROSTER_PDF))))
    thread.start()
    thread.join(0.3)
    os.kill(victim, signal.SIGKILL)  # PDFium "crashes" on this file
    thread.join(60)
    [result] = results
    assert result.complete and "student_number" in detectors(result)
    assert helper.page_texts(ROSTER_PDF, 30, 10_000)  # and the next PDF has a new helper
    assert helper.pid != victim


def test_a_helper_that_cannot_start_is_not_retried_for_every_pdf(tmp_path):
    starts = tmp_path / "starts"
    broken = pdfhelper.PdfHelper([sys.executable, "-c",
                                  f"open({str(starts)!r}, 'a').write('x')"])  # no ready byte
    for _ in range(3):
        with pytest.raises(pdfhelper.HelperUnavailable):
            broken.page_texts(ROSTER_PDF, 30, 10_000)
    assert starts.read_text() == "x"  # one attempt, then a minute's rest
    assert broken.pid is None


def test_a_crash_on_the_first_job_after_a_start_does_not_disable_the_helper(helper):
    helper.start()
    victim = helper.pid
    assert victim is not None
    os.kill(victim, signal.SIGSTOP)
    outcome: list[BaseException] = []

    def job() -> None:
        try:
            helper.page_texts(ROSTER_PDF, 60, 10_000)
        except BaseException as exc:  # the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=job)
    thread.start()
    thread.join(0.3)
    os.kill(victim, signal.SIGKILL)
    thread.join(30)
    assert [type(e) for e in outcome] == [pdfhelper.HelperFailed]
    assert helper.page_texts(ROSTER_PDF, 30, 10_000)[1] == "second page"


def test_a_pdf_waiting_behind_a_stuck_one_is_read_by_pypdf():
    insp = inspector(time_budget=30)
    helper = pdfhelper.shared()
    helper.page_texts(ROSTER_PDF, 30, 10_000)
    stuck = helper.pid
    assert stuck is not None
    os.kill(stuck, signal.SIGSTOP)  # a hostile PDF holds the helper ...
    first = threading.Thread(target=insp.inspect, args=(with_pdf(ROSTER_PDF),))
    first.start()
    first.join(0.3)
    try:
        result = insp.inspect(with_pdf(ROSTER_PDF))  # ... the next PDF does not wait for it
        assert result.complete and "student_number" in detectors(result)
    finally:
        os.kill(stuck, signal.SIGKILL)
        first.join(60)


def test_no_time_left_does_not_cost_a_healthy_helper(helper):
    helper.page_texts(ROSTER_PDF, 30, 10_000)
    alive = helper.pid
    with pytest.raises(pdfhelper.HelperTimeout):
        helper.page_texts(ROSTER_PDF, 0.0, 10_000)
    assert helper.pid == alive


def test_password_protected_pdf_is_uninspectable():
    result = inspector().inspect(with_pdf(encrypted_pdf(["Alex Jones"])))
    assert not result.complete
    assert any(f.location.endswith("(encrypted)") for f in result.findings)


def _pid_in_forked_child(queue: multiprocessing.Queue) -> None:
    helper = pdfhelper.shared()
    helper.page_texts(ROSTER_PDF, 30, 10_000)
    queue.put(helper.pid)


def test_a_forked_worker_starts_its_own_helper():
    parent = pdfhelper.shared()
    parent.page_texts(ROSTER_PDF, 30, 10_000)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_pid_in_forked_child, args=(queue,))
    child.start()
    child_helper = queue.get(timeout=60)
    child.join(30)
    assert child_helper not in (None, parent.pid)
    assert parent.page_texts(ROSTER_PDF, 30, 10_000)  # the parent's helper was left alone


def test_helper_failures_log_no_student_data():
    """Started, killed at the deadline, crashed mid-job: the log says so, never what was read."""
    buffer = io.StringIO()
    configure_logging(LogSettings("debug", "json"), stream=buffer)
    secret = pdf([["Alex Jones student ID 482913 SSN 219-45-6780"]])
    raw = message("see attached", attachments=[("Alex_Jones_IEP.pdf", secret, "application/pdf")])
    helper = pdfhelper.PdfHelper()
    try:
        assert "482913" in helper.page_texts(secret, 30, 10_000)[0]
        os.kill(helper.pid, signal.SIGSTOP)
        with pytest.raises(pdfhelper.HelperTimeout):
            helper.page_texts(secret, 0.5, 10_000)
        helper.start()
        victim = helper.pid
        os.kill(victim, signal.SIGSTOP)  # held inside the job, then crashed there
        crashed: list[BaseException] = []
        thread = threading.Thread(target=lambda: crashed.extend(
            _raised(lambda: helper.page_texts(secret, 30, 10_000))))
        thread.start()
        thread.join(0.3)
        os.kill(victim, signal.SIGKILL)
        thread.join(30)
        assert [type(e) for e in crashed] == [pdfhelper.HelperFailed]
        inspector(time_budget=5).inspect(raw)
    finally:
        helper.close()
        configure_logging(LogSettings(), stream=sys.stdout)
    log = buffer.getvalue()
    assert "pdf_helper_killed" in log and "pdf_helper_failed" in log
    for value in ("482913", "219-45-6780", "Alex", "Jones", "IEP"):
        assert value not in log


def _raised(call) -> list[BaseException]:
    try:
        call()
    except BaseException as exc:  # the test inspects it
        return [exc]
    return []


# --- found by fuzzing (bench/fuzz_inspect.py) -----------------------------------------------
@pytest.mark.skipif(not pdfhelper.available(), reason="pypdfium2 not installed")
def test_pdf_page_content_bomb_is_read_whole_by_pdfium() -> None:
    # The page content bomb that stops pypdf at its deadline (tests/extract/test_pdf.py):
    # PDFium, in its helper process, reads it whole in well under a second.
    bomb = pdf_with_content(b"BT /F1 11 Tf (482913 ) Tj ET\n" * 100_000)
    raw = message("x", attachments=[("p.pdf", bomb, "application/pdf")])
    result = Inspector(replace(InspectionSettings(), pdf_engine="pdfium"), r"\b\d{6}\b",
                       STUDENTS, LEXICONS).inspect(raw)
    assert result.complete and "student_number" in {f.detector for f in result.findings}
