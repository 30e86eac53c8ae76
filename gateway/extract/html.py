"""HTML (and XML) to text, keeping everything a reader could be shown.

Tags that split a word (`Al<b>ex</b>`) must not split it for the detectors, block tags must
separate words, entities are decoded, and text hidden with CSS is kept: a hidden roster is still
a roster. Only script and style bodies are dropped. Regex-based on purpose: it is tolerant of
broken markup and an order of magnitude faster than an HTML parser.
"""

from __future__ import annotations

import html
import re

from gateway.extract.base import Context
from gateway.extract.text import decode

name = "html"
TYPES = ("text/html", "text/xml", "application/xhtml+xml")

# `[^<>]*`, not `[^>]*`: a run of unclosed "<" must not make each match scan to the end.
_OPEN_DROP = re.compile(r"<(script|style|head)\b", re.IGNORECASE)
_CELL = re.compile(r"</?t[dh]\b[^<>]*>", re.IGNORECASE)
_BLOCK = re.compile(
    r"</?(?:p|div|br|tr|li|ul|ol|table|h[1-6]|blockquote|pre|section|article|header|footer|"
    r"hr|dt|dd|title|body|html|w:p|text:p)\b[^<>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]*>")


def to_text(markup: str) -> str:
    """The visible-or-hidden text of `markup`, with block boundaries as line breaks."""
    markup = _drop_code(markup)
    # A comment can split a value (`536-22-<!-- x -->8841`): the visible text is read without
    # it, and the hidden comment text is still read, on lines of its own at the end.
    markup, comments = _split_comments(markup)
    markup = _CELL.sub(" ; ", markup)
    markup = _BLOCK.sub("\n", markup)
    markup = _TAG.sub("", markup)
    text = html.unescape(markup).replace("\xa0", " ")
    return f"{text}\n{comments}" if comments else text


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
    return "".join(kept), _TAG.sub(" ", "\n".join(hidden))


def _drop_code(markup: str) -> str:
    """Remove script/style/head elements in one linear pass (an unclosed one runs to the end)."""
    out, pos = [], 0
    lowered = markup.lower()
    while (match := _OPEN_DROP.search(markup, pos)) is not None:
        out.append(markup[pos:match.start()])
        close = lowered.find("</" + match.group(1).lower(), match.end())
        if close == -1:
            return "\n".join(out)
        end = lowered.find(">", close)
        pos = len(markup) if end == -1 else end + 1
        out.append("\n")
    out.append(markup[pos:])
    return "".join(out)


def extract(data: bytes, ctx: Context, location: str, charset: str | None = None) -> None:
    ctx.add_text(to_text(decode(data, charset or _meta_charset(data))), location,
                 content_type="text/html")


_META = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def _meta_charset(data: bytes) -> str | None:
    match = _META.search(data[:4096])
    return match.group(1).decode("ascii") if match else None
