"""The per-client connection rate: a sliding minute, per address, bounded in memory."""

from __future__ import annotations

from gateway.smtp import anvil
from gateway.smtp.anvil import ConnectionRates


def test_a_client_gets_its_rate_per_sliding_minute() -> None:
    rates = ConnectionRates()
    assert all(rates.allow("192.0.2.1", t, 3) for t in (0.0, 10.0, 20.0))
    assert not rates.allow("192.0.2.1", 30.0, 3)  # a fourth within the minute
    assert rates.allow("192.0.2.2", 30.0, 3)  # another address has its own
    assert not rates.allow("192.0.2.1", 59.9, 3)  # refusals are not counted...
    assert rates.allow("192.0.2.1", 60.5, 3)  # ...so the first one leaving frees a place


def test_the_idlest_addresses_are_forgotten_first(monkeypatch) -> None:
    monkeypatch.setattr(anvil, "MAX_TRACKED", 3)
    rates = ConnectionRates()
    for i, client in enumerate(("a", "b", "c")):
        rates.allow(client, float(i), 1)
    assert not rates.allow("a", 5.0, 1)  # "a" is now the most recent
    rates.allow("d", 6.0, 1)  # over the bound: "b", the idlest, goes
    assert list(rates.recent) == ["c", "a", "d"]
