"""One serving process: start-up, signals, live reload, health, and a bounded drain on shutdown.

SIGTERM/SIGINT: stop accepting, let messages in DATA finish within `smtp.drain_timeout`, exit.
SIGHUP: re-read gateway.yaml, the directory and policies.yaml in a thread; swap them in only if
all loaded cleanly, otherwise log every error and keep the old ones: a bad file never
half-applies. With `smtp.workers`, each worker process runs one Daemon (`gateway.service.workers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
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
from gateway.service.backlog import BacklogCollector
from gateway.service.health import HealthServer, Liveness, served_registry
from gateway.service.heartbeat import WorkerLink
from gateway.service.listener import Gateway
from gateway.yamlsrc import SourceErrors

log = structlog.get_logger("gateway.daemon")

HANDLED_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
BACKLOG_REFRESH = 30.0  # seconds between counts of the held mail awaiting review


def check_config(config_path: str | None) -> tuple[Settings, Runtime]:
    """Load everything `serve` would load; raise SourceErrors listing every problem."""
    settings = load_settings(config_path)
    return settings, load_runtime(settings)


def log_skipped_rows(runtime: Runtime) -> None:
    """One event per directory row left out (the reason never quotes the row's data)."""
    for problem in runtime.warnings:
        log.warning("directory_row_skipped", file=problem.file, line=problem.line,
                    reason=problem.message)


def log_reload_errors(exc: SourceErrors) -> None:
    for error in exc.errors:
        log.error("reload_error", error=str(error), code=error.code)
    log.error("reload_failed", errors=len(exc.errors), kept="previous configuration")


def describe_reload_errors(exc: SourceErrors) -> str:
    """For `systemctl status`: where the first problem is and how many there are; never the
    message text, which may quote a directory row."""
    if not exc.errors:
        return "configuration did not load"
    first = exc.errors[0]
    where = f"{os.path.basename(first.file)}:{first.line}:{first.column} ({first.code})"
    more = len(exc.errors) - 1
    return where + (f" and {more} more error{'s' if more != 1 else ''}" if more else "")


def open_quarantine(settings: Settings) -> QuarantineStore:
    """The daemon's store. A database server that cannot be reached at all does not stop the
    start: mail that needs no store flows, held mail gets 451 until the server answers."""
    return open_store(settings, start_unreachable=True)


class Daemon:
    """Owns the long-lived tasks of one serving process, and cancels them on shutdown.

    Alone, it listens on `listen` and sends the reviewers' digest. As one of several workers it
    is given its own listening socket (`sock`), worker 0 alone sends the digest and counts the
    held mail (`digest`), worker 0's `/metrics` shows the sum of all workers
    (`metrics_registry`), and `link` ties it to the parent: its loop beats on the shared board,
    it reports each reload's result there (the parent counts and tells systemd, once), and
    worker 0's `/healthz` and `/readyz` answer for every worker."""

    def __init__(self, config_path: str | None, settings: Settings, runtime: Runtime,
                 store: QuarantineStore, *, sock: socket.socket | None = None,
                 digest: bool = True, metrics_registry: CollectorRegistry | None = None,
                 link: WorkerLink | None = None):
        self.config_path = config_path
        self.sock = sock
        self.digest = digest
        self.metrics_registry = metrics_registry
        self.link = link
        self.backlog = BacklogCollector()
        self.gateway = Gateway(settings, runtime, store)
        self.store = store
        self.stop_requested = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.health: HealthServer | None = None
        self.reload_lock = asyncio.Lock()

    async def run(self) -> int:
        settings = self.gateway.settings
        if self.link is not None:
            self._keep(self.link.beat_task())
        metrics.set_build_info(self.gateway.runtime.inspector.engine)
        await self.gateway.start(sock=self.sock)
        self._keep(asyncio.to_thread(pdfhelper.warm_up, settings.inspection))
        if settings.metrics_listen is not None:
            self.health = HealthServer(settings.metrics_listen, self.readiness,
                                       registry=self._served_registry(),
                                       liveness=self.liveness())
            await start_health(self.health)
        self.take_signals()
        self._keep(sdnotify.start_watchdog())
        if self.digest:
            self._keep(self._digest_loop())
            self._keep(self._backlog_loop())
        log.info("gateway_started", listen=f"{settings.listen.host}:{self.gateway.port}",
                 upstream=f"{settings.upstream.host}:{settings.upstream.port}", pid=os.getpid())
        sdnotify.ready(f"listening on {settings.listen.host}:{self.gateway.port}")
        await self.stop_requested.wait()
        sdnotify.stopping("draining")
        log.info("gateway_draining", in_flight=self.gateway.busy,
                 sessions=len(self.gateway.sessions))
        # A worker whose parent died lets go of the health and metrics port at once (the SMTP
        # listener closes in drain()): the instance restarted in its place must bind it, not
        # wait for this drain. On a normal stop /readyz keeps answering `accepting: false`.
        if self.health is not None and self.link is not None and self.link.orphaned:
            await self.health.stop()
        await self.gateway.drain()
        await self._shutdown()
        log.info("gateway_stopped")
        return 0

    async def readiness(self) -> dict[str, bool]:
        try:  # a file's permissions, or a round trip to the database server
            writable = await asyncio.wait_for(asyncio.to_thread(self.store.check), 5)
        except TimeoutError:
            writable = False
        try:
            upstream = await asyncio.wait_for(self.gateway.relay.check(), 5)
        except TimeoutError:
            upstream = False
        checks = {"policy_loaded": self.gateway.runtime is not None, "store_writable": writable,
                  "upstream_reachable": upstream, "accepting": not self.gateway.draining}
        if self.link is not None:
            checks["workers_alive"] = self.link.board.all_alive()
        return checks

    def liveness(self) -> Liveness | None:
        """Alone, answering at all proves this loop turns; as worker 0, every worker's
        heartbeat has to be fresh too."""
        link = self.link
        if link is None:
            return None

        def check() -> tuple[bool, str]:
            stuck = [s for s in link.board.states() if not s.alive]
            if not stuck:
                return True, f"ok: {link.board.count} workers alive\n"
            lines = [f"worker {s.index}: " + (f"no heartbeat for {s.age:.1f} s (pid {s.pid})"
                                              if s.pid else "not running, restart pending")
                     for s in stuck]
            return False, "\n".join(lines) + "\n"
        return check

    def _served_registry(self) -> CollectorRegistry:
        extra: list[Any] = []
        if self.link is not None:
            extra.append(self.link.board.collector())
        if self.digest:
            extra.append(self.backlog)
        return served_registry(lambda: self.metrics_registry or metrics.REGISTRY, extra)

    async def reload(self) -> bool:
        """Load everything again in a thread and swap it in only if it all loaded. Alone, the
        result is counted and told to systemd here; as a worker, it goes on the board and the
        parent counts it once for the whole daemon."""
        async with self.reload_lock:
            generation = self.link.reloading() if self.link is not None else 0
            sdnotify.reloading("reloading configuration")
            try:
                settings, runtime = await asyncio.to_thread(check_config, self.config_path)
            except Exception as exc:
                if isinstance(exc, SourceErrors):
                    log_reload_errors(exc)
                    why = describe_reload_errors(exc)
                else:  # e.g. a file that vanished mid-read: still a failed reload, not a crash
                    log.exception("reload_failed", kept="previous configuration")
                    why = type(exc).__name__
                self._reloaded(generation, ok=False)
                sdnotify.ready(f"reload failed: {why}; previous configuration kept")
                return False
            self.gateway.swap(settings, runtime)
            if self.link is None:  # with workers the parent has logged them, once
                log_skipped_rows(runtime)
            self._reloaded(generation, ok=True)
            log.info("reloaded", warnings=len(runtime.warnings))
            sdnotify.ready("configuration reloaded")
            return True

    def _reloaded(self, generation: int, *, ok: bool) -> None:
        if self.link is not None:
            self.link.reloaded(generation, ok)
        else:
            metrics.RELOADS.labels(result="success" if ok else "failure").inc()

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
        """Mail the reviewers what was held since the last digest, every `digest_interval`.
        The period is claimed in the store, so of several instances sharing it one sends
        each digest, and a restart neither repeats nor skips a period."""
        while True:
            q = self.gateway.settings.quarantine
            if not q.digest_interval:
                await asyncio.sleep(60)  # re-checked so a reload can switch it on
                continue
            await asyncio.sleep(min(q.digest_interval, 60))
            try:
                await self.send_digest(datetime.now(UTC))
            except Exception:
                log.exception("digest_failed")

    async def _backlog_loop(self) -> None:
        """Count the held mail awaiting review now and then, in a thread: one indexed query,
        off the mail path; the age of the oldest is worked out when /metrics is read."""
        failing = False
        while True:
            try:
                self.backlog.update(*await asyncio.to_thread(self.store.held_summary))
                failing = False
            except Exception as exc:
                if not failing:  # once per outage, not every refresh
                    log.warning("quarantine_backlog_unavailable", error=type(exc).__name__)
                failing = True
                self.backlog.clear()
            await asyncio.sleep(BACKLOG_REFRESH)

    async def send_digest(self, until: datetime) -> bool:
        """Send the digest of the period ending `until` if it is due and this instance
        claims it; True when sent. A period whose digest could not be built or sent is
        given back, so the next digest covers it."""
        q = self.gateway.settings.quarantine
        since = await asyncio.to_thread(self.store.claim_digest, until, q.digest_interval)
        if since is None:
            return False
        try:
            notices = await asyncio.to_thread(
                reviewer_digests, self.store, since=since, until=until, reviewers=q.reviewers,
                console_url=self.gateway.settings.review.public_url)
            await self.gateway.executor.send_notifications(notices, "digest")
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.store.unclaim_digest, since, until)
            raise
        return True

    async def _shutdown(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.health is not None:
            await self.health.stop()
        await asyncio.to_thread(self.store.close)


async def start_health(server: HealthServer, attempts: int = 10, pause: float = 0.5) -> None:
    """Bind the health and metrics port, retrying a few times while it is taken: after a crash
    and an immediate restart, the old instance's workers may still be letting go of it (as
    nginx retries its bind). SO_REUSEPORT is deliberately not used here: two instances sharing
    the port would split the scrapes between them."""
    for attempt in range(attempts):
        try:
            await server.start()
            return
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                raise
            log.warning("health_port_busy", retry_in_seconds=pause)
            await asyncio.sleep(pause)


def run_loop(coro: Any) -> int:
    """Run the daemon's coroutine on uvloop where it is installed (Linux x86_64 and aarch64)."""
    try:
        import uvloop  # noqa: PLC0415 - optional: asyncio's own loop otherwise
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
