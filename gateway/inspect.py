"""Content inspection: raw message bytes → `Inspection` (findings, attachments, header facts).

`build_inspector` compiles everything once per configuration (the pattern table, the directory's
student numbers and names); `Inspector.inspect` is then pure, synchronous, thread-safe and never
raises: any failure becomes an `uninspectable` finding with `complete=False`, so the policy holds
the message rather than letting it through unread. The message is parsed once; each text part is
encoded once and scanned once per engine; the detectors share that one scan.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from gateway.config import InspectionSettings, Settings
from gateway.detectors import PART_DETECTORS, lexicon, media, uninspectable
from gateway.detectors.analysis import NEAR, Analysis, StudentIndex, analyse, prepare
from gateway.detectors.patterns import table
from gateway.detectors.patternset import LiteralSet, PatternSet, TooManyHits, best_engine
from gateway.extract.base import Budget, Clock, Context, PdfTextReader, Problem, Sink, Venue
from gateway.extract.message import walk_message
from gateway.extract.table import render_pasted
from gateway.mime.headers import Headers, headers
from gateway.mime.parse import parse
from gateway.model import Finding, Inspection, Part
from gateway.pdfhelper import client as pdfhelper

log = structlog.get_logger("gateway.inspect")
CONTEXT_KINDS = frozenset({"kw_strong", "kw_weak", "neg", "kw_ssn", "kw_birth", "cat",
                           "table"})
CONTEXT_WIDTH = NEAR + 100  # every proximity rule, plus room for the longest keyword


class StudentSource(Protocol):
    def students(self) -> Iterable[tuple[str, str]]: ...


class Inspector:
    """Compiled detectors for one configuration. Picklable: process pools rebuild it cheaply."""

    def __init__(self, limits: InspectionSettings, student_number_pattern: str,
                 students: Sequence[tuple[str, str]], lexicons: Mapping[str, Sequence[str]],
                 *, engine: str | None = None, clock: Clock = time.monotonic):
        self.limits = limits
        self.clock = clock
        rows = table(student_number_pattern, {k: tuple(v) for k, v in lexicons.items()},
                     combine_terms=(engine or best_engine()) == "re")
        anchors = [r for r in rows if r[0] not in CONTEXT_KINDS]
        context = [r for r in rows if r[0] in CONTEXT_KINDS]
        self._labels = [(kind, label) for kind, label, _ in anchors]
        self._context_labels = [(kind, label) for kind, label, _ in context]
        self.patterns = PatternSet([rx for _, _, rx in anchors], engine)
        self.context = PatternSet([rx for _, _, rx in context], engine)
        literals, self.directory = _directory_literals(students)
        self.literals = LiteralSet(literals, engine)
        self.pdfium = pdfhelper.wanted(limits)

    @property
    def engine(self) -> str:
        return self.patterns.engine

    def inspect(self, raw: bytes) -> Inspection:
        """Never raises; see the module docstring."""
        return self.finish(self.begin(raw))

    def begin(self, raw: bytes, venue: Venue | None = None) -> WalkedMessage:
        """The walk: every part read, its text ready for the detectors. `venue`: the event
        loop's, when the message is read there (`gateway.extract.base.Venue`); the result then
        says whether it has to be read again in a thread (`WalkedMessage.elsewhere`). Never
        raises."""
        try:
            return self._walk(raw, venue)
        except Exception as exc:  # a bug or hostile input we did not foresee: fail closed
            return WalkedMessage(None, Headers(), type(exc).__name__)

    def finish(self, walked: WalkedMessage) -> Inspection:
        """The detectors over the parts `begin` found. Never raises."""
        try:
            if walked.error is None and walked.ctx is not None:
                return self._scan(walked.ctx, walked.head)
            error = walked.error or "no context"
        except Exception as exc:
            error = type(exc).__name__
        log.warning("inspection_failed", error=error)
        finding = Finding(uninspectable.name, 1, "message (internal error)", 1,
                          frozenset(), "internal error")
        return Inspection(findings=(finding,), complete=False)

    @property
    def pdf_reader(self) -> PdfTextReader | None:
        """This process's PDF helper when PDFium reads PDFs (resolved per process: a pickled
        inspector in another process uses that process's helper), else None: pypdf."""
        return pdfhelper.shared() if self.pdfium else None

    def _walk(self, raw: bytes, venue: Venue | None) -> WalkedMessage:
        ctx = Context(Budget(self.limits, self.clock), Sink(), pdf_reader=self.pdf_reader,
                      venue=venue)
        head = Headers()
        try:
            msg = parse(raw)
            head = headers(msg)
            walk_message(msg, ctx, subject=head.subject)
        except RecursionError:
            ctx.problem("message", "nesting depth limit")
        return WalkedMessage(ctx, head)

    def _scan(self, ctx: Context, head: Headers) -> Inspection:
        findings: list[Finding] = []
        headed = self._ssn_subjects(ctx.sink.parts)
        for part in ctx.sink.parts:
            if ctx.out_of_time(part.location):
                break
            heading = bool(headed) and any(part.location.startswith(prefix + "body")
                                           for prefix in headed)
            try:
                findings.extend(self.scan_part(part, ssn_heading=heading))
            except TooManyMatches:
                ctx.problem(part.location, "match count limit")
        findings.extend(media.scan_attachments(ctx.sink.attachments))
        problems = _unique(ctx.sink.problems)
        findings.extend(uninspectable.from_problems(problems))
        return Inspection(tuple(findings), tuple(ctx.sink.attachments), head.subject,
                          head.message_id, head.from_header, head.has_dkim_signature,
                          complete=not problems, reply_to=head.reply_to)

    def _ssn_subjects(self, parts: Sequence[Part]) -> list[str]:
        """The location prefixes of the messages (the outer one: "") whose Subject names an
        SSN: "Subject: SSN for the new aide" with the number alone in the body."""
        out = []
        for part in parts:
            if part.kind == "subject" and _may_name_ssn(part.text) and any(
                    self._context_labels[i][0] == "kw_ssn"
                    for i, _, _ in self.context.scan(prepare(part.text))):
                out.append(part.location[:-len("subject")])
        return out

    def analyse(self, part: Part, ssn_heading: bool = False) -> Analysis | None:
        """Two passes: anchors (numbers, dates, names, lexicon terms) over the whole part, then
        context words (keywords, categories) only around the anchors. Keywords are common in
        ordinary prose and numbers are not, so this keeps the hit volume, and the time spent
        in Python per hit, small; within the detectors' distances the result is the same.

        A body whose context holds a record column header next to a delimiter ("Name,SSN,")
        may carry a pasted table: it is read again with each row's values labelled
        (`render_pasted`), so every value in an SSN column counts, not only those near the
        header. Most bodies have none and pay nothing.

        None when the part has no anchor at all (most parts of most mail): every detector
        reports what it finds near an anchor, so none of them has anything to look at."""
        found = self._analyse(part, part.text, ssn_heading)
        if isinstance(found, str):  # a pasted table
            found = self._analyse(part, found, ssn_heading, tables=False)
        return found if not isinstance(found, str) else None

    def _analyse(self, part: Part, text: str, ssn_heading: bool,
                 tables: bool = True) -> Analysis | str | None:
        """The Analysis, or the text rendered with its tables when there are some to render
        (and `tables`)."""
        data = prepare(text)
        labels, context_labels = self._labels, self._context_labels
        # Analysing each match costs Python time; past MAX_MATCHES_PER_PART, the part could
        # outrun the time budget by tens of seconds. Fail closed instead (held as
        # uninspectable). The scans themselves stop at a multiple of it (raw matches, before
        # overlapping ones are merged), so 8 MB of numbers is not collected in full first.
        try:
            raw_hits = self.patterns.scan(data, limit=RAW_MATCH_LIMIT)
            literal_hits = self.literals.scan(data, limit=RAW_MATCH_LIMIT)
        except TooManyHits:
            raise TooManyMatches() from None
        if len(raw_hits) + len(literal_hits) > MAX_MATCHES_PER_PART:
            raise TooManyMatches()
        if not raw_hits and not literal_hits:
            return None
        hits = [(*labels[i], s, e) for i, s, e in raw_hits]
        windows = _windows([(s, e) for _, _, s, e in hits] + [(s, e) for _, s, e in literal_hits],
                           len(data))
        if windows:
            hits += [(*context_labels[i], s, e)
                     for i, s, e in self.context.scan_windows(data, windows)]
        if tables and part.content_type in _RAW_TEXT and any(h[0] == "table" for h in hits):
            rendered = render_pasted(text, ",;|")
            if rendered != text:
                return rendered
        return analyse(part, data, hits, literal_hits, self.directory, ssn_heading)

    def scan_part(self, part: Part, ssn_heading: bool = False) -> list[Finding]:
        """`ssn_heading`: the message's Subject names an SSN (see `analyse`)."""
        a = self.analyse(part, ssn_heading)
        if a is None:
            return []
        found = [f for det in PART_DETECTORS if (f := det.scan(a)) is not None]
        return found + lexicon.scan_all(a)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["clock"] = None if self.clock is time.monotonic else self.clock
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.clock is None:
            self.clock = time.monotonic


