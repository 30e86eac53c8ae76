"""The bench's Python fallbacks (load generator, discard sink, floor relay) and its stage timer,
run for real.

They are what `make bench` uses when Postfix's smtp-source/smtp-sink are missing, so a broken
fallback would only show on a machine without Postfix."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench import procs, stages
from bench.load import _python_load, latencies, run_load
from bench.messages import MIX, write_messages
from bench.stage_timer import STAGES
from tests.upstream import Script, Upstream, scripted


def test_python_load_against_python_sink(tmp_path: Path) -> None:
    port = procs.free_port()
    sink = procs.start_sink(None, port, tmp_path / "sink.log")
    try:
        files = [m.path for m in write_messages(tmp_path).values()][:3]
        run = run_load(None, port, files, sessions=3, count=12, timeout=60)
        assert run.error is None
        assert run.messages == 12 and run.rate > 0
        assert len(latencies(port, files, 5)) == 5
    finally:
        sink.stop()
    assert not sink.alive()


async def test_python_load_reports_refusals(tmp_path: Path) -> None:
    """A run through a server that refuses mail must fail, not count as fast."""
    upstream = await Upstream().start()
    upstream.behaviour.data_reply = "554 5.7.1 no"
    try:
        files = [m.path for m in write_messages(tmp_path).values()][:1]

        run = await _python_load(upstream.port, files, 2, 4, 30)
        assert run.error is not None and "554" in run.error
        assert run.rate == 0
    finally:
        await upstream.stop()


async def test_latency_probe_pipelines_only_where_announced(tmp_path: Path) -> None:
    files = [write_messages(tmp_path)["plain-10k"].path]
    up = await scripted(Script())  # answers nothing before it holds MAIL, RCPT and DATA
    try:
        assert len(await asyncio.to_thread(latencies, up.port, files, 3)) == 3
        assert up.reads[0].count(b"\r\n") == 3 and len(up.messages) == 3
    finally:
        await up.stop()
    plain = await Upstream().start()
    plain.behaviour.pipelining = False
    try:
        assert len(await asyncio.to_thread(latencies, plain.port, files, 3)) == 3
        assert len(plain.messages) == 3
    finally:
        await plain.stop()


async def test_floor_relay_passes_each_message_to_the_sink(tmp_path: Path) -> None:
    """The bench's floor (bench/floor_relay.py) relays for real: the upstream gets every message
    the probe sent, unchanged, over one pipelined connection."""
    files = [write_messages(tmp_path)["plain-10k"].path]
    upstream = await Upstream().start()
    port = procs.free_port()
    relay = await asyncio.to_thread(procs.start_floor_relay, port, upstream.port,
                                    tmp_path / "floor.log")
    try:
        assert len(await asyncio.to_thread(latencies, port, files, 4)) == 4
        expected = files[0].read_bytes().replace(b"\n", b"\r\n")
        assert [m.content for m in upstream.messages] == [expected] * 4
    finally:
        relay.stop()
        await upstream.stop()


def test_stage_timer_times_every_kind_of_the_mix(capsys: pytest.CaptureFixture[str]) -> None:
    """bench/stages.py runs the real daemon under the stage timer and reports every stage for
    every kind it sent; a stage the timer failed to see would show as '–'."""
    assert stages.main(["--messages", "5", "--rounds", "1", "--python-tools"]) == 0
    out = capsys.readouterr().out
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in out.splitlines()
            if line.startswith("| ") and not line.startswith("| stage")}
    assert set(rows) == {*STAGES, "client: added p50"}
    for stage in ("read", "decide", "relay", "total"):
        values = [float(v.strip(" |")) for v in rows[stage]]
        assert len(values) == len(MIX) and all(v > 0 for v in values), (stage, values)
    # The parts are inside the whole: deciding and relaying fit within the total.
    total, decide, relay = ([float(v.strip(" |")) for v in rows[s]]
                            for s in ("total", "decide", "relay"))
    assert all(d + r < t for d, r, t in zip(decide, relay, total, strict=True))
