"""MAIL FROM / RCPT TO address parsing with a fast path for the plain `<local@domain>` case.

Why: aiosmtpd parses every address with the email package's RFC 5322 header parser and defines
a `typing.Protocol` class on every call (a metaclass run per command): ~12 % of the SMTP hop's
CPU. Nearly every real address is a dot-atom local part at a dot-atom domain, for which the
parser's answer is the text between the angle brackets; that case is matched by one regular
expression and anything else (quoted local parts, comments, domain literals, the null sender
`<>`, UTF-8) still goes through aiosmtpd's parser, so behaviour is unchanged
(tests/smtp/test_address.py compares both on many inputs).
"""

from __future__ import annotations

import re

from aiosmtpd.smtp import SMTP

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = re.compile(rf"<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(.*)",
                    re.DOTALL)


class FastAddressSMTP(SMTP):
    """aiosmtpd's SMTP whose `_getaddr` answers plain addresses without the header parser."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _PLAIN.fullmatch(arg)
        if match is None:
            return super()._getaddr(arg)
        addr, rest = match.group(1), match.group(2)
        if rest[:1] in (" ", "\t"):
            rest = rest.lstrip()  # the parser drops whitespace after the address ...
        if rest.startswith("("):
            return super()._getaddr(arg)  # ... and comments, which are left to it
        local_part = addr.rpartition("@")[0]
        if self.local_part_limit and len(local_part) > self.local_part_limit:
            return None, None
        return addr, rest
