"""`smtp.workers: N`: N serving processes on one listening address, so every core works.

Why processes: inspection and the SMTP protocol are CPU-bound Python; one process, one GIL,
one core. The parent loads and checks everything once and reserves the address (bound, not
listening, so a bad config or a taken port fails before any fork), then forks N workers; each
opens its own listening socket on that address with SO_REUSEPORT and runs the ordinary
single-process daemon on it. The kernel spreads new connections evenly over the workers' sockets.
(One shared, inherited socket is not used: a worker woken first accepts a whole burst of
connections, and with long SMTP sessions one worker ends up with all the load.) The parent does
no mail work. It

- tells systemd READY=1 with MAINPID=itself once the workers run, and pings the watchdog only
  while every worker's event loop is proven to turn (`gateway.service.heartbeat`): if workers
  cannot be kept alive, systemd restarts the whole service;
- kills (SIGKILL) and replaces a worker whose heartbeat is older than `smtp.worker_timeout`:
  a stopped or blocked loop still holds its share of the listening address, and every
  connection the kernel gives it would wait for a banner that never comes;
- on SIGHUP checks the configuration itself first: a broken file is reported (log, STATUS,
  one failure in the metric) and never reaches the workers. A good one becomes what new and
  restarted workers start from, and SIGHUP goes to each worker; the parent waits for every
  worker's result on the board and tells systemd one honest outcome, counted once;
- forwards SIGTERM/SIGINT (each worker drains its sessions; the parent waits, then exits);
- restarts a worker that died unexpectedly (after a one-second pause, so a crash loop cannot
  spin).

Workers die with the parent (PR_SET_PDEATHSIG, SIGTERM): after a crash of the parent they drain
what they have in DATA, as on a normal stop, instead of lingering; their first step is to close
their SMTP and health listeners, so an immediately restarted instance can take the addresses.

Limits apply per worker: `smtp.max_sessions` is per process, so the whole daemon accepts up to
`workers × max_sessions` sessions. Metrics: the workers write prometheus_client's multiprocess
files to `<quarantine folder>/metrics` (a private temporary folder for a database server), and
worker 0 serves the sum of all workers on `metrics.listen`; only worker 0 runs the reviewers'
digest, so it is sent once.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import structlog
from prometheus_client import multiprocess

from gateway import metrics
from gateway.config import Settings
from gateway.runtime import Runtime
from gateway.service import sdnotify
from gateway.service.daemon import (
    HANDLED_SIGNALS,
    Daemon,
    check_config,
    describe_reload_errors,
    log_reload_errors,
    log_skipped_rows,
    open_quarantine,
    run_loop,
)
from gateway.service.heartbeat import Board, WorkerLink
from gateway.yamlsrc import SourceErrors

log = structlog.get_logger("gateway.workers")

SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
RESTART_PAUSE = 1.0
KILL_GRACE = 15.0  # beyond drain_timeout, before a worker that will not stop is killed
RELOAD_WAIT = 120.0  # for every worker's reload result, before the reload counts as failed


def worker_count(settings: Settings) -> int:
    """`smtp.workers`, with 0 meaning one per CPU this process may run on (taskset, cpuset and
    systemd's CPUAffinity= narrow it; a container's CPU quota does not, so set it there)."""
    if settings.smtp.workers:
        return settings.smtp.workers
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)


def bind(host: str, port: int, *, listen: bool) -> socket.socket:
    """A SO_REUSEPORT socket on the address: the parent's reservation, or a worker's listener.

    The parent's socket never listens, so the kernel never hands it a connection.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(1024)
        sock.setblocking(False)
    return sock


def metrics_dir(settings: Settings) -> Path:
    """A private folder for the multiprocess metric files, emptied at start."""
    if settings.quarantine.path is not None:
        folder = settings.quarantine.path.parent / "metrics"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix="gateway-metrics-"))
    for stale in folder.glob("*.db"):
        stale.unlink()
    return folder


