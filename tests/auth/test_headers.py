"""Authentication-Results out, forged gateway headers stripped: bytes in, bytes out."""

from __future__ import annotations

import email
from email.policy import default as default_policy

from gateway.auth.headers import authentication_results, strip_forged, with_results
from gateway.model import AuthCheck, AuthResults

RAW = (b"Received: from x by y\r\n"
       b"Authentication-Results: gw.test; dkim=pass\r\n"
       b"Authentication-Results: (comment) GW.TEST;\r\n spf=pass\r\n"
       b"Authentication-Results: mx.other.example; spf=pass\r\n"
       b"Authentication-Results: gw.test.evil.example; spf=pass\r\n"
       b"X-District-Policy: P3; relay\r\n"
       b"x-district-sender-verified: yes\r\n\tfolded\r\n"
       b"From: a@example.org\r\n"
       b"Subject: hi\r\n"
       b"\r\n"
       b"X-District-Policy: in the body stays\r\n")


def test_strip_forged_keeps_everything_else() -> None:
    out = strip_forged(RAW, "gw.test")
    assert out == (b"Received: from x by y\r\n"
                   b"Authentication-Results: mx.other.example; spf=pass\r\n"
                   b"Authentication-Results: gw.test.evil.example; spf=pass\r\n"
                   b"From: a@example.org\r\n"
                   b"Subject: hi\r\n"
                   b"\r\n"
                   b"X-District-Policy: in the body stays\r\n")


def test_nothing_to_strip_returns_the_same_bytes() -> None:
    raw = b"From: a@example.org\r\n\r\nbody\r\n"
    assert strip_forged(raw, "gw.test") is raw
    assert strip_forged(b"no header block at all", "gw.test") == b"no header block at all"


def test_results_header_parses() -> None:
    results = AuthResults((
        AuthCheck("spf", "pass", (("smtp.mailfrom", "a@example.org"),), "ok", "example.org"),
        AuthCheck("dkim", "fail", (("header.d", "example.org"), ("header.s", "s1")),
                  "body hash (did not) verify", "example.org"),
        AuthCheck("dmarc", "fail", (("header.from", "exa mple\".org"),), "", ""),
    ))
    header = authentication_results("gw.test", results)
    assert header.endswith(b"\r\n")
    msg = email.message_from_bytes(with_results(b"From: x@y\r\n\r\nb\r\n", "gw.test", results),
                                   policy=default_policy)
    value = " ".join(msg["Authentication-Results"].split())
    assert value.startswith("gw.test; spf=pass (ok) smtp.mailfrom=a@example.org;")
    assert "dkim=fail (body hash did not verify) header.d=example.org header.s=s1" in value
    assert 'header.from="exa mple\\".org"' in value


def test_no_checks_says_none() -> None:
    assert authentication_results("gw.test", AuthResults()) == \
        b"Authentication-Results: gw.test;\r\n\tnone\r\n"
