"""The reviewers' digest: what it lists, to whom, over which period."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.quarantine import open_store
from gateway.quarantine.base import Actor, Entry, RecipientState
from gateway.quarantine.digest import (
    DIGEST_RULE,
    build_digest,
    digest_entries,
    digest_notifications,
    reviewer_digests,
)
from gateway.quarantine.reviewbase import Account
from tests.factories import PARENT, held_message, hold_request, write_quarantine_settings

NOW = datetime(2025, 1, 31, 9, 0, tzinfo=UTC)


def entry(entry_id: str, rules: tuple[str, ...], subject: str, *, minutes_ago: int = 10,
          status: str = "held") -> Entry:
    return Entry(
        id=entry_id, queue_id="Q", received=NOW - timedelta(minutes=minutes_ago),
        client_ip="127.0.0.1", mail_from="teacher@staff.example.org", message_id=None,
        subject=subject, size=100, sha256="0" * 64, status=status, rules=rules, reasons=(),
        findings=({"detector": "student_number", "count": 3, "location": "body"},),
        samples=({"detector": "student_number", "location": "body", "sample": "1002**"},),
        recipients=(RecipientState(PARENT, status, NOW),))


def test_digest_lists_ids_rules_senders_subjects_but_no_values() -> None:
    entries = [entry("20250131-aaaa0001", ("P7",), "Class list", minutes_ago=50),
               entry("20250131-aaaa0002", ("P7", "P8"), "Roster\x1b[2J for Friday")]
    note = build_digest(entries, since=NOW - timedelta(hours=1), until=NOW,
                        to="principal@staff.example.org", waiting=5)
    assert note is not None
    assert note.kind == "reviewers" and note.rule == DIGEST_RULE
    assert note.to == "principal@staff.example.org"
    assert note.subject == "Quarantine digest: 2 messages held, 5 awaiting review"
    for expected in ("20250131-aaaa0001", "20250131-aaaa0002", "Class list",
                     "Roster [2J for Friday", "teacher@staff.example.org", "P7 2, P8 1",
                     "student_number", "2025-01-31 08:10 UTC"):
        assert expected in note.body
    assert "1002" not in note.body and "\x1b" not in note.body
    # Oldest first, so the reviewer reads in arrival order.
    assert note.body.index("aaaa0001") < note.body.index("aaaa0002")


def test_no_digest_when_nothing_was_held() -> None:
    assert build_digest([], since=NOW - timedelta(hours=1), until=NOW, to="x@y") is None
    assert digest_notifications([], since=NOW, until=NOW, reviewers=["a@b"]) == ()


def test_one_digest_per_reviewer() -> None:
    notes = digest_notifications([entry("20250131-aaaa0001", ("P1",), "s")],
                                 since=NOW - timedelta(hours=1), until=NOW,
                                 reviewers=["a@staff.example.org", "b@staff.example.org"])
    assert [n.to for n in notes] == ["a@staff.example.org", "b@staff.example.org"]


def test_digest_query_takes_the_period_and_counts_waiting(tmp_path: Path) -> None:
    settings = write_quarantine_settings(tmp_path)
    store = open_store(settings)
    now = datetime.now(UTC)
    try:
        old = store.hold(hold_request(held_message("old"), received=now - timedelta(days=2)))
        new = store.hold(hold_request(held_message("new"), received=now - timedelta(minutes=5)))
        done = store.hold(hold_request(held_message("done"), received=now - timedelta(minutes=1)))
        store.delete(done.id, Actor("it", "it"), "x")
        recent, waiting = digest_entries(store, now - timedelta(hours=1), now)
        assert {e.id for e in recent} == {new.id, done.id}
        assert old.id not in {e.id for e in recent}
        assert waiting == 2
    finally:
        store.close()


def test_console_accounts_get_their_scope_only_with_links_to_the_console(
        tmp_path: Path) -> None:
    settings = write_quarantine_settings(tmp_path)
    store = open_store(settings)
    try:
        setup = Actor("it", "root")
        store.add_account(Account("principal@staff.example.org", "reviewer",
                                  schools=("Lincoln",), email="principal@staff.example.org"),
                          setup)
        store.add_account(Account("nomail", "reviewer", schools=("Lincoln",)), setup)
        store.add_account(Account("gone@staff.example.org", "reviewer", schools=("Lincoln",),
                                  email="gone@staff.example.org", disabled=True), setup)
        mine = store.hold(dataclasses.replace(hold_request(held_message("Mine")),
                                              schools=("Lincoln",))).id
        other = store.hold(dataclasses.replace(hold_request(held_message("Other"),
                                                            queue_id="Q2"),
                                               schools=("Washington",))).id
        now = datetime.now(UTC)
        notes = reviewer_digests(store, since=now - timedelta(hours=1), until=now,
                                 reviewers=["privacy@staff.example.org"],
                                 console_url="https://review.example.org")
    finally:
        store.close()
    by_to = {n.to: n for n in notes}
    assert set(by_to) == {"privacy@staff.example.org", "principal@staff.example.org"}
    everything, principal = by_to["privacy@staff.example.org"], by_to[
        "principal@staff.example.org"]
    assert mine in everything.body and other in everything.body
    assert mine in principal.body and other not in principal.body
    assert principal.subject.endswith("1 message held, 1 awaiting review")
    assert f"https://review.example.org/entry/{mine}" in principal.body
    assert "nothing is released or deleted by opening them" in principal.body
    links = re.findall(r"https://\S+", principal.body)
    assert links == [f"https://review.example.org/entry/{mine}",
                     "https://review.example.org/queue"]  # pages to look at, no actions
