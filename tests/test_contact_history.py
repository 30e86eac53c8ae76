"""P6's contact history: read beforehand, off the event loop, without waiting for the writer.

The policy names every count it may ask for (`Policy.contact_queries`); the dispatcher reads
them in a thread and decides with a `CountedHistory`. These tests pin the three promises: the
look-ahead covers what the engine asks (so counting beforehand decides exactly as counting
during the decision), the store answers while a writer holds the database, and a message
decided on the loop reads its counts in a thread.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_settings
from gateway.model import CountedHistory, Envelope, Inspection
from gateway.quarantine import open_store
from gateway.quarantine.sqlite import SQLiteStore
from gateway.runtime import load_runtime
from gateway.service.listener import Gateway
from tests.core_helpers import send
from tests.policy_helpers import STAFF, STUDENTS, CountingHistory, world

ROOT = Path(__file__).resolve().parents[1]
AT = datetime(2026, 9, 1, tzinfo=UTC)
PAIRS = [
    ("alexj@gmail.example", [f"jsmith@{STAFF}"]),                     # P5/P6: personal → staff
    (f"jsmith@{STAFF}", [f"alex@{STUDENTS}", "alexj@gmail.example"]),  # staff → both accounts
    (f"mbrown@{STAFF}", ["sam.lee@yahoo.example"]),                    # a reported relative
    ("robin@parents.example", [f"jsmith@{STAFF}"]),                    # no pair at all
    ("sam.lee@yahoo.example", [f"jsmith@{STAFF}", f"mbrown@{STAFF}"]),
]


def envelope(mail_from: str, rcpts: Sequence[str]) -> Envelope:
    return Envelope(mail_from, tuple(rcpts), b"", client_ip="203.0.113.9",
                    client_trusted=False, received_at=AT)


@pytest.mark.parametrize(("mail_from", "rcpts"), PAIRS)
@pytest.mark.parametrize("earlier", [0, 1, 5])
def test_counting_beforehand_decides_exactly_as_counting_during(
        tmp_path: Path, mail_from: str, rcpts: list[str], earlier: int) -> None:
    w = world(tmp_path)
    env = envelope(mail_from, rcpts)
    sender, recipients = w.directory.party(mail_from), [w.directory.party(r) for r in rcpts]
    inspection = Inspection(from_header=mail_from)
    asked = CountingHistory(earlier)
    during = w.policy.decide(env, sender, recipients, inspection, asked)
    queries = w.policy.contact_queries(env, sender, recipients)
    assert set(asked.asked) <= queries  # every count the engine asked was named beforehand
    counted = CountedHistory(dict.fromkeys(queries, earlier))
    assert w.policy.decide(env, sender, recipients, inspection, counted) == during


def test_the_shipped_policy_names_the_p6_window_for_a_staff_student_pair(
        tmp_path: Path) -> None:
    w = world(tmp_path)
    env = envelope("alexj@gmail.example", [f"jsmith@{STAFF}"])
    queries = w.policy.contact_queries(env, w.directory.party("alexj@gmail.example"),
                                       [w.directory.party(f"jsmith@{STAFF}")])
    assert queries and {(s, t) for s, t, _ in queries} == {("482913", "T1")}
    assert all(since < AT for _, _, since in queries)
    nobody = w.policy.contact_queries(env, w.directory.party("robin@parents.example"),
                                      [w.directory.party(f"jsmith@{STAFF}")])
    assert nobody == frozenset()


def test_a_count_not_read_beforehand_is_an_error_not_a_guess() -> None:
    with pytest.raises(KeyError):
        CountedHistory({}).count_contacts("482913", "T1", AT)


def test_the_store_answers_while_a_writer_holds_the_database(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    store = SQLiteStore(path)
    for days in (1, 2, 40):
        store.record_contact("482913", "T1", AT - timedelta(days=days))
    week, month = AT - timedelta(days=7), AT - timedelta(days=30)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
    writer.execute("INSERT INTO contacts (student_id, staff_id, at) VALUES ('482913', 'T1', ?)",
                   ((AT - timedelta(hours=1)).isoformat(),))
    answers: list[dict[Any, int]] = []
    with store._lock:  # and this store's own writer, as while a hold is being fsynced
        reader = threading.Thread(target=lambda: answers.append(store.contact_counts(
            [("482913", "T1", week), ("482913", "T1", month), ("517204", "T1", week)])))
        reader.start()
        reader.join(5)
        assert not reader.is_alive(), "the reader waited for the writer"
    writer.execute("ROLLBACK")
    writer.close()
    assert answers == [{("482913", "T1", week): 2, ("482913", "T1", month): 2,
                        ("517204", "T1", week): 0}]
    assert store.count_contacts("482913", "T1", month - timedelta(days=30)) == 3
    store.close()


async def test_a_message_decided_on_the_loop_reads_its_counts_in_a_thread(
        tmp_path: Path, upstream: Any) -> None:
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    config = folder / "gateway.yaml"
    config.write_text(config.read_text().replace("port: 10025", "port: 0").replace(
        "port: 10026", f"port: {upstream.port}").replace(
        'metrics: {listen: "127.0.0.1:9125"}', ""))
    settings = load_settings(config)
    store = open_store(settings)
    loop_thread = threading.get_ident()
    reads: list[bool] = []
    real = store.contact_counts

    def contact_counts(queries: Any) -> Any:
        reads.append(threading.get_ident() == loop_thread)
        return real(queries)

    store.contact_counts = contact_counts  # type: ignore[method-assign]
    gw = Gateway(settings, load_runtime(settings), store)
    await gw.start()
    try:
        staff = "jsmith@staff.district230.example"
        for n in range(2):
            content = (f"From: alexj2009@gmail.example\r\nTo: {staff}\r\nSubject: q{n}\r\n\r\n"
                       "Can you help with the homework?\r\n").encode()
            errors, _ = await send(gw.port, "alexj2009@gmail.example", [staff], content)
            assert errors == {}
        plain = (f"From: {staff}\r\nTo: principal@staff.district230.example\r\n"
                 "Subject: lunch\r\n\r\nSee you at noon.\r\n").encode()
        await send(gw.port, staff, ["principal@staff.district230.example"], plain)
    finally:
        await gw.drain(0)
        store.close()
    assert reads == [False, False]  # one read per P6 message, none for staff-to-staff mail
