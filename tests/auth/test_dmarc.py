"""DMARC against the real Knot server: published policies, the organisational domain's
subdomain policy, alignment, and the record parser on odd input."""

from __future__ import annotations

import pytest

from gateway.auth.dmarc import aligned, evaluate, organisational_domain, parse_record
from tests.auth.helpers import resolver_at
from tests.dnsserver import dead_address


@pytest.mark.parametrize(("domain", "org"), [
    ("staff.example.org", "example.org"), ("a.b.staff.example.org", "example.org"),
    ("example.org", "example.org"), ("school.k12.ca.us", "school.k12.ca.us"),
    ("mail.school.k12.ca.us", "school.k12.ca.us"), ("x.co.uk", "x.co.uk"),
])
def test_organisational_domain(domain: str, org: str) -> None:
    assert organisational_domain(domain) == org


def test_alignment_modes() -> None:
    assert aligned("mail.example.org", "staff.example.org")
    assert not aligned("mail.example.org", "staff.example.org", strict=True)
    assert not aligned("a.co.uk", "b.co.uk")


@pytest.mark.parametrize(("domain", "dkim", "result", "policy"), [
    ("signed.example", ["signed.example"], "pass", "reject"),
    ("signed.example", [], "fail", "reject"),                    # p=reject, nothing aligned
    ("signed.example", ["evil.example"], "fail", "reject"),      # a pass, not aligned
    ("none.example", [], "fail", "none"),                        # p=none
    ("nodmarc.example", [], "none", None),                       # no record
    ("staff.example.org", [], "fail", "reject"),                 # org record's sp=reject
    ("example.org", [], "fail", "quarantine"),                   # org record's p=
    ("staff.example.org", ["mail.example.org"], "pass", "reject"),  # relaxed alignment
])
def test_policies(auth_world, domain: str, dkim: list[str], result: str,
                  policy: str | None) -> None:
    check = evaluate(resolver_at(auth_world.address), domain, [], dkim)
    assert check.result == result
    assert dict(check.properties).get("policy.published-domain-policy") == policy


def test_spf_alignment(auth_world) -> None:
    check = evaluate(resolver_at(auth_world.address), "signed.example", ["signed.example"], [])
    assert (check.result, check.reason) == ("pass", "aligned SPF pass")


def test_dns_down_is_temperror_unless_aligned() -> None:
    resolver = resolver_at(dead_address(), timeout=0.3)
    assert evaluate(resolver, "signed.example", [], []).result == "temperror"
    assert evaluate(resolver, "signed.example", [], ["signed.example"]).result == "pass"


@pytest.mark.parametrize("text", [b"", b"v=spf1 -all", b"p=reject; v=DMARC1", b"v=DMARC2; p=none",
                                  b"\xff\xfe", b"v=DMARC1" + b";" * 10000])
def test_not_records(text: bytes) -> None:
    record = parse_record(text)
    assert record is None or record.get("p") is None
