"""The relay step alone: one copy upstream, pipelined against one command at a time.

    .venv/bin/python bench/bench_relay.py [--messages 3000] [--recipients 1]

Starts Postfix's smtp-sink (or the bench's Python sink) on loopback and sends the same 10 KB
message through two `Relay`s in one event loop (uvloop, as the daemon runs), one with
`upstream.pipelining` on and one with it off, alternating message by message so a noisy
neighbour hits both alike. Prints the time per `Relay.send` (pooled connection: MAIL, RCPT, DATA
and the message) and the ratio. Loopback round trips are the cheapest there are; on a LAN to
the district server each round trip saved is worth more.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procs
from bench.report import percentile
from gateway.config import UpstreamSettings
from gateway.smtp.client import Relay

MESSAGE = b"Subject: bench\r\n\r\n" + b"an ordinary line of school newsletter text\r\n" * 230


async def measure(port: int, messages: int, recipients: int) -> dict[bool, list[float]]:
    relays = {mode: Relay(UpstreamSettings(host="127.0.0.1", port=port, starttls="off",
                                           pipelining=mode), "bench.example")
              for mode in (False, True)}
    rcpts = [f"parent{i}@parents.example" for i in range(recipients)]
    times: dict[bool, list[float]] = {False: [], True: []}
    try:
        for i in range(messages + 100):
            for mode in ((False, True) if i % 2 else (True, False)):
                started = time.perf_counter()
                result = await relays[mode].send("teacher@staff.example", rcpts, MESSAGE)
                if not result.delivered:
                    raise SystemExit(f"the sink refused a message: {result.reply}")
                if i >= 100:  # the first 100 warm up connections and caches
                    times[mode].append(time.perf_counter() - started)
    finally:
        for relay in relays.values():
            await relay.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--recipients", type=int, default=1)
    parser.add_argument("--python-tools", action="store_true",
                        help="use the bench's Python sink even if smtp-sink exists")
    args = parser.parse_args()
    tools = None if args.python_tools else procs.postfix_tools(install=False)
    port = procs.free_port()
    with tempfile.TemporaryDirectory() as work:
        sink = procs.start_sink(tools, port, Path(work) / "sink.log")
        try:
            import uvloop
            times = uvloop.run(measure(port, args.messages, args.recipients))
        finally:
            sink.stop()
    print(f"relay step, {len(MESSAGE):,}-byte message, {args.recipients} recipient(s), "
          f"{args.messages} messages each, sink: {'smtp-sink' if tools else 'Python'}")
    print("| upstream commands | p50 µs | p90 µs | p99 µs |")
    print("|---|---:|---:|---:|")
    for mode, label in ((False, "one at a time"), (True, "pipelined")):
        row = [percentile(times[mode], q) * 1e6 for q in (50, 90, 99)]
        print(f"| {label} | " + " | ".join(f"{v:,.0f}" for v in row) + " |")
    ratio = percentile(times[True], 50) / percentile(times[False], 50)
    print(f"pipelined / one at a time, p50: {ratio:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
