"""The heartbeat board: shared with a real forked child, and its verdicts on worker states."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, generate_latest

from gateway.service.health import served_registry
from gateway.service.heartbeat import Board, WorkerState
from tests.harness import metric, metric_samples


def test_a_forked_child_writes_what_the_parent_reads() -> None:
    board = Board(2, timeout=10)
    board.started(0, 111)
    board.started(1, 222)
    generation = board.ask_reload()
    pid = os.fork()
    if pid == 0:  # the child: beat far in the future, answer the reload as failed
        board._slots[1].beat = 1e12
        board.reloaded(1, generation, ok=False)
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    assert board.late(generation) == [0]
    assert board.reload_results(generation) is None  # worker 0 has not answered yet
    board.reloaded(0, generation, ok=True)
    assert board.reload_results(generation) == {0: True, 1: False}
    assert board.states()[1].age == 0.0  # a beat the child wrote, seen by the parent


def test_a_worker_started_during_a_reload_has_the_new_configuration() -> None:
    board = Board(2, timeout=10)
    board.started(0, 111)
    generation = board.ask_reload()
    board.started(1, 333)  # a restart: it starts from the parent's reloaded configuration
    board.vacated(0)  # and a slot without a process is not waited for
    assert board.reload_results(generation) == {1: True}


def test_verdicts_late_then_stalled() -> None:
    fresh = WorkerState(0, 10, age=0.5, timeout=10)
    late = WorkerState(0, 10, age=6, timeout=10)
    stalled = WorkerState(0, 10, age=10, timeout=10)
    empty = WorkerState(0, 0, age=0, timeout=10)
    assert fresh.alive and not fresh.stalled
    assert not late.alive and not late.stalled  # shown in health, not yet killed
    assert not stalled.alive and stalled.stalled
    assert not empty.alive and not empty.stalled  # nothing to kill; restart pending
    assert not WorkerState(0, 10, age=3.5, timeout=6).alive  # half a short timeout


def test_collector_shows_every_worker() -> None:
    board = Board(3, timeout=10)
    board.started(0, 1)
    board.started(2, 3)
    registry = served_registry(CollectorRegistry, [board.collector()])
    samples = metric_samples(generate_latest(registry).decode())
    assert metric(samples, "gateway_workers_expected") == 3
    assert metric(samples, "gateway_workers_alive") == 2
    assert ("gateway_worker_heartbeat_age_seconds", frozenset({("worker", "1")})) in samples
