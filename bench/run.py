"""`make bench`: how fast the gateway is, measured against the client talking to the sink directly.

Starts a sink (Postfix smtp-sink, or a Python one), one gateway daemon per variant under test
(full default policy; SMTP shell with inspection off; full with worker processes when the config
supports `smtp.workers`), and drives them with a load generator (Postfix smtp-source, or a Python
one), all on loopback with free ports. Every case is measured in interleaved rounds, baseline
first, and the median is reported, so a noisy neighbour hurts both sides alike. Results are
printed and spliced into docs/benchmarks.md (see bench/report.py).

    python bench/run.py [--quick] [--rounds N] [--python-tools] [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procs
from bench.load import Run, latencies, run_load
from bench.messages import MIX, write_directory, write_messages
from bench.report import machine, median, percentile, rate, ratio, splice, table

DOC = procs.REPO / "docs" / "benchmarks.md"
SIZES = ("plain-10k", "plain-100k")
SESSIONS = (1, 20, 100)
# messages per measurement: (direct, through the gateway); --quick divides by 3
COUNTS = {("plain-10k", 1): (3000, 300), ("plain-10k", 20): (6000, 1200),
          ("plain-10k", 100): (6000, 1500), ("plain-100k", 1): (1500, 150),
          ("plain-100k", 20): (3000, 400), ("plain-100k", 100): (3000, 500),
          ("mix", 20): (6000, 800), ("mix", 100): (6000, 1000)}
MEMORY_SESSIONS = (100, 500)
T = TypeVar("T")
# The latency table's rows, least work first: the floor any Python asyncio hop costs here,
# the gateway with inspection off, the baseline tree, the gateway.
LATENCY_PATHS = ("floor", "shell", "base", "full")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\S* +\[")


@dataclasses.dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    tools: tuple[str, str] | None
    sink_port: int = 0
    gateways: dict[str, int] = dataclasses.field(default_factory=dict)  # variant -> port
    pids: dict[str, int] = dataclasses.field(default_factory=dict)  # variant -> pid
    cpu: dict[tuple[str, str, int], list[float]] = dataclasses.field(
        default_factory=lambda: defaultdict(list))  # gateway CPU ms per message
    runs: dict[tuple[str, str, int], list[Run]] = dataclasses.field(
        default_factory=lambda: defaultdict(list))
    lat: dict[str, list[list[float]]] = dataclasses.field(
        default_factory=lambda: defaultdict(list))  # "case/variant" -> per round, s/message
    memory: dict[int, tuple[int, int, str | None]] = dataclasses.field(default_factory=dict)
    inspect_output: str = ""
    floor_port: int = 0  # bench/floor_relay.py, latency only

    def count(self, case: str, sessions: int, direct: bool) -> int:
        pair = COUNTS[(case, sessions)]
        n = pair[0] if direct else pair[1]
        return max(sessions, n // 3) if self.args.quick else n


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, a third of the load")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3, quick 1)")
    parser.add_argument("--python-tools", action="store_true",
                        help="use the Python load generator and sink even if Postfix's exist")
    parser.add_argument("--no-install", action="store_true",
                        help="do not apt-get install postfix when smtp-source is missing")
    parser.add_argument("--baseline", type=Path, metavar="TREE",
                        help="also measure the gateway from another checkout (e.g. a git "
                             "worktree of the previous release), interleaved in the same run")
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes for the multi-process variant (0 = skip)")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["throughput", "mix", "latency", "inspect", "memory"])
    parser.add_argument("--no-client-pipelining", action="store_true",
                        help="latency probe: one command at a time even where PIPELINING is "
                             "announced (as smtp-source; the method before run N)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs alone")
    parser.add_argument("--json", type=Path, help="also write raw results as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    return args


def write_config(work: Path, name: str, port: int, sink_port: int, workers: int = 1,
                 tree: Path = procs.REPO) -> Path:
    """A gateway.yaml for one variant: the shipped policies of the `tree` it runs (an older
    baseline rejects policy keys added since, and its own policy is what it ran with),
    generated directory, quiet logs."""
    folder = work / name
    folder.mkdir(mode=0o700)
    smtp = {"hostname": "gateway.bench.example", "max_sessions": 600}
    if workers > 1:
        smtp["workers"] = workers
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "upstream": {"host": "127.0.0.1", "port": sink_port, "starttls": "off"},
        "trusted_networks": ["127.0.0.0/8"],
        "district": {"staff_domains": ["staff.district230.example"],
                     "student_domains": ["students.district230.example"],
                     "student_number_pattern": r"\b\d{6}\b"},
        "directory": {"people": str(work / "people.csv"),
                      "relationships": str(work / "relationships.csv")},
        "policies": str(tree / "config" / "policies.yaml"),
        "quarantine": {"url": f"sqlite:///{folder / 'quarantine.db'}"},
        "postmaster": "postmaster@staff.district230.example",
        "smtp": smtp,
        "log": {"level": "warning", "format": "json"},
    }
    path = folder / "gateway.yaml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    return path


def supports_workers() -> bool:
    from gateway.config import SmtpSettings
    return "workers" in {f.name for f in dataclasses.fields(SmtpSettings)}


@contextlib.contextmanager
def running(bench: Bench) -> Iterator[list[procs.Proc]]:
    """The sink and every gateway variant, stopped (by pid) whatever happens."""
    started: list[procs.Proc] = []
    try:
        bench.sink_port = procs.free_port()
        started.append(procs.start_sink(bench.tools, bench.sink_port, bench.work / "sink.log"))
        if "latency" not in bench.args.skip:
            bench.floor_port = procs.free_port()
            started.append(procs.start_floor_relay(bench.floor_port, bench.sink_port,
                                                   bench.work / "floor.log"))
        variants = [("full", 1, False, procs.REPO), ("shell", 1, True, procs.REPO)]
        if bench.args.baseline:
            variants.append(("base", 1, False, bench.args.baseline.resolve()))
        if bench.args.workers > 1 and supports_workers():
            variants.append((f"full-w{bench.args.workers}", bench.args.workers, False,
                             procs.REPO))
        for name, workers, null, tree in variants:
            port = procs.free_port()
            config = write_config(bench.work, name, port, bench.sink_port, workers, tree)
            try:
                started.append(procs.start_gateway(config, port, bench.work / f"{name}.log",
                                                   null_inspector=null, tree=tree))
            except RuntimeError as exc:
                print(f"bench: variant {name} skipped: {exc}", file=sys.stderr)
                continue
            bench.gateways[name] = port
            bench.pids[name] = started[-1].pid
        yield started
    finally:
        for proc in reversed(started):
            proc.stop()


def measure(bench: Bench, case: str, files: list[Path], sessions: int,
            variants: list[str]) -> None:
    direct = run_load(bench.tools, bench.sink_port, files, sessions,
                      bench.count(case, sessions, True))
    bench.runs[(case, "direct", sessions)].append(direct)
    for variant in variants:
        if variant in bench.gateways:
            cpu = procs.cpu_seconds(bench.pids[variant])
            run = run_load(bench.tools, bench.gateways[variant], files, sessions,
                           bench.count(case, sessions, False))
            cpu = procs.cpu_seconds(bench.pids[variant]) - cpu
            bench.runs[(case, variant, sessions)].append(run)
            bench.cpu[(case, variant, sessions)].append(cpu * 1000 / run.messages)
            if run.error:
                print(f"  {case} {variant} s={sessions}: {run.error}", file=sys.stderr)
    print(f"  {case:10} sessions={sessions:<3} direct {direct.rate:8.0f}/s  " + "  ".join(
        f"{v} {bench.runs[(case, v, sessions)][-1].rate:6.0f}/s" for v in variants
        if v in bench.gateways), file=sys.stderr)


def one_round(bench: Bench, messages: dict[str, Path], number: int = 1) -> None:
    """One measurement of every case. The gateway variants take turns at going first (the
    direct baseline always goes right before them), so none is always the last to run."""
    skip = bench.args.skip
    workers = [v for v in bench.gateways if v.startswith("full-w")]
    if "throughput" not in skip:
        for size in SIZES:
            for sessions in SESSIONS:
                # Worker processes only matter with concurrent sessions.
                measure(bench, size, [messages[size]], sessions, rotated(
                    [main_variant(bench), "base", *(workers if sessions > 1 else [])], number))
    if "mix" not in skip:
        mix = [messages[f"mix-{k}"] for k in MIX]
        for sessions in (20, 100):
            measure(bench, "mix", mix, sessions,
                    rotated(["shell", "base", "full", *workers], number))
    if "latency" not in skip:
        n = 100 if bench.args.quick else 400
        pipelining = not bench.args.no_client_pipelining
        for case, files in latency_cases(messages).items():
            bench.lat[f"{case}/direct"].append(
                latencies(bench.sink_port, files, n, pipelining))
            ports = {v: bench.gateways[v] for v in ("shell", "base", "full")
                     if v in bench.gateways}
            if bench.floor_port:
                ports["floor"] = bench.floor_port
            for variant in rotated(list(ports), number):
                bench.lat[f"{case}/{variant}"].append(
                    latencies(ports[variant], files, n, pipelining))


def rotated(variants: list[T], number: int) -> list[T]:
    shift = (number - 1) % len(variants) if variants else 0
    return variants[shift:] + variants[:shift]


def latency_cases(messages: dict[str, Path]) -> dict[str, list[Path]]:
    """The 10 KB message the targets name, and the realistic mix."""
    return {"plain-10k": [messages["plain-10k"]], "mix": [messages[f"mix-{k}"] for k in MIX]}


def main_variant(bench: Bench) -> str:
    """The full gateway; the shell alone while inspection cannot load (early development)."""
    return "full" if "full" in bench.gateways else "shell"


def measure_memory(bench: Bench, message: Path) -> None:
    """Peak RSS of a fresh gateway (all its processes) under N concurrent sessions."""
    for sessions in MEMORY_SESSIONS:
        port = procs.free_port()
        config = write_config(bench.work, f"memory-{sessions}", port, bench.sink_port)
        gateway = procs.start_gateway(config, port, bench.work / f"memory-{sessions}.log",
                                      null_inspector=main_variant(bench) == "shell")
        try:
            idle = procs.tree_rss(gateway.pid)
            with procs.RssSampler(gateway.pid) as sampler:
                run = run_load(bench.tools, port, [message], sessions, sessions * 2)
            bench.memory[sessions] = (idle, sampler.peak, run.error)
        finally:
            gateway.stop()


def run_inspect_bench(bench: Bench) -> None:
    """bench/bench_inspect.py (owned by the inspection helper), reused rather than duplicated."""
    script = procs.REPO / "bench" / "bench_inspect.py"
    if not script.exists():
        bench.inspect_output = "bench/bench_inspect.py is not there yet: skipped."
        return
    for extra in (["--quick"] if bench.args.quick else [], []):
        try:
            out = subprocess.run([procs.PYTHON, str(script), *extra], capture_output=True,
                                 text=True, timeout=300, cwd=procs.REPO,
                                 env={"PYTHONPATH": str(procs.REPO), "PATH": "/usr/bin:/bin"})
        except subprocess.TimeoutExpired:
            bench.inspect_output = "bench/bench_inspect.py timed out after 300 s."
            return
        if out.returncode == 0:  # its log lines (structlog on stdout) are not results
            bench.inspect_output = "\n".join(
                line for line in out.stdout.strip().splitlines() if not LOG_LINE.match(line))
            return
        bench.inspect_output = f"bench/bench_inspect.py failed:\n{out.stderr.strip()[-800:]}"


# -- report -----------------------------------------------------------------------------------

def rates(bench: Bench, case: str, variant: str, sessions: int) -> float:
    runs = bench.runs.get((case, variant, sessions), [])
    if not runs or any(r.error for r in runs):
        return 0.0
    return median([r.rate for r in runs])


def report(bench: Bench, info: dict[str, str], elapsed: float) -> str:
    tools = "smtp-source/smtp-sink (Postfix " + info["postfix"] + ")" if bench.tools else \
        "Python load generator and sink (bench/load.py, bench/pysink.py)"
    main = main_variant(bench)
    out = [f"Run {info['date']} · commit `{info['commit']}` · {info['nproc']} CPUs "
           f"({info['cpu']}) · Linux {info['kernel']} · Python {info['python']} · "
           f"load: {tools} · {bench.args.rounds} interleaved round(s)"
           f"{' · --quick' if bench.args.quick else ''} · {elapsed:.0f} s",
           "", "Command: `" + " ".join(["python bench/run.py", *sys.argv[1:]]) + "`", ""]
    base = "base" in bench.gateways
    workers = next((v for v in sorted(bench.gateways) if v.startswith("full-w")), "")
    if "throughput" not in bench.args.skip:
        rows = []
        for size in SIZES:
            for s in SESSIONS:
                d, g = rates(bench, size, "direct", s), rates(bench, size, main, s)
                row = [size, str(s), rate(d), rate(g), ratio(g, d), cpu_ms(bench, size, main, s)]
                if base:
                    b = rates(bench, size, "base", s)
                    row += [rate(b), cpu_ms(bench, size, "base", s), ratio(g, b)]
                if workers:
                    w = rates(bench, size, workers, s)
                    row += [rate(w), ratio(w, d)] if s > 1 else ["–", "–"]
                rows.append(row)
        header = ["message", "sessions", "direct to sink", "through gateway", "ratio",
                  "gateway CPU ms/msg"]
        if base:
            header += ["baseline", "baseline CPU ms/msg", "gateway vs baseline"]
        if workers:
            header += [f"{workers.removeprefix('full-w')} workers", "ratio"]
        out += [f"### Throughput, {_label(main).removeprefix('gateway, ')} (messages/s)", "",
                table(header, rows), ""]
    if "mix" not in bench.args.skip:
        variants = [v for v in ("shell", "base", "full", *sorted(bench.gateways))
                    if v in bench.gateways]
        variants = list(dict.fromkeys(variants))
        rows = []
        for v in variants:
            row = [_label(v)]
            for s in (20, 100):
                d, g = rates(bench, "mix", "direct", s), rates(bench, "mix", v, s)
                row += [rate(g), ratio(g, d), cpu_ms(bench, "mix", v, s)]
            rows.append(row)
        rows.append(["direct to sink", rate(rates(bench, "mix", "direct", 20)), "–", "–",
                     rate(rates(bench, "mix", "direct", 100)), "–", "–"])
        out += ["### Realistic mix, ~10 KB: plain, HTML, CSV, XLSX, PDF attachments", "",
                table(["path", "20 sessions msg/s", "ratio", "CPU ms/msg",
                       "100 sessions msg/s", "ratio", "CPU ms/msg"], rows), ""]
        workers = [v for v in variants if v.startswith("full-w")]
        if "full" in variants and workers:
            w = workers[-1]
            scale = [f"{rates(bench, 'mix', w, s) / rates(bench, 'mix', 'full', s):.2f}×"
                     if rates(bench, "mix", "full", s) and rates(bench, "mix", w, s) else "–"
                     for s in (20, 100)]
            out += [f"Scaling, {_label(w)} vs. one process: 20 sessions {scale[0]}, "
                    f"100 sessions {scale[1]}.", ""]
    if "latency" not in bench.args.skip:
        rows = []
        for case in ("plain-10k", "mix"):
            base = bench.lat[f"{case}/direct"]
            for v in [v for v in LATENCY_PATHS if f"{case}/{v}" in bench.lat]:
                rounds = bench.lat[f"{case}/{v}"]
                rows.append([case, _label(v), str(sum(map(len, rounds))),
                             *(f"{round_percentile(rounds, q) * 1000:.2f}" for q in (50, 99)),
                             *(f"{added_percentile(rounds, base, q) * 1000:.2f}"
                               for q in (50, 99))])
            rows.append([case, "direct to sink", str(sum(map(len, base))),
                         *(f"{round_percentile(base, q) * 1000:.2f}" for q in (50, 99)), "–",
                         "–"])
        client = ("one command at a time" if bench.args.no_client_pipelining else
                  "MAIL, RCPT and DATA pipelined wherever PIPELINING is announced")
        out += ["### Latency, one session (ms per message, MAIL to final 250; medians of the "
                "rounds' percentiles, added = gateway minus direct within each round)", "",
                f"Client: {client}.", "",
                table(["message", "path", "messages", "p50", "p99", "added p50", "added p99"],
                      rows), "", *latency_by_kind(bench)]
    if "inspect" not in bench.args.skip:
        out += ["### Inspection alone (bench/bench_inspect.py)", "", "```",
                bench.inspect_output, "```", ""]
    if bench.memory:
        rows = [[str(s), f"{idle / 2**20:.0f}", f"{peak / 2**20:.0f}", err or "ok"]
                for s, (idle, peak, err) in sorted(bench.memory.items())]
        out += ["### Peak memory (RSS of the gateway, 100 KB messages, max_sessions 600)", "",
                table(["concurrent sessions", "idle MiB", "peak MiB", "load"], rows), ""]
    return "\n".join(out)


def latency_by_kind(bench: Bench) -> list[str]:
    """The mix's added latency for each kind of message in it (the probe sends them in turn):
    which kind sets the mix's p50 (the third fastest) and its p99 (near the slowest's p95)."""
    direct = bench.lat.get("mix/direct")
    if not direct:
        return []
    rows = []
    for v in [v for v in LATENCY_PATHS if f"mix/{v}" in bench.lat]:
        cells = []
        for i in range(len(MIX)):
            kind = [samples[i::len(MIX)] for samples in bench.lat[f"mix/{v}"]]
            kind_direct = [samples[i::len(MIX)] for samples in direct]
            cells.append(" / ".join(f"{added_percentile(kind, kind_direct, q) * 1000:.2f}"
                                    for q in (50, 95)))
        rows.append([_label(v), *cells])
    return ["Added latency by kind of message in the mix (p50 / p95, ms):", "",
            table(["path", *MIX], rows), ""]


def round_percentile(rounds: list[list[float]], q: float) -> float:
    """The median over rounds of each round's percentile (as throughput takes the median)."""
    return median([percentile(samples, q) for samples in rounds])


