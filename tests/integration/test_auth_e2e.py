"""Sender authentication end to end over SMTP: the shipped configuration, a real Knot DNS
server with the test zones, and a client outside trusted_networks (127.0.0.1 is not trusted
here). Forged gateway headers, a forged DKIM signature claiming the principal, the
district's own mail from a cloud mailer, a student's signed personal mail, backscatter."""

from __future__ import annotations

import asyncio
import email
import html
import shutil
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import dkim
import pytest

from gateway.cli import main as cli
from gateway.config import load_settings
from gateway.quarantine import Actor, open_store
from gateway.quarantine.reviewbase import Account
from gateway.review.accounts import hash_password
from gateway.review.app import create_app
from gateway.runtime import load_runtime
from gateway.service.listener import Gateway
from gateway.smtp.client import Relay
from tests.auth.helpers import resolver_at, sign
from tests.authzones import auth_world
from tests.factories import REPO
from tests.harness import send, wait_for
from tests.review.conftest import PASSWORD, signed_in

__all__ = ["auth_world"]

JSMITH = "jsmith@staff.district230.example"
MBROWN = "mbrown@staff.district230.example"
PRINCIPAL = "principal@staff.district230.example"
STUDENT_PERSONAL = "alexj2009@gmail.example"
STUDENT_DISTRICT = "alex.jones@students.district230.example"


@pytest.fixture
def config(tmp_path: Path, upstream, auth_world) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(REPO / "config", folder)
    path = folder / "gateway.yaml"
    text = path.read_text().replace("port: 10025", "port: 0").replace(
        "port: 10026", f"port: {upstream.port}").replace(
        'metrics: {listen: "127.0.0.1:9125"}', "").replace(
        'trusted_networks: [127.0.0.0/8, "::1/128"]', "trusted_networks: [10.255.0.0/16]")
    key = auth_world.keys["sealer.example"]
    (folder / "arc.key").write_bytes(key.private_pem)
    text += (f"\nauthentication: {{resolvers: ['{auth_world.address}'], timeout: 1, "
             "authserv_id: gw.test, arc_seal: {domain: sealer.example, selector: arc, "
             "key: arc.key}}\n")
    path.write_text(text)
    return path


@pytest.fixture
async def gateway(config: Path):
    settings = load_settings(config)
    gw = Gateway(settings, load_runtime(settings), open_store(settings))
    await gw.start()
    yield gw
    await gw.drain(0)
    assert gw.store is not None
    gw.store.close()


