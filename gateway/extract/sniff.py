"""File type by content (magic bytes), never by the file name or the declared MIME type.

A renamed `grades.xlsx → notes.txt` or a video called `homework.pdf` must be handled as what it
really is. The declared type is only a tie-breaker for media formats we cannot recognise.
"""

from __future__ import annotations

import zipfile
from io import BytesIO

OCTET = "application/octet-stream"
ZIP = "application/zip"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
OLE = "application/x-ole-storage"  # legacy .doc/.xls/.msg, and password-protected OOXML
ENCRYPTED = "application/x-encrypted"  # PGP or S/MIME enveloped data

_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF-", "application/pdf"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", OLE),
    (0, b"Rar!\x1a\x07", "application/vnd.rar"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"BZh", "application/x-bzip2"),
    (0, b"\xfd7zXZ\x00", "application/x-xz"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF8", "image/gif"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"OggS", "audio/ogg"),
    (0, b"#!AMR", "audio/amr"),
    (0, b"MThd", "audio/midi"),
    (0, b".snd", "audio/basic"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
    (0, b"FLV\x01", "video/x-flv"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "video/x-ms-asf"),
    (0, b"\x00\x00\x01\xba", "video/mpeg"),
    (0, b"\x00\x00\x01\xb3", "video/mpeg"),
    (0, b"-----BEGIN PGP MESSAGE-----", ENCRYPTED),
    (0, b"{\\rtf", "text/rtf"),
)
_RIFF = {b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo", b"WEBP": "image/webp"}
_FORM = {b"AIFF": "audio/aiff", b"AIFC": "audio/aiff"}
_NOT_CONTROL = bytes([9, 10, 12, 13, 27, *range(32, 256)])  # delete these, count what is left
_AUDIO_BRANDS = (b"M4A ", b"M4B ", b"M4P ", b"F4A ")
_MAIL_HEADERS = (b"from:", b"received:", b"return-path:", b"message-id:", b"date:",
                 b"subject:", b"to:", b"mime-version:", b"delivered-to:", b"x-")


def sniff(data: bytes, declared: str | None = None, *, tabular: bool = True) -> str:
    """The content type of `data`; `declared` only rescues unrecognised audio/video.

    `tabular=False` skips telling CSV from plain text (for a caller to whom both are text).
    """
    head = data[:64]
    for offset, magic, ctype in _MAGIC:
        if head.startswith(magic, offset):
            return ctype
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) and _utf16_text(data):
        # (checked before MPEG audio: a UTF-16 BOM looks like an MPEG frame sync)
        return _text_kind(data, tabular) or "text/plain"
    found = _container(head) or _mpeg_audio(head)
    if found:
        return found
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_kind(data)
    text = _text_kind(data, tabular)
    if text:
        return text
    if declared and declared.lower().startswith(("audio/", "video/")):
        return declared.lower()
    return OCTET


def is_media(ctype: str) -> bool:
    return ctype.startswith(("audio/", "video/"))


def _container(head: bytes) -> str | None:
    if head[:4] == b"RIFF":
        return _RIFF.get(head[8:12])
    if head[:4] == b"FORM":
        return _FORM.get(head[8:12])
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AUDIO_BRANDS:
            return "audio/mp4"
        if brand.startswith((b"heic", b"heix", b"mif1", b"avif")):
            return "image/heic"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    return None


def _mpeg_audio(head: bytes) -> str | None:
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and head[1] & 0x06:
        return "audio/mpeg" if head[1] & 0x18 != 0x08 else None
    return None


def _zip_kind(data: bytes) -> str:
    try:
        with zipfile.ZipFile(BytesIO(data)) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, NotImplementedError, OSError, ValueError, EOFError):
        # (NotImplementedError: a "zip file version" zipfile cannot read)
        return ZIP  # the zip extractor reports it as unreadable
    if "[Content_Types].xml" in names:
        if any(n.startswith("xl/") for n in names):
            return XLSX
        if any(n.startswith("word/") for n in names):
            return DOCX
    return ZIP


def _text_kind(data: bytes, tabular: bool = True) -> str | None:
    head = data[:4096]
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return _markup_kind(data) or "text/plain"
    if b"\x00" in head:
        return "text/plain" if _utf16_without_bom(head) else None
    controls = len(head.translate(None, _NOT_CONTROL))
    if controls > len(head) // 100:
        return None
    return _markup_kind(data) or ("text/csv" if tabular and _delimited(head) else "text/plain")


def _delimited(head: bytes) -> bool:
    """CSV/TSV by content: the first lines share one delimiter, the same number of times."""
    lines = _first_lines(head)
    if len(lines) < 2:
        return False
    if len(lines) == 10 or len(head) == 4096:
        lines = lines[:-1]  # the last line may be cut off
    for delim in (b",", b"\t", b";", b"|"):
        counts = {line.count(delim) for line in lines}
        if len(counts) == 1 and counts.pop() >= 1:
            return True
    return False


def _first_lines(head: bytes) -> list[bytes]:
    """The non-empty lines among the first ten, from the first 1 KB when it holds more than
    ten (its last may be cut short): splitting all 4 KB cost more than the test itself."""
    first = head[:1024].splitlines()
    return [line for line in (first if len(first) > 10 else head.splitlines())[:10]
            if line.strip()]


def _utf16_text(data: bytes) -> bool:
    sample = data[2:2050].decode("utf-16-le" if data[0] == 0xFF else "utf-16-be", "replace")
    return sum(ch.isprintable() or ch.isspace() for ch in sample) > len(sample) * 0.95


def _utf16_without_bom(head: bytes) -> bool:
    even, odd = head[0::2], head[1::2]
    return (odd.count(0) > len(odd) * 0.9) != (even.count(0) > len(even) * 0.9)


def _markup_kind(data: bytes) -> str | None:
    start = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<div", b"<p>",
                         b"<table", b"<meta")):
        return "text/html"
    if start.startswith(b"<?xml") or start.startswith(b"<"):
        return "text/xml" if b">" in start else None
    if b"-----begin pkcs7-----" in start[:64] or b"-----begin pgp message" in start[:64]:
        return ENCRYPTED
    if _mail_headers(start):
        return "message/rfc822"
    return None


def _mail_headers(start: bytes) -> bool:
    lines = start.split(b"\n", 8)[:8]
    hits = sum(1 for line in lines if line.startswith(_MAIL_HEADERS))
    return hits >= 3 and lines[0].startswith(_MAIL_HEADERS)
