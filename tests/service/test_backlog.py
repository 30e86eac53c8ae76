"""The review-queue gauges: nothing until counted, then the count and a growing age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest

from gateway.service.backlog import BacklogCollector
from gateway.service.health import served_registry
from tests.harness import metric, metric_samples


def _scrape(collector: BacklogCollector) -> dict:
    registry = served_registry(CollectorRegistry, [collector])
    return metric_samples(generate_latest(registry).decode())


def test_nothing_is_shown_before_the_first_count() -> None:
    assert "gateway_quarantine_awaiting_review" not in str(_scrape(BacklogCollector()))


def test_count_and_age_of_the_oldest() -> None:
    backlog = BacklogCollector()
    backlog.update(4, datetime.now(UTC) - timedelta(days=2))
    samples = _scrape(backlog)
    assert metric(samples, "gateway_quarantine_awaiting_review") == 4
    assert metric(samples, "gateway_quarantine_oldest_held_age_seconds") >= 2 * 86400


def test_empty_queue_is_age_zero_and_an_unreadable_store_shows_nothing() -> None:
    backlog = BacklogCollector()
    backlog.update(0, None)
    samples = _scrape(backlog)
    assert ("gateway_quarantine_oldest_held_age_seconds", frozenset()) in samples
    assert metric(samples, "gateway_quarantine_oldest_held_age_seconds") == 0
    backlog.clear()
    assert not _scrape(backlog)