def mail(sender: str, to: str, subject: str, body: str, *, html_body: str | None = None,
         extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    msg = EmailMessage()
    for name, value in extra:
        msg[name] = value
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"] = "Sun, 06 Dec 2026 04:00:00 +0000"
    msg["Message-ID"] = "<e2e@test.example>"
    msg.set_content(body)
    if html_body is not None:
        msg.add_alternative(html_body, subtype="html")
    return msg.as_bytes(policy=default_policy.clone(linesep="\r\n"))


def delivered(upstream) -> email.message.EmailMessage:
    [received] = upstream.messages
    return email.message_from_bytes(received.content, policy=default_policy)


def bodies(msg: email.message.EmailMessage) -> list[str]:
    """The text and HTML alternatives, as words (HTML entities decoded)."""
    return [" ".join(html.unescape(part.get_content()).split()) for part in msg.walk()
            if part.get_content_type() in ("text/plain", "text/html")]


async def test_forged_gateway_headers_are_removed(gateway, upstream):
    content = mail("someone@evil.example", MBROWN, "Lunch", "Tuesday?", extra=(
        ("X-District-Sender-Verified", "yes"), ("X-District-Policy", "P3; relay"),
        ("Authentication-Results", "gw.test; dkim=pass header.d=staff.district230.example"),
        ("Authentication-Results", "mx.other.example; spf=pass")))
    errors, _ = await send(gateway.port, "someone@evil.example", [MBROWN], content)
    assert errors == {}
    msg = delivered(upstream)
    assert "ARC-Seal" not in msg  # relayed unchanged: nothing to seal
    assert not [k for k in msg if k.lower().startswith("x-district-")]
    results = msg.get_all("Authentication-Results")
    assert len(results) == 2
    ours, theirs = results
    assert ours.startswith("gw.test;") and "spf=pass" in ours and "dmarc=" in ours
    assert "dkim=pass" not in ours
    assert theirs.startswith("mx.other.example")


async def test_forged_dkim_claiming_the_principal_is_marked(gateway, upstream):
    content = mail(f"Pat Principal <{PRINCIPAL}>", MBROWN, "Buy gift cards now",
                   "Please buy five gift cards and send me the codes.",
                   html_body="<p>Please buy five gift cards.</p>")
    forged = (b"DKIM-Signature: v=1; a=rsa-sha256; d=evil.example; s=e; c=relaxed/relaxed; "
              b"h=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n")
    errors, _ = await send(gateway.port, "boss@evil.example", [MBROWN], forged + content)
    assert errors == {}
    msg = delivered(upstream)
    assert msg["Subject"].startswith("[UNVERIFIED]")
    assert msg["X-District-Sender-Verified"] == "no"
    text, html_body = bodies(msg)
    for body in (text, html_body):
        assert "CAUTION" in body and "staff.district230.example did not pass DMARC" in body
    ours = msg.get_all("Authentication-Results")[0]
    assert "dkim=fail" in ours or "dkim=permerror" in ours
    assert "dmarc=fail" in ours and "header.from=staff.district230.example" in ours


async def test_district_mail_from_a_cloud_mailer_passes_p13(gateway, upstream, auth_world):
    content = mail("District News <news@staff.district230.example>", MBROWN, "Newsletter",
                   "This week at school.")
    signed = sign(content, auth_world.keys["staff.district230.example"])
    errors, _ = await send(gateway.port, "bounces@mailer.example", [MBROWN], signed)
    assert errors == {}
    msg = delivered(upstream)
    assert not msg["Subject"].startswith("[UNVERIFIED]")
    assert "dmarc=pass" in msg.get_all("Authentication-Results")[0]
    assert "CAUTION" not in bodies(msg)[0]


async def test_signed_student_personal_mail_gets_the_p5_notice(gateway, upstream, auth_world):
    content = mail(STUDENT_PERSONAL, JSMITH, "Homework", "Can I hand it in Monday?",
                   html_body="<html><body><p>Can I hand it in Monday?</p></body></html>")
    signed = sign(content, auth_world.keys["gmail.example"])
    errors, _ = await send(gateway.port, STUDENT_PERSONAL, [JSMITH], signed)
    assert errors == {}
    msg = delivered(upstream)
    assert "dkim=pass" in msg.get_all("Authentication-Results")[0]
    # The notice broke the student's DKIM signature; the gateway's ARC seal vouches for it.
    [received] = upstream.messages
    resolver = lambda name, timeout=5: resolver_at(auth_world.address).txt(  # noqa: E731
        name.decode() if isinstance(name, bytes) else name)[0]
    assert not dkim.verify(received.content, dnsfunc=resolver)
    cv, results, _ = dkim.arc_verify(received.content, dnsfunc=resolver)
    assert cv == dkim.CV_Pass and results[0]["as-domain"] == b"sealer.example"
    assert "dkim=pass" in msg["ARC-Authentication-Results"]
    for body in bodies(msg):
        assert "Reply only to the student's District account" in body
        assert STUDENT_DISTRICT in body


@pytest.mark.parametrize(("sender", "bounced"), [
    ("forged@spf-fail.example", False),   # SPF fail: may be forged, no DSN
    ("real@spf-pass.example", True),      # SPF pass: the DSN goes out
])
async def test_bounces_only_to_verified_senders(gateway, upstream, sender, bounced):
    unknown = "nobody@staff.district230.example"
    upstream.behaviour.refuse_rcpt.add(unknown)
    subject = "x" * 850
    errors, reply = await send(gateway.port, sender, [MBROWN, unknown],
                               mail(sender, MBROWN, subject, "hello"))
    assert reply.startswith("2.0.0") or errors == {}
    if bounced:
        await wait_for(lambda: len(upstream.messages) == 2)
        assert upstream.messages[1].rcpt_tos == [sender]
    else:
        await wait_for(lambda: not gateway.background)
        assert [m.rcpt_tos for m in upstream.messages] == [[MBROWN]]


async def test_a_released_annotated_copy_is_sealed_too(config, gateway, upstream):
    """Held by P10, annotated by P13: the reviewer's release changes the copy, and seals it."""
    content = mail(f"Jane Smith <{JSMITH}>", STUDENT_DISTRICT, "hello", "Nobody likes you.")
    errors, _ = await send(gateway.port, "spoof@evil.example", [STUDENT_DISTRICT], content)
    assert errors == {} and upstream.messages == []
    [entry] = gateway.store.list_entries()
    assert {"P10", "P13"} <= set(entry.rules)
    status = await asyncio.to_thread(cli, ["quarantine", "release", entry.id, "--reason",
                                           "reviewed", "--config", str(config)])
    assert status == 0
    msg = delivered(upstream)
    assert msg["Subject"].startswith("[UNVERIFIED]")
    assert msg["ARC-Seal"] is not None and "d=sealer.example" in msg["ARC-Seal"]


async def test_a_copy_released_in_the_review_console_is_sealed_too(config, gateway, upstream):
    """The console releases through the same path as the command, sealing included."""
    content = mail(f"Jane Smith <{JSMITH}>", STUDENT_DISTRICT, "hello", "Nobody likes you.")
    await send(gateway.port, "spoof@evil.example", [STUDENT_DISTRICT], content)
    [entry] = gateway.store.list_entries()
    settings = load_settings(config)
    gateway.store.add_account(Account("admin", "administrator",
                                      password_hash=hash_password(PASSWORD)),
                              Actor("it", "root"))
    relay = Relay(settings.upstream, settings.smtp.hostname)
    client = await signed_in(create_app(settings, gateway.store, relay.send), "admin")
    try:
        response = await client.http.post(f"/entry/{entry.id}/release", data={
            "csrf": await client.token(f"/entry/{entry.id}"), "reason": "reviewed"})
        assert response.status_code == 303
        msg = delivered(upstream)
        assert msg["Subject"].startswith("[UNVERIFIED]")
        assert msg["ARC-Seal"] is not None and "d=sealer.example" in msg["ARC-Seal"]
    finally:
        await client.aclose()
        await relay.close()
