"""Several workers, watched honestly: real `gateway serve` processes, real signals.

A worker stopped with SIGSTOP is still a process, so only its heartbeat shows that it no longer
serves: /healthz, /readyz, STATUS and the systemd watchdog must say so, and the parent must kill
and replace it. Reloads are checked by the parent and reported once; restarted workers start
from the reloaded configuration; a killed parent's workers let go of the ports for a new
instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import REPO, make_message
from tests.harness import (
    DaemonProcess,
    free_port,
    http_get,
    metric,
    metric_samples,
    send,
    wait_for,
)
from tests.integration.test_docker import healthcheck_code
from tests.integration.test_workers import children, gone
from tests.upstream import Upstream

STAFF = "mbrown@staff.district230.example"
COLLEAGUE = "jsmith@staff.district230.example"
WORKER_TIMEOUT = 6  # reported not alive after 3 s without a beat, killed after 6 s


def write_config(folder: Path, upstream_port: int, *, max_size: str = "25M",
                 smtp_port: int = 0, metrics_port: int = 0, drain: int = 5,
                 workers: int = 2) -> Path:
    for name in ("people.csv", "relationships.csv", "policies.yaml"):
        target = folder / name
        if not target.exists():
            target.write_bytes((REPO / "config" / name).read_bytes())
    config = folder / "gateway.yaml"
    config.write_text(f"""
listen: {{host: 127.0.0.1, port: {smtp_port}}}
upstream: {{host: 127.0.0.1, port: {upstream_port}, starttls: "off"}}
trusted_networks: [127.0.0.0/8]
district:
  staff_domains: [staff.district230.example]
  student_domains: [students.district230.example]
directory: {{people: people.csv, relationships: relationships.csv}}
policies: policies.yaml
quarantine: {{url: "sqlite:///quarantine.db"}}
metrics: {{listen: "127.0.0.1:{metrics_port}"}}
postmaster: postmaster@staff.district230.example
smtp: {{hostname: gw.test, workers: {workers}, worker_timeout: {WORKER_TIMEOUT},
        drain_timeout: {drain}, max_message_size: {max_size}}}
log: {{level: info, format: json}}
""")
    return config


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    name = f"gateway-workers-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    yield "@" + name, sock
    sock.close()


def environment(notify: str) -> dict[str, str]:
    env = {**os.environ, "NOTIFY_SOCKET": notify, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(REPO), "WATCHDOG_USEC": "1000000"}  # a ping every 0.5 s
    env.pop("WATCHDOG_PID", None)
    return env


async def until_two_workers(proc: DaemonProcess) -> list[int]:
    async def poll() -> list[int]:
        while True:
            assert proc.proc is not None
            pids = children(proc.proc.pid)
            if len(pids) == 2 and sum(e.get("event") == "gateway_started"
                                      for e in proc.events) >= 2:
                return pids
            await asyncio.sleep(0.1)
    return await asyncio.wait_for(poll(), 60)


@pytest.fixture
async def daemon(tmp_path: Path, upstream: Upstream,
                 notify_socket: tuple[str, socket.socket]) -> AsyncIterator[DaemonProcess]:
    # A fixed metrics port: a replaced worker 0 binds the configured one again.
    proc = await DaemonProcess(write_config(tmp_path, upstream.port, metrics_port=free_port()),
                               environment(notify_socket[0])).start()
    try:
        await proc.wait_event("health_listening")
        await until_two_workers(proc)
        yield proc
    finally:
        assert proc.proc is not None
        for pid in children(proc.proc.pid):  # a stopped worker cannot drain
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        await proc.close()


def listener_pid(port: int, pids: list[int]) -> int:
    """Which of `pids` holds the listening TCP socket on `port` (from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
            inodes.add(fields[9])
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return pid
    raise AssertionError(f"no listener on {port} among {pids}")


async def until(check: Any, timeout: float = 60) -> Any:
    """Poll an async check until it returns something truthy (a guard, not a timing test)."""
    async def poll() -> Any:
        while not (result := await check()):
            await asyncio.sleep(0.1)
        return result
    return await asyncio.wait_for(poll(), timeout)


def drain_notifications(sock: socket.socket) -> list[dict[str, str]]:
    out = []
    while True:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return out
        out.append(dict(line.split("=", 1) for line in data.decode().split("\n")))


async def notes_until(sock: socket.socket,
                      done: Callable[[list[dict[str, str]]], bool]) -> list[dict[str, str]]:
    """Notifications received until `done(notes)` holds."""
    loop = asyncio.get_running_loop()
    notes: list[dict[str, str]] = []
    while not done(notes):
        data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 60)
        notes.append(dict(line.split("=", 1) for line in data.decode().split("\n")))
    return notes


async def notes_until_ready(sock: socket.socket) -> list[dict[str, str]]:
    """Notifications up to and including the next READY=1 (the end of a reload)."""
    return await notes_until(sock, lambda notes: bool(notes) and notes[-1].get("READY") == "1")


async def send_some(port: int, count: int) -> None:
    for i in range(count):
        errors, reply = await send(port, STAFF, [COLLEAGUE],
                                   make_message(f"hello {i}", sender=STAFF, to=COLLEAGUE))
        assert errors == {} and reply.startswith("2"), reply


