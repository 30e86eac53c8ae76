"""HTML (and XML) to text, keeping everything a reader could be shown.

Tags that split a word (`Al<b>ex</b>`) must not split it for the detectors, block tags must
separate words, entities are decoded, and text hidden with CSS is kept: a hidden roster is still
a roster. Only script and style bodies are dropped. Regex-based on purpose: it is tolerant of
broken markup and an order of magnitude faster than an HTML parser.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator

from gateway.extract.base import Context
from gateway.mime.charset import decode

name = "html"
TYPES = ("text/html", "text/xml", "application/xhtml+xml")

# `[^<>]*`, not `[^>]*`: a run of unclosed "<" must not make each match scan to the end.
_OPEN_DROP = re.compile(r"<(script|style|head)\b", re.IGNORECASE)
_CELL = re.compile(r"</?t[dh]\b[^<>]*>", re.IGNORECASE)
_BLOCK = re.compile(
    r"</?(?:p|div|br|tr|li|ul|ol|table|h[1-6]|blockquote|pre|section|article|header|footer|"
    r"hr|dt|dd|title|body|html|w:p|text:p)\b[^<>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]*>")


# A regex pass is one C call that keeps the GIL: over megabytes of "<<<<" each pass took seconds,
# stalling every session of the process. The markup is therefore handled in pieces of this size
# (at most ~0.1 s each), with the inspection deadline checked between them.
_CHUNK = 256 * 1024


def to_text(markup: str, out_of_time: Callable[[], bool] = lambda: False) -> str:
    """The visible-or-hidden text of `markup`, with block boundaries as line breaks.

    `out_of_time` is asked between pieces of a large document; when it says yes, the text
    read so far is returned (the caller has recorded the problem).
    """
    markup = _drop_code(markup)
    markup = _attribute_text(markup)
    # A comment can split a value (`536-22-<!-- x -->8841`): the visible text is read without
    # it, and the hidden comment text is still read, on lines of its own at the end.
    markup, comments = _split_comments(markup)
    text = html.unescape(_strip_tags(markup, out_of_time)).replace("\xa0", " ")
    return f"{text}\n{comments}" if comments else text


# Attributes whose values a reader can see (a form field's value, an image's alt text, a
# tooltip) or that carry text, when they hold a number (what leaks through them is an SSN or
# a student number; requiring a digit keeps the many `title="Home"` of a newsletter out of
# the substitution, whose per-match cost is most of it). Each is moved out of its tag, to
# stand as text right after it: `<img alt="SSN 524-61-3378" src=x>` → `<img src=x> "SSN
# 524-61-3378" `. The substitution costs as much as the rest of the extraction, so it runs
# only for markup that has such an attribute and names an SSN or a student at all (an SSN
# counts only near its keyword, a student number near its own): str.find says so first.
_SHOWN = ("value", "alt", "title")
_VALUE = (r"\s*=\s*(\"[^\"<>\d]*\d[^\"<>]*\"|'[^'<>\d]*\d[^'<>]*'|"
          r"[^\s\"'<>\d]*\d[^\s\"'<>]*)([^<>]*)>")
# One pattern per name, starting with the name as a literal, which the regex engine looks
# for at C speed (four times faster than an alternation); IGNORECASE ones for the rare
# upper-case spelling.
_MOVE = {name: (re.compile(name + _VALUE), re.compile(name + _VALUE, re.IGNORECASE))
         for name in _SHOWN}


_NAMED = {name: re.compile(name + r"\s*=") for name in _SHOWN}

_RECORD_WORDS = ("ssn", "social", "student")  # "seguro social" and "student ID" too


def _moved(m: re.Match[str]) -> str:
    # A function, not the template r"\2> \1 ": re expands a template in Python code per
    # match, three times the cost of this concatenation (a page of captioned photos has
    # hundreds of matches).
    return f"{m[2]}> {m[1]} "


def _attribute_text(markup: str) -> str:
    lowered = markup.lower()
    # The attributes first: markup without any (much HTML mail) is passed after three
    # searches, not six.
    # (`alt = "…"` is as valid as `alt="…"`: the name is looked for at C speed, and only
    # where it occurs is a regex asked whether an `=` follows.)
    names = [name for name in _SHOWN if name in lowered and _NAMED[name].search(lowered)]
    if not names or not any(word in lowered for word in _RECORD_WORDS):
        return markup
    for name in names:
        exact, caseless = _MOVE[name]
        pattern = exact if _NAMED[name].search(markup) else caseless
        for _ in range(3):  # a tag with the attribute twice moves one per pass
            markup, moved = pattern.subn(_moved, markup)
            if not moved:
                break
    return markup


def _strip_tags(markup: str, out_of_time: Callable[[], bool], tag: str = "") -> str:
    """Cells to " ; ", blocks to line breaks and other tags to "" (or all tags to `tag`),
    piece by piece."""
    out: list[str] = []
    for piece in _pieces(markup):
        if out and out_of_time():
            break
        if tag:
            out.append(_TAG.sub(tag, piece))
        else:
            out.append(_TAG.sub("", _BLOCK.sub("\n", _CELL.sub(" ; ", piece))))
    return "".join(out)


def _pieces(markup: str) -> Iterator[str]:
    """`markup` in pieces of about `_CHUNK`, cut where the three substitutions give the same
    result as on the whole text (see `_cut`)."""
    start, end = 0, len(markup)
    while end - start > _CHUNK:
        at = start + _CHUNK
        cut = _cut(markup, start + 1, at)
        yield markup[start:cut]
        start = cut
    yield markup[start:]


def _cut(markup: str, low: int, high: int) -> int:
    """The last safe cut in [low, high): before a "<" or after a ">" that is not part of a
    cell or block tag. Tags are `<[^<>]*>`, so no tag can contain such a bracket except at its
    end; cell and block tags are excluded because they are replaced first, after which the
    text around them can join into one longer tag. With no safe cut among the last 1,000
    brackets (a piece of nothing but cell and block tags), `high` is used: a tag cut in two is
    then read as text, which only shows the detectors more.
    """
    pos = high
    for _ in range(1000):
        lt, gt = markup.rfind("<", low, pos), markup.rfind(">", low, pos)
        if lt < 0 and gt < 0:
            break
        if lt > gt:  # a cut before this "<"
            close = markup.find(">", lt, lt + _CHUNK)  # bounded: "<<<<" has no ">" at all
            tag = markup[lt:close + 1] if close >= 0 else ""
            if not _replaced_first(tag):
                return lt
            pos = lt
        else:  # a cut after this ">"
            open_ = markup.rfind("<", max(gt - _CHUNK, 0), gt)
            tag = markup[open_:gt + 1] if open_ >= 0 else ""
            if not _replaced_first(tag) and gt + 1 > low:
                return gt + 1
            pos = gt
    return high


def _replaced_first(tag: str) -> bool:
    """Is `tag` a whole cell or block tag (one with no other bracket inside)?"""
    return bool(tag) and (_CELL.fullmatch(tag) is not None or _BLOCK.fullmatch(tag) is not None)


def _split_comments(markup: str) -> tuple[str, str]:
    """(markup without comments, the comments' text); one linear pass, unclosed runs to end."""
    if "<!--" not in markup:
        return markup, ""
    kept, hidden, pos = [], [], 0
    while (start := markup.find("<!--", pos)) != -1:
        kept.append(markup[pos:start])
        end = markup.find("-->", start + 4)
        stop = len(markup) if end == -1 else end
        hidden.append(markup[start + 4:stop])
        pos = len(markup) if end == -1 else end + 3
    kept.append(markup[pos:])
    return "".join(kept), _strip_tags("\n".join(hidden), lambda: False, tag=" ")


def _drop_code(markup: str) -> str:
    """Remove script/style/head elements in one linear pass (an unclosed one runs to the end)."""
    out, pos = [], 0
    lowered = ascii_lower(markup)  # its offsets are used on `markup`: the same length
    while (match := _open_drop(markup, pos)) is not None:
        out.append(markup[pos:match.start()])
        close = lowered.find("</" + match.group(1).lower(), match.end())
        if close == -1:
            return "\n".join(out)
        end = lowered.find(">", close)
        pos = len(markup) if end == -1 else end + 1
        out.append("\n")
    out.append(markup[pos:])
    return "".join(out)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only. str.lower() can change a string's length (`İ` becomes
    two characters), which would shift offsets found in the copy against the original; tag
    names are ASCII anyway."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def _open_drop(markup: str, pos: int) -> re.Match[str] | None:
    """The next `<script`/`<style`/`<head` from `pos`, searched a piece at a time (see _CHUNK).

    Each search may look 16 characters past its piece, so a tag name across the boundary is
    found whole; a match starting beyond the piece is left for the next search, since there
    the end of the searched text could have passed for the word boundary after the name.
    """
    end = len(markup)
    while pos < end:
        stop = min(pos + _CHUNK, end)
        match = _OPEN_DROP.search(markup, pos, min(stop + 16, end))
        if match is not None and match.start() < stop:
            return match
        pos = stop
    return None


def extract(data: bytes, ctx: Context, location: str, charset: str | None = None) -> None:
    markup = decode(data, charset or _meta_charset(data))
    ctx.add_text(to_text(markup, lambda: ctx.out_of_time(location)), location,
                 content_type="text/html")


_META = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def _meta_charset(data: bytes) -> str | None:
    match = _META.search(data[:4096])
    return match.group(1).decode("ascii") if match else None
