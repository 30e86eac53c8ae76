"""The one place bytes become text: declared, wrong or missing charsets.

Mail lies about charsets all the time (UTF-8 labelled as us-ascii or latin-1, no label at all,
labels Python has never heard of). We prefer what the bytes prove: a BOM, then valid UTF-8,
then the declared charset, then Windows-1252, which decodes anything.
"""

from __future__ import annotations

import codecs

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
_SINGLE_BYTE = {"us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1", "windows-1252",
                "cp1252", "iso-8859-15"}


def decode(data: bytes, charset: str | None = None) -> str:
    """Bytes → str without ever raising; see the module docstring for the order."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, "replace")
    if b"\x00" in data[:4096] and _utf16_guess(data) is not None:
        return data.decode(_utf16_guess(data) or "utf-16-le", "replace")
    declared = _codec(charset)
    if declared is None or declared in _SINGLE_BYTE or declared == "utf-8":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if declared and declared != "utf-8":
        try:
            return data.decode(declared)
        except (UnicodeDecodeError, LookupError):
            pass
    return data.decode("cp1252", "replace")


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    label = charset.strip().strip('"').lower()
    try:
        return codecs.lookup(label).name if label not in _SINGLE_BYTE else label
    except LookupError:
        return None


def _utf16_guess(data: bytes) -> str | None:
    head = data[:4096]
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > len(odd) * 0.9:
        return "utf-16-le"
    if even.count(0) > len(even) * 0.9:
        return "utf-16-be"
    return None
