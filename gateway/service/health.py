"""A tiny HTTP/1.1 endpoint for orchestrators: `/metrics`, `/healthz`, `/readyz`.

Why not a web framework: three read-only routes do not justify a dependency, and asyncio
streams let the endpoint share the daemon's event loop. Every request is answered and the
connection closed (`Connection: close`), so a scraper or a port scanner can never pin a
connection open; requests that are too slow or malformed get a 408/400 and cannot disturb the
SMTP side. `/healthz` says "the process serves" (liveness: restart me if this fails): answering
at all proves this event loop turns, and with several workers the `liveness` check adds that
every worker's loop does too (their heartbeats), so one stuck worker turns it 503. `/readyz`
says "send me mail" (readiness: every check true), so a load balancer stops routing while the
upstream is down or the policy is not loaded, without restarting the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from gateway import metrics
from gateway.config import Endpoint

log = structlog.get_logger("gateway.health")

Readiness = Callable[[], Awaitable[dict[str, bool]]]
# (alive, text for the body): must be quick and must not block, it runs on the event loop.
Liveness = Callable[[], tuple[bool, str]]

MAX_REQUEST_LINE = 4096
MAX_HEADER_LINES = 64
MAX_CONNECTIONS = 64
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large",
            503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    extra_headers: tuple[tuple[str, str], ...] = ()


class BadRequest(Exception):
    """The request cannot be parsed; carries the status to answer with."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class _Forward:
    """A collector that reads another registry, looked up at every scrape (a forked worker
    defines its metrics anew, see gateway.metrics)."""

    def __init__(self, registry: Callable[[], CollectorRegistry]):
        self.registry = registry

    def collect(self) -> Any:
        return self.registry().collect()


def served_registry(base: Callable[[], CollectorRegistry],
                    extra: list[Any]) -> CollectorRegistry:
    """What `/metrics` shows: `base`, plus collectors computed at scrape time (heartbeats,
    the quarantine backlog) that belong to this server only, so that several servers in one
    process (tests) never collide in a shared registry."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Forward(base))
    for collector in extra:
        registry.register(collector)
    return registry


class HealthServer:
    """Serves metrics and health checks on `endpoint`; port 0 picks a free port (`.port`)."""

    def __init__(self, endpoint: Endpoint, readiness: Readiness, *,
                 registry: CollectorRegistry | None = None, request_timeout: float = 10.0,
                 readiness_timeout: float = 5.0, liveness: Liveness | None = None):
        self.endpoint = endpoint
        self.registry = registry  # None: this process's metrics (`gateway.metrics.REGISTRY`)
        self.readiness = readiness
        self.liveness = liveness
        self.request_timeout = request_timeout
        self.readiness_timeout = readiness_timeout
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        # Connections still waiting for their request, oldest first (see _make_room).
        self._reading: dict[asyncio.Task[Any], None] = {}

    @property
    def port(self) -> int:
        """The bound port (useful when the endpoint asked for port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("HealthServer is not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.endpoint.host, self.endpoint.port,
            limit=MAX_REQUEST_LINE, reuse_address=True)
        log.info("health_listening", host=self.endpoint.host, port=self.port)

    async def stop(self) -> None:
        """Stop listening and cut off any client still connected (they get no answer)."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Keep a reference so the task is not garbage-collected and can be cancelled on stop.
        task = asyncio.create_task(self._serve_one(reader, writer))
        self._clients.add(task)
        task.add_done_callback(self._clients.discard)

    async def _serve_one(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        try:
            if len(self._clients) > MAX_CONNECTIONS and not self._make_room():
                response, head = Response(503, b"busy\n"), False
            else:
                response, head = await self._respond(reader)
            writer.write(_encode(response, head=head))
            await asyncio.wait_for(writer.drain(), self.request_timeout)
        except (ConnectionError, TimeoutError):
            pass
        except Exception:  # never let one request take the endpoint down
            log.exception("health_request_failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    def _make_room(self) -> bool:
        """At the connection limit: end the connection that has waited longest without
        sending its request (idle or trickling), so that idle connections cannot make a
        monitor's probe fail; False when every connection is being answered."""
        for task in self._reading:
            task.cancel()
            del self._reading[task]
            return True
        return False

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[Response, bool]:
        task = asyncio.current_task()
        assert task is not None
        self._reading[task] = None
        try:
            method, path = await asyncio.wait_for(_read_request(reader), self.request_timeout)
        except TimeoutError:
            return Response(408, b"request timeout\n"), False
        except BadRequest as exc:
            return Response(exc.status, b"bad request\n"), False
        finally:
            self._reading.pop(task, None)
        head = method == "HEAD"
        if method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n",
                            extra_headers=(("Allow", "GET, HEAD"),)), head
        return await self._route(path), head

    async def _route(self, path: str) -> Response:
        path = path.split("?", 1)[0]
        if path == "/metrics":
            registry = self.registry or metrics.REGISTRY
            return Response(200, generate_latest(registry), CONTENT_TYPE_LATEST)
        if path == "/healthz":
            if self.liveness is None:
                return Response(200, b"ok\n")
            alive, text = self.liveness()
            return Response(200 if alive else 503, text.encode())
        if path == "/readyz":
            return await self._ready()
        return Response(404, b"not found\n")

    async def _ready(self) -> Response:
        try:
            checks = await asyncio.wait_for(self.readiness(), self.readiness_timeout)
            ready = bool(checks) and all(checks.values())
            body: dict[str, object] = {"ready": ready,
                                       "checks": {k: bool(v) for k, v in checks.items()}}
        except Exception as exc:  # a broken check means "not ready", not a crash
            log.warning("readiness_check_failed", error=type(exc).__name__)
            ready, body = False, {"ready": False, "checks": {}, "error": "readiness check failed"}
        payload = (json.dumps(body, sort_keys=True) + "\n").encode()
        return Response(200 if ready else 503, payload, "application/json")


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    """Parse the request line and skip the headers; raise BadRequest for anything odd."""
    line = await _read_line(reader, 414)
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise BadRequest(400)
    if not parts[0].isascii() or not parts[0].isalpha() or not parts[0].isupper():
        raise BadRequest(400)
    for _ in range(MAX_HEADER_LINES):
        if not await _read_line(reader, 431):
            return parts[0], parts[1]
    raise BadRequest(431)


async def _read_line(reader: asyncio.StreamReader, too_long: int) -> str:
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as exc:
        raise BadRequest(too_long) from exc
    except asyncio.IncompleteReadError as exc:
        raise BadRequest(400) from exc
    try:
        return raw.decode("ascii").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise BadRequest(400) from exc


def _encode(response: Response, *, head: bool) -> bytes:
    reason = _REASONS.get(response.status, "Unknown")
    headers = [f"HTTP/1.1 {response.status} {reason}",
               f"Content-Type: {response.content_type}",
               f"Content-Length: {len(response.body)}",
               "Cache-Control: no-store",
               "Connection: close",
               *(f"{name}: {value}" for name, value in response.extra_headers)]
    start = ("\r\n".join(headers) + "\r\n\r\n").encode("ascii")
    return start if head else start + response.body
