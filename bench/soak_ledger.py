"""The soak's ledger: where every message the client got 250 for ended up, from three records
kept independently of the gateway's own word: the client's attempts, what the upstream sink
accepted (bench/soaksink.py) and what the quarantine holds (`gateway quarantine list --json`).

Pure bookkeeping, no I/O: `build_ledger` takes the three records and returns the verdict.

For each recipient of an accepted message one of these must be true: its copy reached the
sink, or it is held in the quarantine, or it was refused after all and the sink got a bounce
(DSN) naming it, or that bounce is held in the quarantine (rule DSN: the upstream would not
take it). None of them is a lost message.

SMTP delivers at least once: a client that sent the whole message but got no reply (or a 4xx
after the upstream had already taken a copy, RFC 1047) sends it again, and the copy arrives
twice. Such duplicates are counted apart, with the ambiguous attempt that explains them; a
copy delivered twice without one, or a message held twice, is a defect.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Attempt:
    """One SMTP transaction by the soak's client."""

    token: str
    started: float
    ended: float = 0.0
    # 250 | 4xx | 5xx (final reply to the data, or every recipient refused) | lost (whole
    # message sent, no reply) | dropped (connection refused or cut before the end of DATA)
    result: str = ""
    reply: str = ""
    queue_id: str | None = None
    accepted_rcpts: tuple[str, ...] = ()
    refused_rcpts: tuple[str, ...] = ()  # 5xx at RCPT
    after_data: bool = False  # the whole message, terminator included, was sent

    @property
    def ambiguous(self) -> bool:
        """The whole message went out and the client cannot know it was not taken."""
        return self.after_data and self.result in ("lost", "4xx")


@dataclass
class Message:
    token: str
    kind: str
    rcpts: tuple[str, ...]
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def final(self) -> Attempt | None:
        """The attempt that ended the message: a 250 or a permanent refusal."""
        return next((a for a in self.attempts if a.result in ("250", "5xx")), None)


@dataclass
class FaultWindow:
    name: str
    started: float
    ended: float


