"""The alerts docs/operations.md recommends, checked against a real daemon's /metrics.

An alert on a series that does not exist (a typo, a label value the code never uses, a counter
that only appears on its first increment) never fires; nothing in Prometheus says so. Every
series each documented alert names must be in the exposition, with one worker and with several,
before any mail has flowed, and the functions must suit the metric types.
"""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import metrics
from tests.factories import REPO
from tests.harness import DaemonProcess, http_get
from tests.integration.test_worker_health import environment, notify_socket, write_config
from tests.upstream import Upstream

__all__ = ["notify_socket"]  # the fixture, used here too

DOCS = REPO / "docs" / "operations.md"
SELECTOR = re.compile(r"\b(gateway_[a-z_]+)(?:\{([^}]*)\})?")
MATCHER = re.compile(r'(\w+)\s*=\s*"([^"]*)"')
ONLY_WITH_WORKERS = {"gateway_workers_alive", "gateway_workers_expected",
                     "gateway_worker_heartbeat_age_seconds"}


def documented_alerts() -> list[str]:
    text = DOCS.read_text()
    block = text.split("Useful alerts", 1)[1].split("\n\n", 2)[1]
    alerts = [m.group(1) for m in re.finditer(r"^- `([^`]*gateway_[^`]*)`", block, re.M)]
    assert len(alerts) >= 5, block
    return alerts


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
async def scraped(request: pytest.FixtureRequest, tmp_path: Path, upstream: Upstream,
                  notify_socket: tuple[str, socket.socket]) -> AsyncIterator[tuple[int, dict]]:
    workers = request.param
    config = write_config(tmp_path, upstream.port, workers=workers)
    proc = await DaemonProcess(config, environment(notify_socket[0])).start()
    try:
        await proc.wait_event("health_listening")
        families: dict = {}
        for _ in range(600):  # until the first count of the review queue is in
            status, body = await http_get(proc.health_port, "/metrics")
            assert status == 200
            families = {f.name: f for f in text_string_to_metric_families(body.decode())}
            if "gateway_quarantine_awaiting_review" in families and (
                    workers == 1 or "gateway_workers_alive" in families):
                break
        yield workers, families
    finally:
        await proc.close()


def _family(families: dict, name: str) -> tuple[object, str]:
    """The family a sample name belongs to, and the sample name itself."""
    for suffix in ("_total", "_bucket", "_count", "_sum", ""):
        base = name.removesuffix(suffix) if suffix else name
        if base in families:
            return families[base], name
    raise AssertionError(f"{name}: no such metric in /metrics")


def problems(alert: str, workers: int, families: dict) -> list[str]:
    found = []
    for match in SELECTOR.finditer(alert):
        name, matchers = match.group(1), dict(MATCHER.findall(match.group(2) or ""))
        if workers == 1 and name in ONLY_WITH_WORKERS:
            continue
        family, sample_name = _family(families, name)
        # absent(x{l="v"}) fires when that series is missing: the label must exist, the
        # value is what the alert is waiting for.
        only_keys = re.search(rf"\babsent\(\s*{name}\b", alert) is not None
        samples = [s for s in family.samples  # type: ignore[attr-defined]
                   if s.name == sample_name and all(
                       k in s.labels if only_keys else s.labels.get(k) == v
                       for k, v in matchers.items())]
        if not samples:
            found.append(f"{alert}: no {name} series with {matchers}")
        kind = family.type  # type: ignore[attr-defined]
        wrapped = re.search(rf"\b(rate|increase)\(\s*{name}\b", alert) is not None
        if wrapped != (kind in ("counter", "histogram")):
            found.append(f"{alert}: rate/increase on {name}, a {kind}, is wrong"
                         if wrapped else f"{alert}: {name} is a {kind}, use rate/increase")
    return found


async def test_every_series_the_alerts_name_exists(scraped: tuple[int, dict]) -> None:
    workers, families = scraped
    found = [p for alert in documented_alerts() for p in problems(alert, workers, families)]
    assert found == []


def test_the_check_catches_a_misspelt_label_and_a_rate_on_a_gauge() -> None:
    text = ('# TYPE gateway_policy_reloads_total counter\n'
            'gateway_policy_reloads_total{result="failure"} 0\n'
            '# TYPE gateway_workers_alive gauge\ngateway_workers_alive 2\n')
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert problems('increase(gateway_policy_reloads_total{result="failure"}[5m]) > 0', 2,
                    families) == []
    assert problems('increase(gateway_policy_reloads_total{result="failed"}[5m]) > 0', 2,
                    families)
    assert problems("rate(gateway_workers_alive[5m]) > 0", 2, families)


async def test_build_info_names_the_engine_and_version(scraped: tuple[int, dict]) -> None:
    _, families = scraped
    (sample,) = families["gateway_build_info"].samples
    assert sample.value == 1
    assert sample.labels["regex_engine"] in ("hyperscan", "re2", "re")
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", sample.labels["version"])
    assert sample.labels["python"].startswith("3.")


def test_documented_label_values_match_the_code() -> None:
    """Each label value the code creates at start is named in the metrics table."""
    text = DOCS.read_text()
    for values in metrics.LABELS.values():
        for label_values in values.values():
            for value in label_values:
                assert f"`{value}`" in text, value
