"""What sender authentication costs: the added latency of a message from outside
trusted_networks with a warm and a cold DNS cache, throughput at 20 sessions, and the trusted
hot path, each as a ratio against a baseline tree measured in the same run.

    python bench/bench_auth.py --baseline /path/to/other/checkout [--count N] [--rounds N]

A real DNS server (Knot, as in the tests: tests/authzones.py) serves the sender's SPF, DKIM
and DMARC records on loopback; the sink is the bench's Python sink. Variants, each a daemon:
`trusted` (client in trusted_networks), `outside` (client outside, warm cache), `cold` (outside,
a one-entry cache: every lookup goes to the server), and the baseline tree's `base-trusted` and
`base-outside` (which knows no authentication). Rounds interleave the variants; medians are
reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procs
from bench.messages import STAFF_DOMAIN, prose
from tests.auth.helpers import message, sign
from tests.authzones import start_world

SENDER = "someone@gmail.example"  # SPF pass, DKIM key, DMARC p=none in the test zones
RECIPIENT = f"jsmith@{STAFF_DOMAIN}"


def write_config(work: Path, name: str, port: int, sink: int, *, outside: bool,
                 dns: str | None, cache: int, tree: Path) -> Path:
    """One variant's gateway.yaml; the tree's own shipped policy (a baseline's may differ)."""
    folder = work / name
    folder.mkdir()
    config: dict[str, object] = {
        "listen": {"host": "127.0.0.1", "port": port},
        "upstream": {"host": "127.0.0.1", "port": sink, "starttls": "off"},
        "trusted_networks": ["10.255.0.0/16"] if outside else ["127.0.0.0/8"],
        "district": {"staff_domains": [STAFF_DOMAIN],
                     "student_domains": ["students.district230.example"]},
        "policies": str(tree / "config" / "policies.yaml"),
        "quarantine": {"url": f"sqlite:///{folder / 'q.db'}"},
        "postmaster": f"postmaster@{STAFF_DOMAIN}",
        "smtp": {"hostname": "gw.bench.example", "max_sessions": 600},
        "log": {"level": "warning", "format": "json"},
    }
    if dns is not None:
        config["authentication"] = {"resolvers": [dns], "timeout": 2, "cache_size": cache}
    path = folder / "gateway.yaml"
    path.write_text(json.dumps(config))
    return path


def payload(raw: bytes) -> bytes:
    body = raw.replace(b"\r\n.", b"\r\n..")
    return body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n"


def _expect(stream, code: bytes) -> None:  # type: ignore[no-untyped-def]
    while True:
        line = stream.readline()
        if not line:
            raise RuntimeError("connection closed")
        if line[3:4] != b"-":
            break
    if not line.startswith(code):
        raise RuntimeError(line.decode(errors="replace").strip())


def latencies(port: int, data: bytes, count: int) -> list[float]:
    """Seconds per transaction over one session, MAIL RCPT DATA pipelined."""
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = sock.makefile("rb")
        _expect(stream, b"220")
        sock.sendall(b"EHLO mx.gmail.example\r\n")
        _expect(stream, b"250")
        head = f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{RECIPIENT}>\r\nDATA\r\n".encode()
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(head)
            for code in (b"250", b"250", b"354"):
                _expect(stream, code)
            sock.sendall(data)
            _expect(stream, b"250")
            out.append(time.perf_counter() - started)
        sock.sendall(b"QUIT\r\n")
    return out


async def _session(port: int, data: bytes, count: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def expect(code: bytes) -> None:
        while True:
            line = await reader.readline()
            if line[3:4] != b"-":
                break
        if not line.startswith(code):
            raise RuntimeError(line.decode(errors="replace").strip())

    await expect(b"220")
    writer.write(b"EHLO mx.gmail.example\r\n")
    await expect(b"250")
    for _ in range(count):
        writer.write(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{RECIPIENT}>\r\nDATA\r\n".encode())
        for code in (b"250", b"250", b"354"):
            await expect(code)
        writer.write(data)
        await expect(b"250")
    writer.write(b"QUIT\r\n")
    writer.close()


def throughput(port: int, data: bytes, sessions: int, count: int) -> float:
    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(_session(port, data, count // sessions)
                               for _ in range(sessions)))
        return (count // sessions * sessions) / (time.perf_counter() - started)
    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, metavar="TREE")
    parser.add_argument("--count", type=int, default=200, help="messages per latency run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    world = start_world(work)
    started: list[procs.Proc] = []
    try:
        sink = procs.free_port()
        started.append(procs.start_sink(None, sink, work / "sink.log"))
        variants = {"trusted": (False, world.address, 10000, procs.REPO),
                    "outside": (True, world.address, 10000, procs.REPO),
                    "cold": (True, world.address, 1, procs.REPO),
                    "base-trusted": (False, None, 0, args.baseline.resolve()),
                    "base-outside": (True, None, 0, args.baseline.resolve())}
        ports = {}
        for name, (outside, dns, cache, tree) in variants.items():
            port = procs.free_port()
            config = write_config(work, name, port, sink, outside=outside, dns=dns,
                                  cache=cache, tree=tree)
            started.append(procs.start_gateway(config, port, work / f"{name}.log", tree=tree))
            ports[name] = port
        rng = random.Random(5125)
        raw = message(from_addr=SENDER, to=RECIPIENT, subject="Bench",
                      body=prose(rng, 10_000).replace("\n", "\r\n"))
        data = payload(sign(raw, world.keys["gmail.example"]))
        lat: dict[str, list[float]] = {name: [] for name in ports}
        rate: dict[str, list[float]] = {name: [] for name in ports}
        for port in ports.values():  # warm-up: connections, caches, code paths
            latencies(port, data, 20)
        for number in range(args.rounds):
            order = list(ports)[number % len(ports):] + list(ports)[:number % len(ports)]
            for name in order:
                lat[name].append(statistics.median(latencies(ports[name], data, args.count)))
                rate[name].append(throughput(ports[name], data, 20, args.count * 2))
        report(lat, rate)
    finally:
        for proc in reversed(started):
            proc.stop()
        world.server.stop()
    return 0


def report(lat: dict[str, list[float]], rate: dict[str, list[float]]) -> None:
    med = {k: statistics.median(v) for k, v in lat.items()}
    thr = {k: statistics.median(v) for k, v in rate.items()}
    print("variant        median latency ms   msgs/s at 20 sessions")
    for name in med:
        print(f"{name:<14} {med[name] * 1000:>10.2f}          {thr[name]:>10.0f}")
    print()
    print(f"outside, warm cache: latency x{med['outside'] / med['base-outside']:.2f} of the "
          f"baseline's, +{(med['outside'] - med['base-outside']) * 1000:.2f} ms; "
          f"throughput x{thr['outside'] / thr['base-outside']:.2f}")
    print(f"outside, cold cache: latency x{med['cold'] / med['base-outside']:.2f}, "
          f"+{(med['cold'] - med['base-outside']) * 1000:.2f} ms; "
          f"throughput x{thr['cold'] / thr['base-outside']:.2f}")
    print(f"trusted (hot path):  latency x{med['trusted'] / med['base-trusted']:.2f}; "
          f"throughput x{thr['trusted'] / thr['base-trusted']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
