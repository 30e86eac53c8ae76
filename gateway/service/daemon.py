"""One serving process: start-up, signals, live reload, health, and a bounded drain on shutdown.

SIGTERM/SIGINT: stop accepting, let messages in DATA finish within `smtp.drain_timeout`, exit.
SIGHUP: re-read gateway.yaml, the directory and policies.yaml in a thread; swap them in only if
all loaded cleanly, otherwise log every error and keep the old ones: a bad file never
half-applies. With `smtp.workers`, each worker process runs one Daemon (`gateway.service.workers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from gateway import metrics
from gateway.config import Settings, load_settings
from gateway.pdfhelper import client as pdfhelper
from gateway.quarantine import open_store
from gateway.quarantine.base import QuarantineStore
from gateway.quarantine.digest import reviewer_digests
from gateway.runtime import Runtime, load_runtime
from gateway.service import sdnotify
from gateway.service.health import HealthServer
from gateway.service.listener import Gateway
from gateway.yamlsrc import SourceErrors

log = structlog.get_logger("gateway.daemon")

HANDLED_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


def check_config(config_path: str | None) -> tuple[Settings, Runtime]:
    """Load everything `serve` would load; raise SourceErrors listing every problem."""
    settings = load_settings(config_path)
    return settings, load_runtime(settings)


def log_skipped_rows(runtime: Runtime) -> None:
    """One event per directory row left out (the reason never quotes the row's data)."""
    for problem in runtime.warnings:
        log.warning("directory_row_skipped", file=problem.file, line=problem.line,
                    reason=problem.message)


def open_quarantine(settings: Settings) -> QuarantineStore:
    return open_store(settings)


class Daemon:
    """Owns the long-lived tasks of one serving process, and cancels them on shutdown.

    Alone, it listens on `listen` and sends the reviewers' digest. As one of several workers it
    is given its own listening socket (`sock`), worker 0 alone sends the digest (`digest`), and
    worker 0's `/metrics` shows the sum of all workers (`metrics_registry`)."""

    def __init__(self, config_path: str | None, settings: Settings, runtime: Runtime,
                 store: QuarantineStore, *, sock: socket.socket | None = None,
                 digest: bool = True, metrics_registry: CollectorRegistry | None = None):
        self.config_path = config_path
        self.sock = sock
        self.digest = digest
        self.metrics_registry = metrics_registry
        self.gateway = Gateway(settings, runtime, store)
        self.store = store
        self.stop_requested = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.health: HealthServer | None = None
        self.reload_lock = asyncio.Lock()

    async def run(self) -> int:
        settings = self.gateway.settings
        await self.gateway.start(sock=self.sock)
        self._keep(asyncio.to_thread(pdfhelper.warm_up, settings.inspection))
        if settings.metrics_listen is not None:
            self.health = HealthServer(settings.metrics_listen, self.readiness,
                                       registry=self.metrics_registry)
            await self.health.start()
        self.take_signals()
        self._keep(sdnotify.start_watchdog())
        if self.digest:
            self._keep(self._digest_loop())
        log.info("gateway_started", listen=f"{settings.listen.host}:{self.gateway.port}",
                 upstream=f"{settings.upstream.host}:{settings.upstream.port}", pid=os.getpid())
        sdnotify.ready(f"listening on {settings.listen.host}:{self.gateway.port}")
        await self.stop_requested.wait()
        sdnotify.stopping("draining")
        log.info("gateway_draining", in_flight=self.gateway.busy,
                 sessions=len(self.gateway.sessions))
        await self.gateway.drain()
        await self._shutdown()
        log.info("gateway_stopped")
        return 0

    async def readiness(self) -> dict[str, bool]:
        path = self.gateway.settings.quarantine.path
        writable = path is None or os.access(path, os.W_OK)
        try:
            upstream = await asyncio.wait_for(self.gateway.relay.check(), 5)
        except TimeoutError:
            upstream = False
        return {"policy_loaded": self.gateway.runtime is not None, "store_writable": writable,
                "upstream_reachable": upstream, "accepting": not self.gateway.draining}

    async def reload(self) -> bool:
        async with self.reload_lock:
            sdnotify.reloading("reloading configuration")
            try:
                settings, runtime = await asyncio.to_thread(check_config, self.config_path)
            except SourceErrors as exc:
                for error in exc.errors:
                    log.error("reload_error", error=str(error), code=error.code)
                log.error("reload_failed", errors=len(exc.errors), kept="previous configuration")
                metrics.RELOADS.labels(result="failure").inc()
                sdnotify.ready("reload failed; previous configuration kept")
                return False
            self.gateway.swap(settings, runtime)
            log_skipped_rows(runtime)
            metrics.RELOADS.labels(result="success").inc()
            log.info("reloaded", warnings=len(runtime.warnings))
            sdnotify.ready("configuration reloaded")
            return True

    def take_signals(self) -> None:
        """Handle SIGTERM/SIGINT (drain) and SIGHUP (reload) on the loop. A worker process
        starts with them blocked; one that arrived meanwhile is handled now."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop_requested.set)
        loop.add_signal_handler(signal.SIGINT, self.stop_requested.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._keep(self.reload()))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)

    def _keep(self, job: Any) -> None:
        """Keep a reference to background work so it is neither collected nor orphaned."""
        if job is None:
            return
        task = job if isinstance(job, asyncio.Task) else asyncio.ensure_future(job)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _digest_loop(self) -> None:
        """Mail the reviewers what was held since the last digest, every `digest_interval`."""
        since = datetime.now(UTC)
        while True:
            q = self.gateway.settings.quarantine
            if not q.digest_interval:
                await asyncio.sleep(60)  # re-checked so a reload can switch it on
                since = datetime.now(UTC)
                continue
            await asyncio.sleep(q.digest_interval)
            until = datetime.now(UTC)
            try:
                notices = await asyncio.to_thread(
                    reviewer_digests, self.store, since=since, until=until,
                    reviewers=q.reviewers,
                    console_url=self.gateway.settings.review.public_url)
                await self.gateway.executor.send_notifications(notices, "digest")
                since = until
            except Exception:
                log.exception("digest_failed")

    async def _shutdown(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.health is not None:
            await self.health.stop()
        await asyncio.to_thread(self.store.close)


def run_loop(coro: Any) -> int:
    """Run the daemon's coroutine on uvloop where it is installed (the `fast` extra)."""
    try:
        import uvloop  # noqa: PLC0415 - optional: asyncio's own loop otherwise
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
