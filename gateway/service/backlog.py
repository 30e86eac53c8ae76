"""`/metrics` for the review queue: how much held mail awaits a reviewer, and for how long.

Why: mail nobody reviews should page someone long before `quarantine purge` deletes it. The
count and the oldest entry's time come from one indexed query run now and then in a thread by
the daemon (never per message); the age is worked out at scrape time from the oldest entry's
time, so it keeps growing between refreshes as the real age does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class BacklogCollector(Collector):
    """Shows nothing until the first count has been read (a made-up 0 would be a lie)."""

    def __init__(self) -> None:
        self._known = False
        self._count = 0
        self._oldest: datetime | None = None

    def update(self, count: int, oldest: datetime | None) -> None:
        self._count, self._oldest, self._known = count, oldest, True

    def clear(self) -> None:
        """The store could not be read: show no figure rather than a stale one."""
        self._known = False

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not self._known:
            return
        yield GaugeMetricFamily("gateway_quarantine_awaiting_review",
                                "Held messages with at least one recipient awaiting review",
                                value=self._count)
        age = 0.0
        if self._oldest is not None:
            age = max(0.0, (datetime.now(UTC) - self._oldest).total_seconds())
        yield GaugeMetricFamily("gateway_quarantine_oldest_held_age_seconds",
                                "Age of the oldest message awaiting review (0 when none)",
                                value=round(age, 3))
