"""Prometheus metrics, defined once; the server and actions update them.

Names follow Prometheus conventions (`gateway_…_total` counters, `_seconds`/`_bytes`
histograms). Labels never carry addresses or content: only outcomes, rules and classes.

Callers look a metric up at the time they update it (`metrics.MESSAGES.labels(...)`), never
keep one: a forked worker (`smtp.workers`) defines them all again to write prometheus_client's
multiprocess files (`use_multiprocess_files`).
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector

REGISTRY: CollectorRegistry
MESSAGES: Counter
RECIPIENTS: Counter
RULE_MATCHES: Counter
SMTP_REPLIES: Counter
UPSTREAM_ERRORS: Counter
INSPECTION_SECONDS: Histogram
MESSAGE_BYTES: Histogram
QUARANTINE_HELD: Counter
SESSIONS: Gauge
RELOADS: Counter
NOTIFICATIONS: Counter
AUTH_RESULTS: Counter


def define(registry: CollectorRegistry) -> None:
    """Create every metric in `registry` (at import, and again in a forked worker)."""
    global REGISTRY, MESSAGES, RECIPIENTS, RULE_MATCHES, SMTP_REPLIES, UPSTREAM_ERRORS
    global INSPECTION_SECONDS, MESSAGE_BYTES, QUARANTINE_HELD, SESSIONS, RELOADS, NOTIFICATIONS
    global AUTH_RESULTS
    REGISTRY = registry
    MESSAGES = Counter("gateway_messages_total",
                       "Messages by final outcome (relayed, held, rejected, tempfail, split, "
                       "error)", ["outcome"], registry=registry)
    RECIPIENTS = Counter("gateway_recipients_total", "Recipients by the action decided for them",
                         ["action"], registry=registry)
    RULE_MATCHES = Counter("gateway_rule_matches_total", "Policy rule matches, per rule and mode",
                           ["rule", "mode"], registry=registry)
    SMTP_REPLIES = Counter("gateway_smtp_replies_total",
                           "Replies to end-of-data by class (2xx, 4xx, 5xx)", ["code_class"],
                           registry=registry)
    UPSTREAM_ERRORS = Counter("gateway_upstream_errors_total",
                              "Upstream failures (connect, timeout, tempfail, refused, dropped)",
                              ["kind"], registry=registry)
    INSPECTION_SECONDS = Histogram("gateway_inspection_seconds",
                                   "Time to inspect and decide one message",
                                   buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25,
                                            .5, 1, 2.5, 5, 10, 30), registry=registry)
    MESSAGE_BYTES = Histogram("gateway_message_size_bytes", "Size of received messages",
                              buckets=(1e3, 4e3, 16e3, 64e3, 256e3, 1e6, 4e6, 16e6, 64e6),
                              registry=registry)
    QUARANTINE_HELD = Counter("gateway_quarantine_held_total", "Copies written to quarantine",
                              registry=registry)
    # livesum: with several workers, the sessions open in the workers alive now
    SESSIONS = Gauge("gateway_sessions_in_flight", "SMTP sessions currently open",
                     registry=registry, multiprocess_mode="livesum")
    RELOADS = Counter("gateway_policy_reloads_total", "Policy/directory reloads by result",
                      ["result"], registry=registry)
    # result: sent | failed | suppressed (to an unverified sender: no backscatter)
    NOTIFICATIONS = Counter("gateway_notifications_total", "Notices sent by the gateway, by kind",
                            ["kind", "result"], registry=registry)
    AUTH_RESULTS = Counter("gateway_auth_dmarc_total",
                           "Messages from outside trusted_networks by DMARC result",
                           ["dmarc"], registry=registry)


def use_multiprocess_files(folder: Path) -> None:
    """In a forked worker: from now on every value goes to prometheus_client's multiprocess
    files in `folder`. The metrics created before the fork kept their values in memory, so
    they are defined anew."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    values.ValueClass = values.get_value_class()
    define(CollectorRegistry(auto_describe=True))


def sum_of_workers(folder: Path) -> CollectorRegistry:
    """A registry that reads every worker's multiprocess files (for one worker's /metrics)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    return registry


define(CollectorRegistry(auto_describe=True))
