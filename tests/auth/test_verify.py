"""One message's authentication as a whole: which domains it verifies, and why not."""

from __future__ import annotations

import dkim

from gateway.auth.verify import MessageFacts, authenticate, from_header_domain
from gateway.config import AuthSettings
from tests.auth.helpers import message, resolver_at, sign

DISTRICT = ("staff.example.org",)


def _run(auth_world, raw: bytes, mail_from: str = "x@spf-fail.example",
         **settings: object):
    return authenticate(resolver_at(auth_world.address), AuthSettings(**settings),
                        MessageFacts("127.0.0.1", "mx.spf-pass.example", mail_from, raw),
                        DISTRICT)


def test_aligned_dkim_verifies_the_from_domain(auth_world) -> None:
    results = _run(auth_world, sign(message(), auth_world.keys["signed.example"]))
    assert results.verifies("signed.example") and not results.verifies("evil.example")
    assert [c.result for c in results.checks if c.method == "dmarc"] == ["pass"]
    assert not results.sender_verified  # the envelope sender's domain failed SPF


def test_spf_pass_verifies_the_envelope_sender(auth_world) -> None:
    results = _run(auth_world, message(from_addr="a@nodmarc.example"),
                   mail_from="b@spf-pass.example")
    assert results.sender_verified
    assert not results.verifies("nodmarc.example")
    assert "did not pass DMARC" in results.explain("nodmarc.example")


def test_district_claim_from_outside_is_not_verified(auth_world) -> None:
    results = _run(auth_world, sign(message(from_addr="principal@staff.example.org"),
                                    auth_world.keys["evil.example"]))
    assert not results.verifies("staff.example.org")
    dmarc = next(c for c in results.checks if c.method == "dmarc")
    assert (dmarc.result, dict(dmarc.properties)["policy.published-domain-policy"]) == \
        ("fail", "reject")


def _forwarded_by_list(auth_world) -> bytes:
    """Signed by signed.example, changed by a list (footer), sealed by sealer.example."""
    raw = sign(message(), auth_world.keys["signed.example"]) + b"-- \r\nlist footer\r\n"
    raw = (b"Authentication-Results: mx.sealer.example; dkim=pass header.d=signed.example; "
           b"dmarc=pass header.from=signed.example\r\n" + raw)
    key = auth_world.keys["sealer.example"]
    return b"".join(dkim.arc_sign(raw, b"arc", b"sealer.example", key.private_pem,
                                  b"mx.sealer.example")) + raw


def test_trusted_arc_sealer_vouches_for_dmarc(auth_world) -> None:
    raw = _forwarded_by_list(auth_world)
    untrusted = _run(auth_world, raw)
    assert not untrusted.verifies("signed.example")  # the list broke the DKIM signature
    trusted = _run(auth_world, raw, trusted_arc_sealers=("sealer.example",))
    assert trusted.verifies("signed.example")
    assert any(c.method == "arc" and c.result == "pass" for c in trusted.checks)


def test_from_header_domain() -> None:
    assert from_header_domain(message(from_addr="Pat <P@Staff.Example.org>")) == \
        "staff.example.org"
    assert from_header_domain(b"From: a@x.example, b@y.example\r\n\r\n") == ""
    assert from_header_domain(b"From: a@x.example\r\nFrom: b@y.example\r\n\r\n") == ""
    assert from_header_domain(b"Subject: none\r\n\r\n") == ""
