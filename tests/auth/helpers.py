"""Small builders for the authentication tests."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import dkim

from gateway.auth.resolver import Resolver
from gateway.config import AuthSettings
from tests.authzones import Key


def resolver_at(address: str, timeout: float = 2.0, **kw: object) -> Resolver:
    host, _, port = address.rpartition(":")
    return Resolver(AuthSettings(resolvers=((host, int(port)),), timeout=timeout, **kw))


def message(from_addr: str = "alice@signed.example", to: str = "bob@staff.example.org",
            subject: str = "Hello", body: str = "Hi Bob,\nsee you at noon.\n",
            extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    msg = EmailMessage()
    msg["From"] = from_addr
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate()
    msg["Message-ID"] = make_msgid(domain="test.example")
    for name, value in extra:
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def sign(raw: bytes, key: Key, domain: str | None = None, selector: str | None = None) -> bytes:
    signature = dkim.sign(raw, (selector or key.selector).encode(),
                          (domain or key.domain).encode(), key.private_pem,
                          include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return signature + raw
