"""Audio and video attachments (P11's copyright reminder), by sniffed content, not by name:
a lecture recording renamed to `notes.pdf` is still a video."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.extract.base import attachment_location
from gateway.extract.sniff import is_media
from gateway.model import Attachment, Finding

name = "media"


def scan_attachments(attachments: Sequence[Attachment]) -> list[Finding]:
    return [Finding(name, 1, attachment_location("", a.filename), 1, frozenset(), a.content_type)
            for a in attachments if is_media(a.content_type)]
