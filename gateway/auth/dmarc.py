"""DMARC (RFC 7489): the organisational domain, the published record, and alignment.

"Passes DMARC" here means an SPF or DKIM pass aligned with the From domain, whatever the
domain publishes; its policy (p=, sp=) is reported, never enforced by rejection. The
organisational domain comes from the Public Suffix List bundled with `publicsuffixlist`
(updated with each release of it; never fetched at run time).
"""

from __future__ import annotations

from functools import lru_cache

from publicsuffixlist import PublicSuffixList

from gateway.auth.resolver import DnsTemporary, Resolver
from gateway.model import AuthCheck

_PSL = PublicSuffixList()


@lru_cache(maxsize=4096)
def organisational_domain(domain: str) -> str:
    """`mail.staff.example.org` → `example.org`; a name that is itself a public suffix, or
    that the list does not know, stands for itself."""
    domain = domain.lower().rstrip(".")
    return _PSL.privatesuffix(domain) or domain


def aligned(a: str, b: str, *, strict: bool = False) -> bool:
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    return a == b if strict else organisational_domain(a) == organisational_domain(b)


def parse_record(text: bytes) -> dict[str, str] | None:
    """The tags of a DMARC record, None when it is not one (RFC 7489 6.4: v=DMARC1 first)."""
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        return None
    tags: dict[str, str] = {}
    for part in decoded.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags.setdefault(key.strip().lower(), value.strip())
    if next(iter(tags), None) != "v" or tags.get("v") != "DMARC1":
        return None
    return tags


def lookup_policy(resolver: Resolver, from_domain: str) -> tuple[dict[str, str] | None, bool]:
    """(record tags, found at the organisational domain) for the From domain; the record at
    the domain itself first, then at its organisational domain (RFC 7489 6.6.3)."""
    for name, at_org in ((from_domain, False), (organisational_domain(from_domain), True)):
        if at_org and name == from_domain:
            break
        records = [r for r in map(parse_record, resolver.txt(f"_dmarc.{name}")) if r]
        if len(records) == 1:  # several records: as none (RFC 7489 6.6.3)
            return records[0], at_org
    return None, False


def evaluate(resolver: Resolver, from_domain: str, spf_pass_domains: list[str],
             dkim_pass_domains: list[str]) -> AuthCheck:
    """dmarc=pass when an SPF or DKIM pass is aligned with the From domain (in the record's
    adkim/aspf mode; relaxed without a record), else fail; the policy is reported."""
    props = (("header.from", from_domain),)
    try:
        record, at_org = lookup_policy(resolver, from_domain)
    except DnsTemporary as exc:
        record, at_org = None, False
        temp: str | None = str(exc)
    else:
        temp = None
    tags = record or {}
    dkim_ok = any(aligned(d, from_domain, strict=tags.get("adkim") == "s")
                  for d in dkim_pass_domains)
    spf_ok = any(aligned(d, from_domain, strict=tags.get("aspf") == "s")
                 for d in spf_pass_domains)
    policy = (tags.get("sp") if at_org and "sp" in tags else tags.get("p")) or "none"
    if record is not None:
        props += (("policy.published-domain-policy", policy),)
    how = "DKIM" if dkim_ok else "SPF" if spf_ok else ""
    if record is None and temp is None:
        why = f"no DMARC record; aligned {how} pass" if how else "no DMARC record"
        return AuthCheck("dmarc", "none", props, why, from_domain)
    if how:
        return AuthCheck("dmarc", "pass", props, f"aligned {how} pass", from_domain)
    if temp is not None:
        return AuthCheck("dmarc", "temperror", props, "DNS lookup failed", from_domain)
    return AuthCheck("dmarc", "fail", props, f"no aligned SPF or DKIM pass (p={policy})",
                     from_domain)