async def test_stopped_worker_turns_health_red_and_is_replaced(
        daemon: DaemonProcess, upstream: Upstream,
        notify_socket: tuple[str, socket.socket]) -> None:
    assert daemon.proc is not None
    workers = children(daemon.proc.pid)
    health = daemon.health_port
    first = listener_pid(health, workers)
    (victim,) = [pid for pid in workers if pid != first]
    assert (await http_get(health, "/healthz"))[0] == 200
    drain_notifications(notify_socket[1])

    os.kill(victim, signal.SIGSTOP)

    async def red() -> bytes | None:
        status, body = await http_get(health, "/healthz")
        return body if status == 503 else None
    body = await until(red)
    assert b"worker 1" in body and b"no heartbeat" in body
    status, ready = await http_get(health, "/readyz")
    assert status == 503 and json.loads(ready)["checks"]["workers_alive"] is False
    samples = metric_samples((await http_get(health, "/metrics"))[1].decode())
    assert metric(samples, "gateway_workers_alive") == 1
    assert metric(samples, "gateway_worker_heartbeat_age_seconds", worker="1") >= 3

    stalled = await daemon.wait_event("worker_stalled")
    assert stalled["worker"] == 1 and stalled["pid"] == victim
    assert stalled["level"] == "error"

    async def green() -> bool:
        return (await http_get(health, "/healthz"))[0] == 200
    await until(green)
    assert gone(victim)
    replaced = children(daemon.proc.pid)
    assert len(replaced) == 2 and victim not in replaced and first in replaced
    samples = metric_samples((await http_get(health, "/metrics"))[1].decode())
    assert metric(samples, "gateway_worker_restarts_total", reason="stalled") == 1
    assert metric(samples, "gateway_worker_restarts_total", reason="exited") == 0
    assert metric(samples, "gateway_workers_alive") == 2

    # systemd heard it: STATUS named the worker, and no watchdog ping went out until every
    # worker was alive again (datagrams from one sender arrive in order).
    notes = await notes_until(notify_socket[1], lambda notes: _back_then_ping(notes) is not None)
    down, back = _back_then_ping(notes)  # type: ignore[misc]
    assert not [n for n in notes[down:back] if "WATCHDOG" in n]

    await send_some(daemon.smtp_port, 12)  # every new connection is served again
    assert len(upstream.messages) == 12


def _back_then_ping(notes: list[dict[str, str]]) -> tuple[int, int] | None:
    """(index of the STATUS naming worker 1, index of the next STATUS) once a watchdog ping
    has followed that next STATUS; None until then."""
    down = next((i for i, n in enumerate(notes)
                 if "not alive: worker 1" in n.get("STATUS", "")), None)
    if down is None:
        return None
    back = next((i for i, n in enumerate(notes) if i > down and "STATUS" in n), None)
    if back is None or not any("WATCHDOG" in n for n in notes[back:]):
        return None
    return down, back


async def test_stopped_worker_zero_fails_the_container_healthcheck_then_recovers(
        daemon: DaemonProcess) -> None:
    """Worker 0 serves /healthz itself: stopped, the endpoint cannot answer, and the image's
    HEALTHCHECK command fails; its replacement binds the port again."""
    assert daemon.proc is not None
    health = daemon.health_port
    first = listener_pid(health, children(daemon.proc.pid))
    code = healthcheck_code().replace(":9125/", f":{health}/")
    ok = await asyncio.create_subprocess_exec(sys.executable, "-c", code)
    assert await asyncio.wait_for(ok.wait(), 60) == 0

    os.kill(first, signal.SIGSTOP)
    failing = await asyncio.create_subprocess_exec(sys.executable, "-c", code,
                                                   stderr=asyncio.subprocess.DEVNULL)
    assert await asyncio.wait_for(failing.wait(), 60) != 0

    stalled = await daemon.wait_event("worker_stalled")
    assert stalled["worker"] == 0

    async def green() -> bool:
        with contextlib.suppress(OSError):
            return (await http_get(health, "/healthz"))[0] == 200
        return False
    await until(green)
    assert listener_pid(health, children(daemon.proc.pid)) != first


def _policies_broken(folder: Path) -> None:
    path = folder / "policies.yaml"
    path.write_text(path.read_text() + "\nrules: [unclosed\n")


