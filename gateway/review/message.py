"""A held message made safe to show in a browser, and its attachments by position.

Held mail is hostile by assumption. Its HTML goes through nh3 (the Rust `ammonia` sanitiser)
with an allow-list: no scripts, no styles, no forms, no images or other remote content (a
remote image is a read receipt to the sender, and a tracking pixel); links keep their text and
get `rel="noopener noreferrer nofollow"`. The page's Content-Security-Policy is the second wall:
even markup the sanitiser let through could load or run nothing.

Attachments are named by their position in the message walk, never by file name, so that a
file name (often a student's name) never appears in a URL or a server log.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message

import nh3

from gateway.quarantine.render import printable

SHOWN_HEADERS = ("From", "Reply-To", "To", "Cc", "Date", "Subject", "Message-ID")
TEXT_LIMIT = 200_000  # characters of body shown; the rest is summarised
_TAGS = nh3.ALLOWED_TAGS - {"img", "map", "area"}
_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"},
               "th": {"colspan", "rowspan"}, "*": {"lang", "dir"}}


@dataclass(frozen=True, slots=True)
class Attachment:
    index: int  # position among the message's attachments (the URL's only handle)
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class SafeMessage:
    headers: tuple[tuple[str, str], ...] = ()
    text: str | None = None  # plain text, to be escaped by the template
    html: str | None = None  # sanitised markup, safe to insert as is
    attachments: tuple[Attachment, ...] = ()
    problem: str | None = None  # why the body cannot be shown
    removed_remote: bool = False  # images or other remote content were taken out


def safe_message(content: bytes | None) -> SafeMessage:
    if content is None:
        return SafeMessage(problem="The held copy has been deleted.")
    try:
        msg = email.message_from_bytes(content, policy=email.policy.default)
    except Exception:  # a reviewer still sees the metadata of a message that will not parse
        return SafeMessage(problem="The message could not be parsed.")
    headers = tuple((name, printable(str(value))[:1000]) for name in SHOWN_HEADERS
                    for value in msg.get_all(name, []))
    attachments = tuple(a for a, _ in _walk_attachments(msg))
    html, text, problem = _body(msg)
    removed = False
    if html is not None:
        removed = "<img" in html.lower() or "url(" in html.lower()
        html = sanitise_html(html[:TEXT_LIMIT])
    if text is not None and len(text) > TEXT_LIMIT:
        text = text[:TEXT_LIMIT] + "\n[… truncated]"
    return SafeMessage(headers, text, html, attachments, problem, removed)


def sanitise_html(markup: str) -> str:
    return nh3.clean(markup, tags=_TAGS, attributes=_ATTRIBUTES,
                     clean_content_tags={"script", "style", "title", "head"},
                     url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow", strip_comments=True)


def attachment(content: bytes, index: int) -> tuple[Attachment, bytes] | None:
    """The attachment at `index` and its decoded bytes, or None."""
    msg = email.message_from_bytes(content, policy=email.policy.default)
    for found, payload in _walk_attachments(msg):
        if found.index == index:
            return found, payload
    return None


def _walk_attachments(msg: Message) -> Iterator[tuple[Attachment, bytes]]:
    index = 0
    for part in msg.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        if not filename and part.get_content_disposition() != "attachment":
            continue
        try:
            payload = part.get_payload(decode=True)
        except Exception:  # a broken transfer encoding: offer the raw text
            payload = None
        data = payload if isinstance(payload, bytes) else b""
        yield Attachment(index, printable(filename or f"attachment-{index + 1}")[:200],
                         part.get_content_type(), len(data)), data
        index += 1


def _body(msg: Message) -> tuple[str | None, str | None, str | None]:
    """(html, text, problem): the message's readable body, HTML preferred."""
    try:
        part = msg.get_body(preferencelist=("html", "plain")) if isinstance(
            msg, EmailMessage) else msg
        if part is None:
            return None, None, "The message has no text body."
        content = part.get_content()
        if not isinstance(content, str):
            return None, None, "The message has no text body."
        if part.get_content_subtype() == "html":
            return content, None, None
        return None, printable(content), None
    except Exception:  # a broken charset or encoding: say so instead of failing the page
        return None, None, "The text could not be decoded."
