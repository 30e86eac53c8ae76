"""sd_notify against real AF_UNIX datagram sockets, path-bound and abstract."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.service import sdnotify


def _receive(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.split("\n"))


@pytest.fixture
def path_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = tmp_path / "notify.sock"
    sock.bind(str(address))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(address))
    yield sock
    sock.close()


@pytest.fixture
def abstract_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    name = f"gateway-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    yield sock
    sock.close()


def test_ready_reaches_path_socket(path_socket: socket.socket) -> None:
    assert sdnotify.ready("serving on 127.0.0.1:10025")
    assert _receive(path_socket) == {"READY": "1", "STATUS": "serving on 127.0.0.1:10025"}


def test_ready_reaches_abstract_socket(abstract_socket: socket.socket) -> None:
    assert sdnotify.ready()
    assert _receive(abstract_socket) == {"READY": "1"}


def test_reloading_carries_monotonic_timestamp(path_socket: socket.socket) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert sdnotify.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    got = _receive(path_socket)
    assert got["RELOADING"] == "1"
    assert before <= int(got["MONOTONIC_USEC"]) <= after


def test_stopping_and_status(path_socket: socket.socket) -> None:
    assert sdnotify.stopping("draining\n3 sessions")
    assert _receive(path_socket) == {"STOPPING": "1", "STATUS": "draining 3 sessions"}
    assert sdnotify.status("idle")
    assert _receive(path_socket) == {"STATUS": "idle"}


async def test_watchdog_task_pings_until_cancelled(path_socket: socket.socket,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "20000")  # 10 ms between pings
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    path_socket.setblocking(False)
    loop = asyncio.get_running_loop()
    task = sdnotify.start_watchdog()
    assert task is not None
    try:
        pings = [await asyncio.wait_for(loop.sock_recv(path_socket, 64), 5) for _ in range(3)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert pings == [b"WATCHDOG=1"] * 3
    assert task.cancelled()
