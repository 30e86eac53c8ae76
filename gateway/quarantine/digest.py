"""The reviewers' digest: what was held since the last one, as a mail the daemon sends.

`build_digest` is pure (entries in, Notification out) so it is tested with plain values; the
daemon's periodic task calls `digest_entries` on the store and then sends the result. The digest
names ids, rules, senders and subjects so a reviewer can triage from a phone, but never a
finding's value: findings appear only as detector names, the same as in the logs.

Who gets which: the addresses in `quarantine.reviewers` get everything held; each enabled
review-console account with an e-mail address gets only what its scope lets it see, with
links to the console (`review.public_url`). A link opens the console's sign-in page when there
is no session, and only shows the entry: releasing or deleting is a signed-in form, never a
link, so a forwarded digest gives nobody anything.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gateway.model import Notification
from gateway.quarantine.base import Entry, EntryQuery, QuarantineStore
from gateway.quarantine.reviewbase import Account, QueueQuery
from gateway.quarantine.times import as_utc

DIGEST_RULE = "quarantine-digest"
MAX_ROWS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def digest_entries(store: QuarantineStore, since: datetime,
                   until: datetime) -> tuple[list[Entry], int]:
    """Entries received in [since, until) and how many entries await review in total."""
    recent = store.list_entries(EntryQuery(since=since, before=until))
    waiting = len(store.list_entries(EntryQuery(status="held")))
    return recent, waiting


def build_digest(entries: Sequence[Entry], *, since: datetime, until: datetime, to: str,
                 waiting: int | None = None,
                 console_url: str | None = None) -> Notification | None:
    """One reviewer's digest, or None when nothing was held in the period (no empty mail)."""
    if not entries:
        return None
    count = len(entries)
    subject = f"Quarantine digest: {count} message{'s' if count != 1 else ''} held"
    if waiting is not None:
        subject += f", {waiting} awaiting review"
    return Notification(kind="reviewers", to=to, subject=subject,
                        body=_body(entries, since, until, waiting, console_url),
                        rule=DIGEST_RULE)


def reviewer_digests(store: QuarantineStore, *, since: datetime, until: datetime,
                     reviewers: Sequence[str],
                     console_url: str | None = None) -> tuple[Notification, ...]:
    """Every digest of a period: the whole quarantine to `reviewers`, and to each console
    account with an e-mail address only its own scope (read through the scoped query)."""
    notes: list[Notification] = []
    if reviewers:
        entries, waiting = digest_entries(store, since, until)
        notes += digest_notifications(entries, since=since, until=until, reviewers=reviewers,
                                      waiting=waiting, console_url=console_url)
    console: Any = store if hasattr(store, "accounts") else None  # a ReviewStore too
    accounts: Sequence[Account] = console.accounts() if console is not None else ()
    for account in accounts:
        if account.disabled or not account.email or account.email in reviewers:
            continue
        recent, _ = console.queue(QueueQuery(
            scope=account.scope, status=None, received_since=since, received_before=until,
            limit=MAX_ROWS * 5))
        waiting = console.queue_counts(account.scope).by_status.get("held", 0)
        note = build_digest(recent, since=since, until=until, to=account.email,
                            waiting=waiting, console_url=console_url)
        if note is not None:
            notes.append(note)
    return tuple(notes)


def digest_notifications(entries: Sequence[Entry], *, since: datetime, until: datetime,
                         reviewers: Sequence[str], waiting: int | None = None,
                         console_url: str | None = None) -> tuple[Notification, ...]:
    """One digest per configured reviewer (`quarantine.reviewers`)."""
    notes = (build_digest(entries, since=since, until=until, to=r, waiting=waiting,
                          console_url=console_url) for r in reviewers)
    return tuple(n for n in notes if n is not None)


def _body(entries: Sequence[Entry], since: datetime, until: datetime,
          waiting: int | None, console_url: str | None) -> str:
    lines = [f"Messages held by the district mail gateway between {_when(since)} and "
             f"{_when(until)}: {len(entries)}"]
    if waiting is not None:
        lines.append(f"Awaiting review in total: {waiting}")
    lines.append("")
    rules: dict[str, int] = {}
    for entry in entries:
        for rule in entry.rules:
            rules[rule] = rules.get(rule, 0) + 1
    lines.append("By rule: " + ", ".join(f"{r} {n}" for r, n in sorted(rules.items())))
    lines.append("")
    for entry in sorted(entries, key=lambda e: e.received)[:MAX_ROWS]:
        lines += _entry_lines(entry, console_url)
    if len(entries) > MAX_ROWS:
        lines.append(f"... and {len(entries) - MAX_ROWS} more (gateway quarantine list)")
    if console_url:
        lines += ["", f"Review them in the console: {console_url}/queue",
                  "The links ask you to sign in; nothing is released or deleted by opening "
                  "them."]
    else:
        lines += ["", "Review with `gateway quarantine show ID`; release or delete with "
                  "`gateway quarantine release|delete ID --reason TEXT`."]
    return "\n".join(lines) + "\n"


def _entry_lines(entry: Entry, console_url: str | None = None) -> list[str]:
    detectors = sorted({str(f.get("detector", "")) for f in entry.findings} - {""})
    return [
        f"{entry.id}  {_when(entry.received)}  [{entry.status}]  rules {','.join(entry.rules)}",
        f"    from {_clean(entry.mail_from)} to {len(entry.recipients)} recipient(s)",
        f"    subject: {_clean(entry.subject)[:100] or '(none)'}",
        *([f"    findings: {', '.join(detectors)}"] if detectors else []),
        *([f"    {console_url}/entry/{entry.id}"] if console_url else []),
    ]


def _when(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text).strip()