class Supervisor:
    """The parent: starts, watches, signals and reaps the workers. No asyncio, no threads."""

    def __init__(self, config_path: str | None, settings: Settings, runtime: Runtime):
        self.config_path = config_path
        self.settings = settings
        self.runtime = runtime
        self.count = worker_count(settings)
        self.sock = bind(settings.listen.host, settings.listen.port, listen=False)
        self.port = self.sock.getsockname()[1]  # the real one when the config says port 0
        self.metrics = metrics_dir(settings)
        self.board = Board(self.count, settings.smtp.worker_timeout)
        self.pid = os.getpid()
        self.workers: dict[int, int] = {}  # pid -> worker index
        self.stalled: set[int] = set()  # pids killed for a stopped heartbeat, not yet reaped
        self.restart_due: dict[int, float] = {}  # worker index -> monotonic time
        self.stopping = False
        self.kill_at = 0.0
        self.reload_pending: tuple[int, float] | None = None  # (generation, give up at)
        self.healthy = True

    @property
    def listening(self) -> str:
        return f"listening on {self.settings.listen.host}:{self.port}, {self.count} workers"

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        # The parent counts too (worker restarts, reloads): into the same files the workers
        # write, so worker 0's /metrics includes it.
        metrics.use_multiprocess_files(self.metrics)
        for index in range(self.count):
            self.spawn(index)
        log.info("workers_started", workers=self.count, pid=os.getpid(),
                 listen=f"{self.settings.listen.host}:{self.port}",
                 worker_timeout=self.board.timeout)
        sdnotify.notify("READY=1", f"MAINPID={os.getpid()}", f"STATUS={self.listening}")
        interval = sdnotify.watchdog_interval()
        if interval and self.board.timeout >= interval:
            log.warning("worker_timeout_too_long", worker_timeout=self.board.timeout,
                        watchdog_ping_seconds=interval,
                        effect="systemd may restart the service before a stuck worker is "
                               "replaced")
        next_ping = 0.0
        while self.workers or not self.stopping:
            info = signal.sigtimedwait(SIGNALS, 0.5)
            if info is not None:
                self.on_signal(info.si_signo)
            self.reap()
            self.replace_stalled()
            self.restart_due_workers()
            self.finish_reload()
            alive = self.check_health()
            now = time.monotonic()
            # Only while every worker proves its loop turns (or while stopping, which
            # TimeoutStopSec bounds): a stuck daemon must not look alive to systemd.
            if interval and now >= next_ping and (alive or self.stopping):
                sdnotify.watchdog()
                next_ping = now + interval
            if self.stopping and self.workers and now >= self.kill_at:
                log.warning("workers_killed", remaining=len(self.workers))
                self.signal_all(signal.SIGKILL)
        self.sock.close()
        log.info("gateway_stopped", workers=self.count)
        return 0

    def on_signal(self, signo: int) -> None:
        if signo in (signal.SIGTERM, signal.SIGINT) and not self.stopping:
            self.stopping = True
            self.kill_at = time.monotonic() + self.settings.smtp.drain_timeout + KILL_GRACE
            sdnotify.stopping("draining")
            self.signal_all(signal.SIGTERM)
        elif signo == signal.SIGHUP and not self.stopping:
            self.reload()

    def reload(self) -> None:
        """Check the files here first, so a broken one is reported once and never reaches
        the workers; then have every worker load them and wait for their results."""
        sdnotify.reloading("checking configuration")
        try:
            settings, runtime = check_config(self.config_path)
        except Exception as exc:
            if isinstance(exc, SourceErrors):
                log_reload_errors(exc)
                why = describe_reload_errors(exc)
            else:
                log.exception("reload_failed", kept="previous configuration")
                why = type(exc).__name__
            metrics.RELOADS.labels(result="failure").inc()
            sdnotify.ready(f"reload failed: {why}; previous configuration kept; "
                           f"{self.listening}")
            return
        log_skipped_rows(runtime)
        # What new and restarted workers start from. The address they share and worker 0's
        # health endpoint stay as started (changing them needs a restart, as in the workers).
        self.settings = dataclasses.replace(settings, listen=self.settings.listen,
                                            metrics_listen=self.settings.metrics_listen)
        self.runtime = runtime
        generation = self.board.ask_reload()
        self.reload_pending = (generation, time.monotonic() + RELOAD_WAIT)
        sdnotify.status(f"reloading in {len(self.workers)} workers")
        self.signal_all(signal.SIGHUP)

    def finish_reload(self) -> None:
        """Once every worker has answered (or the wait is over): count once, tell systemd."""
        if self.reload_pending is None:
            return
        generation, give_up_at = self.reload_pending
        results = self.board.reload_results(generation)
        if results is None and time.monotonic() < give_up_at:
            return
        self.reload_pending = None
        if results is None:
            failed, why = self.board.late(generation), "no result in time"
        else:
            failed, why = sorted(i for i, ok in results.items() if not ok), "see the log"
        if failed:
            metrics.RELOADS.labels(result="failure").inc()
            names = ", ".join(str(i) for i in failed)
            log.error("reload_failed_in_workers", workers=failed, of=self.count, reason=why)
            sdnotify.ready(f"reload failed in worker {names} of {self.count} ({why}); "
                           f"those keep the previous configuration; {self.listening}")
        else:
            metrics.RELOADS.labels(result="success").inc()
            log.info("reloaded_all_workers", workers=self.count)
            sdnotify.ready(f"configuration reloaded in all {self.count} workers; "
                           f"{self.listening}")

    def replace_stalled(self) -> None:
        """SIGKILL a worker whose loop has not beaten for `smtp.worker_timeout`: it cannot
        handle SIGTERM (stopped, or its loop blocked), and its socket keeps taking connections
        it never answers. The reaper then restarts it like any dead worker."""
        if self.stopping:
            return
        for state in self.board.states():
            if not state.stalled or state.pid in self.stalled:
                continue
            if self.workers.get(state.pid) != state.index:
                continue
            log.error("worker_stalled", worker=state.index, pid=state.pid,
                      seconds_since_heartbeat=round(state.age, 1),
                      action="killed and replaced")
            metrics.WORKER_RESTARTS.labels(reason="stalled").inc()
            self.stalled.add(state.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(state.pid, signal.SIGKILL)

    def check_health(self) -> bool:
        """Whether every worker is alive now; systemd's STATUS line follows the changes."""
        alive = self.board.all_alive()
        if alive != self.healthy and not self.stopping:
            self.healthy = alive
            if alive:
                log.info("workers_healthy", workers=self.count)
                sdnotify.status(self.listening)
            else:
                down = [s.index for s in self.board.states() if not s.alive]
                sdnotify.status(f"{self.listening}; not alive: worker "
                                + ", ".join(str(i) for i in down))
        return alive

    def signal_all(self, signo: int) -> None:
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signo)

    def reap(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.workers.clear()
                return
            if pid == 0:
                return
            index = self.workers.pop(pid, None)
            if index is None:
                continue
            self.board.vacated(index)
            _mark_dead(pid)
            stalled = pid in self.stalled
            self.stalled.discard(pid)
            if not self.stopping:
                if not stalled:  # a stalled one was logged and counted when it was killed
                    log.error("worker_died", worker=index, pid=pid,
                              status=os.waitstatus_to_exitcode(status))
                    metrics.WORKER_RESTARTS.labels(reason="exited").inc()
                self.restart_due[index] = time.monotonic() + RESTART_PAUSE

    def restart_due_workers(self) -> None:
        now = time.monotonic()
        for index, due in list(self.restart_due.items()):
            if self.stopping:
                self.restart_due.clear()
            elif now >= due:
                del self.restart_due[index]
                self.spawn(index)

    def spawn(self, index: int) -> None:
        pid = os.fork()
        if pid:
            self.workers[pid] = index
            self.board.started(index, pid)
            return
        code = 1
        try:
            code = run_worker(self, index)
        except BaseException:  # a worker must never fall back into the parent's loop
            log.exception("worker_failed", worker=index)
        finally:
            os._exit(code)


def run_worker(parent: Supervisor, index: int) -> int:
    """In the forked child: become an ordinary daemon serving on its own SO_REUSEPORT socket.

    SIGTERM, SIGINT and SIGHUP stay blocked (as the parent had them) until the daemon's loop
    has its handlers (`Daemon.take_signals`): a reload the parent forwards while this worker
    starts would otherwise kill it, and reset the connections already queued on its socket."""
    for signo in SIGNALS:
        signal.signal(signo, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS - HANDLED_SIGNALS)
    _die_with_parent(parent.pid)
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        os.environ.pop(name, None)  # only the parent talks to systemd
    metrics.use_multiprocess_files(parent.metrics)
    first = index == 0
    settings = parent.settings  # the parent's current one: as of the last good reload
    if not first:
        settings = dataclasses.replace(settings, metrics_listen=None)
    store = open_quarantine(settings)  # after fork: never share a database connection
    parent.sock.close()  # the reservation stays with the parent
    sock = bind(settings.listen.host, parent.port, listen=True)
    # One digest per interval, not one per worker; worker 0's /metrics shows every worker's sum.
    daemon = Daemon(parent.config_path, settings, parent.runtime, store, sock=sock,
                    digest=first,
                    metrics_registry=metrics.sum_of_workers(parent.metrics) if first else None,
                    link=WorkerLink(parent.board, index, parent.pid))
    return run_loop(daemon.run())


def _die_with_parent(parent_pid: int) -> None:
    """Drain and exit (SIGTERM) if the parent dies, even by SIGKILL: never an orphan worker.

    Linux prctl(PR_SET_PDEATHSIG); elsewhere the parent's own SIGTERM forwarding has to do.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _mark_dead(pid: int) -> None:
    with contextlib.suppress(Exception):
        multiprocess.mark_process_dead(pid)


def serve_workers(config_path: str | None, settings: Settings, runtime: Runtime) -> int:
    """Entry from `gateway serve` when `smtp.workers` is not 1."""
    try:
        open_quarantine(settings).close()  # fail now, not N times after the fork
    except Exception as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    try:
        supervisor = Supervisor(config_path, settings, runtime)
    except OSError as exc:
        print(f"gateway: cannot listen on {settings.listen.host}:{settings.listen.port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    return supervisor.run()
