"""Forwarded messages (`message/rfc822` parts and attached `.eml` files), walked like the outer
message, one level deeper, with their own subject and body locations."""

from __future__ import annotations

from gateway.extract.base import Context

name = "message"
TYPES = ("message/rfc822",)


def extract(data: bytes, ctx: Context, location: str, charset: str | None = None) -> None:
    from gateway import mime

    mime.walk_bytes(data, ctx, location)
