"""HealthServer over real HTTP on loopback: metrics, liveness, readiness, bad clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from gateway import metrics
from gateway.config import Endpoint
from gateway.service.health import MAX_CONNECTIONS, HealthServer
from tests.harness import http_request, metric, metric_samples


class Checks:
    """A readiness callback whose answers the test can change."""

    def __init__(self) -> None:
        self.values = {"policy_loaded": True, "store_writable": True,
                       "upstream_reachable": True}
        self.fail = False

    async def __call__(self) -> dict[str, bool]:
        if self.fail:
            raise RuntimeError("database is gone")
        return dict(self.values)


@pytest.fixture
def checks() -> Checks:
    return Checks()


@pytest.fixture
async def server(checks: Checks) -> AsyncIterator[HealthServer]:
    srv = HealthServer(Endpoint("127.0.0.1", 0), checks, request_timeout=1.0)
    await srv.start()
    yield srv
    await srv.stop()


async def raw(port: int, payload: bytes, *, close_write: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    if close_write:
        writer.write_eof()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return data


async def test_metrics_expose_gateway_names_and_follow_counters(server: HealthServer) -> None:
    status, headers, body = await http_request(server.port, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=")
    text = body.decode()
    assert "gateway_messages_total" in text and "gateway_sessions_in_flight" in text
    name = "gateway_messages_total"
    before = metric(metric_samples(text), name, outcome="relayed")
    metrics.MESSAGES.labels(outcome="relayed").inc(3)
    _, _, body = await http_request(server.port, "/metrics?x=1")
    assert metric(metric_samples(body.decode()), name, outcome="relayed") == before + 3


async def test_healthz(server: HealthServer) -> None:
    status, _, body = await http_request(server.port, "/healthz")
    assert (status, body) == (200, b"ok\n")


async def test_readyz_flips_with_the_callback(server: HealthServer, checks: Checks) -> None:
    status, headers, body = await http_request(server.port, "/readyz")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"ready": True, "checks": checks.values}
    checks.values["upstream_reachable"] = False
    status, _, body = await http_request(server.port, "/readyz")
    assert status == 503
    assert json.loads(body)["checks"]["upstream_reachable"] is False
    checks.values["upstream_reachable"] = True
    status, _, _ = await http_request(server.port, "/readyz")
    assert status == 200


async def test_readyz_is_503_when_the_callback_raises(server: HealthServer,
                                                      checks: Checks) -> None:
    checks.fail = True
    status, _, body = await http_request(server.port, "/readyz")
    assert status == 503
    assert json.loads(body)["ready"] is False
    assert b"database" not in body  # the exception text is not published


async def test_readyz_with_no_checks_is_not_ready() -> None:
    async def nothing() -> dict[str, bool]:
        return {}

    srv = HealthServer(Endpoint("127.0.0.1", 0), nothing)
    await srv.start()
    try:
        status, _, _ = await http_request(srv.port, "/readyz")
    finally:
        await srv.stop()
    assert status == 503


async def test_unknown_path_is_404(server: HealthServer) -> None:
    status, _, _ = await http_request(server.port, "/admin")
    assert status == 404


async def test_head_has_headers_but_no_body(server: HealthServer) -> None:
    data = await raw(server.port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Length: 3" in head
    assert body == b""


async def test_post_is_405(server: HealthServer) -> None:
    status, headers, _ = await http_request(server.port, "/healthz", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("garbage", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS ClientHello
    b"GET\r\n\r\n",
    b"GET /healthz SPDY/3\r\n\r\n",
    b"get /healthz HTTP/1.1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n",  # headers never finished
    b"EHLO client.example\r\n",
])
async def test_garbage_gets_400_and_the_server_survives(server: HealthServer,
                                                        garbage: bytes) -> None:
    data = await raw(server.port, garbage)
    assert data.startswith(b"HTTP/1.1 400 ")
    status, _, _ = await http_request(server.port, "/healthz")
    assert status == 200


async def test_overlong_request_line_is_414(server: HealthServer) -> None:
    data = await raw(server.port, b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 414 ")


async def test_endless_headers_are_431(server: HealthServer) -> None:
    data = await raw(server.port, b"GET /healthz HTTP/1.1\r\n" + b"X-A: b\r\n" * 100 + b"\r\n")
    assert data.startswith(b"HTTP/1.1 431 ")


async def test_slow_client_times_out_while_others_are_served(server: HealthServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # ... and never finishes
    await writer.drain()
    status, _, _ = await http_request(server.port, "/healthz")
    assert status == 200
    data = await asyncio.wait_for(reader.read(), 10)
    assert data.startswith(b"HTTP/1.1 408 ")
    writer.close()


async def test_idle_connections_cannot_make_the_probes_fail(server: HealthServer) -> None:
    """Past the connection limit the longest-idle connection is closed to make room, so a
    monitor's probe is still answered; a connection in the middle of its request is kept."""
    idle = [await asyncio.open_connection("127.0.0.1", server.port)
            for _ in range(MAX_CONNECTIONS + 10)]
    await asyncio.sleep(0.1)  # all accepted and waiting for their request
    for path, expected in (("/healthz", 200), ("/readyz", 200)):
        status, _, _ = await http_request(server.port, path)
        assert status == expected, path
    closed = 0
    for reader, writer in idle:
        with contextlib.suppress(TimeoutError, ConnectionError):
            if await asyncio.wait_for(reader.read(), 0.05) == b"":
                closed += 1
        writer.close()
    assert closed >= 2  # the oldest idle ones made room


async def test_stop_releases_port_and_cuts_idle_clients(checks: Checks) -> None:
    srv = HealthServer(Endpoint("127.0.0.1", 0), checks, request_timeout=60)
    await srv.start()
    port = srv.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /hea")
    await writer.drain()
    await asyncio.sleep(0)
    await asyncio.wait_for(srv.stop(), 10)
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    with pytest.raises(RuntimeError):
        _ = srv.port
