"""The shared resolver against the real Knot server: answers, absence, failure, the cache."""

from __future__ import annotations

import pytest

from gateway.auth.resolver import DnsTemporary
from tests.auth.helpers import resolver_at
from tests.dnsserver import SilentServer, dead_address


def test_txt_strings_joined(auth_world) -> None:
    resolver = resolver_at(auth_world.address)
    [key] = resolver.txt("g._domainkey.gmail.example")
    assert key.startswith(b"v=DKIM1; k=rsa; p=") and len(key) > 200  # several strings, joined
    [huge] = resolver.txt("spf-huge.example")  # 7 KB: truncated over UDP, read over TCP
    assert len(huge) > 7000 and huge.endswith(b"-all")


def test_absent_names_and_types(auth_world) -> None:
    resolver = resolver_at(auth_world.address)
    assert resolver.txt("nothing-here.example") == []
    assert resolver.resolve("spf-pass.example", "MX") is None
    assert resolver.txt("a" * 70 + ".example") == []  # not a possible name


def test_answers_are_kept_until_their_ttl(auth_world) -> None:
    resolver = resolver_at(auth_world.address, cache_size=2)
    first = resolver.resolve("spf-pass.example", "TXT")
    assert resolver.resolve("SPF-PASS.example", "TXT") is first
    resolver.resolve("spf-fail.example", "TXT")
    resolver.resolve("spf-soft.example", "TXT")  # past the size: the memo starts over
    assert resolver.resolve("spf-pass.example", "TXT") is not None


@pytest.mark.parametrize("server", ["down", "silent"])
def test_no_answer_is_temporary(server: str) -> None:
    silent = SilentServer()
    address = dead_address() if server == "down" else silent.address
    try:
        with pytest.raises(DnsTemporary):
            resolver_at(address, timeout=0.3).txt("spf-pass.example")
    finally:
        silent.close()