def added_percentile(rounds: list[list[float]], direct: list[list[float]], q: float) -> float:
    """Added latency: per round, the gateway's percentile minus the direct one measured just
    before it; the median of those. One noisy round moves neither side of the others."""
    return median([percentile(g, q) - percentile(d, q)
                   for g, d in zip(rounds, direct, strict=True)])


def cpu_ms(bench: Bench, case: str, variant: str, sessions: int) -> str:
    values = bench.cpu.get((case, variant, sessions), [])
    return f"{median(values):.2f}" if values else "–"


def _label(variant: str) -> str:
    if variant == "floor":
        return "bare asyncio relay (floor, bench/floor_relay.py)"
    if variant == "base":
        return "baseline (--baseline tree), full policy"
    if variant == "shell":
        return "gateway, inspection off"
    if variant == "full":
        return "gateway, full policy"
    return f"gateway, full policy, {variant.removeprefix('full-w')} workers"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    tools = None if args.python_tools else procs.postfix_tools(install=not args.no_install)
    bench = Bench(args, work, tools)
    write_directory(work)
    messages = {name: m.path for name, m in write_messages(work).items()}
    print(f"bench: work folder {work}; load {'smtp-source' if tools else 'python'}",
          file=sys.stderr)
    try:
        with running(bench):
            for number in range(1, args.rounds + 1):
                print(f"bench: round {number}/{args.rounds}", file=sys.stderr)
                one_round(bench, messages, number)
            if "memory" not in args.skip:
                print("bench: memory", file=sys.stderr)
                measure_memory(bench, messages["plain-100k"])
        if "inspect" not in args.skip:
            print("bench: inspection alone", file=sys.stderr)
            run_inspect_bench(bench)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    text = report(bench, machine(), time.monotonic() - started)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({
            "runs": {"/".join(map(str, k)): [dataclasses.asdict(r) for r in v]
                     for k, v in bench.runs.items()},
            "latency": bench.lat, "memory": bench.memory}, indent=1))
    if not args.no_write:
        splice(DOC, text, "Benchmarks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
