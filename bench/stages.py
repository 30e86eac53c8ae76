"""Where a message's time goes inside the gateway: each stage, for each kind in the mix.

    .venv/bin/python bench/stages.py [--messages 300] [--rounds 2] [--baseline TREE]

Starts the sink (Postfix's smtp-sink, or the bench's Python sink) and, for this tree and an
optional `--baseline` checkout, a gateway under bench/stage_timer.py. Each round sends the
realistic mix (plain, HTML, CSV, XLSX, PDF, in turn) over one session to each gateway, the
trees taking turns at going first, and straight to the sink. It prints the median of every
stage per kind of message (ms), and the client-side added latency p50 of the same messages.

Why: from outside, two runs of one tree differ by up to 0.3-0.4 ms on this kind of shared
machine; inside, each stage is steady to a few hundredths of a millisecond, so a change of
0.1 ms to one stage shows (docs/benchmarks.md, "Seventh round").
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procs
from bench.load import latencies
from bench.messages import MIX, write_directory, write_messages
from bench.report import table
from bench.run import rotated, write_config
from bench.stage_timer import STAGES

WARM_UP = 10 * len(MIX)  # messages per gateway before the measured rounds, not counted


@dataclass
class Timed:
    """One tree's gateway under the stage timer."""

    tree: Path
    port: int
    proc: procs.Proc
    times_file: Path
    added: dict[str, list[float]] = field(default_factory=dict)  # kind -> per-round p50


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300,
                        help="messages per round and gateway (a multiple of the mix's 5)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", type=Path, metavar="TREE",
                        help="also time another checkout (e.g. a git worktree), interleaved")
    parser.add_argument("--python-tools", action="store_true",
                        help="use the bench's Python sink even if smtp-sink exists")
    args = parser.parse_args(argv)
    if args.messages < len(MIX) or args.messages % len(MIX):
        parser.error(f"--messages must be a positive multiple of {len(MIX)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    trees = [procs.REPO] + ([args.baseline.resolve()] if args.baseline else [])
    with tempfile.TemporaryDirectory(prefix="gateway-stages-") as folder:
        work = Path(folder)
        write_directory(work)
        messages = write_messages(work)
        files = [messages[f"mix-{kind}"].path for kind in MIX]
        sizes = {len(f.read_bytes().replace(b"\n", b"\r\n")): kind
                 for f, kind in zip(files, MIX, strict=True)}
        if len(sizes) != len(MIX):
            raise SystemExit("stages: two kinds of the mix have the same size")
        tools = None if args.python_tools else procs.postfix_tools(install=False)
        sink_port = procs.free_port()
        started = [procs.start_sink(tools, sink_port, work / "sink.log")]
        timed: list[Timed] = []
        try:
            for i, tree in enumerate(trees):
                port = procs.free_port()
                config = write_config(work, f"g{i}", port, sink_port, tree=tree)
                times = work / f"g{i}" / "stages.json"
                proc = procs.start_gateway(config, port, work / f"g{i}.log", tree=tree,
                                           stage_times=times)
                started.append(proc)
                timed.append(Timed(tree, port, proc, times))
                latencies(port, files, WARM_UP)
            for number in range(args.rounds):
                direct = latencies(sink_port, files, args.messages)
                for gateway in rotated(timed, number + 1):
                    through = latencies(gateway.port, files, args.messages)
                    for j, kind in enumerate(MIX):
                        gateway.added.setdefault(kind, []).append(1000 * (
                            statistics.median(through[j::len(MIX)])
                            - statistics.median(direct[j::len(MIX)])))
            results = [collect(gateway) for gateway in timed]
        finally:
            for proc in reversed(started):
                proc.stop()
    for gateway, stages in zip(timed, results, strict=True):
        print(report(gateway, stages, sizes))
    return 0


def collect(gateway: Timed) -> dict[str, list[float]]:
    """Ask the timed gateway for its figures (SIGUSR1) and read them."""
    # The last message is filed just after its reply is written, which the probe may see
    # first: a fresh greeting from the same event loop shows that filing has run.
    procs.wait_banner(gateway.port)
    gateway.proc.popen.send_signal(signal.SIGUSR1)  # type: ignore[union-attr]
    deadline = time.monotonic() + 30
    while gateway.proc.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    return json.loads(gateway.times_file.read_text())


def report(gateway: Timed, stages: dict[str, list[float]], sizes: dict[int, str]) -> str:
    """Median ms per stage and kind, the warm-up left out."""
    by_kind: dict[str, dict[str, list[float]]] = {kind: {s: [] for s in STAGES} for kind in MIX}
    for i, size in enumerate(stages["size"]):
        kind = sizes.get(int(size))
        if kind is None or i < WARM_UP:
            continue
        for stage in STAGES:
            by_kind[kind][stage].append(stages[stage][i])
    rows = [[stage, *(f"{statistics.median(by_kind[k][stage]) * 1000:.3f}"
                      if by_kind[k][stage] else "–" for k in MIX)] for stage in STAGES]
    rows.append(["client: added p50", *(f"{statistics.median(gateway.added[k]):.3f}"
                                        if gateway.added.get(k) else "–" for k in MIX)])
    label = "this tree" if gateway.tree == procs.REPO else f"baseline {gateway.tree}"
    counted = sum(len(by_kind[k]["total"]) for k in MIX)
    return (f"\n{label} ({counted} messages timed; ms, medians)\n\n"
            + table(["stage", *MIX], rows))


if __name__ == "__main__":
    sys.exit(main())
