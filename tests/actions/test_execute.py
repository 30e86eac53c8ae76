"""The executor's one reply for a whole message, as a table: how delivered, held and refused
copies fold into relayed, held, split or rejected, with the code and text the client gets.

Real Decision, Verdict and Envelope values; `_fold` is given what the relay and the store
reported, exactly as `Executor.carry_out` gives it.
"""

from __future__ import annotations

import pytest

from gateway.actions.execute import Outcome, _fold, _policy_refusals, hold_request
from gateway.model import Action, Decision, Envelope, Party, Role, RuleMatch, Verdict
from gateway.smtp.replies import POLICY_REJECT

A, B, C = "a@students.example", "b@example.com", "c@example.org"
QUEUED = "2.0.0 Ok: queued as Q7"
UNKNOWN = (550, "5.1.1 <b@example.com>: Recipient address rejected: User unknown")
BUSY_PERMANENT = (554, "5.7.1 message refused upstream")


def party(address: str) -> Party:
    return Party(address, Role.EXTERNAL, False)


def verdict(address: str, action: Action = Action.RELAY, *rules: str, rcpt: str = "",
            reject_text: str | None = None) -> Verdict:
    matches = tuple(RuleMatch(rule, action, f"{rule} matched", reject_text=reject_text)
                    for rule in rules)
    return Verdict(party(address), action, matches, rcpt)


def decision(*verdicts: Verdict) -> Decision:
    envelope = Envelope("teacher@staff.example", tuple(v.envelope_address for v in verdicts),
                        b"Subject: x\r\n\r\nhi\r\n", queue_id="Q7")
    return Decision(envelope, party("teacher@staff.example"), verdicts)


HELD_ID = "20250131-abcd"
ACCEPTED = [
    # (label, delivered, held, refused, kind, the 250 text Postfix logs for every recipient)
    ("every copy relayed", (A, B, C), (), {}, "relayed", QUEUED),
    ("every copy held", (), (A, B), {}, "held",
     f"2.7.0 Ok: queued as Q7, 2 of 3 held for review, id={HELD_ID}"),
    ("relayed and held", (A,), (B, C), {}, "split",
     f"2.7.0 Ok: queued as Q7, 2 of 3 held for review, id={HELD_ID}"),
    ("relayed, one refused upstream", (A, C), (), {B: UNKNOWN}, "split",
     "2.7.0 Ok: queued as Q7, 1 of 3 refused, bounce to sender"),
    ("held, one refused upstream", (), (A,), {B: UNKNOWN}, "split",
     f"2.7.0 Ok: queued as Q7, 1 of 3 held for review, id={HELD_ID}, "
     "1 of 3 refused, bounce to sender"),
    ("relayed, held and refused", (A,), (C,), {B: UNKNOWN}, "split",
     f"2.7.0 Ok: queued as Q7, 1 of 3 held for review, id={HELD_ID}, "
     "1 of 3 refused, bounce to sender"),
]


@pytest.mark.parametrize(("label", "delivered", "held", "refused", "kind", "text"), ACCEPTED,
                         ids=[a[0] for a in ACCEPTED])
def test_a_message_with_a_copy_delivered_or_held_is_accepted_once(
        label: str, delivered: tuple[str, ...], held: tuple[str, ...],
        refused: dict[str, tuple[int, str]], kind: str, text: str) -> None:
    d = decision(verdict(A), verdict(B), verdict(C))
    quarantine_id = HELD_ID if held else None
    outcome = _fold(d, delivered, held, refused, quarantine_id, "250 2.0.0 queued upstream")
    assert outcome == Outcome(250, text, kind, delivered=delivered, held=held,
                              refused=refused, quarantine_id=quarantine_id,
                              upstream_reply="250 2.0.0 queued upstream")
    assert outcome.line == f"250 {text}"


def test_a_refusal_with_a_null_sender_says_no_bounce_goes_out() -> None:
    verdicts = (verdict(A), verdict(B))
    envelope = Envelope("", (A, B), b"Subject: x\r\n\r\nhi\r\n", queue_id="Q7")
    d = Decision(envelope, party("mailer-daemon@example.org"), verdicts)
    outcome = _fold(d, (A,), (), {B: UNKNOWN}, None, "")
    assert outcome.line == "250 2.7.0 Ok: queued as Q7, 1 of 2 refused, no bounce (null sender)"


