"""Helpers for the ops tests: read systemd units and Dockerfiles the way their tools do."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent


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


# --- the daemon as a subprocess ---------------------------------------------------------------

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
            cwd=ROOT, env=self.env, stdout=asyncio.subprocess.PIPE,
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


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    """GET over loopback in a thread (urllib is blocking); non-2xx statuses are returned."""
    def get() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
    return await asyncio.to_thread(get)


def metric_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus exposition → {(sample name, labels): value}."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)
