"""Running the real thing from a test: the gateway in-process or as `python -m gateway` in a
subprocess, an SMTP client, HTTP and metrics readers, loopback ports, throwaway certificates,
and readers for the deployment files (systemd units, Dockerfile) that parse them as their tools
do.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosmtplib
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import Settings
from gateway.service.listener import Gateway
from tests.factories import REPO, runtime_for

# --- the gateway in this process --------------------------------------------------------------

async def start_gateway(settings: Settings, policy: Any = None, store: Any = None,
                        inspector: Any = None) -> Gateway:
    """A listening Gateway with the domain directory and, unless given, the scripted policy
    and an inspector that finds nothing (tests.factories)."""
    gateway = Gateway(settings, runtime_for(settings, policy, inspector), store)
    await gateway.start()
    return gateway


async def send(port: int, mail_from: str, rcpts: Sequence[str], content: bytes, *,
               timeout: float = 30) -> tuple[dict[str, Any], str]:
    """Send with aiosmtplib; returns (per-recipient errors, final reply)."""
    return await aiosmtplib.send(content, sender=mail_from, recipients=list(rcpts),
                                 hostname="127.0.0.1", port=port, timeout=timeout,
                                 start_tls=False)


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# --- ports and certificates -------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DeadPort:
    """A loopback port that is bound but not listening: connections are refused, and no other
    process can take the port while the test runs."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


def self_signed(tmp_path: Path, name: str = "gw.test") -> tuple[Path, Path]:
    """A throwaway certificate and key (openssl), for STARTTLS on either side of the hop."""
    cert, key = tmp_path / f"{name}.cert.pem", tmp_path / f"{name}.key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


# --- the gateway as a subprocess --------------------------------------------------------------

@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str
    raw_stdout: bytes = b""


async def run_cli(*args: str) -> CliResult:
    """`python -m gateway ...` as a real subprocess, awaited so a test's upstream keeps serving."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, cwd=str(REPO), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(errors="replace"), err.decode(), out)


class DaemonProcess:
    """`python -m gateway serve` in a subprocess, with its JSON log lines collected as events."""

    def __init__(self, config: Path, env: dict[str, str]):
        self.config = config
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self.stderr = b""
        self._changed = asyncio.Condition()
        self._readers: list[asyncio.Task[None]] = []

    async def start(self) -> DaemonProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "serve", "--config", str(self.config),
            cwd=REPO, env=self.env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [asyncio.create_task(self._read_events(self.proc.stdout)),
                         asyncio.create_task(self._read_stderr(self.proc.stderr))]
        return self

    async def _read_events(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = {"event": "<not json>", "line": line.decode(errors="replace")}
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()
        async with self._changed:
            self.events.append({"event": "<eof>"})
            self._changed.notify_all()

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        self.stderr = await stream.read()

    def found(self, name: str, since: int = 0) -> dict[str, Any] | None:
        return next((e for e in self.events[since:] if e.get("event") == name), None)

    async def wait_event(self, name: str, *, since: int = 0, timeout: float = 60) -> dict[str, Any]:
        """The first log event `name` (after index `since`); fails if the daemon exits first."""
        async def wait() -> dict[str, Any]:
            async with self._changed:
                while True:
                    if (event := self.found(name, since)) is not None:
                        return event
                    if self.found("<eof>", since):
                        raise AssertionError(f"daemon exited before {name}: {self.diagnostics()}")
                    await self._changed.wait()
        return await asyncio.wait_for(wait(), timeout)

    def diagnostics(self) -> str:
        return f"events={self.events[-10:]} stderr={self.stderr[-2000:]!r}"

    @property
    def smtp_port(self) -> int:
        event = self.found("gateway_started")
        assert event is not None, self.diagnostics()
        return int(event["listen"].rsplit(":", 1)[1])

    @property
    def health_port(self) -> int:
        event = self.found("health_listening")
        assert event is not None, self.diagnostics()
        return int(event["port"])

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    async def wait(self, timeout: float = 60) -> int:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.gather(*self._readers, return_exceptions=True)
        return code

    async def close(self) -> None:
        """Stop the daemon however it is doing (used by fixtures, after the assertions)."""
        if self.proc is None or self.proc.returncode is not None:
            await asyncio.gather(*self._readers, return_exceptions=True)
            return
        self.proc.terminate()
        try:
            await self.wait(60)
        except TimeoutError:
            self.proc.kill()
            await self.wait(60)


# --- HTTP and metrics -------------------------------------------------------------------------

async def http_request(port: int, path: str,
                       method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """A request over loopback in a thread (urllib is blocking): (status, headers, body);
    non-2xx statuses are returned, not raised."""
    def request() -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()
    return await asyncio.to_thread(request)


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    status, _headers, body = await http_request(port, path)
    return status, body


def metric_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus exposition → {(sample name, labels): value}."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- deployment files, read the way their tools read them -------------------------------------

def unit_directives(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment; keys may repeat, as systemd allows."""
    section, out = "", []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def unit_values(path: Path, section: str, key: str) -> list[str]:
    return [v for s, k, v in unit_directives(path) if s == section and k == key]


def seconds(value: str) -> float:
    """systemd time span (`45s`, `1min 30s`, `30`) in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, or None for shell form."""
        try:
            value = json.loads(self.args)
        except json.JSONDecodeError:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        return None


def dockerfile(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = pending + stripped
        pending = ""
        keyword, _, args = line.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
    return out


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last_from = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    return instructions[last_from:]
