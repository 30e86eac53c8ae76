"""DKIM (RFC 6376) and ARC (RFC 8617) verification, by dkimpy over our resolver.

dkimpy takes the TXT lookup as a function (`dnsfunc`); ours asks the configured resolver and
remembers what happened to each key lookup, because dkimpy reports a key that could not be
fetched (timeout) and one that does not exist both as "did not verify": the first is
temperror, the second permerror, a signature that does not match is fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import dkim

from gateway.auth.resolver import DnsTemporary, Resolver
from gateway.model import AuthCheck

_TAG = re.compile(rb"(?:^|;)\s*([a-z]+)\s*=\s*([^;]*)", re.IGNORECASE)
DKIM_MIN_KEY_BITS = 1024  # RFC 8301: shorter keys are not accepted


class _Lookups:
    """The TXT lookup dkimpy calls, with what became of each name."""

    def __init__(self, resolver: Resolver):
        self.resolver = resolver
        self.outcome: dict[str, str] = {}  # name -> ok | missing | temporary
        self.records: dict[str, bytes] = {}

    def __call__(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        key = text.lower().rstrip(".")
        try:
            records = self.resolver.txt(text)
        except DnsTemporary:
            self.outcome[key] = "temporary"
            raise dkim.DnsTimeoutError(f"lookup of {key} failed") from None
        self.outcome[key] = "ok" if records else "missing"
        if records:
            self.records[key] = records[0]
        return records[0] if records else None

    def usable_key(self, name: str) -> bool:
        """Could dkimpy read the key fetched for `name`? (It says only "did not verify".)"""
        record = self.records.get(name)
        if record is None:
            return False
        try:
            dkim.evaluate_pk(name.encode("ascii", "replace"), record)
        except Exception:
            return False
        return True


def signature_tags(value: bytes) -> dict[bytes, bytes]:
    return {k.lower(): b"".join(v.split()) for k, v in _TAG.findall(value)}


def verify_dkim(resolver: Resolver, message: bytes, max_signatures: int) -> list[AuthCheck]:
    """One dkim=RESULT per DKIM-Signature header, topmost first, at most `max_signatures`
    (each costs a key lookup; the rest are reported as not checked)."""
    try:
        verifier = dkim.DKIM(message, minkey=DKIM_MIN_KEY_BITS, timeout=resolver.timeout)
        signatures = [v for k, v in verifier.headers if k.lower() == b"dkim-signature"]
    except Exception as exc:  # a message dkimpy cannot even split into headers
        return [AuthCheck("dkim", "permerror", (), f"unreadable message ({type(exc).__name__})")]
    lookups = _Lookups(resolver)
    out = []
    for index, header in enumerate(signatures):
        tags = signature_tags(header)
        domain = tags.get(b"d", b"").decode("ascii", "replace").lower()
        selector = tags.get(b"s", b"").decode("ascii", "replace")
        props = (("header.d", domain or "-"), ("header.s", selector or "-"))
        if index >= max_signatures:
            out.append(AuthCheck("dkim", "policy", props, "too many signatures; not checked",
                                 domain))
            continue
        out.append(_verify_one(verifier, index, lookups, props, domain, selector))
    return out


def _verify_one(verifier: dkim.DKIM, index: int, lookups: _Lookups,
                props: tuple[tuple[str, str], ...], domain: str, selector: str) -> AuthCheck:
    try:
        ok = verifier.verify(idx=index, dnsfunc=lookups)
    except dkim.ValidationError as exc:
        why = "body hash did not verify" if "body hash" in str(exc) else "signature invalid"
        return AuthCheck("dkim", "fail", props, why, domain)
    except dkim.DKIMException as exc:
        return AuthCheck("dkim", "permerror", props, _why(exc), domain)
    except Exception as exc:  # dkimpy on hostile input (bad base64, odd tags): a result
        return AuthCheck("dkim", "permerror", props, f"malformed ({type(exc).__name__})",
                         domain)
    if ok:
        return AuthCheck("dkim", "pass", props, "", domain)
    name = f"{selector}._domainkey.{domain}".lower()
    outcome = lookups.outcome.get(name)
    if outcome == "temporary":
        return AuthCheck("dkim", "temperror", props, "key lookup failed", domain)
    if outcome == "missing":
        return AuthCheck("dkim", "permerror", props, "no key for signature", domain)
    if outcome == "ok" and not lookups.usable_key(name):
        return AuthCheck("dkim", "permerror", props, "key record unusable", domain)
    return AuthCheck("dkim", "fail", props, "signature did not verify", domain)


def _text(value: object) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _why(exc: Exception) -> str:
    name = type(exc).__name__
    return {"KeyFormatError": "key record unusable", "MessageFormatError": "malformed signature",
            "ParameterError": "malformed signature"}.get(name, f"malformed ({name})")


def verify_arc(resolver: Resolver, message: bytes,
               trusted_sealers: Callable[[str], bool]) -> AuthCheck:
    """arc=pass|fail|none for the message's ARC chain; `header.as-domain` names the newest
    sealer (its seal's d=), whose trust is the configuration's to decide."""
    lookups = _Lookups(resolver)
    try:
        cv, results, reason = dkim.arc_verify(message, dnsfunc=lookups,
                                              minkey=DKIM_MIN_KEY_BITS,
                                              timeout=resolver.timeout)
    except Exception as exc:  # hostile headers dkimpy does not expect
        return AuthCheck("arc", "fail", (), f"malformed chain ({type(exc).__name__})")
    if cv == dkim.CV_None:
        return AuthCheck("arc", "none", (), "")
    newest = results[0] if results else {}
    sealer = _text(newest.get("as-domain", b"")).lower()
    props = (("header.as-domain", sealer),) if sealer else ()
    if cv == dkim.CV_Pass:
        trusted = bool(sealer) and trusted_sealers(sealer)
        why = "chain valid; sealer " + ("trusted" if trusted else "not trusted")
        return AuthCheck("arc", "pass", props, why, sealer)
    if "temporary" in lookups.outcome.values():
        return AuthCheck("arc", "temperror", props, "key lookup failed", sealer)
    return AuthCheck("arc", "fail", props, " ".join(str(reason).split())[:200], sealer)
