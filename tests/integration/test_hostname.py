"""`smtp.hostname` names the gateway everywhere it names itself: the greeting, the Received:
line on relayed mail and the Reporting-MTA of its bounces; and every shipped configuration sets
it (the default, the machine's FQDN, is "localhost" in many containers)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib
import pytest
import yaml

from gateway.config import load_settings
from gateway.model import Action
from tests.factories import ScriptedPolicy, make_message, write_settings
from tests.harness import send, wait_for

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [REPO / "config" / "gateway.yaml", REPO / "config" / "gateway.docker.yaml",
           REPO / "systemd" / "gateway.yaml"]
SENDER = "teacher@staff.example.org"
REFUSED = "nobody@example.com"
DELIVERED = "someone@example.com"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_configuration_names_the_gateway(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    assert raw["smtp"]["hostname"] == load_settings(path).smtp.hostname
    assert load_settings(path).smtp.hostname not in ("localhost", "localhost.localdomain")


async def test_greeting_received_and_bounce_carry_the_configured_name(tmp_path, upstream,
                                                                       gateways) -> None:
    settings = write_settings(tmp_path, upstream.port)  # smtp.hostname: gw.test
    gw = await gateways(settings, ScriptedPolicy({REFUSED: Action.REJECT}))
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=gw.port, timeout=5)
    greeting = await client.connect()
    await client.quit()
    assert greeting.code == 220 and greeting.message.startswith("gw.test ")

    await send(gw.port, SENDER, [DELIVERED, REFUSED], make_message())
    await wait_for(lambda: len(upstream.messages) == 2)
    relayed, bounce = sorted(upstream.messages, key=lambda m: m.mail_from != SENDER)
    assert relayed.content.startswith(b"Received: from ")
    assert b"by gw.test (district-gateway)" in relayed.content.split(b"\r\n\r\n")[0]
    assert bounce.mail_from == "<>" and bounce.rcpt_tos == [SENDER]
    assert b"Reporting-MTA: dns; gw.test" in bounce.content
    await asyncio.sleep(0)
