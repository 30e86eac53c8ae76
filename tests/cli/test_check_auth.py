"""`gateway check` for a client outside trusted_networks: the authentication it used, against
the real Knot server of the authentication tests, and `--no-dns` offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from tests.auth.helpers import message, sign
from tests.authzones import auth_world
from tests.factories import STAFF_DOMAIN, write_district_config

__all__ = ["auth_world"]


def _config(tmp_path: Path, address: str) -> Path:
    return write_district_config(
        tmp_path, extra=f"authentication: {{resolvers: ['{address}'], timeout: 1}}")


def test_check_reports_the_results_it_used(tmp_path: Path, auth_world,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, auth_world.address)
    eml = tmp_path / "m.eml"
    eml.write_bytes(sign(message(from_addr=f"Pat <principal@{STAFF_DOMAIN}>",
                                 to=f"mbrown@{STAFF_DOMAIN}"), auth_world.keys["evil.example"]))
    argv = ["check", "--config", str(config), "--json", "--client-ip", "127.0.0.1",
            "--mail-from", "boss@evil.example", "--helo", "mx.evil.example", str(eml)]
    # 127.0.0.1 is trusted in this config: nothing is checked.
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["authentication"]["checked"] is False
    argv[argv.index("127.0.0.1")] = "203.0.113.7"
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    auth = out["authentication"]
    assert auth["checked"] is True
    results = {(c["method"], c["result"]) for c in auth["checks"]}
    # d230.example publishes no DMARC record: dmarc=none, and still not verified.
    assert {("spf", "fail"), ("dkim", "pass"), ("dmarc", "none")} <= results
    assert auth["from_domain"]["verified"] is False
    assert "did not pass DMARC" in auth["from_domain"]["reason"]
    assert out["recipients"][0]["rules"] == ["P13"]


def test_check_no_dns_is_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The resolver named here does not exist: --no-dns must not ask it.
    config = _config(tmp_path, "192.0.2.1:53")
    eml = tmp_path / "m.eml"
    eml.write_bytes(message(from_addr=f"principal@{STAFF_DOMAIN}", to=f"mbrown@{STAFF_DOMAIN}"))
    assert main(["check", "--config", str(config), "--client-ip", "203.0.113.7", "--no-dns",
                 str(eml)]) == 0
    text = capsys.readouterr().out
    assert "auth      not authenticated (--no-dns or disabled)" in text
    assert "P13 annotate" in text
