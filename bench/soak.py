"""The ledger soak: the real gateway under faults, and an account of every message it took.

    python bench/soak.py [--duration 360] [--rate 25] [--quick] [--json FILE]   (make soak)

It starts, on loopback and in a temporary folder:

- a recording upstream (bench/soaksink.py, its own process) that can be killed, slowed down
  or told to refuse, and that refuses recipients named `gone…` permanently;
- `gateway serve` with two workers (`smtp.workers: 2`), a generated directory and the shipped
  policies, its quarantine on a small tmpfs of its own so that the disk can be filled;
- a client that sends a mix of messages (relayed, held, split between the two, with a recipient
  the upstream refuses, wholly refused, from an untrusted address with a recipient the gateway
  refuses), each with a unique token in its Message-ID, and that retries every 4xx, refused
  connection and lost reply as a sending MTA does.

While the load runs, faults are injected in turn, each several times on a long run: the
upstream SIGKILLed and restarted, slow (past and within the gateway's upstream timeout),
answering 4xx, answering 5xx; the whole gateway SIGKILLed and restarted; one worker
SIGKILLed; the quarantine's disk full. Then the faults stop, the client retries until every
message has a final answer, and the ledger (bench/soak_ledger.py) accounts for each recipient
of each message the client got 250 for: at the sink, held, or bounced with a DSN. Exit status
1 when anything is lost or held twice, or a duplicate has no ambiguous attempt to explain it.

The quarantine disk needs `mount -t tmpfs` (root with CAP_SYS_ADMIN); without it that one
fault is skipped and said so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procs
from bench.messages import STAFF_DOMAIN, STUDENT_DOMAIN, prose, write_directory
from bench.soak_ledger import Attempt, FaultWindow, Ledger, Message, build_ledger

FAULTS = ("upstream_killed", "upstream_slow", "upstream_tempfail", "upstream_reject",
          "gateway_killed", "worker_killed", "quarantine_full")
UNTRUSTED_SOURCE = "127.0.0.2"  # trusted_networks is 127.0.0.1/32 alone
UPSTREAM_TIMEOUT = 2.0  # the gateway's; the slow upstream is set below and above it
REPLY_TIMEOUT = 30.0  # the client's, per reply


@dataclass(frozen=True)
class SoakParams:
    duration: float = 360.0  # seconds of load with faults (at least one round of every fault)
    rate: float = 25.0  # new messages per second
    sessions: int = 8  # client sessions at once
    fault_seconds: float = 4.0  # how long each fault lasts
    calm_seconds: float = 4.0  # between two faults
    settle: float = 120.0  # after the faults: retries until every message has a final answer
    workers: int = 2
    quarantine_mb: int = 64
    faults: tuple[str, ...] = FAULTS
    seed: int = 5125

    @classmethod
    def quick(cls) -> SoakParams:
        """Every fault once, a few hundred messages, well under a minute."""
        return cls(duration=14.0, rate=20.0, sessions=6, fault_seconds=1.0, calm_seconds=0.8,
                   settle=40.0, quarantine_mb=16)


# --- the message mix ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    name: str
    weight: int
    trusted: bool
    mail_from: str
    rcpts: tuple[str, ...]  # `{n}` is the message number
    student_data: bool = False


SENDER = f"teacher0001@{STAFF_DOMAIN}"
KINDS = (
    Kind("relayed", 35, True, SENDER, ("parent0001@parents.example",)),
    Kind("relayed, two recipients", 10, True, SENDER,
         ("{student}", "parent0002@parents.example")),
    Kind("held", 15, True, SENDER, ("tutor{n}@community.example",), student_data=True),
    Kind("split: relayed and held", 10, True, SENDER,
         (f"teacher0002@{STAFF_DOMAIN}", "tutor{n}@community.example"), student_data=True),
    Kind("one recipient refused upstream (DSN)", 10, True, SENDER,
         ("parent0003@parents.example", "gone{n}@parents.example")),
    Kind("refused upstream (5xx)", 5, True, SENDER, ("gone{n}@parents.example",)),
    Kind("untrusted client, one recipient refused (relay)", 15, False,
         "news@outside.example", ("{student}", "someone{n}@elsewhere.example")),
)


@dataclass
class Student:
    number: str
    name: str
    address: str


def first_student(people: Path) -> Student:
    for line in people.read_text(encoding="utf-8").splitlines():
        address, role, person_id, name, *_ = line.split(",")
        if role == "student":
            return Student(person_id, name, address)
    raise ValueError("no student in the generated directory")


def compose(token: str, kind: Kind, rcpts: tuple[str, ...], student: Student,
            rng: random.Random) -> bytes:
    body = prose(rng, rng.choice((800, 2000, 6000)))
    if kind.student_data:
        body = (f"Student ID {student.number}, {student.name}: grades F in Algebra; IEP review "
                f"pending.\n\n{body}")
    headers = [f"From: <{kind.mail_from}>", f"To: {', '.join(f'<{r}>' for r in rcpts)}",
               f"Subject: soak {kind.name}", "Date: Mon, 14 Sep 2026 08:30:00 -0500",
               f"Message-ID: <{token}@soak.example>", "MIME-Version: 1.0",
               "Content-Type: text/plain; charset=utf-8"]
    return "\r\n".join([*headers, "", *body.splitlines()]).encode() + b"\r\n"


# --- the client: one SMTP transaction per attempt, retried as an MTA retries ---------------------

class Reply(Exception):
    def __init__(self, line: str):
        super().__init__(line)
        self.line = line
        self.code = int(line[:3]) if line[:3].isdigit() else 0


async def read_reply(reader: asyncio.StreamReader) -> str:
    while True:
        line = await asyncio.wait_for(reader.readline(), REPLY_TIMEOUT)
        if not line:
            raise ConnectionResetError("connection closed")
        if line[3:4] != b"-":
            return line.decode(errors="replace").strip()


async def command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  line: str) -> str:
    writer.write(line.encode() + b"\r\n")
    return await read_reply(reader)


async def attempt(port: int, message: Message, content: bytes, kind: Kind) -> Attempt:
    done = Attempt(message.token, time.monotonic())
    writer: asyncio.StreamWriter | None = None
    try:
        source = "127.0.0.1" if kind.trusted else UNTRUSTED_SOURCE
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), REPLY_TIMEOUT)
        _expect(await read_reply(reader), "220")
        _expect(await command(reader, writer, "EHLO soak.example"), "250")
        _expect(await command(reader, writer, f"MAIL FROM:<{kind.mail_from}>"), "250")
        accepted, refused = [], []
        for rcpt in message.rcpts:
            reply = await command(reader, writer, f"RCPT TO:<{rcpt}>")
            if reply.startswith("2"):
                accepted.append(rcpt)
            elif reply.startswith("5"):
                refused.append(rcpt)
            else:
                raise Reply(reply)
        done.accepted_rcpts, done.refused_rcpts = tuple(accepted), tuple(refused)
        if not accepted:
            raise Reply("550 every recipient refused")
        _expect(await command(reader, writer, "DATA"), "354")
        stuffed = content.replace(b"\r\n.", b"\r\n..")
        writer.write((b"." if stuffed.startswith(b".") else b"") + stuffed + b".\r\n")
        done.after_data = True
        final = await read_reply(reader)
        _expect(final, "250")
        done.result, done.reply = "250", final
        done.queue_id = final.rsplit(" ", 1)[-1] if "queued as" in final else None
        with contextlib.suppress(OSError, TimeoutError, ConnectionError):
            await command(reader, writer, "QUIT")
    except Reply as exc:
        done.result = "5xx" if exc.code >= 500 else "4xx"
        done.reply = exc.line
    except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
        done.result = "lost" if done.after_data else "dropped"
        done.reply = type(exc).__name__
    finally:
        if writer is not None:
            writer.close()
    done.ended = time.monotonic()
    return done


def _expect(reply: str, code: str) -> None:
    if not reply.startswith(code):
        raise Reply(reply)


@dataclass
class Client:
    """Sends new messages at `rate` while the faults run, and retries the deferred ones."""

    params: SoakParams
    student: Student
    port: int
    rng: random.Random
    run_id: str
    messages: list[Message] = field(default_factory=list)
    contents: dict[str, tuple[bytes, Kind]] = field(default_factory=dict)
    retries: list[tuple[float, int, Message]] = field(default_factory=list)
    open_messages: int = 0
    new_until: float = 0.0  # no new messages after this; retries go on
    settle_until: float = float("inf")  # no retries after this
    started: float = 0.0
    _order: Iterator[int] = field(default_factory=itertools.count)

    def new_message(self) -> Message:
        number = len(self.messages)
        kind = self.rng.choices(KINDS, [k.weight for k in KINDS])[0]
        token = f"soak-{self.run_id}-{number}"
        rcpts = tuple(r.format(n=number, student=self.student.address) for r in kind.rcpts)
        message = Message(token, kind.name, rcpts)
        self.messages.append(message)
        self.contents[token] = (compose(token, kind, rcpts, self.student, self.rng), kind)
        self.open_messages += 1
        return message

    def next_message(self) -> tuple[Message | None, float]:
        """A retry that is due, else a new message when the rate allows; else how long to wait."""
        now = time.monotonic()
        if self.retries and self.retries[0][0] <= now:
            return heapq.heappop(self.retries)[2], 0.0
        if now < self.new_until and len(self.messages) < (now - self.started) * self.params.rate:
            return self.new_message(), 0.0
        waits = [self.retries[0][0] - now] if self.retries else []
        if now < self.new_until:
            waits.append(1 / self.params.rate)
        return None, min(waits) if waits else -1.0

    async def session(self) -> None:
        while time.monotonic() < self.settle_until:
            message, wait = self.next_message()
            if message is None:
                if wait < 0 and self.open_messages == 0:
                    return  # nothing new to send, nothing waiting for a retry
                await asyncio.sleep(max(min(wait, 0.5), 0.01) if wait >= 0 else 0.1)
                continue
            content, kind = self.contents[message.token]
            result = await attempt(self.port, message, content, kind)
            message.attempts.append(result)
            if result.result in ("250", "5xx"):
                self.open_messages -= 1
            else:  # deferred: an MTA tries again later
                due = time.monotonic() + self.rng.uniform(0.3, 1.5)
                heapq.heappush(self.retries, (due, next(self._order), message))


# --- the processes and the faults --------------------------------------------------------------

@dataclass
class Rig:
    """Everything the faults act on."""

    work: Path
    params: SoakParams
    config: Path
    port: int
    sink_port: int
    records: Path
    control: Path
    disk: Path | None  # the quarantine's own small filesystem, when one could be mounted
    sink: procs.Proc | None = None
    gateway: procs.Proc | None = None
    slow_turn: int = 0
    refuse_turn: int = 0

    def start_sink(self) -> None:
        argv = [procs.PYTHON, str(procs.REPO / "bench" / "soaksink.py"), str(self.sink_port),
                str(self.records), str(self.control)]
        self.sink = procs.Proc(argv, "sink", self.work / "sink.log").start()
        procs.wait_banner(self.sink_port)

    def start_gateway(self) -> None:
        self.gateway = procs.start_gateway(self.config, self.port, self.work / "gateway.log")

    def set_upstream(self, mode: str) -> None:
        tmp = self.control.with_suffix(".tmp")
        tmp.write_text(mode)
        os.replace(tmp, self.control)

    def stop(self) -> None:
        for proc in (self.gateway, self.sink):
            if proc is not None:
                proc.stop()


def kill_group(proc: procs.Proc | None) -> None:
    """SIGKILL a process and everything in its session (the gateway's workers and helpers)."""
    assert proc is not None and proc.popen is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.popen.wait(30)


def children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def fill_disk(folder: Path) -> Path:
    """Write a file until the filesystem is full (ENOSPC), to the last block."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for block in (b"\0" * (1 << 20), b"\0" * 4096, b"\0" * 512):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, block)
    finally:
        os.close(fd)
    return filler


def inject(rig: Rig, name: str) -> None:
    if name == "upstream_killed":
        kill_group(rig.sink)
    elif name == "upstream_slow":
        # In turn past and within the gateway's upstream timeout.
        seconds = (UPSTREAM_TIMEOUT * 1.5, UPSTREAM_TIMEOUT * 0.5)[rig.slow_turn % 2]
        rig.slow_turn += 1
        rig.set_upstream(f"slow {seconds}")
    elif name == "upstream_tempfail":
        rig.set_upstream("tempfail")
    elif name == "upstream_reject":
        rig.set_upstream("reject")
    elif name == "gateway_killed":
        kill_group(rig.gateway)
    elif name == "worker_killed":
        assert rig.gateway is not None
        workers = children(rig.gateway.pid)
        if workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(random.choice(workers), signal.SIGKILL)
    elif name == "quarantine_full":
        assert rig.disk is not None
        # SQLite writes a commit into its write-ahead log, and once the log has wrapped it
        # reuses space already allocated: a disk that fills up then goes unnoticed until the
        # next checkpoint. Emptying the log first makes the next hold need new space, as it
        # does when a disk fills while the log is short.
        with contextlib.closing(sqlite3.connect(rig.disk / "quarantine.db", timeout=30)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        fill_disk(rig.disk)


def heal(rig: Rig, name: str) -> None:
    if name == "upstream_killed":
        rig.start_sink()
    elif name in ("upstream_slow", "upstream_tempfail", "upstream_reject"):
        rig.set_upstream("ok")
    elif name == "gateway_killed":
        rig.start_gateway()
    elif name == "worker_killed":
        assert rig.gateway is not None
        deadline = time.monotonic() + 30
        while len(children(rig.gateway.pid)) < rig.params.workers:  # the parent restarts it
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not restart its killed worker")
            time.sleep(0.1)
        procs.wait_banner(rig.port)
    elif name == "quarantine_full":
        assert rig.disk is not None
        (rig.disk / "filler").unlink()


async def run_faults(rig: Rig, faults: tuple[str, ...], until: float,
                     windows: list[FaultWindow]) -> None:
    """Each fault in turn (a shuffled round at a time), until the load phase ends."""
    rng = random.Random(rig.params.seed)
    order: list[str] = []
    await asyncio.sleep(rig.params.calm_seconds)
    while True:
        if not order:
            order = rng.sample(faults, len(faults))
        if time.monotonic() + rig.params.fault_seconds > until and len(windows) >= len(faults):
            return
        name = order.pop()
        started = time.monotonic()
        await asyncio.to_thread(inject, rig, name)
        await asyncio.sleep(rig.params.fault_seconds)
        await asyncio.to_thread(heal, rig, name)
        windows.append(FaultWindow(name, started, time.monotonic()))
        await asyncio.sleep(rig.params.calm_seconds)


# --- the run ---------------------------------------------------------------------------------

@contextlib.contextmanager
def small_disk(folder: Path, megabytes: int) -> Iterator[bool]:
    """A tmpfs of `megabytes` on `folder`, unmounted afterwards; False if it cannot be mounted."""
    folder.mkdir(mode=0o700)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700",
                        "soak-quarantine", str(folder)], check=True, capture_output=True,
                       timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or str(exc).encode()
        print(f"soak: cannot mount a small filesystem for the quarantine "
              f"({detail.decode(errors='replace').strip()}); the quarantine_full fault is "
              "skipped", file=sys.stderr)
        yield False
        return
    try:
        yield True
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def write_config(work: Path, port: int, sink_port: int, quarantine: Path,
                 params: SoakParams) -> Path:
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "upstream": {"host": "127.0.0.1", "port": sink_port, "timeout": UPSTREAM_TIMEOUT},
        "trusted_networks": ["127.0.0.1/32"],
        "district": {"staff_domains": [STAFF_DOMAIN], "student_domains": [STUDENT_DOMAIN]},
        "directory": {"people": str(work / "people.csv"),
                      "relationships": str(work / "relationships.csv")},
        "policies": str(procs.REPO / "config" / "policies.yaml"),
        "quarantine": {"url": f"sqlite:///{quarantine / 'quarantine.db'}"},
        "postmaster": f"postmaster@{STAFF_DOMAIN}",
        "smtp": {"hostname": "gateway.soak.example", "workers": params.workers,
                 "drain_timeout": 5},
        "log": {"level": "info", "format": "json"},
    }
    path = work / "gateway.yaml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    return path


def quarantine_entries(config: Path) -> list[dict[str, Any]]:
    """What the quarantine holds, read through the operators' own command."""
    out = subprocess.run([procs.PYTHON, "-m", "gateway", "quarantine", "list", "--config",
                          str(config), "--json"], cwd=procs.REPO, capture_output=True,
                         text=True, timeout=120, check=True,
                         env=dict(os.environ, PYTHONPATH=str(procs.REPO)))
    return json.loads(out.stdout)


def sink_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_soak(params: SoakParams, work: Path) -> tuple[Ledger, dict[str, Any]]:
    """Run the soak in `work` (a fresh folder) and return its ledger and run figures."""
    people, _relationships = write_directory(work, students=400, staff=40, parents=200)
    student = first_student(people)
    with small_disk(work / "quarantine", params.quarantine_mb) as mounted:
        faults = params.faults if mounted else tuple(f for f in params.faults
                                                     if f != "quarantine_full")
        port, sink_port = procs.free_port(), procs.free_port()
        rig = Rig(work, params, write_config(work, port, sink_port, work / "quarantine", params),
                  port, sink_port, work / "sink.jsonl", work / "sink.control",
                  work / "quarantine" if mounted else None)
        rig.set_upstream("ok")
        try:
            rig.start_sink()
            rig.start_gateway()
            client, windows, elapsed = asyncio.run(_load(rig, params, student, faults))
        finally:
            rig.stop()
        entries = quarantine_entries(rig.config)
    ledger = build_ledger(client.messages, sink_records(rig.records), entries, windows)
    figures = {"seconds": round(elapsed, 1), "faults_injected": len(windows),
               "faults_skipped": sorted(set(params.faults) - set(faults)),
               "workers": params.workers, "sessions": params.sessions, "rate": params.rate}
    return ledger, figures


async def _load(rig: Rig, params: SoakParams, student: Student,
                faults: tuple[str, ...]) -> tuple[Client, list[FaultWindow], float]:
    started = time.monotonic()
    client = Client(params, student, rig.port, random.Random(params.seed),
                    os.urandom(4).hex(), started=started)
    windows: list[FaultWindow] = []
    fault_task = asyncio.create_task(
        run_faults(rig, faults, started + params.duration, windows))
    client.new_until = started + params.duration + 3600  # until the last fault has healed
    sessions = [asyncio.create_task(client.session()) for _ in range(params.sessions)]
    await fault_task  # the load phase lasts at least one round of every fault
    client.new_until = time.monotonic()
    client.settle_until = time.monotonic() + params.settle
    await asyncio.gather(*sessions)
    return client, windows, time.monotonic() - started


# --- the report ------------------------------------------------------------------------------

def report(ledger: Ledger, figures: dict[str, Any]) -> str:
    s = ledger.summary()
    lines = [
        f"soak: {s['messages']:,} messages ({s['attempts']:,} attempts) in "
        f"{figures['seconds']} s, {figures['sessions']} client sessions, "
        f"{figures['workers']} gateway workers, {figures['faults_injected']} faults injected"
        + (f" (skipped: {', '.join(figures['faults_skipped'])})"
           if figures["faults_skipped"] else ""),
        "",
        "LEDGER",
        f"  accepted (250)                               {s['accepted']:>7,} messages, "
        f"{s['recipients_accepted']:,} recipients",
        f"    delivered at the sink                      {s['delivered']:>7,}",
        f"    held in the quarantine                     {s['held']:>7,}",
        f"    refused after the 250, bounce at the sink  {s['bounced']:>7,}",
        f"    refused after the 250, bounce held (DSN)   {s['bounce_held']:>7,}",
        f"    LOST                                       {s['lost']:>7,}",
        f"  not accepted: refused (5xx)                  {s['refused_5xx']:>7,}",
        f"  not accepted: still 4xx when the soak ended  {s['never_accepted']:>7,}",
        f"  duplicates (SMTP delivers at least once)     {s['duplicates']:>7,}",
    ]
    lines += [f"    {count:>5,}  {reason}" for reason, count in ledger.duplicates.most_common()]
    lines.append(f"  defects (held twice, unexplained copies)     {s['defects']:>7,}")
    lines += [f"    {d}" for d in ledger.defects[:20]]
    lines += [f"    lost: {item}" for item in ledger.lost[:20]]
    lines += ["", "accepted messages by kind:"]
    lines += [f"  {count:>6,}  {kind}" for kind, count in sorted(ledger.by_kind.items())]
    lines += ["", "| fault | injected | seconds | attempts during it | 4xx | 5xx | reply lost "
              "| refused/cut before end of DATA | later accepted |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in ledger.faults:
        lines.append(f"| {row['fault']} | {row['injected']} | {row['seconds']:.0f} | "
                     f"{row['attempts']:,} | {row['4xx']:,} | {row['5xx']:,} | {row['lost']:,}"
                     f" | {row['dropped']:,} | {row['then_accepted']:,} |")
    lines += ["", "CLEAN: nothing lost, nothing held twice" if ledger.clean
              else "FAILED: see LOST and defects above"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="every fault once, a few hundred messages (as in make test)")
    parser.add_argument("--duration", type=float, help="seconds of load with faults")
    parser.add_argument("--rate", type=float, help="new messages per second")
    parser.add_argument("--sessions", type=int, help="client sessions at once")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--faults", help=f"comma-separated subset of: {', '.join(FAULTS)}")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the ledger")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    args = parser.parse_args(argv)
    params = SoakParams.quick() if args.quick else SoakParams()
    changes: dict[str, Any] = {k: v for k, v in (("duration", args.duration), ("rate", args.rate),
                                 ("sessions", args.sessions), ("seed", args.seed))
               if v is not None}
    if args.faults:
        unknown = set(args.faults.split(",")) - set(FAULTS)
        if unknown:
            parser.error(f"unknown fault: {', '.join(sorted(unknown))}")
        changes["faults"] = tuple(args.faults.split(","))
    params = replace(params, **changes)
    work = Path(tempfile.mkdtemp(prefix="gateway-soak-"))
    try:
        ledger, figures = run_soak(params, work)
    finally:
        if args.keep:
            print(f"soak: work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(report(ledger, figures))
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "ledger": ledger.summary(),
                                         "duplicates": dict(ledger.duplicates),
                                         "defects": ledger.defects, "lost": ledger.lost,
                                         "faults": ledger.faults}, indent=1))
    return 0 if ledger.clean else 1


if __name__ == "__main__":
    sys.exit(main())
