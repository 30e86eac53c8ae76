"""Attachment extractors, one module per format, in an explicit registry keyed by sniffed type.

`extract_file` is the single entry point for any file found in a message (a MIME part, a ZIP
member, a forwarded message): it sniffs the real type, records the attachment, applies the size
limit, and turns any extractor failure into a `Problem` (fail closed), never an exception.
"""

from __future__ import annotations

from types import ModuleType

from gateway.extract import csv, docx, html, message, pdf, text, xlsx, zip
from gateway.extract.base import CORRUPT, Context
from gateway.extract.sniff import ENCRYPTED, OLE, sniff
from gateway.model import Attachment

EXTRACTORS: tuple[ModuleType, ...] = (text, html, csv, xlsx, docx, pdf, zip, message)
REGISTRY: dict[str, ModuleType] = {ctype: mod for mod in EXTRACTORS for ctype in mod.TYPES}

# Formats that can carry text we cannot read: holding is the safe answer.
UNREADABLE: dict[str, str] = {
    ENCRYPTED: "encrypted",
    OLE: "legacy Office file or password-protected document",
    "application/vnd.rar": "unsupported archive",
    "application/x-7z-compressed": "unsupported archive",
    "application/gzip": "unsupported archive",
    "application/x-bzip2": "unsupported archive",
    "application/x-xz": "unsupported archive",
}


def extract_file(data: bytes, ctx: Context, location: str, *, filename: str | None = None,
                 declared: str | None = None, charset: str | None = None,
                 record: bool = True) -> str:
    """Sniff, record and extract one file; returns the sniffed content type."""
    ctype = sniff(data, declared)
    if record:
        ctx.sink.attachments.append(Attachment(filename, ctype, len(data)))
    if ctx.too_deep(location):
        return ctype
    kind = read_as(ctype, declared)
    limit = ctx.budget.limits.max_part_bytes
    if len(data) > limit:
        ctx.problem(location, "part size limit")
        if REGISTRY.get(kind) not in _TEXT_EXTRACTORS:
            return ctype
        data = data[:limit]  # text can still be scanned as far as the limit allows
    run(kind, data, ctx, location, charset)
    return ctype


_TEXT_EXTRACTORS = frozenset({text, html, csv})  # bounded by the part size, no archives


def reads(ctype: str) -> bool:
    """Does a file of this type get read (an extractor) or held (unreadable)? Images, media
    and unknown binaries do neither: they carry no text we could read."""
    return ctype in REGISTRY or ctype in UNREADABLE


def read_as(sniffed: str, declared: str | None) -> str:
    """The type to read a file as: what it is, unless it was declared text and is nothing we
    read (an image or audio signature in front of the text, bytes that are not UTF-8): then
    the text it was declared, so a few leading bytes cannot hide what follows them."""
    if reads(sniffed) or not declared or not declared.lower().startswith("text/"):
        return sniffed
    declared = declared.lower()
    return declared if REGISTRY.get(declared) in _TEXT_EXTRACTORS else text.TYPES[0]


def run(ctype: str, data: bytes, ctx: Context, location: str, charset: str | None) -> None:
    """Call the extractor for `ctype`; unknown binaries (images, media) carry no text."""
    if ctype in UNREADABLE:
        ctx.problem(location, UNREADABLE[ctype])
        return
    extractor = REGISTRY.get(ctype)
    if extractor is None:
        return
    if extractor not in _TEXT_EXTRACTORS and ctx.venue is not None:
        sink = ctx.sink
        if sink.elsewhere is None and not ctx.venue.take(ctype, data, ctx, location):
            sink.elsewhere = ctype
        return
    try:
        extractor.extract(data, ctx, location, charset)
    except RecursionError:
        ctx.problem(location, "nesting depth limit")
    except Exception:  # any parser failure on hostile input: fail closed, never crash
        ctx.problem(location, CORRUPT)
