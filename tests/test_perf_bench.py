"""The bench's Python fallbacks (load generator, discard sink) and its message files work.

They are what `make bench` uses when Postfix's smtp-source/smtp-sink are missing, so a broken
fallback would only show on a machine without Postfix.
"""

from __future__ import annotations

import asyncio
import email
from email import policy
from pathlib import Path

import pytest

from bench import procs
from bench.load import latencies, run_load
from bench.messages import MIX, wire_bytes, write_directory, write_messages
from bench.stage_timer import STAGES
from tests.conftest import Upstream
from tests.scripted_upstream import Script, scripted


def test_messages_are_valid_mime_without_student_numbers(tmp_path: Path) -> None:
    messages = write_messages(tmp_path)
    assert {f"mix-{k}" for k in MIX} <= set(messages)
    for message in messages.values():
        parsed = email.message_from_bytes(message.path.read_bytes(), policy=policy.default)
        assert parsed["From"] and parsed["Subject"]
        assert not parsed.defects
    people, _ = write_directory(tmp_path, students=50, staff=5, parents=10)
    assert len(people.read_text().splitlines()) == 1 + 1 + 5 + 50 + 10


def test_wire_bytes_dot_stuff_and_terminate(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(b"Subject: x\n\n.hidden\nplain\n")
    assert wire_bytes(path) == b"Subject: x\r\n\r\n..hidden\r\nplain\r\n.\r\n"


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
        from bench.load import _python_load

        run = await _python_load(upstream.port, files, 2, 4, 30)
        assert run.error is not None and "554" in run.error
        assert run.rate == 0
    finally:
        await upstream.stop()


def test_added_latency_pairs_each_round_with_its_own_direct_run() -> None:
    """A slow round (the machine got busy) shifts both sides of that round only."""
    from bench.run import added_percentile, round_percentile

    direct = [[0.001] * 10, [0.005] * 10, [0.001] * 10]
    gateway = [[0.003] * 10, [0.009] * 10, [0.003] * 10]
    assert round_percentile(gateway, 50) == 0.003
    assert abs(added_percentile(gateway, direct, 50) - 0.002) < 1e-12
    assert abs(added_percentile(gateway, direct, 99) - 0.002) < 1e-12


def test_latency_by_kind_separates_the_kinds_the_probe_sent_in_turn() -> None:
    """The probe sends the mix's kinds in turn: sample i belongs to kind i mod 5."""
    from types import SimpleNamespace

    from bench.messages import MIX
    from bench.run import latency_by_kind

    cost = {kind: (i + 1) / 1000 for i, kind in enumerate(MIX)}  # plain 1 ms ... pdf 5 ms
    one_round = [cost[MIX[i % len(MIX)]] for i in range(50)]
    floor = [0.0005] * 50
    bench = SimpleNamespace(lat={"mix/direct": [[0.0] * 50] * 3, "mix/full": [one_round] * 3,
                                 "mix/floor": [floor] * 3})
    text = "\n".join(latency_by_kind(bench))  # type: ignore[arg-type]
    assert ("| gateway, full policy | 1.00 / 1.00 | 2.00 / 2.00 | 3.00 / 3.00 | 4.00 / 4.00 "
            "| 5.00 / 5.00 |") in text
    # The floor (bench/floor_relay.py) comes first: the least any hop costs, then the rest.
    assert text.index("| bare asyncio relay (floor") < text.index("| gateway, full policy")
    assert "floor, bench/floor_relay.py) | 0.50 / 0.50 | 0.50 / 0.50 |" in text
    assert latency_by_kind(SimpleNamespace(lat={})) == []  # type: ignore[arg-type]


def test_variants_take_turns_at_going_first() -> None:
    from bench.run import rotated

    variants = ["shell", "base", "full"]
    assert [rotated(variants, n)[0] for n in (1, 2, 3, 4)] == ["shell", "base", "full", "shell"]
    assert sorted(rotated(variants, 2)) == sorted(variants) and rotated([], 3) == []


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
    from bench import stages

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
