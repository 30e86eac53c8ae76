"""Quarantine store throughput: SQLite against PostgreSQL, one instance against two, same run.

    .venv/bin/python bench/bench_store.py                 # the table
    .venv/bin/python bench/bench_store.py --seconds 3     # longer runs, steadier figures

What is measured, per backend, as operations per second:
- hold: a 10 KB held copy with its recipients and audit row, committed durably;
- P6: `count_and_record` of one student-staff contact (the transaction every P5/P6 message
  now makes before its reply), each call a different message of one of 50 pairs;
- each with 1 and 4 threads in one process (one gateway instance, its worker threads), and
  with 2 processes of 2 threads each (two instances on one database).
PostgreSQL is a server of its own, started here (tests/pgserver.py) with fsync ON, so that its
commits are as durable as SQLite's synchronous=FULL. Both run on this machine's one disk; a
production database server has its own, and the network round trip is added to each call.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.model import ContactPlan  # noqa: E402
from gateway.quarantine.base import QuarantineStore  # noqa: E402
from gateway.quarantine.postgres import PostgresStore  # noqa: E402
from gateway.quarantine.sqlite import SQLiteStore  # noqa: E402
from tests import factories as h  # noqa: E402
from tests.pgserver import remove, start_server  # noqa: E402

BODY = "Quarterly grades attached.\n" + "x" * 10_000 + "\n"


def open_store(target: str) -> QuarantineStore:
    if target.startswith("postgresql://"):
        return PostgresStore(target)
    return SQLiteStore(target)


def hold(store: QuarantineStore, worker: str, n: int) -> None:
    content = h.held_message(f"bench {worker} {n}", BODY)
    store.hold(h.hold_request(content))


def p6(store: QuarantineStore, worker: str, n: int) -> None:
    now = datetime.now(UTC)
    pair = (str(400000 + n % 50), "T1")
    plan = ContactPlan(frozenset({(*pair, now - timedelta(days=30))}), (pair,), now)
    store.count_and_record(plan, f"{worker}-{n}")


OPS: dict[str, Callable[[QuarantineStore, str, int], None]] = {"hold": hold, "P6": p6}


def quiet() -> None:
    """Only warnings: a log line per hold would be measured too."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def run_threads(target: str, op: str, threads: int, seconds: float, tag: str) -> int:
    """Operations done in `seconds` by `threads` threads sharing one store (one instance)."""
    quiet()
    store = open_store(target)
    done = [0] * threads
    stop = time.monotonic() + seconds

    def work(i: int) -> None:
        n = 0
        while time.monotonic() < stop:
            OPS[op](store, f"{tag}.{i}", n)
            n += 1
        done[i] = n

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    store.close()
    return sum(done)


def _instance(args: tuple[str, str, int, float, str]) -> int:
    return run_threads(*args)


def run_instances(target: str, op: str, instances: int, threads: int, seconds: float,
                  tag: str) -> int:
    """The same with `instances` processes, each its own store (several gateways)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(instances) as pool:
        return sum(pool.map(_instance, [(target, op, threads, seconds, f"{tag}-{i}")
                                        for i in range(instances)]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement")
    args = parser.parse_args()
    server = start_server(durable=True)
    if server is None:
        print("PostgreSQL is not installed (apt-get install postgresql)", file=sys.stderr)
        return 1
    folder = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        targets = {"SQLite": str(folder / "q.db"),
                   "PostgreSQL": server.url(server.create_database())}
        for target in targets.values():
            open_store(target).close()  # schema created outside the measurement
        print(f"ops/s over {args.seconds:g} s each; PostgreSQL with fsync on, same machine")
        print(f"{'backend':<11} {'op':<5} {'1 thread':>9} {'4 threads':>10} "
              f"{'2 inst x 2':>11}")
        for name, target in targets.items():
            for op in OPS:
                one = run_threads(target, op, 1, args.seconds, f"{op}1")
                four = run_threads(target, op, 4, args.seconds, f"{op}4")
                two = run_instances(target, op, 2, 2, args.seconds, f"{op}i")
                print(f"{name:<11} {op:<5} {one / args.seconds:>9.0f} "
                      f"{four / args.seconds:>10.0f} {two / args.seconds:>11.0f}", flush=True)
    finally:
        remove(server)
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
