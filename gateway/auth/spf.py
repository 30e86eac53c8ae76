"""SPF (RFC 7208) for the envelope sender and the HELO name, by pyspf over our resolver.

pyspf evaluates the record (mechanisms, macros, the ten-lookup and two-void-lookup limits,
include loops) and looks names up through its module function `spf.DNSLookup`. That function
is replaced once, here, by one that asks the resolver of the thread's current check: the
configured servers, timeout and cache instead of dnspython's default resolver. The version
of pyspf is capped for it and `tests/test_library_internals.py` guards the name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import dns.rdatatype
import spf

from gateway.auth.resolver import DnsTemporary, Resolver
from gateway.model import AuthCheck

_current = threading.local()
# The whole evaluation of one identity, all its lookups together, in seconds (RFC 7208 4.6.4
# suggests 20): past it pyspf gives temperror.
MAX_SPF_SECONDS = 20.0


def _lookup(name: str, qtype: str, strict: Any = True, timeout: float = 30) -> list[Any]:
    """pyspf's DNSLookup: [((name, type), value), ...] for the answer, CNAMEs included."""
    resolver: Resolver | None = getattr(_current, "resolver", None)
    if resolver is None:
        raise spf.TempError("DNS no resolver configured for this thread")
    try:
        answer = resolver.resolve(name, qtype)
    except DnsTemporary as exc:
        raise spf.TempError(f"DNS {exc}") from exc
    if answer is None or answer.response is None:
        return []
    out: list[Any] = []
    for rrset in answer.response.answer:
        owner = rrset.name.to_text(omit_final_dot=True)
        kind = dns.rdatatype.to_text(rrset.rdtype)
        for rdata in rrset:
            value = _VALUES.get(kind)
            if value is not None:
                out.append(((owner, kind), value(rdata)))
    return out


_VALUES: dict[str, Callable[[Any], Any]] = {
    "A": lambda r: r.address,
    "AAAA": lambda r: r.address,
    "MX": lambda r: (r.preference, r.exchange),
    "PTR": lambda r: r.target.to_text(True),
    "TXT": lambda r: r.strings,
    "SPF": lambda r: r.strings,
    "CNAME": lambda r: r.target.to_text(True),
}

spf.DNSLookup = _lookup


def check_spf(resolver: Resolver, ip: str, mail_from: str, helo: str,
              *, identity: str = "mailfrom") -> AuthCheck:
    """spf=RESULT for the envelope sender (`identity="mailfrom"`; a null sender is checked
    as postmaster@HELO, RFC 7208 2.4) or for the HELO name (`identity="helo"`)."""
    if identity == "helo":
        sender, ptype = f"postmaster@{helo}", "smtp.helo"
        shown = helo
    else:
        sender = mail_from or f"postmaster@{helo}"
        ptype, shown = "smtp.mailfrom", mail_from or helo
    domain = sender.rpartition("@")[2].lower().rstrip(".")
    if not domain or not ip:
        return AuthCheck("spf", "none", ((ptype, shown or "<>"),), "no domain to check", domain)
    _current.resolver = resolver
    try:
        query = spf.query(i=ip, s=sender, h=helo or domain, timeout=resolver.timeout,
                          querytime=MAX_SPF_SECONDS)
        result, _code, explanation = query.check()
    except Exception as exc:  # a pyspf defect on hostile input: a result, not a crash
        result, explanation = "permerror", f"record could not be evaluated ({type(exc).__name__})"
    finally:
        _current.resolver = None
    return AuthCheck("spf", result, ((ptype, shown),), _short(explanation), domain)


def _short(text: str) -> str:
    """The explanation as one short line: a domain's exp= text is the domain's to choose."""
    return " ".join(str(text).split())[:200]
