"""PDFs of a small message read by the helper while the event loop carries on.

Why: a message with a PDF used to be decided in a thread, which then waited for the PDF helper
process: four wake-ups across threads and processes, and the helper started only once the
thread had parsed the message up to the PDF. A small message (`dispatch.INLINE_DECIDE_LIMIT`)
whose only documents are PDFs is now decided on the loop like a text message: before the
walk, `prefetch` finds each base64 `application/pdf` part by a quick search and hands it to the
helper (`PdfHelper.submit`), so PDFium reads it while the message is parsed and its other parts
are read; the walk, with the Deferral as its venue, lets it `take` the PDF instead of waiting,
the dispatcher awaits the helper without blocking other sessions, and `settle` puts each PDF's
text in its place among the parts.

What is read, and how, does not change: the PDF the walk finds is the one sent, matched byte
for byte (a prefetched guess that does not match is a job wasted, nothing else), and the
helper's answers are filed as `pdf.file_outcome` files them in a thread. Anything that cannot
be done this way (the helper busy or not running, pypdf needed because PDFium failed, a part
that is not a PDF after all) makes `inspect` answer None, and the whole decision is made again
in a thread.
"""

from __future__ import annotations

import asyncio
import binascii
import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from gateway.config import InspectionSettings
from gateway.extract import pdf
from gateway.extract.base import CORRUPT, TEXT_LIMIT, Context, Venue
from gateway.inspect import WalkedMessage
from gateway.model import Inspection
from gateway.pdfhelper import client as pdfhelper

log = structlog.get_logger("gateway.pdf")
MAX_PREFETCH = 2  # PDFs per message started before the walk; more are started when found
# Characters of PDF text a job from the loop may bring back: more is read in a thread, so the
# detectors on the loop never see more than a 64 KB text message could give them.
LOOP_TEXT_LIMIT = 64 * 1024
FALLBACK_WAIT = 1.0  # seconds our jobs may finish in before a thread needs the helper
_PDF_PART = re.compile(rb"\n(?i:content-type:[ \t]*application/pdf)\b")


@dataclass(slots=True)
class _Pending:
    job: asyncio.Future[list[str]]
    ctx: Context
    location: str
    at: int  # the part's place among the text parts


class Deferral:
    """The PDF jobs of one message decided on the loop: its walk's `Venue`."""

    def __init__(self, limits: InspectionSettings, helper: pdfhelper.PdfHelper):
        self.limits = limits
        self.helper = helper
        self.deadline = time.monotonic() + limits.time_budget
        self.jobs: dict[bytes, asyncio.Future[list[str]]] = {}
        self.pending: list[_Pending] = []
        self._last: asyncio.Future[list[str]] | None = None  # our latest job, maybe running
        self._unused: list[asyncio.Future[list[str]]] = []  # see drop_unused

    def prefetch(self, content: bytes) -> None:
        """Start the helper on the PDFs a quick search finds. Best effort: whatever goes
        wrong here, the walk still finds each PDF and starts it then (or fails closed)."""
        try:
            for data in pdf_parts(content, MAX_PREFETCH):
                self._job(data)
        except Exception:
            log.warning("pdf_prefetch_failed", exc_info=True)

    def take(self, ctype: str, data: bytes, ctx: Context, location: str) -> bool:
        """The walk found this file: a PDF's text is filed by `settle`. False for any other
        type, when pypdf is the engine, or when the helper cannot take the job now."""
        if ctype not in pdf.TYPES or ctx.pdf_reader is None:
            return False
        job = self._job(data)
        if job is None:
            return False
        self.pending.append(_Pending(job, ctx, location, len(ctx.sink.parts)))
        return True

    def drop_unused(self) -> None:
        """After the walk: the message need not wait for jobs it did not ask for (a guess of
        the quick search, e.g. a PDF quoted in a text body). They run out by themselves,
        within the deadline; stopping one would kill the helper a PDF queued behind it is
        waiting for."""
        used = {id(item.job) for item in self.pending}
        for data, job in list(self.jobs.items()):
            if id(job) not in used:
                self._unused.append(self.jobs.pop(data))

    async def wait(self) -> None:
        """Until every job the walk asked for has ended (whatever its outcome)."""
        if self.jobs:
            await asyncio.wait(list(self.jobs.values()))

    async def abandon(self) -> None:
        """The message goes to a thread: let our jobs end (briefly), then stop the rest, so
        the thread finds the helper free."""
        if self.jobs:
            await asyncio.wait(list(self.jobs.values()), timeout=FALLBACK_WAIT)
        self.cancel()

    def settle(self) -> bool:
        """File each deferred PDF's text or problem in its place among the parts, in walk
        order (PDFs with no part between them keep theirs). False whenever the thread must
        decide instead: PDFium failed on one (pypdf reads it), one brought more text
        than the loop may scan, or the extracted-text limit cut something (which part it cuts
        depends on the order text was filed in)."""
        shift = 0  # parts filed in front of the next one's place
        for item in self.pending:
            if item.job.cancelled():
                return False
            outcome = item.job.exception() or item.job.result()
            if isinstance(outcome, _NotTaken | pdfhelper.TooMuchText) or (
                    isinstance(outcome, list) and sum(map(len, outcome)) > LOOP_TEXT_LIMIT):
                return False
            parts = len(item.ctx.sink.parts)
            try:
                filed = pdf.file_outcome(outcome, item.ctx, item.location, at=item.at + shift)
            except Exception:  # as extract.run files an extractor's failure
                item.ctx.problem(item.location, CORRUPT)
                continue
            if not filed:
                return False
            shift += len(item.ctx.sink.parts) - parts
        # Every part of one message files into the same sink: one look covers them all.
        problems = self.pending[0].ctx.sink.problems if self.pending else []
        return not any(problem.reason == TEXT_LIMIT for problem in problems)

    def cancel(self) -> None:
        """Stop jobs still running (the message's deadline passed, or the daemon stops)."""
        for job in [*self.jobs.values(), *self._unused]:
            job.cancel()

    def _job(self, data: bytes) -> asyncio.Future[list[str]] | None:
        """This PDF's job: started now, or after our previous one (the helper reads one PDF
        at a time); None when the helper is busy with another message's."""
        job = self.jobs.get(data)
        if job is not None:
            return job
        if self._last is not None and not self._last.done():
            job = asyncio.get_running_loop().create_future()
            self._last.add_done_callback(lambda _: self._submit_into(data, job))
        else:
            job = self._submit(data)
            if job is None:
                return None
        job.add_done_callback(_retrieved)
        self.jobs[data] = self._last = job
        return job

    def _submit(self, data: bytes) -> asyncio.Future[list[str]] | None:
        return self.helper.submit(data, max(self.deadline - time.monotonic(), 0.0),
                                         min(self.limits.max_extracted_bytes, LOOP_TEXT_LIMIT))

    def _submit_into(self, data: bytes, job: asyncio.Future[list[str]]) -> None:
        """Start a queued job, its outcome passed on to the future handed out for it."""
        if job.done():  # cancelled meanwhile
            return
        try:
            started = self._submit(data)
        except Exception:  # a loop callback must not raise: the job would never end
            log.warning("pdf_submit_failed", exc_info=True)
            started = None
        if started is None:  # another message's PDF got the helper first
            job.set_exception(_NotTaken())
            return
        job.add_done_callback(lambda _: job.cancelled() and started.cancel())
        started.add_done_callback(lambda _: _pass_on(started, job))


