"""The soak's ledger (bench/soak_ledger.py) on hand-made records: it must find what is lost,
held twice or duplicated without cause, and explain what SMTP's at-least-once duplicates."""

from __future__ import annotations

from typing import Any

from bench.soak_ledger import Attempt, FaultWindow, Message, build_ledger

RCPT = "parent@parents.example"


def accepted(token: str, *earlier: Attempt, rcpts: tuple[str, ...] = (RCPT,)) -> Message:
    final = Attempt(token, 10.0, 11.0, "250", "250 2.0.0 Ok: queued as Q1", "Q1", rcpts,
                    after_data=True)
    return Message(token, "relayed", rcpts, [*earlier, final])


def at_sink(token: str, *rcpts: str, dsn: bool = False,
            failed: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"tokens": [token], "rcpts": list(rcpts), "queue_id": "Q1", "dsn": dsn,
            "failed": list(failed)}


def held(token: str, *rcpts: str, rules: tuple[str, ...] = ("P7",)) -> dict[str, Any]:
    return {"message_id": f"<{token}@soak.example>", "recipients": list(rcpts),
            "rules": list(rules)}


def test_each_place_a_message_can_be_counts_and_nothing_else() -> None:
    messages = [accepted("soak-a-1"), accepted("soak-a-2"), accepted("soak-a-3"),
                accepted("soak-a-4"), accepted("soak-a-5")]
    ledger = build_ledger(
        messages,
        [at_sink("soak-a-1", RCPT), at_sink("soak-a-3", "t@staff", dsn=True, failed=(RCPT,))],
        [held("soak-a-2", RCPT), held("soak-a-4", "t@staff", rules=("DSN",))], [])
    assert (ledger.delivered, ledger.held, ledger.bounced, ledger.bounce_held) == (1, 1, 1, 1)
    assert [item.split()[0] for item in ledger.lost] == ["soak-a-5"]
    assert not ledger.clean


def test_a_second_copy_after_a_lost_reply_is_explained() -> None:
    lost = Attempt("soak-b-1", 1.0, 2.0, "lost", "TimeoutError", after_data=True)
    ledger = build_ledger([accepted("soak-b-1", lost)],
                          [at_sink("soak-b-1", RCPT), at_sink("soak-b-1", RCPT)], [], [])
    assert ledger.clean
    assert ledger.duplicates == {"client retried after a lost reply": 1}


def test_a_second_copy_without_an_ambiguous_attempt_is_a_defect() -> None:
    refused_early = Attempt("soak-c-1", 1.0, 2.0, "4xx", "451 busy")  # before the data ended
    ledger = build_ledger([accepted("soak-c-1", refused_early)],
                          [at_sink("soak-c-1", RCPT), at_sink("soak-c-1", RCPT)], [], [])
    assert not ledger.clean and "delivered 2 times" in ledger.defects[0]


def test_held_twice_is_a_defect_even_after_a_retry() -> None:
    lost = Attempt("soak-d-1", 1.0, 2.0, "lost", "ConnectionResetError", after_data=True)
    ledger = build_ledger([accepted("soak-d-1", lost)], [],
                          [held("soak-d-1", RCPT), held("soak-d-1", RCPT)], [])
    assert not ledger.clean and "held 2 times" in ledger.defects[0]


def test_refused_and_deferred_messages_are_not_accepted_and_must_be_nowhere() -> None:
    refused = Message("soak-e-1", "refused", (RCPT,),
                      [Attempt("soak-e-1", 1.0, 2.0, "5xx", "554 no", after_data=True)])
    deferred = Message("soak-e-2", "relayed", (RCPT,),
                       [Attempt("soak-e-2", 1.0, 2.0, "4xx", "451 later", after_data=True)])
    ledger = build_ledger([refused, deferred], [at_sink("soak-e-1", RCPT)], [], [])
    assert (ledger.refused, ledger.gave_up, ledger.accepted) == (1, 1, 0)
    assert "though no attempt got 250" in ledger.defects[0]


def test_the_fault_table_counts_attempts_overlapping_each_window() -> None:
    retry = Attempt("soak-f-1", 1.0, 1.5, "dropped", "ConnectionRefusedError")
    ledger = build_ledger([accepted("soak-f-1", retry)], [at_sink("soak-f-1", RCPT)], [],
                          [FaultWindow("gateway_killed", 0.5, 3.0)])
    [row] = ledger.faults
    assert (row["injected"], row["attempts"], row["dropped"], row["then_accepted"]) == (
        1, 1, 1, 1)
