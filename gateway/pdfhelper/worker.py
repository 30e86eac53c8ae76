"""The PDF text helper process: PDFium parses attached PDFs here, never inside the daemon.

Why a separate process: PDFium (Chrome's PDF engine, through pypdfium2) reads a page about
2.5x faster than pypdf, but it is C++ reading hostile input. A crash, a hang or runaway memory
must cost one attachment (held for review), not the daemon, and must never turn a message into
one that crashes the gateway on every retry. The parent (`gateway.pdfhelper.client`) kills and
restarts this process when it misses its deadline or dies.

Run as `python -P -m gateway.pdfhelper.worker`. It writes one ready byte once PDFium has loaded;
then the protocol on stdin/stdout, integers 4-byte big-endian:

    request:   length, max_chars, the PDF
    response:  status (1 byte: 0 text, 1 needs a password, 2 unreadable), length, payload
               (status 0: the page texts as a UTF-8 JSON list; otherwise empty)

The process exits when stdin closes (its parent is gone).
"""

from __future__ import annotations

import json
import resource
import signal
import struct
import sys
from typing import Any, BinaryIO

REQUEST = struct.Struct(">II")
RESPONSE = struct.Struct(">BI")
TEXT, NEEDS_PASSWORD, UNREADABLE = 0, 1, 2
READY = b"R"  # sent once at start, after PDFium has loaded
MEMORY_LIMIT = 2 << 30  # address space; a PDF needing more is unreadable, not the host's problem


def main() -> int:
    # systemd signals the whole service (and Ctrl-C the whole foreground group): the daemon
    # drains its in-flight mail, PDFs included, and this process ends when its stdin closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _limit_resources()
    import pypdfium2 as pdfium  # noqa: PLC0415 - after the limits; optional (`fast`)

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(READY)  # PDFium loaded: from here on a death is the job's, not the install's
    stdout.flush()
    while True:
        head = _read_exact(stdin, REQUEST.size)
        if head is None:
            return 0
        length, max_chars = REQUEST.unpack(head)
        data = _read_exact(stdin, length)
        if data is None:
            return 0
        still_open: list[Any] = []
        try:
            status, payload = page_texts(pdfium, data, max_chars, still_open)
            stdout.write(RESPONSE.pack(status, len(payload)) + payload)
            stdout.flush()
        finally:
            # Closing a page and its document takes about a quarter of a one-page PDF's
            # time: done once the reply is out, while the daemon already carries on.
            close_all(still_open)


def _limit_resources() -> None:
    """No core dumps (they would hold mail content) and a memory ceiling, where allowed.

    Best effort: the shipped systemd unit filters the @resources system calls (setrlimit gets
    EPERM there); its cgroup limits the whole service instead.
    """
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        if hard == resource.RLIM_INFINITY or hard > MEMORY_LIMIT:
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, hard))
    except (OSError, ValueError):
        pass


def page_texts(pdfium: Any, data: bytes, max_chars: int,
               still_open: list[Any]) -> tuple[int, bytes]:
    """(status, payload) for one PDF; stops reading pages once `max_chars` are collected.

    Every page but the last is closed as soon as its text is read (a long PDF never has all
    its pages open at once); the document and the last page are left in `still_open`, for
    `close_all` after the reply."""
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        return (NEEDS_PASSWORD if "password" in str(exc).lower() else UNREADABLE), b""
    except MemoryError:
        return UNREADABLE, b""
    still_open.append(doc)
    pages: list[str] = []
    total = 0
    try:
        for index in range(len(doc)):
            close_all(still_open, keep=1)  # the previous page
            page = doc[index]
            still_open.append(page)
            textpage = page.get_textpage()
            still_open.append(textpage)
            text = textpage.get_text_range()
            pages.append(text)
            total += len(text)
            if total > max_chars:
                break
    except (pdfium.PdfiumError, MemoryError):
        return UNREADABLE, b""
    return TEXT, json.dumps(pages).encode()


def close_all(still_open: list[Any], keep: int = 0) -> None:
    """Close PDFium objects, the last opened first, leaving the first `keep` open."""
    while len(still_open) > keep:
        still_open.pop().close()


def _read_exact(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


if __name__ == "__main__":
    sys.exit(main())