@dataclass
class Ledger:
    messages: int = 0
    attempts: int = 0
    accepted: int = 0
    refused: int = 0  # permanent refusals (5xx): not accepted, the client bounces them itself
    gave_up: int = 0  # never answered 250 or 5xx before the soak ended: not accepted either
    recipients_accepted: int = 0
    delivered: int = 0
    held: int = 0
    bounced: int = 0  # refused after the 250 (upstream or policy): a DSN reached the sink
    bounce_held: int = 0  # the same, but the upstream would not take the DSN: held for release
    lost: list[str] = field(default_factory=list)  # "token rcpt: why"
    duplicates: Counter[str] = field(default_factory=Counter)  # explained, by reason
    defects: list[str] = field(default_factory=list)  # unexplained duplicates, held twice, ...
    by_kind: Counter[str] = field(default_factory=Counter)
    faults: list[dict[str, Any]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.lost and not self.defects

    def summary(self) -> dict[str, Any]:
        return {"messages": self.messages, "attempts": self.attempts,
                "accepted": self.accepted, "refused_5xx": self.refused,
                "never_accepted": self.gave_up, "recipients_accepted": self.recipients_accepted,
                "delivered": self.delivered, "held": self.held, "bounced": self.bounced,
                "bounce_held": self.bounce_held,
                "lost": len(self.lost), "duplicates": sum(self.duplicates.values()),
                "defects": len(self.defects)}


def build_ledger(messages: list[Message], sink_records: list[dict[str, Any]],
                 quarantine: list[dict[str, Any]], windows: list[FaultWindow]) -> Ledger:
    ledger = Ledger(messages=len(messages), attempts=sum(len(m.attempts) for m in messages))
    delivered: dict[tuple[str, str], list[str | None]] = defaultdict(list)
    bounced: dict[tuple[str, str], int] = Counter()
    for record in sink_records:
        for token in record["tokens"]:
            if record["dsn"]:
                for rcpt in record["failed"]:
                    bounced[(token, rcpt.lower())] += 1
            else:
                for rcpt in record["rcpts"]:
                    delivered[(token, rcpt.lower())].append(record["queue_id"])
    held: Counter[tuple[str, str]] = Counter()
    bounces_held: Counter[str] = Counter()  # a held bounce names the message it reports on
    for entry in quarantine:
        token = (entry.get("message_id") or "").strip("<>").split("@")[0]
        if "DSN" in entry["rules"]:
            bounces_held[token] += 1
            continue
        for rcpt in entry["recipients"]:
            held[(token, rcpt.lower())] += 1

    for message in messages:
        final = message.final
        ambiguous = [a for a in message.attempts if a.ambiguous]
        if final is None or final.result == "5xx":
            if final is None:
                ledger.gave_up += 1
            else:
                ledger.refused += 1
            _not_accepted(ledger, message, delivered, held, ambiguous)
            continue
        ledger.accepted += 1
        ledger.by_kind[message.kind] += 1
        for rcpt in final.accepted_rcpts:
            key = (message.token, rcpt.lower())
            ledger.recipients_accepted += 1
            copies, holds, dsns = len(delivered[key]), held[key], bounced[key]
            if copies:
                ledger.delivered += 1
            elif holds:
                ledger.held += 1
            elif dsns:
                ledger.bounced += 1
            elif bounces_held[message.token]:
                ledger.bounce_held += 1
            else:
                ledger.lost.append(f"{message.token} {rcpt}: not at the sink, not held, "
                                   f"no bounce (reply {final.reply!r})")
                continue
            if holds > 1:
                ledger.defects.append(f"{message.token} {rcpt}: held {holds} times")
            if dsns and bounces_held[message.token]:
                # The bounce's reply came too late: held, though the upstream had it (RFC 1047).
                ledger.duplicates["bounce taken by the upstream after its timeout, also held"] += 1
            for extra in (copies - 1, dsns - 1):
                if extra > 0:
                    _duplicate(ledger, message, rcpt, extra, ambiguous)
    ledger.faults = _fault_table(messages, windows)
    return ledger


def _not_accepted(ledger: Ledger, message: Message,
                  delivered: dict[tuple[str, str], list[str | None]],
                  held: Counter[tuple[str, str]], ambiguous: list[Attempt]) -> None:
    """A message the client was never given 250 for should be nowhere, unless an attempt
    whose outcome the client could not know (no reply, a 4xx after the upstream took it)
    put it there: then it is SMTP's at-least-once, not a defect."""
    present = [r for r in message.rcpts
               if delivered.get((message.token, r.lower())) or held[(message.token, r.lower())]]
    if not present:
        return
    if ambiguous:
        ledger.duplicates["copy of a message never answered 250 (after an ambiguous try)"] += 1
    else:
        ledger.defects.append(f"{message.token}: delivered or held for {present[0]} though "
                              "no attempt got 250 or could have")


def _duplicate(ledger: Ledger, message: Message, rcpt: str, extra: int,
               ambiguous: list[Attempt]) -> None:
    if any(a.result == "lost" for a in ambiguous):
        ledger.duplicates["client retried after a lost reply"] += extra
    elif ambiguous:
        ledger.duplicates["4xx after the upstream had taken the copy (RFC 1047)"] += extra
    else:
        ledger.defects.append(f"{message.token} {rcpt}: delivered {extra + 1} times in one "
                              "unambiguous attempt")


def _fault_table(messages: list[Message], windows: list[FaultWindow]) -> list[dict[str, Any]]:
    """Per fault: how often it was injected and what the client saw while it lasted."""
    rows: dict[str, dict[str, Any]] = {}
    for window in windows:
        row = rows.setdefault(window.name, {"fault": window.name, "injected": 0,
                                            "seconds": 0.0, "attempts": 0, "4xx": 0, "5xx": 0,
                                            "lost": 0, "dropped": 0, "then_accepted": 0})
        row["injected"] += 1
        row["seconds"] += window.ended - window.started
    for message in messages:
        final = message.final
        for attempt in message.attempts:
            for window in windows:
                if attempt.started <= window.ended and attempt.ended >= window.started:
                    row = rows[window.name]
                    row["attempts"] += 1
                    if attempt.result in ("4xx", "5xx", "lost", "dropped"):
                        row[attempt.result] += 1
                    if (attempt.result in ("4xx", "lost", "dropped") and final is not None
                            and final.result == "250"):
                        row["then_accepted"] += 1
    return list(rows.values())
