"""PDF text through pypdf, page by page with a deadline check between pages.

PDFs encrypted with only an owner password (print/copy restrictions) open with the empty user
password and are inspected; anything needing a real password is `uninspectable`. A PDF without
a text layer (a scan) yields no text and no finding: there is no OCR here.
"""

from __future__ import annotations

import io
import logging

from gateway.extract.base import Context

name = "pdf"
TYPES = ("application/pdf",)

logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings can quote document content


def extract(data: bytes, ctx: Context, location: str, charset: str | None = None) -> None:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted and not _unlock(reader):
        ctx.problem(location, "encrypted")
        return
    pages: list[str] = []
    for number, page in enumerate(reader.pages, start=1):
        if ctx.out_of_time(f"{location}, page {number}"):
            break
        pages.append(page.extract_text() or "")
    ctx.add_text("\n".join(pages), location, content_type="application/pdf")


def _unlock(reader: object) -> bool:
    try:
        return bool(reader.decrypt(""))  # type: ignore[attr-defined]
    except Exception:  # pypdf raises several types, including for missing crypto support
        return False
