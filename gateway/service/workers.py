"""`smtp.workers: N`: N serving processes on one listening address, so every core works.

Why processes: inspection and the SMTP protocol are CPU-bound Python; one process, one GIL,
one core. The parent loads and checks everything once and reserves the address (bound, not
listening, so a bad config or a taken port fails before any fork), then forks N workers; each
opens its own listening socket on that address with SO_REUSEPORT and runs the ordinary
single-process daemon on it. The kernel spreads new connections evenly over the workers' sockets.
(One shared, inherited socket is not used: a worker woken first accepts a whole burst of
connections, and with long SMTP sessions one worker ends up with all the load.) The parent does
no mail work. It

- tells systemd READY=1 with MAINPID=itself once the workers run, and pings the watchdog;
- forwards SIGHUP (each worker reloads config, directory and policy; a bad file keeps the old)
  and SIGTERM/SIGINT (each worker drains its sessions; the parent waits, then exits);
- restarts a worker that died unexpectedly (after a one-second pause, so a crash loop cannot
  spin).

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
from gateway.service.daemon import HANDLED_SIGNALS, Daemon, open_quarantine, run_loop

log = structlog.get_logger("gateway.workers")

SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
RESTART_PAUSE = 1.0
KILL_GRACE = 15.0  # beyond drain_timeout, before a worker that will not stop is killed


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
        self.pid = os.getpid()
        self.workers: dict[int, int] = {}  # pid -> worker index
        self.restart_due: dict[int, float] = {}  # worker index -> monotonic time
        self.stopping = False
        self.kill_at = 0.0

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics)
        for index in range(self.count):
            self.spawn(index)
        port = self.port
        log.info("workers_started", workers=self.count, pid=os.getpid(),
                 listen=f"{self.settings.listen.host}:{port}")
        sdnotify.notify("READY=1", f"MAINPID={os.getpid()}",
                        f"STATUS=listening on {self.settings.listen.host}:{port}, "
                        f"{self.count} workers")
        interval = sdnotify.watchdog_interval()
        next_ping = 0.0
        while self.workers or not self.stopping:
            info = signal.sigtimedwait(SIGNALS, 0.5)
            if info is not None:
                self.on_signal(info.si_signo)
            self.reap()
            self.restart_due_workers()
            now = time.monotonic()
            if interval and now >= next_ping:
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
            sdnotify.reloading("workers reloading configuration")
            self.signal_all(signal.SIGHUP)
            sdnotify.ready(f"reload signalled to {len(self.workers)} workers")

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
            _mark_dead(pid)
            if not self.stopping:
                log.error("worker_died", worker=index, pid=pid,
                          status=os.waitstatus_to_exitcode(status))
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
    settings = parent.settings
    if not first:
        settings = dataclasses.replace(settings, metrics_listen=None)
    store = open_quarantine(settings)  # after fork: never share a database connection
    parent.sock.close()  # the reservation stays with the parent
    sock = bind(settings.listen.host, parent.port, listen=True)
    # One digest per interval, not one per worker; worker 0's /metrics shows every worker's sum.
    daemon = Daemon(parent.config_path, settings, parent.runtime, store, sock=sock,
                    digest=first,
                    metrics_registry=metrics.sum_of_workers(parent.metrics) if first else None)
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
