"""`smtp.workers: 2`: a real `gateway serve` with two worker processes, over loopback sockets.

What must hold: both workers serve the one listening socket, mail flows, /metrics adds up the
workers, a killed worker is replaced, SIGHUP keeps it serving, SIGTERM stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import REPO, make_message
from tests.harness import free_port, http_get, metric_samples, send, wait_for
from tests.upstream import Upstream

STAFF = "mbrown@staff.district230.example"
COLLEAGUE = "jsmith@staff.district230.example"


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def write_config(tmp_path: Path, upstream_port: int, *, workers: int = 2) -> tuple[Path, int, int]:
    port, metrics_port = free_port(), free_port()
    (tmp_path / "var").mkdir()
    config = tmp_path / "gateway.yaml"
    config.write_text(f"""
listen: {{host: 127.0.0.1, port: {port}}}
upstream: {{host: 127.0.0.1, port: {upstream_port}, starttls: "off"}}
trusted_networks: [127.0.0.0/8]
district:
  staff_domains: [staff.district230.example]
  student_domains: [students.district230.example]
directory:
  people: {REPO / "config/people.csv"}
  relationships: {REPO / "config/relationships.csv"}
policies: {REPO / "config/policies.yaml"}
quarantine: {{url: "sqlite:///var/quarantine.db"}}
metrics: {{listen: "127.0.0.1:{metrics_port}"}}
postmaster: postmaster@staff.district230.example
smtp: {{hostname: gw.test, workers: {workers}, drain_timeout: 5}}
log: {{level: warning}}
""")
    return config, port, metrics_port


async def banner(port: int, attempts: int = 600) -> None:
    """Wait (up to ~60 s) until the gateway greets; start-up loads the whole runtime."""
    for _ in range(attempts):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        line = await reader.readline()
        writer.close()
        if line.startswith(b"220"):
            return
    raise AssertionError("the gateway never greeted")


@pytest.fixture
async def daemon(tmp_path: Path, upstream: Upstream) -> AsyncIterator[tuple[Any, int, int]]:
    config, port, metrics_port = write_config(tmp_path, upstream.port)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--config", str(config), cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        await banner(port)
        yield proc, port, metrics_port
    finally:
        await stop(proc)


async def stop(proc: Any) -> None:
    """SIGTERM (the daemon's own shutdown); workers die with the parent in any case."""
    if proc.returncode is not None:
        return
    workers = children(proc.pid)
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 60)
    except TimeoutError:
        for pid in [proc.pid, *workers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await proc.wait()


async def send_some(port: int, count: int) -> None:
    for i in range(count):
        errors, reply = await send(port, STAFF, [COLLEAGUE],
                                   make_message(f"hello {i}", sender=STAFF, to=COLLEAGUE))
        assert errors == {}
        assert reply.startswith("2")


def metric_sum(text: str, name: str) -> float:
    """`name` added up over all its label sets."""
    return sum(value for (sample, _labels), value in metric_samples(text).items()
               if sample == name)


async def test_two_workers_serve_one_socket_and_metrics_add_up(
        daemon: Any, upstream: Upstream, tmp_path: Path) -> None:
    proc, port, metrics_port = daemon
    await wait_for(lambda: len(children(proc.pid)) == 2, 30)
    await send_some(port, 6)
    assert len(upstream.messages) == 6
    status, body = await http_get(metrics_port, "/metrics")
    assert status == 200
    text = body.decode()
    assert metric_sum(text, "gateway_messages_total") == 6
    assert "gateway_messages_created" not in text  # served by the multiprocess collector
    folder = tmp_path / "var" / "metrics"
    assert folder.stat().st_mode & 0o777 == 0o700
    assert list(folder.glob("counter_*.db"))


async def test_killed_worker_is_replaced_and_sighup_keeps_serving(daemon: Any,
                                                                  upstream: Upstream) -> None:
    proc, port, _ = daemon
    await wait_for(lambda: len(children(proc.pid)) == 2, 30)
    victim = children(proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    await wait_for(lambda: victim not in children(proc.pid)
                   and len(children(proc.pid)) == 2, 30)
    proc.send_signal(signal.SIGHUP)
    await send_some(port, 3)
    assert len(upstream.messages) == 3
    assert proc.returncode is None


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] in "ZX"
    except OSError:
        return True


async def test_workers_exit_when_the_parent_is_killed(daemon: Any) -> None:
    proc, _, _ = daemon
    await wait_for(lambda: len(children(proc.pid)) == 2, 30)
    workers = children(proc.pid)
    proc.kill()
    await proc.wait()
    await wait_for(lambda: all(gone(pid) for pid in workers), 60)


async def test_sigterm_stops_parent_and_workers(daemon: Any) -> None:
    proc, port, _ = daemon
    await wait_for(lambda: len(children(proc.pid)) == 2, 30)
    workers = children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 60) == 0
    await wait_for(lambda: all(gone(pid) for pid in workers), 30)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
