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
    limit = ctx.budget.limits.max_part_bytes
    if len(data) > limit:
        ctx.problem(location, "part size limit")
        if ctype not in REGISTRY or REGISTRY[ctype] not in (text, html, csv):
            return ctype
        data = data[:limit]  # text can still be scanned as far as the limit allows
    run(ctype, data, ctx, location, charset)
    return ctype


_TEXT_EXTRACTORS = frozenset({text, html, csv})  # bounded by the part size, no archives


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
