"""Envelope → Decision as tables: who the sender is (envelope or From header), one verdict per
recipient carrying the client's own spelling of its RCPT, and fail_closed holding everyone.

A stub directory (a few known people, everyone else an outsider) and a stub policy (it records
what it was given and holds the addresses it is told to) keep the tables about the pipeline's
own steps; the shipped policy through the pipeline is tests/policy/test_engine.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway import pipeline
from gateway.config import Settings
from gateway.model import (
    Action,
    ContactHistory,
    ContactPlan,
    Decision,
    Envelope,
    Inspection,
    NoHistory,
    Party,
    Role,
    RuleMatch,
    Verdict,
)
from gateway.runtime import Runtime

JSMITH = Party("jsmith@staff.example", Role.STAFF, True, "T1")
ALEX = Party("alex@students.example", Role.STUDENT, True, "482913")
ROBIN = Party("robin@parents.example", Role.PARENT, False, "P1")
KNOWN = {p.address: p for p in (JSMITH, ALEX, ROBIN)}


class StubDirectory:
    """The people above (addresses matched in any case), everyone else an outsider."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def party(self, address: str) -> Party:
        self.asked.append(address)
        norm = address.lower()
        return KNOWN.get(norm) or Party(norm, Role.EXTERNAL, False)


@dataclass
class StubPolicy:
    """Holds the addresses in `hold` (as the directory normalised them), relays the rest, and
    records what it was asked to decide."""

    hold: frozenset[str] = frozenset()
    seen: list[tuple[Party, tuple[Party, ...], Inspection]] = field(default_factory=list)
    drop_last: bool = False  # a broken policy that forgets a recipient

    def contact_plan(self, envelope: Envelope, sender: Party, recipients: Sequence[Party],
                     inspection: Inspection) -> ContactPlan:
        return ContactPlan()

    def decide(self, envelope: Envelope, sender: Party, recipients: Sequence[Party],
               inspection: Inspection, history: ContactHistory) -> Decision:
        self.seen.append((sender, tuple(recipients), inspection))
        verdicts = tuple(
            Verdict(p, Action.HOLD, (RuleMatch("T1", Action.HOLD, "held by the table"),))
            if p.address in self.hold else Verdict(p, Action.RELAY) for p in recipients)
        if self.drop_last:
            verdicts = verdicts[:-1]
        return Decision(envelope, sender, verdicts, inspection)


class CountingInspector:
    def __init__(self, result: Inspection) -> None:
        self.result = result
        self.calls: list[bytes] = []

    def inspect(self, raw: bytes) -> Inspection:
        self.calls.append(raw)
        return self.result


def runtime(policy: StubPolicy | None = None,
            inspector: CountingInspector | None = None) -> Runtime:
    return Runtime(Settings(source=Path("gateway.yaml")), StubDirectory(),
                   inspector or CountingInspector(Inspection()),
                   policy or StubPolicy())  # type: ignore[arg-type]


def envelope(mail_from: str, *rcpts: str, content: bytes = b"Subject: x\r\n\r\nhi\r\n") -> Envelope:
    return Envelope(mail_from, rcpts, content, queue_id="Q1")


# --- the sender: the envelope's party, unless that is null or an outsider ---------------------

OUTSIDER = Party("someone@example.com", Role.EXTERNAL, False)
NOBODY = Party("", Role.EXTERNAL, False)

SENDERS = [
    # (envelope sender, From header, the sender the policy must be given)
    ("staff envelope, no From", "jsmith@staff.example", None, JSMITH),
    ("staff envelope wins over another From", "jsmith@staff.example", "alex@students.example",
     JSMITH),
    ("student envelope wins over a staff From", "alex@students.example", "jsmith@staff.example",
     ALEX),
    ("parent envelope is not an outsider", "robin@parents.example", "jsmith@staff.example",
     ROBIN),
    ("envelope spelled in capitals", "JSmith@Staff.Example", None, JSMITH),
    ("outsider envelope, staff From", "someone@example.com", "jsmith@staff.example", JSMITH),
    ("outsider envelope, From with display name", "someone@example.com",
     '"Smith, Jane" <JSMITH@staff.example>', JSMITH),
    ("outsider envelope, outsider From", "someone@example.com", "Pat <pat@example.org>",
     OUTSIDER),
    ("outsider envelope, no From", "someone@example.com", None, OUTSIDER),
    ("outsider envelope, unparseable From", "someone@example.com", "not an address", OUTSIDER),
    ("outsider envelope, first known in a From list", "someone@example.com",
     "pat@example.org, alex@students.example", ALEX),
    ("null envelope, student From", "", "alex@students.example", ALEX),
    ("null envelope, outsider From", "", "pat@example.org", NOBODY),
    ("null envelope, no From", "", None, NOBODY),
]


