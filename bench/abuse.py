"""What a hostile client can do to the gateway, measured: memory under unfinished large
messages, and an ordinary client's service while one address holds hundreds of idle sessions.

    python bench/abuse.py [--baseline TREE] [--quick]

Each figure is taken for this tree and, with `--baseline`, for another checkout in the same
run (turn about, on fresh daemons), so the two can be compared on the same noisy machine:

- **unfinished DATA**: N sessions each send M MB of a message and never end it; the gateway's
  peak RSS (all its processes) while they hang there, against its idle RSS. The configured
  ceiling (`smtp.max_in_flight`) is printed beside it. The sessions come from a trusted
  address, so that the ceiling, not the per-client session limit, is what is measured.
- **idle flood**: one outside address (127.0.0.1, not in `trusted_networks`) opens S idle
  sessions; then an ordinary client from another address (127.0.0.2) sends one message: its
  reply, and the time from connect to that reply.

Everything runs on loopback with free ports; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procs
from bench.messages import write_directory

STUDENT = "student0001@students.district230.example"
IN_FLIGHT = "256M"


def write_config(work: Path, name: str, port: int, sink_port: int, *, trusted: str,
                 tree: Path = procs.REPO) -> Path:
    """The config of one run; the policy is `tree`'s own (an older tree refuses newer keys)."""
    folder = work / name
    folder.mkdir(mode=0o700)
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "upstream": {"host": "127.0.0.1", "port": sink_port},
        "trusted_networks": [trusted],
        "district": {"staff_domains": ["staff.district230.example"],
                     "student_domains": ["students.district230.example"]},
        "directory": {"people": str(work / "people.csv"),
                      "relationships": str(work / "relationships.csv")},
        "policies": str(tree / "config" / "policies.yaml"),
        "quarantine": {"url": f"sqlite:///{folder / 'quarantine.db'}"},
        "postmaster": "postmaster@staff.district230.example",
        # max_in_flight is only known to trees that have it; the others refuse unknown keys.
        "smtp": {"hostname": "gateway.bench.example", "max_sessions": 800},
        "log": {"level": "warning", "format": "json"},
    }
    if _knows(name, "max_in_flight"):
        config["smtp"]["max_in_flight"] = IN_FLIGHT
    path = folder / "gateway.yaml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    return path


_TREES: dict[str, Path] = {}


def _knows(name: str, key: str) -> bool:
    tree = _TREES[name.split("-")[0]]
    return key in (tree / "gateway" / "config.py").read_text(encoding="utf-8")


async def _to_data(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader,
                                                                   asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                   local_addr=(source, 0))
    await reader.readline()
    for line in (b"EHLO bench\r\n", b"MAIL FROM:<someone@outside.example>\r\n",
                 f"RCPT TO:<{STUDENT}>\r\n".encode(), b"DATA\r\n"):
        writer.write(line)
        while True:
            reply = await asyncio.wait_for(reader.readline(), 30)
            if not reply or reply[:1] not in b"23":
                writer.close()
                raise ConnectionError(reply.decode(errors="replace").strip() or "closed")
            if reply[3:4] == b" ":
                break
    return reader, writer


async def unfinished(port: int, pid: int, sessions: int, megabytes: int) -> dict[str, float]:
    idle = procs.tree_rss(pid)
    block = (b"x" * 1022 + b"\r\n") * 1024  # 1 MB of 1 KB lines
    opened = []
    with procs.RssSampler(pid) as sampler:
        for _ in range(sessions):
            try:
                opened.append(await _to_data(port))
            except (OSError, TimeoutError):
                break
        for _ in range(megabytes):
            for _reader, writer in opened:
                writer.write(block)
            await asyncio.gather(*(w.drain() for _r, w in opened), return_exceptions=True)
        await asyncio.sleep(2)  # let the gateway read what was sent
    for _reader, writer in opened:
        writer.close()
    return {"sessions": len(opened), "idle_mib": idle / 2**20, "peak_mib": sampler.peak / 2**20}


async def idle_flood(port: int, sessions: int) -> dict[str, object]:
    held = []
    for _ in range(sessions):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            held.append((reader, writer))
        except OSError:
            break
    await asyncio.sleep(1)
    started = time.monotonic()
    try:
        reader, writer = await _to_data(port, source="127.0.0.2")
        writer.write(b"Subject: hello\r\n\r\nSee you tomorrow.\r\n.\r\n")
        reply = (await asyncio.wait_for(reader.readline(), 30)).decode().strip()
        writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        reply = f"no service ({type(exc).__name__})"
    elapsed = time.monotonic() - started
    for _reader, writer in held:
        writer.close()
    return {"held": len(held), "reply": reply[:60], "ms": round(elapsed * 1000, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, metavar="TREE")
    parser.add_argument("--quick", action="store_true", help="smaller messages and floods")
    args = parser.parse_args(argv)
    _TREES["this"] = procs.REPO
    if args.baseline:
        _TREES["base"] = args.baseline.resolve()
    loads = [(50, 20), (200, 5)] if not args.quick else [(20, 5)]
    flood = 900 if not args.quick else 120  # past max_sessions (800)
    socket.setdefaulttimeout(30)
    with tempfile.TemporaryDirectory(prefix="gateway-abuse-") as tmp:
        work = Path(tmp)
        write_directory(work)
        sink_port = procs.free_port()
        sink = procs.start_sink(None, sink_port, work / "sink.log")
        try:
            for tree_name, tree in _TREES.items():
                for case, (sessions, mb) in enumerate(loads):
                    name = f"{tree_name}-memory{case}"
                    port = procs.free_port()
                    # From the district's own address: the memory ceiling, not the
                    # per-client session limit, is what is measured here.
                    config = write_config(work, name, port, sink_port, trusted="127.0.0.0/8",
                                          tree=tree)
                    gateway = procs.start_gateway(config, port, work / f"{name}.log",
                                                  tree=tree)
                    try:
                        out = asyncio.run(unfinished(port, gateway.pid, sessions, mb))
                    finally:
                        gateway.stop()
                    print(f"{tree_name:5} unfinished DATA: {out['sessions']:3} sessions x "
                          f"{mb:2} MB: idle {out['idle_mib']:.0f} MiB, peak "
                          f"{out['peak_mib']:.0f} MiB (ceiling {IN_FLIGHT}"
                          f"{'' if _knows(name, 'max_in_flight') else ': not in this tree'})")
                name = f"{tree_name}-flood"
                port = procs.free_port()
                config = write_config(work, name, port, sink_port, trusted="10.0.0.0/8",
                                      tree=tree)
                gateway = procs.start_gateway(config, port, work / f"{name}.log", tree=tree)
                try:
                    out = asyncio.run(idle_flood(port, flood))
                finally:
                    gateway.stop()
                print(f"{tree_name:5} idle flood: {out['held']} idle sessions from one "
                      f"address; another client got {out['reply']!r} in {out['ms']} ms")
        finally:
            sink.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
