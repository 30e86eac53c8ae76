"""The policy's term lists (harassment, restricted subjects, ...): whole words or phrases,
case-insensitive, one finding per list as `lexicon:<list name>`. Unlike the student-record
detectors this returns several findings, one per list that matched."""

from __future__ import annotations

from gateway.detectors.analysis import Analysis
from gateway.model import LEXICON_PREFIX, Finding

name = "lexicon"


def scan_all(a: Analysis) -> list[Finding]:
    out = []
    for list_name, found in a.lexicon.items():
        terms = {m.value.lower() for m in found}
        out.append(Finding(LEXICON_PREFIX + list_name, len(found), a.part.location,
                           len(terms), frozenset(), found[0].value))
    return out
