"""The relay's MAIL and RCPT paths must be the ones aiosmtplib's mail()/rcpt() sent.

`Relay` builds `<address>` itself for plain dot-atom addresses (aiosmtplib parses every
address with email.utils.parseaddr, about 60 us a command). The path is checked against
aiosmtplib's `quote_address` on generated and hand-made addresses; the commands against a
real upstream in tests/integration/test_relay.py."""

from __future__ import annotations

import random

import pytest
from aiosmtplib.email import quote_address

from gateway.smtp.client import _path

ODD = ['"', " ", "\\", "(", ")", "<", ">", ",", ";", ":", "[", "]", "@", ".", "\t", "é", "\r",
       "\n", "'", "+", "=", "%", "!", "#", "~", "`", "{", "}", "|", "^", "/", "?", "&", "*", "$",
       "-", "_", "\u00a0", "\u200b", "@@", ".."]
HAND_MADE = ["", "a@b", "a.b@c.example", ".a@b.example", "a.@b.example", "a..b@c.example",
             "first.last+tag@sub.example.org", '"quoted local"@example.org', "a@[192.0.2.1]",
             "a b@c.example", "<a@b.example>", "Name <a@b.example>", "a@b.example (comment)",
             "@relay:a@b.example", "postmaster", "ü@exämple.org", "a@b@c", "a@", "@b",
             "a\r\nRCPT TO:<x@y>@b.example", "o'brien@school.example", "x=y@z.example"]


def outcome(fn, *args) -> bytes | str:
    try:
        return fn(*args)
    except (ValueError, UnicodeError) as exc:  # UnicodeEncodeError is a ValueError too
        return type(exc).__name__


def aiosmtplib_path(address: str, encoding: str) -> bytes:
    return quote_address(address).encode(encoding)


def generated(n: int = 20000) -> list[str]:
    rng = random.Random(5125)
    letters = "abcxyzABZ0189"
    out = []
    for _ in range(n):
        pieces = [rng.choice(letters) * rng.randint(1, 3) if rng.random() < 0.7
                  else rng.choice(ODD) for _ in range(rng.randint(1, 6))]
        at = rng.randint(0, len(pieces))
        pieces[at:at] = ["@"]
        out.append("".join(pieces))
    return out


@pytest.mark.parametrize("encoding", ["ascii", "utf-8"])
def test_path_is_what_aiosmtplib_would_send(encoding: str) -> None:
    for address in HAND_MADE + generated():
        assert outcome(_path, address, encoding) == outcome(aiosmtplib_path, address,
                                                            encoding), repr(address)
