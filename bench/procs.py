"""Bench processes: the sink, the gateway under test, free loopback ports and RSS sampling.

Why subprocesses: the gateway is measured exactly as operators run it (`python -m gateway
serve --config FILE`, uvloop, its own process), and the load generator and sink never share its
interpreter or its GIL. Every process is started in its own session and stopped by its pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
POSTFIX_INSTALL = ["apt-get", "install", "-y", "--no-install-recommends", "postfix"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_banner(port: int, timeout: float = 30.0) -> None:
    """Wait until something on `port` answers with an SMTP 220 greeting."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                if sock.recv(512).startswith(b"220"):
                    sock.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing answered SMTP on 127.0.0.1:{port}")
        time.sleep(0.1)


def postfix_tools(install: bool) -> tuple[str, str] | None:
    """Paths of smtp-source and smtp-sink, installing Debian's postfix package if allowed.

    Only the two test tools are used. The package's postinst may start a Postfix daemon; it is
    stopped again so the bench leaves nothing running.
    """
    found = _which_tools()
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("bench: installing postfix for smtp-source/smtp-sink ...", file=sys.stderr)
    try:
        subprocess.run(POSTFIX_INSTALL, env=env, check=True, timeout=600,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["postfix", "stop"], timeout=30, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return _which_tools()


def _which_tools() -> tuple[str, str] | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/lib/postfix/sbin"])
    source, sink = shutil.which("smtp-source", path=path), shutil.which("smtp-sink", path=path)
    return (source, sink) if source and sink else None


@dataclass
class Proc:
    """One child process, stopped by its own pid (never by name)."""

    argv: list[str]
    name: str
    log: Path
    cwd: Path = REPO
    popen: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> Proc:
        fh = self.log.open("ab")
        self.popen = subprocess.Popen(self.argv, stdout=fh, stderr=subprocess.STDOUT,
                                      start_new_session=True, cwd=self.cwd,
                                      env=dict(os.environ, **(env or {})))
        fh.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)  # its own session: only its children
            self.popen.wait(5)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


def start_sink(tools: tuple[str, str] | None, port: int, log: Path) -> Proc:
    """smtp-sink (the real baseline) or the bench's Python discard sink."""
    if tools:
        argv = [tools[1], "-4", f"127.0.0.1:{port}", "2048"]
        if os.geteuid() == 0:
            argv[1:1] = ["-u", "nobody"]
    else:
        argv = [PYTHON, str(REPO / "bench" / "pysink.py"), str(port)]
    return _answering(Proc(argv, "sink", log).start(), port)


def start_floor_relay(port: int, sink_port: int, log: Path) -> Proc:
    """bench/floor_relay.py in front of the sink: the least a Python asyncio hop costs."""
    argv = [PYTHON, str(REPO / "bench" / "floor_relay.py"), str(port), str(sink_port)]
    return _answering(Proc(argv, "floor", log).start(), port)


def _answering(proc: Proc, port: int) -> Proc:
    """`proc` once it greets on `port`; stopped (and TimeoutError) if it never does."""
    try:
        wait_banner(port)
    except TimeoutError:
        proc.stop()
        raise
    return proc


def start_gateway(config: Path, port: int, log: Path, *, null_inspector: bool = False,
                  tree: Path = REPO, stage_times: Path | None = None) -> Proc:
    """The daemon as operators run it; `null_inspector` runs the SMTP shell without inspection;
    `stage_times` runs it under bench/stage_timer.py, which writes there on SIGUSR1.

    `tree` is the source tree to run, so another checkout (a baseline) can be measured in the
    same run, under the same noise, as this one.
    """
    env = {"PYTHONPATH": str(tree)}
    if null_inspector:
        argv = [PYTHON, str(REPO / "bench" / "serve_null.py"), "--config", str(config)]
    elif stage_times is not None:
        argv = [PYTHON, str(REPO / "bench" / "stage_timer.py"), "--config", str(config)]
        env["STAGE_TIMES"] = str(stage_times)
    else:
        argv = [PYTHON, "-m", "gateway", "serve", "--config", str(config)]
    proc = Proc(argv, "gateway", log, cwd=tree).start(env=env)
    try:
        wait_banner(port, 60)
    except TimeoutError:
        proc.stop()
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"gateway did not start:\n{tail}") from None
    return proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its descendants so far (workers included).

    CPU per message is steadier than messages per second on a shared, noisy machine.
    """
    total = 0
    for p in [pid, *_descendants(pid)]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def tree_rss(pid: int) -> int:
    """Resident set size in bytes of `pid` and all its descendants (workers included)."""
    total = 0
    for p in [pid, *_descendants(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            children = (task / "children").read_text().split()
            for child in map(int, children):
                out += [child, *_descendants(child)]
    return out


@dataclass
class RssSampler:
    """Samples a process tree's RSS every `interval` seconds in a thread; keeps the peak."""

    pid: int
    interval: float = 0.05
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self._stop.wait(self.interval)
