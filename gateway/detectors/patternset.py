"""Multi-pattern matching engines: Hyperscan when its wheel is there, RE2, then Python `re`.

All detectors share one scan of a part: every regex in one `PatternSet`, every directory
literal (student numbers, names) in one `LiteralSet`. Hyperscan runs the whole set in a single
pass (hundreds of MB/s); RE2 pre-filters with a `Set` and then runs only the patterns present;
Python `re` runs the patterns one after another (the portable, slow baseline). All three return
the same hits: `(pattern index, start, end)` byte offsets, non-overlapping per pattern, sorted.

Patterns are ASCII-caseless; data is UTF-8 bytes. A pattern Hyperscan cannot compile (say, a
look-behind in the configured student-number format) quietly runs on Python `re` instead.
Both sets pickle cheaply (Hyperscan databases are serialised, not recompiled).
"""

from __future__ import annotations

import contextlib
import re
import threading
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any

try:  # optional accelerators: the gateway works (slowly) without them
    import hyperscan
except ImportError:  # pragma: no cover - depends on the platform's wheels
    hyperscan = None
try:
    import re2
except ImportError:  # pragma: no cover
    re2 = None
import ahocorasick

Hit = tuple[int, int, int]  # (pattern index, start, end)
ENGINES = ("hyperscan", "re2", "re")
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]")  # look-around, backreferences


# The prefilter (see `_build_hyperscan`) pays only when nothing matches, and then saves a few
# percent; when something does, it has scanned up to the first match for nothing. A long text
# (a newsletter, a pasted report) nearly always matches something (a date, a number, one of the
# harassment list's hundreds of words), so there it cost up to a whole extra scan: 130 KB of
# prose took 1.3 times as long. Short parts, most of them with no match at all, keep it.
PREFILTER_MAX = 16 * 1024


def best_engine() -> str:
    if hyperscan is not None:
        return "hyperscan"
    return "re2" if re2 is not None else "re"


class TooManyHits(Exception):
    """A scan passed its caller's match limit and was stopped there."""


class _Scanner:
    """What both matcher kinds share: a raw `_scan`, and scanning only some windows of data."""

    def _scan(self, data: bytes, limit: int | None = None) -> list[Hit]:
        raise NotImplementedError

    def scan_windows(self, data: bytes, windows: Sequence[tuple[int, int]]) -> list[Hit]:
        """Matches inside the given byte ranges only (whole data when they cover most of it)."""
        if sum(hi - lo for lo, hi in windows) * 2 > len(data):
            return self.scan(data)
        # One scan over the windows joined by a separator: per-call overhead dominates otherwise.
        joined = b"\n".join(data[lo:hi] for lo, hi in windows)
        offsets, at = [], 0
        for lo, hi in windows:
            offsets.append(at)
            at += hi - lo + 1
        hits: list[Hit] = []
        for i, s, e in self._scan(joined):
            k = bisect_right(offsets, s) - 1
            lo, hi = windows[k]
            if e - offsets[k] <= hi - lo:  # not across the separator
                hits.append((i, s - offsets[k] + lo, e - offsets[k] + lo))
        return _normalise(hits)

    def scan(self, data: bytes, limit: int | None = None) -> list[Hit]:
        """All matches; TooManyHits once the raw (unmerged) matches pass `limit`, which
        stops a Hyperscan scan there instead of collecting millions of them first."""
        return _normalise(self._scan(data, limit))



class PatternSet(_Scanner):
    """Regexes compiled together; `scan(data)` returns every pattern's matches at once."""

    def __init__(self, patterns: Sequence[str], engine: str | None = None):
        self.patterns = tuple(patterns)
        self.engine = engine or best_engine()
        self._build()

    def __getstate__(self) -> dict[str, Any]:
        return {"patterns": self.patterns, "engine": self.engine}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.patterns, self.engine = state["patterns"], state["engine"]
        self._build()

    def _build(self) -> None:
        self._local = threading.local()
        self._hs = None
        self._hs_any = None
        self._re2: list[tuple[int, Any]] = []
        self._re2_set = None
        pending = list(range(len(self.patterns)))
        if self.engine == "hyperscan" and hyperscan is not None:
            pending = self._build_hyperscan(pending)
        if self.engine in ("hyperscan", "re2") and re2 is not None and pending:
            pending = self._build_re2(pending)
        self._py = [(i, re.compile(self.patterns[i].encode(), re.IGNORECASE)) for i in pending]

    def _build_hyperscan(self, ids: list[int]) -> list[int]:
        flags = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SOM_LEFTMOST
        try:  # usually every pattern compiles; only on failure find the ones that do not
            self._hs = _hs_database([self.patterns[i].encode() for i in ids], ids, flags)
            good = ids
        except hyperscan.error:
            good = [i for i in ids if _hs_compiles(self.patterns[i])]
            if good:
                self._hs = _hs_database([self.patterns[i].encode() for i in good], good, flags)
        if good:
            # The same patterns without start-of-match tracking, which costs Hyperscan about
            # half its time: scanned first, and the full scan runs only when it finds
            # anything (most parts of most mail match no pattern at all).
            with contextlib.suppress(hyperscan.error):
                self._hs_any = _hs_database([self.patterns[i].encode() for i in good], good,
                                            hyperscan.HS_FLAG_CASELESS
                                            | hyperscan.HS_FLAG_SINGLEMATCH)
        compiled = set(good)
        return [i for i in ids if i not in compiled]

    def _build_re2(self, ids: list[int]) -> list[int]:
        rest = []
        search = re2.Set.SearchSet(re2.Options())
        for i in ids:
            if _NOT_RE2.search(self.patterns[i]):
                rest.append(i)
                continue
            try:
                compiled = re2.compile(b"(?i)" + self.patterns[i].encode())
                search.Add(b"(?i)" + self.patterns[i].encode())
            except Exception:  # RE2 lacks look-around and backreferences
                rest.append(i)
                continue
            self._re2.append((i, compiled))
        if self._re2:
            search.Compile()
            self._re2_set = search
        return rest

    def _scan(self, data: bytes, limit: int | None = None) -> list[Hit]:
        hits: list[Hit] = []
        if self._hs is not None and (self._hs_any is None or len(data) > PREFILTER_MAX
                                     or _hs_matches(self._hs_any, self._local, data)):
            _hs_scan(self._hs, self._local, data, hits, limit)
        if self._re2_set is not None:
            present = set(self._re2_set.Match(data) or ())
            for n, (i, rx) in enumerate(self._re2):
                if n in present:
                    hits.extend((i, m.start(), m.end()) for m in rx.finditer(data))
        for i, rx in self._py:
            hits.extend((i, m.start(), m.end()) for m in rx.finditer(data))
        return hits


