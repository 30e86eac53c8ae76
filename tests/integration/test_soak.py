"""The ledger soak, short: the real gateway (two workers, a subprocess) and a recording
upstream, every fault injected at least once under a few hundred messages, and every message
that got a 250 found again (bench/soak.py; `make soak` runs the long one)."""

from __future__ import annotations

from pathlib import Path

from bench.soak import FAULTS, SoakParams, report, run_soak


def test_every_accepted_message_is_accounted_for_under_faults(tmp_path: Path) -> None:
    params = SoakParams.quick()
    ledger, figures = run_soak(params, tmp_path)
    text = report(ledger, figures)
    assert ledger.clean, text
    injected = {row["fault"] for row in ledger.faults}
    assert injected == set(FAULTS) - set(figures["faults_skipped"]), text
    assert figures["faults_skipped"] in ([], ["quarantine_full"])  # only without mount rights
    assert all(row["attempts"] > 0 for row in ledger.faults), text  # each met the load
    summary = ledger.summary()
    assert summary["accepted"] >= 100 and summary["never_accepted"] == 0, text
    # The mix reached every place a message can end up.
    assert summary["delivered"] and summary["held"] and summary["bounced"], text
    assert summary["refused_5xx"], text
