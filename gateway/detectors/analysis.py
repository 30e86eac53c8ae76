"""One scan of one part, resolved into the facts every detector reads.

The part's text is encoded once (UTF-8, line breaks and tabs turned into spaces and the
indentation after a line break dropped, so a name split across lines still matches) and
scanned once by each engine. Here the raw hits become facts: which known student numbers and
names occur (with word boundaries), which format numbers stand near a student keyword, which
SSNs are valid and have a keyword, which dates stand near a birth keyword, and where
record-category words are. Detectors then only combine these facts. All offsets are byte
offsets into `data`.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.model import Part

NEAR = 300  # student ↔ record content, SSN keyword (Microsoft's SSN definition uses 300)
RAW_SSN_NEAR = 100  # nine undelimited digits need their keyword closer
KEY_BEFORE, KEY_AFTER = 40, 20  # student-number keyword just before (or after) the number
NEG_BEFORE = 25  # "order #", "invoice" right before a number: not a student number
BIRTH_BEFORE, BIRTH_AFTER = 60, 20
FAKE_SSNS = frozenset({"078051120", "219099999", "123456789"})

_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_DIGITS = frozenset(b"0123456789")

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class StudentIndex:
    """The literals: index → (kind, person_ids), kind is "number" or "name"."""

    kinds: tuple[str, ...]
    pids: tuple[tuple[str, ...], ...]


@dataclass(slots=True)
class Mention:
    """One identified item in a part: where, the raw value, and the students it names."""

    start: int
    end: int
    value: str
    pids: tuple[str, ...] = ()
    label: str = ""

    @property
    def key(self) -> str | tuple[str, ...]:
        if not self.pids:
            return "num:" + self.value
        return self.pids[0] if len(self.pids) == 1 else self.pids


@dataclass(slots=True)
class Analysis:
    part: Part
    data: bytes
    known: list[Mention] = field(default_factory=list)
    names: list[Mention] = field(default_factory=list)
    formatted: list[Mention] = field(default_factory=list)
    ssns: list[Mention] = field(default_factory=list)
    dates: list[Mention] = field(default_factory=list)
    categories: list[Mention] = field(default_factory=list)
    lexicon: dict[str, list[Mention]] = field(default_factory=dict)

    def identities(self) -> list[Mention]:
        """Known numbers, format numbers and directory names: who the part is about."""
        return sorted(self.known + self.formatted + self.names, key=lambda m: m.start)

    def record_content(self) -> list[Mention]:
        """What makes a name next to it a record: numbers, SSNs, birth dates, categories."""
        return sorted(self.known + self.formatted + self.ssns + self.dates + self.categories,
                      key=lambda m: m.start)


def prepare(text: str) -> bytes:
    """UTF-8, without the indentation that starts a line, and with line breaks and tabs as
    spaces.

    A CRLF line end is two spaces, an LF one, and a wrapped line that goes on indented
    (folded or quoted text: "Alex\\r\\n   Jones") loses its indentation first: the
    directory's names are matched with one or two spaces between their words
    (`gateway.inspect`), so every such wrap is still Alex Jones. None of the detectors'
    patterns needs the blanks that start a line (they use `\\s+`, `\\s*` or one exact space
    between words); offsets are into this `data` only. The replacements are the fastest there
    are; the indentation pass looks only at line breaks (a search for runs of blanks is
    several times slower: spaces are everywhere)."""
    data = text.encode("utf-8", "replace")
    if b"\n" in data:
        data = _INDENTATION.sub(b"\n", data)
    for ws in (b"\r", b"\n", b"\t"):  # replace() is several times faster than translate()
        if ws in data:
            data = data.replace(ws, b" ")
    return data


_INDENTATION = re.compile(rb"\n[ \t]+")


def analyse(part: Part, data: bytes, hits: Sequence[tuple[str, str, int, int]],
            literal_hits: Sequence[tuple[int, int, int]], directory: StudentIndex,
            ssn_heading: bool = False) -> Analysis:
    """Resolve raw hits (kind, label, start, end) and literal hits into an Analysis.

    `ssn_heading`: the message's Subject names an SSN, which counts as a keyword at the
    start of this part (a body: the Subject is its heading)."""
    a = Analysis(part, data)
    spans: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for kind, label, start, end in hits:
        spans[kind].append((start, end, label))
    strong = _starts(spans["kw_strong"])
    keywords = _starts(spans["kw_strong"] + spans["kw_weak"])
    negators = _starts(spans["neg"])
    _literals(a, literal_hits, directory, strong, negators)
    _formatted(a, spans["snum_fmt"], keywords, strong, negators)
    ssn_keys = _starts(spans["kw_ssn"])
    _ssns(a, spans, [0, *ssn_keys] if ssn_heading else ssn_keys, negators)
    _dates(a, spans["date"], _starts(spans["kw_birth"]))
    a.categories = [Mention(s, e, label, label=label) for s, e, label in spans["cat"]
                    if not _ordinary_use(data, label, s, e)]
    for s, e, label in spans["lex"]:
        a.lexicon.setdefault(label, []).append(Mention(s, e, _text(data, s, e), label=label))
    return a


def _literals(a: Analysis, hits: Sequence[tuple[int, int, int]], directory: StudentIndex,
              strong: list[int], negators: list[int]) -> None:
    data = a.data
    for index, start, end in hits:
        if not _bounded(data, start, end):
            continue
        mention = Mention(start, end, _text(data, start, end), directory.pids[index])
        if directory.kinds[index] == "name":
            a.names.append(mention)
        elif not _embedded(data, start, end) and not _negated(start, end, strong, negators):
            a.known.append(mention)


def _formatted(a: Analysis, spans: list[tuple[int, int, str]], keywords: list[int],
               strong: list[int], negators: list[int]) -> None:
    taken = {(m.start, m.end) for m in a.known}
    for start, end, _ in spans:
        if (start, end) in taken or _embedded(a.data, start, end):
            continue
        keyed = (any_in(keywords, start - KEY_BEFORE, start)
                 or any_in(keywords, end, end + KEY_AFTER))
        if keyed and not _labelled_otherwise(start, negators, strong):
            a.formatted.append(Mention(start, end, _text(a.data, start, end)))


def _ssns(a: Analysis, spans: dict[str, list[tuple[int, int, str]]], keys: list[int],
          negators: list[int]) -> None:
    numbers = [(s, e, NEAR) for s, e, _ in spans["ssn"] + spans["ssn_split"]]
    numbers += [(s, e, RAW_SSN_NEAR) for s, e, _ in spans["ssn_raw"]]
    for start, end, near in sorted(numbers):
        value = _text(a.data, start, end)
        if (valid_ssn(value) and any_in(keys, start - near, end + near)
                and not _labelled_otherwise(start, negators, keys)):
            a.ssns.append(Mention(start, end, value))


def _labelled_otherwise(start: int, negators: list[int], keys: list[int]) -> bool:
    """The number's own label says it is something else: "Employee ID 524613378", "Invoice
    …", "Lot number …", "Chromebook asset ID …" right before it, with no keyword of the
    detector's own ("SSN", "student") between that label and the number. The nearest label
    wins: "Employee ID 524613378 (HR never needs your SSN)" is an employee ID."""
    i = bisect_right(negators, start) - 1
    if i < 0 or negators[i] < start - NEG_BEFORE:
        return False
    return not any_in(keys, negators[i] + 1, start)


def valid_ssn(value: str) -> bool:
    """SSA-issuable ranges only, and not one of the published fakes."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) != 9 or digits in FAKE_SSNS:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return (area not in ("000", "666") and not area.startswith("9")
            and group != "00" and serial != "0000")


