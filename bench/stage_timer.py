"""`gateway serve` with a clock on each stage of every message (bench/stages.py starts it).

Why: the bench sees the gateway from outside, where this machine's noise (±0.3 ms between runs
of one tree) hides changes of a few tenths of a millisecond. Timed inside the daemon, each
message's stages are steady to a few hundredths. The marks are wrappers around the daemon's
own methods, so it runs exactly the code `gateway serve` runs, plus a few `perf_counter` calls
(about 1 µs each). Bench use only; never deploy this.

Stages, per message (seconds): `commands` (MAIL, RCPT and DATA received → 354 written),
`read` (first DATA bytes → the message complete), `decide` (inspection, directory, policy),
`relay` (the copy upstream, or the quarantine write), `rest` (the DATA hook's own work around
those two: envelope, checks, reply line), `total` (first DATA bytes → final reply written).
On SIGUSR1 they are written as JSON to $STAGE_TIMES and the process exits.

Usage: STAGE_TIMES=out.json python bench/stage_timer.py --config FILE
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

STAGES = ("commands", "read", "decide", "relay", "rest", "total")
# Also recorded per message: its size as read, which tells the kinds of the mix apart.


class Clock:
    """Marks of the message in progress on the (single) probe session, and the results."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.times: dict[str, list[float]] = {key: [] for key in (*STAGES, "size")}

    def mark(self, name: str) -> None:
        self.marks[name] = time.perf_counter()

    def done(self) -> None:
        m, now = self.marks, time.perf_counter()
        if {"group", "payload", "read", "size", "hook", "hook_done", "decide",
                "relay"} <= m.keys():
            spans = {"commands": m["sent_354"] - m["group"] if "sent_354" in m else 0.0,
                     "read": m["read"] - m["payload"], "decide": m["decide"],
                     "relay": m["relay"], "total": now - m["payload"],
                     "rest": m["hook_done"] - m["hook"] - m["decide"] - m["relay"],
                     "size": m["size"]}
            for key, value in spans.items():
                self.times[key].append(value)
        self.marks = {}


def install(clock: Clock) -> None:
    from gateway.actions import execute
    from gateway.service import listener
    from gateway.smtp import dataread, server

    smtp, gateway = server.GatewaySMTP, listener.Gateway
    data_received, push = smtp.data_received, smtp.push

    def timed_data_received(self: Any, data: bytes) -> None:
        if self.receiving and "payload" not in clock.marks:
            clock.mark("payload")
        elif not self.receiving and data[:4].upper() == b"MAIL":
            clock.marks = {}
            clock.mark("group")
        data_received(self, data)

    async def timed_push(self: Any, status: Any) -> None:
        line = status if isinstance(status, str) else bytes(status).decode()
        await push(self, status)
        if line.startswith("354"):
            clock.mark("sent_354")
        elif "hook_done" in clock.marks:
            clock.done()

    smtp.data_received = timed_data_received  # type: ignore[method-assign]
    smtp.push = timed_push  # type: ignore[method-assign]
    read_data = dataread.read_data

    async def timed_read_data(*args: Any, **kwargs: Any) -> Any:
        result = await read_data(*args, **kwargs)
        clock.mark("read")
        clock.marks["size"] = float(len(result[0] or b""))
        return result

    dataread.read_data = timed_read_data  # type: ignore[assignment]
    _around(server.Handler, "handle_DATA", clock, start="hook", end="hook_done")
    _spent(gateway, "_decide", clock, "decide")
    _spent(execute.Executor, "carry_out", clock, "relay")


def _around(cls: type, name: str, clock: Clock, *, start: str, end: str) -> None:
    method: Callable[..., Any] = getattr(cls, name)

    async def timed(*args: Any, **kwargs: Any) -> Any:
        clock.mark(start)
        try:
            return await method(*args, **kwargs)
        finally:
            clock.mark(end)

    setattr(cls, name, timed)


def _spent(cls: type, name: str, clock: Clock, key: str) -> None:
    method: Callable[..., Any] = getattr(cls, name)

    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            clock.marks[key] = time.perf_counter() - started

    setattr(cls, name, timed)


def main() -> int:
    out = os.environ["STAGE_TIMES"]
    clock = Clock()
    install(clock)

    def dump(*_args: object) -> None:
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(clock.times, fh)
        os._exit(0)

    signal.signal(signal.SIGUSR1, dump)
    from gateway.cli import main as cli_main

    return cli_main(["serve", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
