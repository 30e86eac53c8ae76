"""SPF against the real Knot server: every result RFC 7208 defines, and the limits."""

from __future__ import annotations

import pytest

from gateway.auth.spf import check_spf
from tests.auth.helpers import resolver_at
from tests.dnsserver import SilentServer, dead_address


@pytest.mark.parametrize(("domain", "ip", "result"), [
    ("spf-pass.example", "127.0.0.1", "pass"),
    ("spf-fail.example", "127.0.0.1", "fail"),
    ("spf-soft.example", "127.0.0.1", "softfail"),
    ("spf-neutral.example", "127.0.0.1", "neutral"),
    ("no-record.example", "127.0.0.1", "none"),
    ("spf-bad.example", "127.0.0.1", "permerror"),
    ("spf-loop.example", "127.0.0.1", "permerror"),   # include of itself
    ("spf-many.example", "127.0.0.1", "permerror"),   # 11 DNS mechanisms > 10
    ("spf-huge.example", "127.0.0.1", "pass"),        # 7 KB record: over TCP
    ("spf-huge.example", "203.0.113.9", "fail"),
])
def test_results(auth_world, domain: str, ip: str, result: str) -> None:
    check = check_spf(resolver_at(auth_world.address), ip, f"someone@{domain}", "mx.test")
    assert check.result == result
    assert check.domain == domain
    assert ("smtp.mailfrom", f"someone@{domain}") in check.properties


def test_helo_identity(auth_world) -> None:
    check = check_spf(resolver_at(auth_world.address), "127.0.0.1", "x@spf-fail.example",
                      "mx.spf-pass.example", identity="helo")
    assert (check.result, check.domain) == ("pass", "mx.spf-pass.example")
    assert ("smtp.helo", "mx.spf-pass.example") in check.properties


def test_null_sender_checks_helo(auth_world) -> None:
    check = check_spf(resolver_at(auth_world.address), "127.0.0.1", "", "mx.spf-pass.example")
    assert check.result == "pass"


def test_server_down_is_temperror() -> None:
    check = check_spf(resolver_at(dead_address(), timeout=0.5), "127.0.0.1",
                      "a@spf-pass.example", "mx.test")
    assert check.result == "temperror"


def test_server_silent_is_temperror_within_the_timeout() -> None:
    silent = SilentServer()
    try:
        check = check_spf(resolver_at(silent.address, timeout=0.3), "127.0.0.1",
                          "a@spf-pass.example", "mx.test")
    finally:
        silent.close()
    assert check.result == "temperror"