def _dates(a: Analysis, spans: list[tuple[int, int, str]], birth: list[int]) -> None:
    for start, end, _ in spans:
        if any_in(birth, start - BIRTH_BEFORE, start) or any_in(birth, end, end + BIRTH_AFTER):
            a.dates.append(Mention(start, end, _text(a.data, start, end)))


# What follows a category word when it is not about a student's record: "Grades 6-8 band
# concert", "Grade: 9" (a year group, not a mark), "attendance at the science fair" (an event).
_YEAR_GROUP = re.compile(rb"\s*[:=]?\s*(\d{1,2}|k|pre-?k)\b(?:(?:\s*(?:-|to|through|and)\s*)"
                         rb"(\d{1,2}|k)\b)?(?!\s*%|[.,]\d)", re.IGNORECASE)
_EVENT = re.compile(rb"\s+(?:at|for)\s+(?:the|our|this|tonight|today|last|next|each|every|"
                    rb"all)\b", re.IGNORECASE)


def _ordinary_use(data: bytes, label: str, start: int, end: int) -> bool:
    if label == "grades" and data[start:start + 5].lower() == b"grade":
        after = data[end:end + 4].lstrip(b" :=")[:1]
        if not (after.isdigit() or after in (b"k", b"K", b"p", b"P")):
            return False  # a letter grade or a word: no regex needed (a roster has many)
        m = _YEAR_GROUP.match(data, end)
        return m is not None and all(g is None or not g.isdigit() or 0 < int(g) <= 12
                                     for g in m.groups())
    if label == "attendance" and data[end - 10:end].lower() == b"attendance":
        return _EVENT.match(data, end) is not None
    return False


