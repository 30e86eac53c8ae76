"""Address syntax and canonical spelling: one spelling per mailbox, routing tricks, domains.

Pure and dependency-free of the rest of the gateway, so the SMTP server's relay control and the
directory's look-ups canonicalise addresses the same way.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import idna
from email_validator import EmailNotValidError, validate_email

_PLAIN = re.compile(r"^[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")


def normalize_address(address: str) -> str:
    """One canonical spelling per mailbox, so lookups and comparisons agree.

    email-validator handles IDN, quoting and domain case; the local part is lowercased too,
    because district mail systems treat it case-insensitively and a student writing
    `Alex.Jones@` must not slip past the directory. Addresses that are not strictly valid fall
    back to a plain lowercase: a strange address must never crash the gateway.
    """
    text = address.strip().strip("<>").strip().rstrip(".")  # a root-anchored domain is the same
    if not text:
        return ""
    if _PLAIN.match(text) and "xn--" not in text.lower():
        return text.lower()  # what email-validator would return, without its cost
    try:
        valid = validate_email(text, check_deliverability=False, allow_quoted_local=True,
                               allow_smtputf8=True, allow_domain_literal=True)
    except (EmailNotValidError, UnicodeError, ValueError):
        return text.lower()
    return valid.normalized.lower()


def routes_elsewhere(address: str) -> bool:
    """True for a local part that a mail server may route onward: `a%b@`, `a!b@`, `"a@b"@`.

    Postfix resolves such addresses to the inner destination (percent hack, UUCP bang paths,
    dequoting), so `"victim@gmail.example"@staff.district` can leave the District. They are
    never treated as District accounts, and the server refuses them (Postfix's
    allow_untrusted_routing = no, for every client).
    """
    local = address.strip().strip("<>").rpartition("@")[0]
    return any(c in local for c in '@%!"')


def without_subaddress(address: str) -> str:
    """`alex+school@gmail.example` → `alex@gmail.example` (a tag still reaches the mailbox)."""
    local, _, domain = address.rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if "+" in local else address


def mailbox_key(address: str, dotless: Collection[str] = (),
                aliases: Mapping[str, str] | None = None) -> str:
    """One spelling per inbox, for matching the directory: the plus tag dropped (at every
    domain), an alias domain replaced by the one it shares mailboxes with (`googlemail.com`
    → `gmail.com`), and where the provider ignores them (Gmail), the dots of the local part
    dropped: `p.a.t.kim2010+x@googlemail.com` is `patkim2010@gmail.com`. `address` is
    normalised (`normalize_address`)."""
    local, sep, domain = address.rpartition("@")
    if not sep:
        return address
    local = local.split("+", 1)[0]
    if aliases:
        domain = aliases.get(domain, domain)
    if domain in dotless:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def domain_of(address: str) -> str:
    """The domain of a normalised address in ASCII (punycode) form, '' if there is none."""
    _, sep, domain = address.rpartition("@")
    return ascii_domain(domain) if sep else ""


def ascii_domain(domain: str) -> str:
    """The domain in ASCII (A-label) form as current MTAs spell it: IDNA 2008 with UTS #46
    mapping, non-transitional. So `boßierschools.example` is its own domain, not a spelling
    of `bossierschools.example` (Python's built-in codec, IDNA 2003, folds `ß` to `ss`). A
    name that is not valid IDNA comes back lowercased as it is: it then matches no District
    domain."""
    domain = domain.strip().rstrip(".").lower()
    if domain.isascii():  # nearly every domain: nothing to map
        return domain
    try:
        return idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return domain