class LiteralSet(_Scanner):
    """Many fixed strings (a whole directory's numbers and names), matched caselessly."""

    def __init__(self, literals: Sequence[bytes], engine: str | None = None):
        self.literals = tuple(lit.lower() for lit in literals)
        self.engine = engine or best_engine()
        self._local = threading.local()
        self._hs = None
        self._aho = None
        if not self.literals:
            return
        if self.engine == "hyperscan" and hyperscan is not None:
            self._hs = _hs_database(list(self.literals), list(range(len(self.literals))),
                                    hyperscan.HS_FLAG_CASELESS, literal=True)
        else:
            self._aho = _automaton(self.literals)

    def __getstate__(self) -> dict[str, Any]:
        hs_bytes = hyperscan.dumpb(self._hs) if self._hs is not None else None
        return {"literals": self.literals, "engine": self.engine, "hs": hs_bytes,
                "aho": self._aho}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.literals, self.engine = state["literals"], state["engine"]
        self._local = threading.local()
        hs_bytes = state["hs"]
        self._hs = hyperscan.loadb(hs_bytes, hyperscan.HS_MODE_BLOCK) if hs_bytes else None
        self._aho = state["aho"]

    def _scan(self, data: bytes, limit: int | None = None) -> list[Hit]:
        hits: list[Hit] = []
        if self._hs is not None:
            _hs_scan(self._hs, self._local, data, hits, limit)
            lits = self.literals
            hits = [(i, end - len(lits[i]), end) for i, _, end in hits]
        elif self._aho is not None:
            text = data.lower().decode("latin-1")  # one char per byte: offsets stay bytes
            lits = self.literals
            hits = [(i, end + 1 - len(lits[i]), end + 1) for end, i in self._aho.iter(text)]
        hits.sort(key=lambda h: (h[1], -h[2]))
        return hits


def _automaton(literals: Sequence[bytes]) -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for i, lit in enumerate(literals):
        automaton.add_word(lit.decode("latin-1"), i)
    automaton.make_automaton()
    return automaton


def _hs_compiles(pattern: str) -> bool:
    try:
        _hs_database([pattern.encode()], [0],
                     hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SOM_LEFTMOST)
    except hyperscan.error:
        return False
    return True


def _hs_database(expressions: list[bytes], ids: list[int], flags: int,
                 literal: bool = False) -> Any:
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(expressions=expressions, ids=ids, elements=len(expressions), flags=flags,
               literal=literal)
    return db


def _hs_scan(db: Any, local: threading.local, data: bytes, hits: list[Hit],
             limit: int | None) -> None:
    scratch = getattr(local, "scratch", None)
    if scratch is None:  # scratch space is per thread; databases are shared read-only
        scratch = local.scratch = hyperscan.Scratch(db)
    append = hits.append
    on_match: Callable[[int, int, int, int, object], bool | None]
    if limit is None:
        def on_match(pid: int, start: int, end: int, flags: int, context: object) -> None:
            append((pid, start, end))
    else:
        def on_match(pid: int, start: int, end: int, flags: int, context: object) -> bool:
            append((pid, start, end))
            return len(hits) > limit  # True stops the scan
    try:
        db.scan(data, match_event_handler=on_match, scratch=scratch)
    except hyperscan.ScanTerminated:
        raise TooManyHits() from None


def _hs_matches(db: Any, local: threading.local, data: bytes) -> bool:
    """Does any pattern of `db` match? (Stops at the first match.)"""
    scratch = getattr(local, "any_scratch", None)
    if scratch is None:
        scratch = local.any_scratch = hyperscan.Scratch(db)
    try:
        db.scan(data, match_event_handler=_stop, scratch=scratch)
    except hyperscan.ScanTerminated:
        return True
    return False


def _stop(*_match: object) -> bool:
    return True


def _normalise(hits: list[Hit]) -> list[Hit]:
    """Leftmost-longest, non-overlapping per pattern: what `re.finditer` would report."""
    hits.sort(key=lambda h: (h[1], -h[2]))
    last_end: dict[int, int] = {}
    out = []
    for hit in hits:
        pid, start, end = hit
        if start >= last_end.get(pid, -1) and end > start:
            out.append(hit)
            last_end[pid] = end
    return out
