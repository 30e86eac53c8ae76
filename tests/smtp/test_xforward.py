"""XFORWARD attributes: parsing (xtext, Postfix's unavailable markers) and what is used."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gateway.smtp import xforward


def test_parse_decodes_xtext() -> None:
    assert xforward.parse("ADDR=IPV6:2001:db8::1 helo=mx+2Eexample+2Eorg IDENT=4Xq") == {
        "ADDR": "IPV6:2001:db8::1", "HELO": "mx.example.org", "IDENT": "4Xq"}


@pytest.mark.parametrize("arg", [None, "", "  ", "ADDR", "ADDR=", "COLOUR=blue",
                                 "HELO=a+0Ab", "NAME=" + "x" * 300])
def test_parse_refuses(arg: str | None) -> None:
    assert isinstance(xforward.parse(arg), str)


@pytest.mark.parametrize(("attrs", "addr"), [
    ({"ADDR": "203.0.113.5"}, "203.0.113.5"), ({"ADDR": "IPV6:2001:db8::1"}, "2001:db8::1"),
    ({"ADDR": "[UNAVAILABLE]"}, None), ({"ADDR": "[TEMPUNAVAIL]"}, None),
    ({"ADDR": "not-an-ip"}, None), ({}, None), (None, None),
])
def test_forwarded_address(attrs: dict[str, str] | None, addr: str | None) -> None:
    assert xforward.forwarded(SimpleNamespace(xforward=attrs), "ADDR") == addr
