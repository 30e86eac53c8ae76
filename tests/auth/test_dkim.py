"""DKIM and ARC verification against the real Knot server, with keys published there."""

from __future__ import annotations

import dkim

from gateway.auth.dkim import verify_arc, verify_dkim
from tests.auth.helpers import message, resolver_at, sign
from tests.dnsserver import SilentServer


def test_good_signature(auth_world) -> None:
    raw = sign(message(), auth_world.keys["signed.example"])
    [check] = verify_dkim(resolver_at(auth_world.address), raw, 5)
    assert (check.result, check.domain) == ("pass", "signed.example")
    assert ("header.s", "sel") in check.properties


def test_body_changed_is_fail(auth_world) -> None:
    raw = sign(message(), auth_world.keys["signed.example"]).replace(b"noon", b"nine")
    [check] = verify_dkim(resolver_at(auth_world.address), raw, 5)
    assert check.result == "fail"
    assert "body hash" in check.reason


def test_signature_by_another_key_is_fail(auth_world) -> None:
    # Signed with evil.example's private key but claiming signed.example's selector.
    raw = sign(message(), auth_world.keys["evil.example"], domain="signed.example",
               selector="sel")
    [check] = verify_dkim(resolver_at(auth_world.address), raw, 5)
    assert check.result == "fail"


def test_unknown_key_is_permerror(auth_world) -> None:
    raw = sign(message(), auth_world.keys["signed.example"], selector="missing")
    [check] = verify_dkim(resolver_at(auth_world.address), raw, 5)
    assert (check.result, check.reason) == ("permerror", "no key for signature")


def test_forged_header_without_valid_signature(auth_world) -> None:
    raw = (b"DKIM-Signature: v=1; a=rsa-sha256; d=evil.example; s=e; h=from; bh=AAAA; b=BBBB\r\n"
           + message())
    [check] = verify_dkim(resolver_at(auth_world.address), raw, 5)
    assert check.result in ("fail", "permerror")
    assert check.domain == "evil.example"


def test_malformed_signatures_give_results(auth_world) -> None:
    resolver = resolver_at(auth_world.address)
    for header in (b"DKIM-Signature: garbage\r\n", b"DKIM-Signature: v=1; d=; s=\r\n",
                   b"DKIM-Signature: v=1; a=rsa-sha256; d=broken.example; s=hugekey; "
                   b"h=from; bh=AAAA; b=!!!!\r\n",
                   b"DKIM-Signature: v=1; a=rsa-sha256; d=broken.example; s=nokey; "
                   b"h=from; bh=AAAA; b=AAAA\r\n"):
        [check] = verify_dkim(resolver, header + message(), 5)
        assert check.result in ("fail", "permerror"), header


def test_several_signatures_each_reported(auth_world) -> None:
    raw = sign(message(from_addr="x@gmail.example"), auth_world.keys["gmail.example"])
    raw = sign(raw, auth_world.keys["signed.example"], selector="missing")
    raw = sign(raw, auth_world.keys["sealer.example"])
    checks = verify_dkim(resolver_at(auth_world.address), raw, 5)
    assert [(c.domain, c.result) for c in checks] == [
        ("sealer.example", "pass"), ("signed.example", "permerror"), ("gmail.example", "pass")]


def test_signature_limit(auth_world) -> None:
    raw = message()
    for _ in range(3):
        raw = sign(raw, auth_world.keys["signed.example"])
    checks = verify_dkim(resolver_at(auth_world.address), raw, 2)
    assert [c.result for c in checks] == ["pass", "pass", "policy"]


def test_key_lookup_timeout_is_temperror(auth_world) -> None:
    silent = SilentServer()
    try:
        raw = sign(message(), auth_world.keys["signed.example"])
        [check] = verify_dkim(resolver_at(silent.address, timeout=0.3), raw, 5)
    finally:
        silent.close()
    assert check.result == "temperror"


# --- ARC --------------------------------------------------------------------------------

def _sealed(auth_world, raw: bytes) -> bytes:
    key = auth_world.keys["sealer.example"]
    raw = (b"Authentication-Results: mx.sealer.example; dmarc=pass header.from=signed.example\r\n"
           + raw)
    headers = dkim.arc_sign(raw, b"arc", b"sealer.example", key.private_pem,
                            b"mx.sealer.example")
    return b"".join(headers) + raw


def test_arc_good_chain(auth_world) -> None:
    raw = _sealed(auth_world, message())
    check = verify_arc(resolver_at(auth_world.address), raw, lambda d: d == "sealer.example")
    assert (check.result, check.domain) == ("pass", "sealer.example")
    assert "sealer trusted" in check.reason


def test_arc_broken_chain(auth_world) -> None:
    raw = _sealed(auth_world, message()).replace(b"noon", b"nine")
    check = verify_arc(resolver_at(auth_world.address), raw, lambda d: True)
    assert check.result == "fail"


def test_no_arc(auth_world) -> None:
    assert verify_arc(resolver_at(auth_world.address), message(), lambda d: True).result == "none"
