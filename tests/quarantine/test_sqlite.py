"""What only the SQLite store does: P6 counts read on connections of their own, so they are
answered while another writer holds the database."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.quarantine.sqlite import SQLiteStore

AT = datetime(2026, 9, 1, tzinfo=UTC)


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


def test_held_summary_uses_the_status_index(tmp_path: Path) -> None:
    # The backlog gauge's query runs every 30 s on every instance: it must never scan.
    store = SQLiteStore(tmp_path / "q.db")
    with store._tx(write=False) as db:
        plan = db.execute("EXPLAIN QUERY PLAN SELECT COUNT(*), MIN(received) FROM entries "
                          "WHERE status = 'held'").fetchall()
    assert any("entries_status" in str(row) for row in plan), plan
    store.close()