# Parts whose tables are not yet rendered with their labels (attachments' tables are).
_RAW_TEXT = frozenset({"text/plain", "text/html"})
MAX_MATCHES_PER_PART = 200_000
RAW_MATCH_LIMIT = 4 * MAX_MATCHES_PER_PART


@dataclass(frozen=True, slots=True)
class WalkedMessage:
    """A message walked but not yet scanned (`Inspector.begin`), or why the walk failed."""

    ctx: Context | None
    head: Headers
    error: str | None = None

    @property
    def elsewhere(self) -> str | None:
        """The file type the walk's venue could not take: read the message in a thread."""
        return self.ctx.sink.elsewhere if self.ctx is not None else None


class TooManyMatches(Exception):
    """A part with more pattern matches than can be analysed within the time budget."""


def build_inspector(settings: Settings, directory: StudentSource,
                    lexicons: Mapping[str, Sequence[str]], *,
                    engine: str | None = None) -> Inspector:
    """The contract entry point (see gateway/runtime.py)."""
    students = tuple(directory.students())
    inspector = Inspector(settings.inspection, settings.district.student_number_pattern,
                          students, lexicons, engine=engine)
    log.info("inspector_built", engine=inspector.engine, students=len(students),
             lexicons=len(lexicons))
    return inspector


