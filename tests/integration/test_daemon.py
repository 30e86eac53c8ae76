"""The real daemon in a subprocess, observed only from outside: signals, sd_notify, HTTP, SMTP.

Each test starts `python -m gateway serve` with ports 0 (the daemon logs where it listened)
against an aiosmtpd upstream in the test, and an abstract-namespace NOTIFY_SOCKET.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import REPO, make_message, write_daemon_config
from tests.harness import DaemonProcess, http_get, metric, metric_samples, send
from tests.upstream import Upstream

STAFF = "teacher@staff.example.org"
COLLEAGUE = "colleague@staff.example.org"
STUDENT_PERSONAL = "kid.home@mail.example.net"

PEOPLE = f"""address,role,person_id,name,supervisor,students
{STAFF},staff,T1,Terry Teacher,principal@staff.example.org,
{COLLEAGUE},staff,T2,Cody Colleague,principal@staff.example.org,
principal@staff.example.org,staff,T0,Pat Principal,,
kid@students.example.org,student,400001,Kim Kid,,
{STUDENT_PERSONAL},student,400001,Kim Kid,,
"""


@pytest.fixture
def notify_socket() -> Any:
    name = f"gateway-ops-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    yield "@" + name, sock
    sock.close()


def write_config(folder: Path, upstream_port: int) -> Path:
    # stdout is a pipe, so `auto` logs JSON
    return write_daemon_config(folder, upstream_port, PEOPLE)


@pytest.fixture
async def daemon(tmp_path: Path, upstream: Upstream,
                 notify_socket: tuple[str, socket.socket]) -> AsyncIterator[DaemonProcess]:
    env = {**os.environ, "NOTIFY_SOCKET": notify_socket[0], "PYTHONUNBUFFERED": "1"}
    env.pop("WATCHDOG_USEC", None)
    proc = await DaemonProcess(write_config(tmp_path, upstream.port), env).start()
    try:
        await proc.wait_event("gateway_started")
        yield proc
    finally:
        upstream.gate.set()
        await proc.close()


async def notifications(sock: socket.socket, count: int) -> list[dict[str, str]]:
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(count):
        data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 60)
        out.append(dict(line.split("=", 1) for line in data.decode().split("\n")))
    return out


async def mail(port: int, sender: str, rcpt: str) -> tuple[dict[str, Any], str]:
    content = make_message("Staff meeting", "The staff meeting moves to room 12 on Thursday.\n",
                           sender=sender, to=rcpt, message_id=None)
    return await send(port, sender, [rcpt], content, timeout=120)


def delivered(upstream: Upstream) -> list[tuple[str, list[str]]]:
    return [(m.mail_from, m.rcpt_tos) for m in upstream.messages]


async def scrape(port: int) -> dict[Any, float]:
    status, body = await http_get(port, "/metrics")
    assert status == 200
    return metric_samples(body.decode())


async def ready_status(port: int) -> tuple[int, dict[str, Any]]:
    status, body = await http_get(port, "/readyz")
    return status, json.loads(body)


async def until_ready_is(port: int, wanted: int) -> dict[str, Any]:
    """Poll /readyz until it answers `wanted` (a failure guard, not a timing assertion)."""
    async def poll() -> dict[str, Any]:
        while True:
            status, body = await ready_status(port)
            if status == wanted:
                return body
            await asyncio.sleep(0.1)
    return await asyncio.wait_for(poll(), 60)


async def test_ready_notification_health_and_metrics_follow_mail(
        daemon: DaemonProcess, upstream: Upstream,
        notify_socket: tuple[str, socket.socket]) -> None:
    (ready,) = await notifications(notify_socket[1], 1)
    assert ready["READY"] == "1" and "listening on" in ready["STATUS"]
    port = daemon.health_port
    assert await http_get(port, "/healthz") == (200, b"ok\n")
    status, body = await ready_status(port)
    assert status == 200 and body["checks"]["upstream_reachable"] is True

    before = await scrape(port)
    await mail(daemon.smtp_port, STAFF, COLLEAGUE)
    await mail(daemon.smtp_port, STAFF, STUDENT_PERSONAL)  # P1: held, not delivered
    after = await scrape(port)

    assert delivered(upstream) == [(STAFF, [COLLEAGUE])]
    for name, labels, delta in [
        ("gateway_messages_total", {"outcome": "relayed"}, 1),
        ("gateway_messages_total", {"outcome": "held"}, 1),
        ("gateway_smtp_replies_total", {"code_class": "2xx"}, 2),
        ("gateway_recipients_total", {"action": "relay"}, 1),
        ("gateway_recipients_total", {"action": "hold"}, 1),
        ("gateway_quarantine_held_total", {}, 1),
        ("gateway_message_size_bytes_count", {}, 2),
        ("gateway_inspection_seconds_count", {}, 2),
    ]:
        assert metric(after, name, **labels) - metric(before, name, **labels) == delta, name
    assert metric(after, "gateway_rule_matches_total", rule="P1", mode="enforce") >= 1
    message_events = [e for e in daemon.events if e.get("event") == "message"]
    assert [e["outcome"] for e in message_events] == ["relayed", "held"]
    assert "Kim" not in json.dumps(daemon.events)  # no student names in the log


async def test_sighup_reloads_and_a_broken_policy_keeps_the_old_one(
        daemon: DaemonProcess, upstream: Upstream, tmp_path: Path,
        notify_socket: tuple[str, socket.socket]) -> None:
    sock = notify_socket[1]
    await notifications(sock, 1)  # READY=1 at start-up
    port = daemon.health_port

    mark = len(daemon.events)
    daemon.signal(signal.SIGHUP)
    await daemon.wait_event("reloaded", since=mark)
    reloading, ready = await notifications(sock, 2)
    assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
    assert ready["READY"] == "1"
    assert metric(await scrape(port), "gateway_policy_reloads_total", result="success") == 1

    policies = tmp_path / "policies.yaml"
    policies.write_text(policies.read_text().replace("action: hold", "action: hodl", 1))
    mark = len(daemon.events)
    daemon.signal(signal.SIGHUP)
    failed = await daemon.wait_event("reload_failed", since=mark)
    assert failed["errors"] >= 1
    error = daemon.found("reload_error", since=mark)
    assert error is not None and "policies.yaml:" in error["error"]
    _, ready = await notifications(sock, 2)
    assert ready["READY"] == "1" and "failed" in ready["STATUS"]
    samples = await scrape(port)
    assert metric(samples, "gateway_policy_reloads_total", result="failure") == 1
    assert metric(samples, "gateway_policy_reloads_total", result="success") == 1

    # the previous policy is still enforced: P1 holds, colleagues get their mail
    await mail(daemon.smtp_port, STAFF, STUDENT_PERSONAL)
    await mail(daemon.smtp_port, STAFF, COLLEAGUE)
    assert delivered(upstream) == [(STAFF, [COLLEAGUE])]


async def test_readyz_follows_the_upstream(daemon: DaemonProcess, upstream: Upstream) -> None:
    port = daemon.health_port
    await until_ready_is(port, 200)
    await upstream.crash()
    body = await until_ready_is(port, 503)
    assert body["checks"]["upstream_reachable"] is False
    assert body["checks"]["policy_loaded"] is True
    assert await http_get(port, "/healthz") == (200, b"ok\n")  # alive, just not ready
    await upstream.start()  # same port again
    body = await until_ready_is(port, 200)
    assert all(body["checks"].values())


async def test_sigterm_drains_in_flight_mail_and_refuses_new_connections(
        daemon: DaemonProcess, upstream: Upstream,
        notify_socket: tuple[str, socket.socket]) -> None:
    await notifications(notify_socket[1], 1)  # READY=1
    upstream.gate.clear()
    in_flight = asyncio.create_task(mail(daemon.smtp_port, STAFF, COLLEAGUE))
    await asyncio.wait_for(upstream.data_started.wait(), 60)

    daemon.signal(signal.SIGTERM)
    (stopping,) = await notifications(notify_socket[1], 1)
    assert stopping["STOPPING"] == "1"
    drain = await daemon.wait_event("gateway_draining")
    assert drain["in_flight"] == 1
    body = await until_ready_is(daemon.health_port, 503)
    assert body["checks"]["accepting"] is False
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", daemon.smtp_port)
    assert not in_flight.done()

    upstream.gate.set()
    _, reply = await asyncio.wait_for(in_flight, 60)
    assert "queued" in reply or reply.startswith("2")
    assert await daemon.wait() == 0
    assert delivered(upstream) == [(STAFF, [COLLEAGUE])]
    assert daemon.found("gateway_stopped") is not None


async def test_watchdog_pings_when_systemd_asks_for_them(
        tmp_path: Path, upstream: Upstream, notify_socket: tuple[str, socket.socket]) -> None:
    env = {**os.environ, "NOTIFY_SOCKET": notify_socket[0], "WATCHDOG_USEC": "200000"}
    env.pop("WATCHDOG_PID", None)
    proc = await DaemonProcess(write_config(tmp_path, upstream.port), env).start()
    try:
        seen: list[str] = []
        while seen.count("WATCHDOG") < 3 or "READY" not in seen:
            (note,) = await notifications(notify_socket[1], 1)
            seen.extend(note)
    finally:
        await proc.close()
    started = proc.found("watchdog_started")
    assert started is not None and started["interval_seconds"] == 0.1


def test_serve_refuses_a_bad_config_and_check_config_accepts_the_shipped_one(tmp_path):
    bad = tmp_path / "gateway.yaml"
    bad.write_text("listen: {host: 127.0.0.1, prot: 25}\n")
    run = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(bad)],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert run.returncode != 0
    assert f"{bad}:1:27: unknown key 'prot' (did you mean 'port'?)" in run.stderr
    good = subprocess.run([sys.executable, "-m", "gateway", "serve", "--check-config",
                           "--config", str(REPO / "config" / "gateway.yaml")],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert good.returncode == 0, good.stderr
