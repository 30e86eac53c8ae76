"""A process killed (SIGKILL) in the middle of holding leaves complete entries or none.

The child holds messages of varying size in a loop and prints each id only after `hold`
returned; the parent kills it at random moments, over several rounds, then checks that
SQLite's own integrity check passes, every entry's bytes match their recorded hash, every
entry has its recipients and its audit row, and every id the child reported is there.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from gateway.quarantine import open_store
from tests.factories import REPO, write_quarantine_settings

CHILD = r"""
import base64, os, sys
from gateway.config import load_settings
from gateway.service.logsetup import configure_logging
from gateway.quarantine import open_store
from tests.factories import held_message, hold_request

settings = load_settings(sys.argv[1])
configure_logging(settings.log, stream=sys.stderr)  # stdout carries only committed ids
store = open_store(settings)
round_no = sys.argv[2]
print("ready", flush=True)
i = 0
while True:
    size = (i * 7919) % 600_000 + 1000
    body = base64.encodebytes(os.urandom(size)).decode()
    content = held_message(f"round {round_no} message {i}", body)
    result = store.hold(hold_request(content, queue_id=f"R{round_no}-{i}",
                                     subject=f"round {round_no} message {i}"))
    print(result.id, flush=True)
    i += 1
"""


def run_round(config: Path, script: Path, round_no: int, rng: random.Random) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script), str(config), str(round_no)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                            text=True)
    assert proc.stdout is not None
    reported: list[str] = []
    try:
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(rng.randint(0, 4)):
            reported.append(proc.stdout.readline().strip())
        time.sleep(rng.uniform(0, 0.05))  # somewhere inside a later hold
    finally:
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate()
    # Lines printed between our last read and the kill are committed holds as well.
    reported += [line for line in rest.splitlines() if line.strip()]
    assert proc.returncode == -signal.SIGKILL
    return reported


def test_sigkill_during_holds_never_leaves_a_partial_entry(tmp_path: Path) -> None:
    settings = write_quarantine_settings(tmp_path)
    script = tmp_path / "holder.py"
    script.write_text(CHILD)
    rng = random.Random()
    reported: list[str] = []
    for round_no in range(10):
        reported += run_round(settings.source, script, round_no, rng)
        store = open_store(settings)  # recovers the WAL left by the killed process
        try:
            assert store.verify() == []
            entries = store.list_entries()
            ids = {e.id for e in entries}
            assert set(reported) <= ids, "a hold that returned was lost"
            holds = [r.entry_id for r in store.audit() if r.action == "hold"]
            assert sorted(holds) == sorted(ids), "entry and audit row are one transaction"
            for entry in entries:
                assert entry.recipients and entry.status == "held"
                content = store.content(entry.id)
                assert content is not None and len(content) == entry.size
        finally:
            store.close()
    assert len(reported) > 0