class _NotTaken(Exception):
    """A queued PDF found the helper busy with another message's: read in a thread."""


def _retrieved(job: asyncio.Future[list[str]]) -> None:
    """Mark a job's failure as seen: a job nobody reads (dropped, or its message gone to a
    thread) must not be logged by asyncio as an unretrieved exception."""
    if not job.cancelled():
        job.exception()


def _pass_on(source: asyncio.Future[list[str]], target: asyncio.Future[list[str]]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        target.set_exception(source.exception())  # type: ignore[arg-type]
    else:
        target.set_result(source.result())


async def inspect(begin: Callable[[bytes, Venue], WalkedMessage],
                  finish: Callable[[WalkedMessage], Inspection], raw: bytes,
                  limits: InspectionSettings, helper: pdfhelper.PdfHelper) -> Inspection | None:
    """Inspect a message on the loop, its PDFs read by the helper meanwhile: the walk
    (`begin`) with the PDFs started and taken, the wait, the PDFs' text filed, then the
    detectors (`finish`). None when the message is to be inspected in a thread, with our jobs
    ended or stopped by then; on cancellation (the deadline) they are stopped."""
    deferral = Deferral(limits, helper)
    try:
        deferral.prefetch(raw)
        walked = begin(raw, deferral)
        if walked.elsewhere is None:
            deferral.drop_unused()
            await deferral.wait()
            if deferral.settle():
                return finish(walked)
        await deferral.abandon()  # the thread will want the helper
        return None
    except BaseException:
        deferral.cancel()
        raise


def pdf_parts(content: bytes, limit: int) -> list[bytes]:
    """The decoded bodies of up to `limit` base64 parts declared `application/pdf` that start
    like a PDF, found by searching the raw message (no MIME parse): a guess, checked later."""
    found: list[bytes] = []
    # At most 4 * limit candidates: a message of nothing but such header lines must not cost
    # a search and a decode per line.
    for match in itertools.islice(_PDF_PART.finditer(content), 4 * limit):
        head_start = content.rfind(b"\n--", 0, match.start())
        body_start = content.find(b"\r\n\r\n", match.end())
        if head_start < 0 or body_start < 0:
            continue
        if b"base64" not in content[head_start:body_start].lower():
            continue
        body_end = content.find(b"\r\n--", body_start + 2)
        body = content[body_start + 4:body_end if body_end >= 0 else len(content)]
        try:
            if not binascii.a2b_base64(body.lstrip()[:8]).startswith(b"%PDF-"):
                continue  # decoded in full only if it starts like a PDF
            data = binascii.a2b_base64(body)
        except binascii.Error:
            continue
        if data.startswith(b"%PDF-"):
            found.append(data)
            if len(found) == limit:
                break
    return found