def test_a_refusal_for_an_unverified_outside_sender_says_no_bounce_goes_out() -> None:
    # From an untrusted client with no authentication result, the sender may be forged: the
    # reply must not promise a bounce that backscatter protection will not send.
    verdicts = (verdict(A), verdict(B))
    envelope = Envelope("someone@example.org", (A, B), b"Subject: x\r\n\r\nhi\r\n",
                        client_ip="192.0.2.7", client_trusted=False, queue_id="Q7")
    d = Decision(envelope, party("someone@example.org"), verdicts)
    outcome = _fold(d, (A,), (), {B: UNKNOWN}, None, "")
    assert outcome.line == ("250 2.7.0 Ok: queued as Q7, 1 of 2 refused, "
                            "no bounce (unverified sender)")


def refusals(*verdicts: Verdict,
             upstream: dict[str, tuple[int, str]] | None = None) -> dict[str, tuple[int, str]]:
    """What carry_out folds: the upstream's refusals, then the policy's."""
    refused = dict(upstream or {})
    refused.update(_policy_refusals([v for v in verdicts if v.action is Action.REJECT]))
    return refused


REJECTED = [
    # (label, verdicts, upstream refusals, the one reply)
    ("policy reject cites the rules",
     (verdict(A, Action.REJECT, "P7", "P9"),), {},
     (550, f"{POLICY_REJECT[1]} (P7, P9)")),
    ("a rule's own reject text and code",
     (verdict(A, Action.REJECT, "P12", reject_text="554 5.7.1 Not from this account"),), {},
     (554, "5.7.1 Not from this account")),
    ("a reject text without a code keeps 550",
     (verdict(A, Action.REJECT, "P12", reject_text="5.7.1 Ask the office"),), {},
     (550, "5.7.1 Ask the office")),
    ("upstream refused everyone: its reply is passed on",
     (verdict(B),), {B: UNKNOWN}, UNKNOWN),
    ("the first recipient in envelope order decides",
     (verdict(C), verdict(B)), {B: UNKNOWN, C: BUSY_PERMANENT}, BUSY_PERMANENT),
    ("policy first, then upstream, in envelope order",
     (verdict(A, Action.REJECT, "P7"), verdict(B)), {B: UNKNOWN},
     (550, f"{POLICY_REJECT[1]} (P7)")),
    ("a refusal that is not 5xx is answered 550",
     (verdict(B),), {B: (421, "4.3.2 shutting down")}, (550, "4.3.2 shutting down")),
    ("keyed by the client's spelling of the RCPT",
     (verdict(B, rcpt="B@Example.COM"),), {"B@Example.COM": UNKNOWN}, UNKNOWN),
    ("no refusal names a recipient: the policy's generic refusal",
     (verdict(B),), {}, POLICY_REJECT),
]


@pytest.mark.parametrize(("label", "verdicts", "upstream", "reply"), REJECTED,
                         ids=[r[0] for r in REJECTED])
def test_a_message_nobody_gets_is_refused_with_the_first_refusal(
        label: str, verdicts: tuple[Verdict, ...], upstream: dict[str, tuple[int, str]],
        reply: tuple[int, str]) -> None:
    d = decision(*verdicts)
    refused = refusals(*verdicts, upstream=upstream)
    outcome = _fold(d, (), (), refused, "ignored-quarantine-id", "550 from upstream")
    assert (outcome.code, outcome.text, outcome.kind) == (*reply, "rejected")
    assert outcome.refused == refused
    assert outcome.delivered == () and outcome.held == ()
    assert outcome.quarantine_id is None  # nothing was held
    assert outcome.upstream_reply == "550 from upstream"


def test_policy_refusals_are_keyed_by_envelope_address_with_code_and_text() -> None:
    refused = _policy_refusals([verdict(A, Action.REJECT, "P7", rcpt="A@Students.Example"),
                                verdict(C, Action.REJECT, "P12",
                                        reject_text="553 5.7.1 Use the District account")])
    assert refused == {"A@Students.Example": (550, f"{POLICY_REJECT[1]} (P7)"),
                       C: (553, "5.7.1 Use the District account")}


def test_a_held_copy_carries_the_schools_of_sender_and_held_recipients() -> None:
    teacher = Party("teacher@staff.example", Role.STAFF, True, "T1",
                    schools=frozenset({"Lincoln"}))
    student = Party(A, Role.STUDENT, False, "S1", schools=frozenset({"Roosevelt"}))
    other = Party(B, Role.STUDENT, False, "S2", schools=frozenset({"Washington"}))
    held = Verdict(student, Action.HOLD, (RuleMatch("P1", Action.HOLD, "P1 matched"),))
    relayed = Verdict(other, Action.RELAY)
    envelope = Envelope(teacher.address, (A, B), b"Subject: x\r\n\r\nhi\r\n", queue_id="Q7")
    request = hold_request(Decision(envelope, teacher, (held, relayed)), [held])
    assert request.schools == ("Lincoln", "Roosevelt")  # not the relayed copy's school
