"""Worker heartbeats and reload results, in memory the parent shares with its workers.

Why: a worker whose event loop is stuck (SIGSTOP, a blocking call, a livelock) still exists as a
process, so `waitpid` never reports it, and its SO_REUSEPORT socket keeps receiving its share of
new connections, which then get no banner. Only the loop itself can prove the loop turns: each
worker's loop writes the time into its own slot every `BEAT_INTERVAL`, and the parent (for the
systemd watchdog and to replace the worker) and worker 0 (for `/healthz`, `/readyz` and
`/metrics`) read every slot.

The board is one anonymous shared mapping made before the first fork, so every worker inherits
the same pages; no files, no locks. Each slot has one writer (the worker, or the parent while no
worker owns the slot) and aligned 8-byte stores, so a reader never sees a torn value. Times are
CLOCK_MONOTONIC, which is one clock for every process on the machine.

Reloads use it too: the parent bumps `generation` before forwarding SIGHUP; each worker writes the
generation it loaded and whether the load worked into its slot, so the parent can tell systemd
one honest result for the whole daemon.
"""

from __future__ import annotations

import asyncio
import ctypes
import mmap
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

BEAT_INTERVAL = 1.0  # seconds between a worker's beats; far below any sensible timeout
# A worker is reported not alive (health, readiness, watchdog) after this many seconds without
# a beat, or half its timeout if that is shorter; it is killed only at the timeout itself, so
# a loop held up briefly shows before it is replaced.
LATE_AFTER = 5.0

RELOAD_OK = 1
RELOAD_FAILED = 2


class _Slot(ctypes.Structure):
    _fields_ = [
        ("pid", ctypes.c_int64),  # 0: no worker owns the slot (dead, or waiting for a restart)
        ("beat", ctypes.c_double),  # CLOCK_MONOTONIC seconds of the last beat
        ("reloaded", ctypes.c_uint64),  # the generation this worker last tried to load
        ("reload_result", ctypes.c_int64),  # RELOAD_OK or RELOAD_FAILED for `reloaded`
    ]


class _Header(ctypes.Structure):
    _fields_ = [("generation", ctypes.c_uint64)]  # the reload the parent asked for last


@dataclass(frozen=True, slots=True)
class WorkerState:
    """One worker as the board shows it now."""

    index: int
    pid: int  # 0 when no process owns the slot
    age: float  # seconds since its last beat (or since it was started)
    timeout: float

    @property
    def alive(self) -> bool:
        """Running, and its loop turned lately."""
        return self.pid != 0 and self.age < min(LATE_AFTER, self.timeout / 2)

    @property
    def stalled(self) -> bool:
        """Running, but silent for the whole timeout: to be replaced."""
        return self.pid != 0 and self.age >= self.timeout


class Board:
    """`count` worker slots in shared memory; make it before forking the workers."""

    def __init__(self, count: int, timeout: float):
        self.count = count
        self.timeout = timeout
        size = ctypes.sizeof(_Header) + count * ctypes.sizeof(_Slot)
        self._memory = mmap.mmap(-1, size)  # anonymous and MAP_SHARED: survives fork, shared
        self._header = _Header.from_buffer(self._memory)
        self._slots = (_Slot * count).from_buffer(self._memory, ctypes.sizeof(_Header))

    # -- the parent -------------------------------------------------------------------------
    def started(self, index: int, pid: int) -> None:
        """A new worker owns the slot. It starts from the parent's current configuration, so it
        has loaded the latest generation, and its start counts as its first beat."""
        slot = self._slots[index]
        slot.beat = time.monotonic()
        slot.reloaded = self._header.generation
        slot.reload_result = RELOAD_OK
        slot.pid = pid

    def vacated(self, index: int) -> None:
        self._slots[index].pid = 0

    def ask_reload(self) -> int:
        """The generation the workers are about to be asked (SIGHUP) to load."""
        self._header.generation += 1
        return int(self._header.generation)

    def reload_results(self, generation: int) -> dict[int, bool] | None:
        """Worker index -> whether its reload worked, once every worker that owns a slot has
        answered for `generation` (or a later one); None while some are still loading."""
        results: dict[int, bool] = {}
        for index, slot in enumerate(self._slots):
            if slot.pid == 0:
                continue
            if slot.reloaded < generation:
                return None
            results[index] = slot.reload_result == RELOAD_OK
        return results

    def late(self, generation: int) -> list[int]:
        """Workers (by index) that own a slot but have not answered for `generation`."""
        return [index for index, slot in enumerate(self._slots)
                if slot.pid != 0 and slot.reloaded < generation]

    # -- a worker ---------------------------------------------------------------------------
    def beat(self, index: int) -> None:
        self._slots[index].beat = time.monotonic()

    @property
    def generation(self) -> int:
        return int(self._header.generation)

    def reloaded(self, index: int, generation: int, ok: bool) -> None:
        slot = self._slots[index]
        slot.reload_result = RELOAD_OK if ok else RELOAD_FAILED
        slot.reloaded = generation

    # -- anyone -----------------------------------------------------------------------------
    def states(self) -> list[WorkerState]:
        now = time.monotonic()
        return [WorkerState(index, int(slot.pid), max(0.0, now - slot.beat), self.timeout)
                for index, slot in enumerate(self._slots)]

    def all_alive(self) -> bool:
        return all(state.alive for state in self.states())

    def collector(self) -> Collector:
        return _BoardCollector(self)


class _BoardCollector(Collector):
    """`/metrics`: each worker's heartbeat age and whether it counts as alive, read at scrape
    time (the worker index is the only label; pids change and would make new series)."""

    def __init__(self, board: Board):
        self.board = board

    def collect(self) -> Iterator[GaugeMetricFamily]:
        age = GaugeMetricFamily("gateway_worker_heartbeat_age_seconds",
                                "Seconds since each worker's event loop last proved it turns",
                                labels=["worker"])
        alive = GaugeMetricFamily("gateway_workers_alive",
                                  "Workers running with a fresh heartbeat")
        expected = GaugeMetricFamily("gateway_workers_expected", "Workers configured")
        states = self.board.states()
        for state in states:
            age.add_metric([str(state.index)], round(state.age, 3))
        alive.add_metric([], sum(state.alive for state in states))
        expected.add_metric([], self.board.count)
        yield from (age, alive, expected)


async def beat_forever(board: Board, index: int) -> None:
    """Run on the worker's event loop: the beats stop exactly when the loop stops turning."""
    while True:
        board.beat(index)
        await asyncio.sleep(BEAT_INTERVAL)


@dataclass(frozen=True, slots=True)
class WorkerLink:
    """What one worker's Daemon knows about its place among the workers."""

    board: Board
    index: int
    parent_pid: int

    @property
    def orphaned(self) -> bool:
        """The parent that started this worker is gone (killed, crashed)."""
        return os.getppid() != self.parent_pid

    def beat_task(self) -> asyncio.Task[None]:
        return asyncio.create_task(beat_forever(self.board, self.index),
                                   name=f"heartbeat-{self.index}")

    def reloading(self) -> int:
        """The generation this reload answers for (read before the files are)."""
        return self.board.generation

    def reloaded(self, generation: int, ok: bool) -> None:
        self.board.reloaded(self.index, generation, ok)