def near(items: Sequence[Mention], starts: list[int], m: Mention,
         width: int = NEAR) -> list[Mention]:
    """Items (sorted by start, with `starts` their start offsets) within `width` of `m`."""
    lo = bisect_left(starts, m.start - width)
    out = []
    for i in range(lo, len(items)):  # not items[lo:]: a copy of the tail per call is O(n²)
        item = items[i]
        if item.start > m.end + width:
            break
        if item is not m and (item.start, item.end) != (m.start, m.end):
            out.append(item)
    return out


def with_students(a: Analysis, anchors: Sequence[Mention]
                  ) -> tuple[list[Mention], list[Mention]]:
    """The anchors that have an identified student nearby, and those students' mentions:
    a date or a category word counts only next to someone it is about."""
    people = a.identities()
    starts = [m.start for m in people]
    found: list[Mention] = []
    students: list[Mention] = []
    for anchor in anchors:
        nearby = near(people, starts, anchor)
        if nearby:
            found.append(anchor)
            students.extend(nearby)
    return found, students


def any_in(starts: list[int], lo: int, hi: int) -> bool:
    i = bisect_left(starts, lo)
    return i < len(starts) and starts[i] <= hi


def _starts(spans: list[tuple[int, int, str]]) -> list[int]:
    return sorted(s for s, _, _ in spans)


def _bounded(data: bytes, start: int, end: int) -> bool:
    return ((start == 0 or data[start - 1] not in _ALNUM)
            and (end >= len(data) or data[end] not in _ALNUM))


def _embedded(data: bytes, start: int, end: int) -> bool:
    """Part of a longer separated number (a phone number, 555-482913, 482913.25). A number
    written in groups ("482 913") is part of a longer one with a space too: "555 482 913"."""
    seps = b"-./" if data[start:end].isalnum() else b"-./ "
    before = start >= 2 and data[start - 1] in seps and data[start - 2] in _DIGITS
    after = end + 1 < len(data) and data[end] in seps and data[end + 1] in _DIGITS
    return before or after


def _negated(start: int, end: int, strong: list[int], negators: list[int]) -> bool:
    """"Order #…", "invoice …" right before: not a student number, unless "student" says so."""
    return (any_in(negators, start - NEG_BEFORE, start)
            and not any_in(strong, start - KEY_BEFORE, end + KEY_AFTER))


def _text(data: bytes, start: int, end: int) -> str:
    return data[start:end].decode("utf-8", "replace")