async def test_failed_reload_is_reported_once_and_never_reaches_the_workers(
        daemon: DaemonProcess, tmp_path: Path,
        notify_socket: tuple[str, socket.socket]) -> None:
    health = daemon.health_port
    drain_notifications(notify_socket[1])
    _policies_broken(tmp_path)
    since = len(daemon.events)
    daemon.signal(signal.SIGHUP)
    await daemon.wait_event("reload_failed", since=since)

    async def counted() -> dict[Any, float] | None:
        samples = metric_samples((await http_get(health, "/metrics"))[1].decode())
        return samples if metric(samples, "gateway_policy_reloads_total",
                                 result="failure") else None
    await until(counted)
    notes = await notes_until_ready(notify_socket[1])

    # A good reload afterwards: each worker reloads in order, so any worker that had been
    # signalled with the broken file would have logged its own failure before this finishes.
    (tmp_path / "policies.yaml").write_bytes((REPO / "config" / "policies.yaml").read_bytes())
    daemon.signal(signal.SIGHUP)
    await daemon.wait_event("reloaded_all_workers", since=since)
    assert sum(e.get("event") == "reload_failed" for e in daemon.events[since:]) == 1
    samples = metric_samples((await http_get(health, "/metrics"))[1].decode())
    assert metric(samples, "gateway_policy_reloads_total", result="failure") == 1
    assert metric(samples, "gateway_policy_reloads_total", result="success") == 1

    assert notes[0]["RELOADING"] == "1"
    final = notes[-1]
    assert re.search(r"reload failed: policies\.yaml:\d+:\d+ \(\w[\w-]*\)", final["STATUS"])
    assert "previous configuration kept" in final["STATUS"]
    assert "unclosed" not in final["STATUS"]  # locations and codes, never file contents


async def test_good_reload_reaches_every_worker_and_restarts_use_it(
        daemon: DaemonProcess, tmp_path: Path, upstream: Upstream,
        notify_socket: tuple[str, socket.socket]) -> None:
    assert daemon.proc is not None
    health = daemon.health_port
    port = daemon.smtp_port
    drain_notifications(notify_socket[1])
    write_config(tmp_path, upstream.port, max_size="1M",
                 metrics_port=health)  # listen stays; SIZE is what a client can see
    since = len(daemon.events)
    daemon.signal(signal.SIGHUP)
    await daemon.wait_event("reloaded_all_workers", since=since)
    notes = await notes_until_ready(notify_socket[1])
    final = notes[-1]
    assert final["STATUS"].startswith("configuration reloaded in all 2 workers")
    samples = metric_samples((await http_get(health, "/metrics"))[1].decode())
    assert metric(samples, "gateway_policy_reloads_total", result="success") == 1
    assert metric(samples, "gateway_policy_reloads_total", result="failure") == 0

    old = children(daemon.proc.pid)
    for pid in old:  # both replaced: they must start from the reloaded configuration
        os.kill(pid, signal.SIGKILL)

    async def replaced() -> bool:
        now = children(daemon.proc.pid) if daemon.proc else []
        return len(now) == 2 and not set(now) & set(old) and \
            sum(e.get("event") == "gateway_started" for e in daemon.events[since:]) >= 2
    await until(replaced)
    for _ in range(8):
        assert await ehlo_size(port) == 1024 * 1024


async def ehlo_size(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readline()
        writer.write(b"EHLO client.test\r\n")
        while True:
            line = await asyncio.wait_for(reader.readline(), 30)
            if line[4:].startswith(b"SIZE"):
                return int(line.split()[1])
            assert line[3:4] == b"-", line
    finally:
        writer.close()


async def test_new_instance_binds_while_orphans_of_a_killed_parent_drain(
        tmp_path: Path, upstream: Upstream,
        notify_socket: tuple[str, socket.socket]) -> None:
    smtp_port, metrics_port = free_port(), free_port()
    config = write_config(tmp_path, upstream.port, smtp_port=smtp_port,
                          metrics_port=metrics_port, drain=60)
    env = environment(notify_socket[0])
    old = await DaemonProcess(config, env).start()
    new: DaemonProcess | None = None
    upstream.gate.clear()  # messages stay in delivery: the orphans have something to drain
    in_flight: list[asyncio.Task[Any]] = []
    try:
        await old.wait_event("health_listening")
        assert old.proc is not None
        orphans = await until_two_workers(old)
        in_flight = [asyncio.create_task(
            send(smtp_port, STAFF, [COLLEAGUE], make_message(f"in flight {i}", sender=STAFF,
                                                             to=COLLEAGUE), timeout=120))
            for i in range(6)]
        await asyncio.wait_for(upstream.data_started.wait(), 60)

        old.proc.kill()
        # Not proc.wait(): asyncio waits for the log pipe too, which the orphans still hold.
        await wait_for(lambda: gone(old.proc.pid), 30)  # type: ignore[union-attr]
        new = await DaemonProcess(config, env).start()
        await new.wait_event("health_listening", timeout=60)
        assert not all(gone(pid) for pid in orphans)  # the port came free before the drain ended
        status, _ = await http_get(metrics_port, "/healthz")
        assert status == 200
        upstream.gate.set()
        # What the orphans were delivering was delivered; sessions not yet at end-of-data got
        # 421 or were cut (their senders retry). Never a 250 for mail not delivered.
        results = await asyncio.gather(*in_flight, return_exceptions=True)
        accepted = [r for r in results if not isinstance(r, BaseException)]
        assert accepted and all(errors == {} and reply.startswith("2")
                                for errors, reply in accepted)
        assert len(upstream.messages) == len(accepted)
        await send_some(smtp_port, 3)
        assert len(upstream.messages) == len(accepted) + 3
    finally:
        upstream.gate.set()
        await asyncio.gather(*in_flight, return_exceptions=True)
        if new is not None:
            await new.close()
        await old.close()
