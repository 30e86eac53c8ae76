"""Plain text parts; how their bytes become text is `gateway.mime.charset.decode`."""

from __future__ import annotations

from gateway.extract.base import Context
from gateway.extract.table import render_pasted
from gateway.mime.charset import decode

name = "text"
TYPES = ("text/plain", "text/rtf", "message/delivery-status")


def extract(data: bytes, ctx: Context, location: str, charset: str | None = None) -> None:
    text = decode(data, charset)
    if "\t" in text:  # a spreadsheet's cells pasted into the mail (other delimiters: see
        text = render_pasted(text, "\t")  # gateway.inspect, which finds their headers)
    ctx.add_text(text, location)
