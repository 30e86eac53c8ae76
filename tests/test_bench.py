"""The bench's pure parts: its message files, wire form, and the arithmetic of its report.

(The load generator, sink, floor relay and stage timer run for real in
tests/integration/test_bench.py.)"""

from __future__ import annotations

import email
from email import policy
from pathlib import Path
from types import SimpleNamespace

from bench.messages import MIX, wire_bytes, write_directory, write_messages
from bench.run import added_percentile, latency_by_kind, rotated, round_percentile


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


def test_added_latency_pairs_each_round_with_its_own_direct_run() -> None:
    """A slow round (the machine got busy) shifts both sides of that round only."""
    direct = [[0.001] * 10, [0.005] * 10, [0.001] * 10]
    gateway = [[0.003] * 10, [0.009] * 10, [0.003] * 10]
    assert round_percentile(gateway, 50) == 0.003
    assert abs(added_percentile(gateway, direct, 50) - 0.002) < 1e-12
    assert abs(added_percentile(gateway, direct, 99) - 0.002) < 1e-12


def test_latency_by_kind_separates_the_kinds_the_probe_sent_in_turn() -> None:
    """The probe sends the mix's kinds in turn: sample i belongs to kind i mod 5."""
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
    variants = ["shell", "base", "full"]
    assert [rotated(variants, n)[0] for n in (1, 2, 3, 4)] == ["shell", "base", "full", "shell"]
    assert sorted(rotated(variants, 2)) == sorted(variants) and rotated([], 3) == []
