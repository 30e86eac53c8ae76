"""The regexes behind the detectors, in one table so one engine pass can run them all.

Every pattern is ASCII-caseless and starts and ends on a word boundary or a fixed character,
so its matches never overlap themselves and all engines report the same hits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

STRONG_STUDENT = (r"\bstudents?\b", r"\bpupils?\b", r"\bs\.?i\.?d\b", r"\bstu\b")
WEAK_STUDENT = (r"\bid\b", r"\bnumber\b", r"\bno\.")
NEGATORS = (
    r"\b(?:order|invoice|inv|po|p\.o|ticket|tracking|confirmation|account|acct|reference|ref|"
    r"case|receipt|transaction|serial|phone|fax|tel|zip|employee|emp|badge|claim|policy|"
    r"customer|member|item|sku|model|room|check|cheque|routing|booking|reservation|job|ext|"
    r"part|quote|shipment|package|parcel|loan|license|licence|permit|vendor|supplier|meeting|"
    r"passcode|password|pin|code|conference|webinar|zoom|dial-in|access|"
    # equipment and stock numbers in the student-number format, and other agencies' ids
    r"lot|batch|asset|barcode|inventory|chromebook|laptop|device|ipad|equipment|ssid)s?\b",
    r"\bstate\s+(?:student\s+)?id\b",
)
# Any of "-", "." or " " between the groups, mixed too ("524-61 3378"): what a reader sees
# as an SSN. Other dashes and invisible characters are made "-" or removed when the text is
# extracted (gateway.extract.base).
SSN_FORMATTED = (r"\b\d{3}[-. ]\d{2}[-. ]\d{4}\b",)
SSN_RAW = (r"\b\d{9}\b",)
# An SSN split over three table cells: "524 ; 61 ; 3378", as tables are rendered (cells
# joined by " ; ", a column label "SSN group: " before a value); labels have no digits.
_CELL = r"\s*;[\s;]*(?:[^;:\d]{1,30}:\s*)?"
SSN_SPLIT = (rf"\b\d{{3}}{_CELL}\d{{2}}{_CELL}\d{{4}}\b",)
SSN_KEYWORDS = (r"\bssns?\b", r"\bss\s?#", r"\bssn\s?#", r"\bsocial\s+security\b",
                r"\bsoc\.?\s*sec\b", r"\bsocial\s+sec\b",
                r"\bs\s?\.\s?s\s?\.\s?n\b", r"\bs\ss\sn\b",  # S.S.N., S S N
                r"\bss\s*(?:no|num|number)\b",  # SS No., SS number
                r"\bsocial(?:\s+(?:is|was|number|num|no)\b|\s*[#:])",  # "his social is"
                r"\btaxpayer\s+id(?:entification)?\b", r"\bseguro\s+social\b")
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
DATES = (
    r"\b\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})\b",
    r"\b\d{4}-\d{1,2}-\d{1,2}\b",
    rf"\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b",
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\.?,?\s+\d{{4}}\b",
)
# "Birthday" only as a label ("Birthday: 04/12/2010", a Birthday column): a birthday party's
# date is not a date of birth.
BIRTH_KEYWORDS = (r"\bd\.?o\.?b\b", r"\bbirth\s*dates?\b", r"\bdate\s+of\s+birth\b",
                  r"\bborn\b", r"\bbirth(?:day)?\s*[:=]", r"\bfecha\s+de\s+nacimiento\b")
CATEGORIES: Mapping[str, Sequence[str]] = {
    "grades": (r"\bgrades\b", r"\bgrade\s*[:=]", r"\b(?:final|letter|failing|course)\s+grades?\b",
               r"\breport\s+cards?\b", r"\btranscripts?\b", r"\bgpa\b",
               r"\bgrade\s+point\s+average\b", r"\bclass\s+rank(?:ing)?\b",
               r"\btest\s+scores?\b", r"\bprogress\s+reports?\b"),
    # not "honor roll": honors and awards are FERPA directory information
    "special_education": (r"\biep\b", r"\bindividuali[sz]ed\s+education\s+(?:program|plan)\b",
                          r"\b504\s+plan\b", r"\bsection\s+504\b", r"\bspecial\s+ed(?:ucation)?\b",
                          r"\b(?:psycho-?educational|special\s+education)\s+evaluation\b",
                          r"\beligibility\s+(?:meeting|determination)\b",
                          r"\blearning\s+disabilit(?:y|ies)\b"),
    "discipline": (r"\bdisciplin(?:e|ary)\b", r"\bsuspen(?:sion|sions|ded)\b",
                   r"\bexpul(?:sion|sions)\b", r"\bexpelled\b", r"\bdetentions?\b",
                   r"\boffice\s+referrals?\b", r"\bbehaviou?r\s+(?:incident|referral|report|"
                   r"plan|contract)s?\b"),
    "attendance": (r"\battendance\b", r"\babsences?\b", r"\babsent\b", r"\btard(?:y|ies)\b",
                   r"\btruan(?:cy|t)\b", r"\bunexcused\b"),
    "health": (r"\bimmuni[sz]ations?\b", r"\bvaccinations?\b", r"\bmedical\b",
               r"\bmedications?\b", r"\bdiagnos(?:is|ed|es)\b", r"\ballerg(?:y|ies|ic)\b",
               r"\bhealth\s+(?:record|condition|plan|history)s?\b", r"\bnurse\s+visits?\b",
               r"\bseizures?\b", r"\bdiabet(?:es|ic)\b", r"\basthma\b", r"\badhd\b"),
    "lunch": (r"\bfree\s+(?:or|and|/)\s*reduced\b", r"\bfree\s*/\s*reduced\b",
              r"\breduced[- ]price\s+(?:lunch|meals?)\b", r"\bfree\s+lunch\b",
              r"\bfrl\b", r"\blunch\s+status\b"),
}


# A record column's header followed by a delimiter: "Name,SSN,DOB", "Student ID;Grade", or
# an HTML table's "Name ; SSN ; DOB" row (every header but the last is followed by one). The
# inspector then reads the part's pasted tables row by row with their labels
# (gateway.extract.table.render_pasted). Found in the same engine pass as everything else,
# so prose pays nothing for the check; each pattern starts with its word, which Hyperscan
# finds as a literal (a pattern starting with the delimiter cost it four times as much).
TABLE_HEADERS = (r"\bssns?\s*[,;|]", r"\bsocial\s+security(?:\s+(?:number|no|#))?\s*[,;|]",
                 r"\bstudent\s*(?:id|number|no|#)\s*[,;|]", r"\bs?sid\s*[,;|]",
                 r"\bdob\s*[,;|]", r"\bbirth\s*date\s*[,;|]",
                 r"\b(?:first\s*|last\s*)?name\s*[,;|]")


def lexicon_pattern(term: str) -> str:
    """A whole-word, whitespace-tolerant pattern for one lexicon term or phrase."""
    words = [re.escape(w) for w in term.split()]
    body = r"\s+".join(words)
    start = r"\b" if re.match(r"\w", term.strip()[:1]) else ""
    end = r"\b" if re.search(r"\w$", term.strip()) else ""
    return f"{start}{body}{end}"


def lexicon_patterns(terms: Sequence[str], *, combined: bool = False) -> list[str]:
    """The patterns for one term list, one per term; `combined`: the terms that start and end
    with a letter or digit (nearly all) as one whole-word pattern shaped like a trie, for
    Python `re`, which would otherwise run a thousand patterns one after another. (Hyperscan
    and RE2 want them apart: Hyperscan matches many literals at once, but one big
    alternation scanned four times slower.)"""
    if not combined:
        return [lexicon_pattern(t) for t in terms if t.strip()]
    wordy: dict[str, dict] = {}
    others = []
    for term in terms:
        words = term.lower().split()
        if not words:
            continue
        text = " ".join(words)
        if re.match(r"\w", text) and re.search(r"\w$", text):
            node = wordy
            for ch in text:
                node = node.setdefault(ch, {})
            node[""] = {}
        else:
            others.append(lexicon_pattern(term))
    return ([rf"\b(?:{_trie(wordy)})\b"] if wordy else []) + others


def _trie(node: dict[str, dict]) -> str:
    alternatives = [(r"\s+" if ch == " " else re.escape(ch)) + _trie(child)
                    for ch, child in sorted(node.items()) if ch]
    if not alternatives:
        return ""
    ends_here = "" in node
    if len(alternatives) == 1 and not ends_here:
        return alternatives[0]
    group = "(?:" + "|".join(alternatives) + ")"
    return group + "?" if ends_here else group


def table(student_number_pattern: str, lexicons: Mapping[str, Sequence[str]],
          combine_terms: bool = False) -> list[tuple[str, str, str]]:
    """Every pattern as (kind, label, regex); the index in this list is the engine's id.
    `combine_terms`: each term list as one pattern (see `lexicon_patterns`)."""
    rows: list[tuple[str, str, str]] = [("snum_fmt", "", student_number_pattern)]
    rows += [("kw_strong", "", p) for p in STRONG_STUDENT]
    rows += [("kw_weak", "", p) for p in WEAK_STUDENT]
    rows += [("neg", "", p) for p in NEGATORS]
    rows += [("ssn", "", p) for p in SSN_FORMATTED]
    rows += [("ssn_raw", "", p) for p in SSN_RAW]
    rows += [("ssn_split", "", p) for p in SSN_SPLIT]
    rows += [("table", "", p) for p in TABLE_HEADERS]
    rows += [("kw_ssn", "", p) for p in SSN_KEYWORDS]
    rows += [("date", "", p) for p in DATES]
    rows += [("kw_birth", "", p) for p in BIRTH_KEYWORDS]
    rows += [("cat", label, p) for label, pats in CATEGORIES.items() for p in pats]
    rows += [("lex", name, pattern) for name, terms in lexicons.items()
             for pattern in lexicon_patterns(terms, combined=combine_terms)]
    return rows