def _directory_literals(students: Sequence[tuple[str, str]]) -> tuple[list[bytes], StudentIndex]:
    """Student numbers, "First Last" and "Last, First" names → literals and who they name."""
    index: dict[tuple[str, bytes], list[str]] = {}
    for pid, full_name in students:
        pid = str(pid).strip()
        if pid:
            for spelling in _number_spellings(pid):
                index.setdefault(("number", spelling.lower().encode()), []).append(pid)
        words = str(full_name or "").split()
        if len(words) >= 2:
            for variant in _spellings(words):
                index.setdefault(("name", variant.lower().encode()), []).append(pid)
    keys = list(index)
    directory = StudentIndex(tuple(k for k, _ in keys),
                          tuple(tuple(dict.fromkeys(index[k])) for k in keys))
    return [lit for _, lit in keys], directory


# How people write a long number so it can be read: "482-913", "482 913", "482.913" (groups
# of three from either end, or two halves). Only the roster's own numbers get these
# spellings: an exact match on a number the district issued identifies the student, where a
# format pattern loosened the same way would also match phone numbers, dates and lot numbers.
_SEPARATORS = ("-", " ", ".")
_SEPARATED_DIGITS = range(5, 13)


def _number_spellings(number: str) -> list[str]:
    """The number as written in the directory, and, when it is all digits, with a separator
    between its groups (see `_SEPARATORS`). `gateway.detectors.analysis` still rejects a
    spelling that is part of a longer number ("555-482-913", "482 913 7")."""
    if not (number.isascii() and number.isdigit() and len(number) in _SEPARATED_DIGITS):
        return [number]
    n = len(number)
    cuts = {tuple(range(3, n, 3)), tuple(range(n % 3 or 3, n, 3))}
    if n % 2 == 0:
        cuts.add((n // 2,))
    out = [number]
    for positions in sorted(cuts):
        groups = [number[a:b] for a, b in zip((0, *positions), (*positions, n), strict=True)]
        out += [sep.join(groups) for sep in _SEPARATORS]
    return out


_SSN_HINTS = ("ss", "s.", "s ", "soc", "tax", "segur")  # in every SSN keyword


def _may_name_ssn(subject: str) -> bool:
    """A cheap test before the pattern scan: can this Subject hold an SSN keyword?"""
    lowered = subject.lower()
    return any(hint in lowered for hint in _SSN_HINTS)


def _spellings(words: list[str]) -> list[str]:
    """"First Last" and "Last, First", each also with two spaces at one break: a CRLF line
    end wrapping the name (two bytes, both made spaces by `prepare`, which drops the next
    line's indentation) or a doubled space."""
    out = []
    for names in (words, [words[-1] + ",", *words[:-1]]):
        out.append(" ".join(names))
        out += [" ".join(names[:i]) + "  " + " ".join(names[i:]) for i in range(1, len(names))]
    return out


def _windows(spans: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """Merged byte ranges around every anchor, wide enough for every proximity rule."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        lo, hi = max(start - CONTEXT_WIDTH, 0), min(end + CONTEXT_WIDTH, size)
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