@pytest.mark.parametrize(("label", "mail_from", "from_header", "expected"), SENDERS,
                         ids=[s[0] for s in SENDERS])
def test_the_sender_is_the_envelope_unless_null_or_outside_then_a_known_from(
        label: str, mail_from: str, from_header: str | None, expected: Party) -> None:
    policy = StubPolicy()
    decision = pipeline.decide(envelope(mail_from, "alex@students.example"), runtime(policy),
                               NoHistory(), Inspection(from_header=from_header))
    [(sender, _recipients, _inspection)] = policy.seen
    assert sender == expected
    assert decision.sender == expected
    assert pipeline.classify_sender(StubDirectory(), mail_from, from_header) == expected


def test_a_null_envelope_sender_is_never_looked_up() -> None:
    directory = StubDirectory()
    pipeline.classify_sender(directory, "", None)
    assert directory.asked == []


# --- recipients: one verdict each, in order, with the RCPT address as the client spelled it -----

RECIPIENTS = [
    ("one", ("alex@students.example",), frozenset(), ["relay"]),
    ("case kept", ("Alex@Students.Example", "JSmith@STAFF.example"),
     frozenset({"jsmith@staff.example"}), ["relay", "hold"]),
    ("IDN and outsiders", ("user@xn--bcher-kva.example", "Someone@Example.com"),
     frozenset({"someone@example.com"}), ["relay", "hold"]),
    ("the same person twice", ("alex@students.example", "ALEX@students.example"),
     frozenset({"alex@students.example"}), ["hold", "hold"]),
]


@pytest.mark.parametrize(("label", "rcpts", "hold", "actions"), RECIPIENTS,
                         ids=[r[0] for r in RECIPIENTS])
def test_each_verdict_carries_its_rcpt_as_the_client_spelled_it(
        label: str, rcpts: tuple[str, ...], hold: frozenset[str], actions: list[str]) -> None:
    policy = StubPolicy(hold=hold)
    decision = pipeline.decide(envelope("jsmith@staff.example", *rcpts), runtime(policy),
                               NoHistory(), Inspection())
    [(_sender, recipients, _inspection)] = policy.seen
    assert [p.address for p in recipients] == [r.lower() for r in rcpts]  # classified
    assert [v.rcpt for v in decision.verdicts] == list(rcpts)  # ...but delivered as spelled
    assert [v.envelope_address for v in decision.verdicts] == list(rcpts)
    assert [v.recipient for v in decision.verdicts] == list(recipients)
    assert [str(v.action) for v in decision.verdicts] == actions


def test_a_policy_that_loses_a_recipient_is_an_error_not_a_dropped_copy() -> None:
    with pytest.raises(ValueError):
        pipeline.decide(envelope("jsmith@staff.example", "alex@students.example",
                                 "robin@parents.example"),
                        runtime(StubPolicy(drop_last=True)), NoHistory(), Inspection())


@pytest.mark.parametrize("given", [True, False], ids=["inspection given", "inspected here"])
def test_the_content_is_inspected_once_unless_the_inspection_is_given(given: bool) -> None:
    found = Inspection(subject="from the inspector")
    inspector = CountingInspector(found)
    policy = StubPolicy()
    env = envelope("jsmith@staff.example", "alex@students.example", content=b"the bytes")
    passed = Inspection(subject="given") if given else None
    decision = pipeline.decide(env, runtime(policy, inspector), NoHistory(), passed)
    assert inspector.calls == ([] if given else [b"the bytes"])
    expected = passed if given else found
    assert policy.seen[0][2] is expected and decision.inspection is expected


# --- fail_closed: hold everyone, by address only --------------------------------------------------

@pytest.mark.parametrize("rcpts", [
    ("alex@students.example",),
    ("Alex@Students.Example", "someone@example.com", "robin@parents.example"),
    (),
], ids=["one", "three", "none"])
def test_fail_closed_holds_every_recipient_as_internal_error(rcpts: tuple[str, ...]) -> None:
    env = envelope("jsmith@staff.example", *rcpts)
    decision = pipeline.fail_closed(env, "RuntimeError")
    assert decision.envelope is env
    assert decision.sender == Party("jsmith@staff.example", Role.EXTERNAL, False)
    assert [v.rcpt for v in decision.verdicts] == list(rcpts)
    for verdict, rcpt in zip(decision.verdicts, rcpts, strict=True):
        assert verdict.action is Action.HOLD
        assert verdict.recipient == Party(rcpt, Role.EXTERNAL, False)  # no directory lookup
        assert verdict.rules == ["internal-error"]
        [match] = verdict.matches
        assert match.action is Action.HOLD and not match.monitor
        assert "RuntimeError" in match.reason
    assert decision.inspection == Inspection(complete=False)
    assert decision.notifications == () and decision.contacts == ()
