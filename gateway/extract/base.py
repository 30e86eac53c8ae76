"""The per-message state every extractor shares: limits, the deadline, and what was found.

Extraction is fail-closed. Anything an extractor cannot read (encrypted, corrupt, cut off by a
limit, out of time) becomes a `Problem`, which the inspector turns into an `uninspectable`
finding so the policy holds the message instead of waving it through.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from gateway.config import InspectionSettings
from gateway.model import Attachment, Part

Clock = Callable[[], float]


_INVISIBLE = "\u00ad\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_READ_AS = {**dict.fromkeys(map(ord, _INVISIBLE)), **dict.fromkeys(map(ord, _DASHES), "-")}

# Problem reasons more than one module files or looks for.
TEXT_LIMIT = "extracted text limit"
CORRUPT = "unreadable or corrupt file"


class PdfTextReader(Protocol):
    """Reads a PDF's page texts in another process (`gateway.pdfhelper`), raising one of
    `gateway.pdfhelper.errors` when it cannot. Without one, pypdf reads PDFs in-process."""

    def page_texts(self, data: bytes, timeout: float, max_chars: int) -> list[str]: ...


class Venue(Protocol):
    """Where a message is read when that is the event loop rather than a worker thread.

    There only text, HTML and CSV are read in place; every other file (a PDF, an archive, a
    workbook, whatever it was declared as) could take the whole time budget, so the venue is
    asked to `take` it: True when it has the file read elsewhere meanwhile (a PDF, by the
    helper process), False when the message must be read again in a thread (the walk then
    notes it in `Sink.elsewhere` and offers the venue no further file)."""

    def take(self, ctype: str, data: bytes, ctx: Context, location: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a location could not be (fully) inspected. Both fields are safe to log."""

    location: str
    reason: str


@dataclass(slots=True)
class Budget:
    """Limits for one message; counters grow as the walk goes on."""

    limits: InspectionSettings
    clock: Clock = time.monotonic
    deadline: float = 0.0
    parts: int = 0
    extracted: int = 0
    out_of_time: bool = False

    def __post_init__(self) -> None:
        self.deadline = self.clock() + self.limits.time_budget

    def remaining(self) -> float:
        """Seconds left, for work that cannot check `expired` itself (a helper process)."""
        return max(self.deadline - self.clock(), 0.0)

    def expired(self) -> bool:
        """Cooperative check between parts, pages, sheets and archive members."""
        if not self.out_of_time and self.clock() >= self.deadline:
            self.out_of_time = True
        return self.out_of_time


@dataclass(slots=True)
class Sink:
    """What the walk produced: text parts for the detectors, the file inventory, problems."""

    parts: list[Part] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # The first file type the walk's venue could not take: this walk is incomplete and the
    # message is to be read in a thread (see `Venue`).
    elsewhere: str | None = None


@dataclass(slots=True)
class Context:
    """Where in the message an extractor is working, and the shared budget and sink."""

    budget: Budget
    sink: Sink
    depth: int = 0
    pdf_reader: PdfTextReader | None = None
    venue: Venue | None = None  # None: a worker thread, where every format is read in place

    def deeper(self) -> Context:
        return Context(self.budget, self.sink, self.depth + 1, self.pdf_reader, self.venue)

    def problem(self, location: str, reason: str) -> None:
        self.sink.problems.append(Problem(location, reason))

    def too_deep(self, location: str) -> bool:
        if self.depth > self.budget.limits.max_depth:
            self.problem(location, "nesting depth limit")
            return True
        return False

    def out_of_time(self, location: str) -> bool:
        if self.budget.expired():
            self.problem(location, "time budget exceeded")
            return True
        return False

    def take_part(self, location: str) -> bool:
        """Count one more part; False (and a problem) once `max_parts` is passed."""
        budget = self.budget
        budget.parts += 1
        if budget.parts > budget.limits.max_parts:
            if budget.parts == budget.limits.max_parts + 1:
                self.problem(location, "part count limit")
            return False
        return True

    def add_text(self, text: str, location: str, *, kind: str = "attachment",
                 content_type: str = "text/plain", filename: str | None = None,
                 at: int | None = None) -> bool:
        """Hand text to the detectors, within `max_extracted_bytes`; False when cut off.
        `at`: the part's place among the parts (a PDF read later keeps its place)."""
        if not text.isascii():
            # Full-width digits and compatibility forms (５３６-２２-８８４１) read as ASCII;
            # invisible characters inside a number (zero-width space, soft hyphen, word
            # joiner) go, and dashes of every kind (non-breaking hyphen, en dash, minus)
            # become "-", so "524\u200b-61\u201133 78" is the number a reader sees.
            text = unicodedata.normalize("NFKC", text).translate(_READ_AS)
        budget = self.budget
        room = budget.limits.max_extracted_bytes - budget.extracted
        cut = len(text) > room
        if cut:
            text = text[:max(room, 0)]
            self.problem(location, TEXT_LIMIT)
        budget.extracted += len(text)
        if text.strip():
            part = Part(text, location, kind, content_type, filename)
            if at is None:
                self.sink.parts.append(part)
            else:
                self.sink.parts.insert(at, part)
        return not cut


def attachment_location(prefix: str, name: str | None) -> str:
    """`attachment grades.xlsx`, or `attachment report.zip/inner.csv` inside an archive."""
    label = name or "(unnamed)"
    if prefix.startswith("attachment "):
        return f"{prefix}/{label}"
    return f"{prefix}, attachment {label}" if prefix else f"attachment {label}"
