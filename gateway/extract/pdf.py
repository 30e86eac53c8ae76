"""PDF text: PDFium in a helper process when installed, else pypdf in-process.

PDFium (pypdfium2, installed where it has wheels) reads a page about 2.5x faster than pypdf but
is native code, so it runs in `gateway.pdfhelper`, a process the daemon kills at the inspection
deadline and restarts after a crash; the walk is handed it as `Context.pdf_reader`. The PDF it
crashed on is read by pypdf instead. pypdf is pure Python: it runs here, page by page, with the
deadline checked between pages and inside its content-stream parser. `inspection.pdf_engine`
picks one (default `auto`).

PDFs encrypted with only an owner password (print/copy restrictions) open with the empty user
password and are inspected; anything needing a real password is `uninspectable`. A PDF without
a text layer (a scan) yields no text and no finding: there is no OCR here.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager

from pypdf import PdfReader

from gateway.extract.base import Context, PdfTextReader
from gateway.pdfhelper import errors as pdfhelper

name = "pdf"
TYPES = ("application/pdf",)

logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings can quote document content


def extract(data: bytes, ctx: Context, location: str, charset: str | None = None) -> None:
    if ctx.pdf_reader is not None:
        _extract_pdfium(ctx.pdf_reader, data, ctx, location)
    else:
        _extract_pypdf(data, ctx, location)


def _extract_pdfium(reader: PdfTextReader, data: bytes, ctx: Context, location: str) -> None:
    budget = ctx.budget
    room = budget.limits.max_extracted_bytes - budget.extracted
    outcome: list[str] | Exception
    try:
        outcome = reader.page_texts(data, budget.remaining(), max(room, 0))
    except (pdfhelper.HelperFailed, pdfhelper.NeedsPassword, pdfhelper.Unreadable) as exc:
        outcome = exc
    if not file_outcome(outcome, ctx, location):
        # PDFium crashed on this file (or cannot run here): pure-Python pypdf cannot take the
        # daemon down, so it reads this one, within what is left of the deadline.
        _extract_pypdf(data, ctx, location)


def file_outcome(outcome: list[str] | BaseException, ctx: Context, location: str,
                 at: int | None = None) -> bool:
    """File what the PDF helper answered (page texts or an exception) as text or a problem;
    False when the helper failed and pypdf is to read the file instead. `at`: the part's
    place among the text parts, for a PDF read after the parts that follow it."""
    if isinstance(outcome, pdfhelper.HelperTimeout):
        ctx.budget.out_of_time = True
        ctx.problem(location, "time budget exceeded")
    elif isinstance(outcome, pdfhelper.NeedsPassword):
        ctx.problem(location, "encrypted")
    elif isinstance(outcome, pdfhelper.HelperFailed):
        return False
    elif isinstance(outcome, BaseException):
        raise outcome  # pdfhelper.Unreadable: extract.run() files the part as unreadable (held)
    else:
        ctx.add_text("\n".join(outcome), location, content_type="application/pdf", at=at)
    return True


def _extract_pypdf(data: bytes, ctx: Context, location: str) -> None:
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted and not _unlock(reader):
        ctx.problem(location, "encrypted")
        return
    pages: list[str] = []
    with _deadline(ctx):
        for number, page in enumerate(reader.pages, start=1):
            where = f"{location}, page {number}"
            if ctx.out_of_time(where):
                break
            try:
                pages.append(page.extract_text() or "")
            except Exception:
                if ctx.out_of_time(where):  # the deadline stopped pypdf inside the page
                    break
                raise
    ctx.add_text("\n".join(pages), location, content_type="application/pdf")


class _TokenBudget(int):
    """pypdf's per-stream token budget (`stream_parsing_work_maximum_count`) that also runs
    out at the inspection deadline.

    One page's content stream can inflate from a few KB of mail to tens of MB that pypdf
    parses in pure Python (about 100k tokens a second), with no way to interrupt it between
    pages. pypdf counts the budget down with `-=` and tests `< 0` once per token; this int
    keeps its count and reports "exhausted" once the deadline has passed (checked every 1024
    tokens), so pypdf raises its own LimitReachedError.
    """

    expired: Callable[[], bool]

    def __new__(cls, value: int, expired: Callable[[], bool]) -> _TokenBudget:
        budget = super().__new__(cls, value)
        budget.expired = expired
        return budget

    def __sub__(self, other: object) -> _TokenBudget:
        return _TokenBudget(int(self) - int(other), self.expired)  # type: ignore[call-overload]

    def __lt__(self, other: object) -> bool:
        value = int(self)
        return value < other or (value & 1023 == 0 and self.expired())  # type: ignore[operator]


def _deadline(ctx: Context) -> AbstractContextManager[object]:
    try:
        from pypdf import apply_configuration, get_configuration  # noqa: PLC0415 - pypdf>=6
    except ImportError:  # pypdf < 6: no configuration API, pages are still checked in between
        return contextlib.nullcontext()
    tokens = get_configuration().stream_parsing_work_maximum_count
    return apply_configuration(
        stream_parsing_work_maximum_count=_TokenBudget(tokens, ctx.budget.expired))


def _unlock(reader: object) -> bool:
    try:
        return bool(reader.decrypt(""))  # type: ignore[attr-defined]
    except Exception:  # pypdf raises several types, including for missing crypto support
        return False
