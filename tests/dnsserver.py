"""A real authoritative DNS server for the authentication tests: Knot DNS (`knotd`) on a
free loopback port, serving test zones written by the test, started and stopped with it.

Also two servers that fail: a port where nothing listens (the server is down: the UDP query
is refused at once), and a UDP socket that reads queries and never answers (slow / lost).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (knotd listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def txt(value: str) -> str:
    """A TXT value as zone-file strings of at most 255 bytes each (long DKIM keys)."""
    chunks = [value[i:i + 200] for i in range(0, len(value), 200)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


class KnotServer:
    """knotd serving `zones` ({origin: [record lines]}) on 127.0.0.1:port."""

    def __init__(self, workdir: Path, zones: dict[str, Iterable[str]]):
        self.dir = workdir
        self.zones = {origin.rstrip(".") + ".": list(lines) for origin, lines in zones.items()}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> KnotServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        for origin, lines in self.zones.items():
            (self.dir / f"{origin}zone").write_text(_zone_text(origin, lines))
        for attempt in range(5):
            self.port = free_port()
            (self.dir / "knot.conf").write_text(self._config())
            self.proc = subprocess.Popen([KNOTD, "-c", str(self.dir / "knot.conf")],
                                         stdout=subprocess.DEVNULL,
                                         stderr=open(self.dir / "knot.log", "ab"))  # noqa: SIM115
            if self._wait_ready():
                return self
            self.stop()
            if attempt == 4:
                raise RuntimeError("knotd did not start: "
                                   + (self.dir / "knot.log").read_text()[-2000:])
        return self

    def _config(self) -> str:
        zones = "\n".join(f"  - domain: {origin}\n    file: {origin}zone"
                          for origin in self.zones)
        return textwrap.dedent(f"""\
            server:
              rundir: "{self.dir}"
              listen: 127.0.0.1@{self.port}
              udp-workers: 1
              tcp-workers: 1
              background-workers: 1
            log:
              - target: stderr
                any: warning
            database:
              storage: "{self.dir}/db"
            template:
              - id: default
                storage: "{self.dir}"
                journal-content: none
                zonefile-sync: -1
                zonefile-load: whole
                semantic-checks: off
            zone:
            """) + zones + "\n"

    def _wait_ready(self) -> bool:
        origin = next(iter(self.zones))
        query = dns.message.make_query(origin, "SOA")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                reply = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.2)
                if reply.rcode() == dns.rcode.NOERROR and reply.answer:
                    return True
            except (OSError, dns.exception.Timeout):
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def _zone_text(origin: str, lines: list[str]) -> str:
    head = [f"$ORIGIN {origin}", "$TTL 300",
            f"@ IN SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 60",
            f"@ IN NS ns.{origin}", "ns IN A 127.0.0.53"]
    return "\n".join(head + lines) + "\n"


class SilentServer:
    """A UDP and TCP socket on loopback that takes queries and never answers."""

    def __init__(self) -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.udp.close()


def dead_address() -> str:
    """A loopback port where nothing listens: the server is down."""
    return f"127.0.0.1:{free_port()}"
