"""Test zones for sender authentication, with the DKIM/ARC keys made for them, and the Knot
server that serves them (`tests.dnsserver`). Shared by `tests/auth/` and the end-to-end
SMTP tests.

Names under `example.` and `example.org.` only; clients connect from 127.0.0.1, which the SPF
records of the "good" domains authorise.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.dnsserver import KnotServer, txt


@dataclass(frozen=True)
class Key:
    selector: str
    domain: str
    private_pem: bytes
    public_b64: str

    def record(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_b64}"


def make_key(selector: str, domain: str, bits: int = 1024) -> Key:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return Key(selector, domain, pem, base64.b64encode(der).decode("ascii"))


@dataclass(frozen=True)
class AuthWorld:
    server: KnotServer
    keys: dict[str, Key]  # by signing domain

    @property
    def address(self) -> str:
        return self.server.address


def _key_line(key: Key, origin: str) -> str:
    name = f"{key.selector}._domainkey.{key.domain}".removesuffix("." + origin.rstrip("."))
    return f"{name} IN TXT {txt(key.record())}"


def build_zones(keys: dict[str, Key]) -> dict[str, list[str]]:
    many = " ".join(f"a:h{i}.example" for i in range(1, 12))
    huge = " ".join(f"ip4:192.0.2.{i % 250}/32" for i in range(400)) + " ip4:127.0.0.0/8"
    example = [
        f'spf-pass IN TXT {txt("v=spf1 ip4:127.0.0.0/8 -all")}',
        f'spf-fail IN TXT {txt("v=spf1 ip4:192.0.2.1 -all")}',
        f'spf-soft IN TXT {txt("v=spf1 ip4:192.0.2.1 ~all")}',
        f'spf-neutral IN TXT {txt("v=spf1 ?all")}',
        f'spf-loop IN TXT {txt("v=spf1 include:spf-loop.example -all")}',
        f'spf-many IN TXT {txt(f"v=spf1 {many} -all")}',
        f'spf-bad IN TXT {txt("v=spf1 ip4:not-an-address -all")}',
        f'spf-huge IN TXT {txt(f"v=spf1 {huge} -all")}',
        *(f"h{i} IN A 192.0.2.10" for i in range(1, 12)),
        f'mx.spf-pass IN TXT {txt("v=spf1 ip4:127.0.0.0/8 -all")}',
        f'signed IN TXT {txt("v=spf1 -all")}',
        f'_dmarc.signed IN TXT {txt("v=DMARC1; p=reject")}',
        f'none IN TXT {txt("v=spf1 ip4:127.0.0.0/8 -all")}',
        f'_dmarc.none IN TXT {txt("v=DMARC1; p=none")}',
        f'nodmarc IN TXT {txt("v=spf1 ip4:127.0.0.0/8 -all")}',
        f'evil IN TXT {txt("v=spf1 ip4:127.0.0.0/8 -all")}',
        f'gmail IN TXT {txt("v=spf1 ip4:127.0.0.0/8 -all")}',
        f'_dmarc.gmail IN TXT {txt("v=DMARC1; p=none")}',
        f'sealer IN TXT {txt("v=spf1 -all")}',
        f'hugekey._domainkey.broken IN TXT {txt("v=DKIM1; k=rsa; p=" + "A" * 6000)}',
        f'nokey._domainkey.broken IN TXT {txt("v=DKIM1; k=rsa; p=")}',
        # The shipped configuration's district: its mail leaves through a cloud provider.
        f'staff.district230 IN TXT {txt("v=spf1 ip4:198.51.100.0/24 -all")}',
        f'_dmarc.district230 IN TXT {txt("v=DMARC1; p=reject")}',
    ]
    org = [
        f'_dmarc IN TXT {txt("v=DMARC1; p=quarantine; sp=reject")}',
        f'staff IN TXT {txt("v=spf1 ip4:198.51.100.0/24 -all")}',
        f'students IN TXT {txt("v=spf1 ip4:198.51.100.0/24 -all")}',
    ]
    zones = {"example.": example, "example.org.": org}
    for key in keys.values():
        origin = "example.org." if key.domain.endswith("example.org") else "example."
        zones[origin].append(_key_line(key, origin))
    return zones


KEY_DOMAINS = {"signed.example": "sel", "gmail.example": "g", "sealer.example": "arc",
               "evil.example": "e", "staff.example.org": "d", "other.example": "o",
               "staff.district230.example": "news"}


def start_world(tmp: Path) -> AuthWorld:
    keys = {domain: make_key(selector, domain) for domain, selector in KEY_DOMAINS.items()}
    server = KnotServer(tmp / "knot", build_zones(keys)).start()
    return AuthWorld(server, keys)


@pytest.fixture(scope="session")
def auth_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthWorld]:
    """Knot serving the authentication test zones, for the whole session."""
    world = start_world(tmp_path_factory.mktemp("dns"))
    yield world
    world.server.stop()
