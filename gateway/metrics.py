"""Prometheus metrics, defined once; the server and actions update them.

Names follow Prometheus conventions (`gateway_…_total` counters, `_seconds`/`_bytes`
histograms). Labels never carry addresses or content: only outcomes, rules and classes.

Callers look a metric up at the time they update it (`metrics.MESSAGES.labels(...)`), never
keep one: a forked worker (`smtp.workers`) defines them all again to write prometheus_client's
multiprocess files (`use_multiprocess_files`).

Every label value the code can use is created at zero when the metrics are defined (`LABELS`):
a series that only appears on its first increment is invisible to `increase()` and `rate()`
for that first event, so an alert on the first failed reload would never fire.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector

import gateway

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
WORKER_RESTARTS: Counter
BUILD_INFO: Gauge

# The label values each labelled metric can take, created at zero (see the module docstring).
# Rule names are the district's own (policies.yaml), so rule matches start when they happen.
LABELS: dict[str, dict[str, tuple[str, ...]]] = {
    "MESSAGES": {"outcome": ("relayed", "held", "rejected", "tempfail", "split", "error")},
    "RECIPIENTS": {"action": ("relay", "annotate", "hold", "reject")},
    "SMTP_REPLIES": {"code_class": ("2xx", "4xx", "5xx")},
    "UPSTREAM_ERRORS": {"kind": ("connect", "timeout", "tempfail", "refused", "dropped",
                                 "protocol")},
    "RELOADS": {"result": ("success", "failure")},
    "NOTIFICATIONS": {"kind": ("supervisor", "reviewers", "sender", "dsn"),
                      "result": ("sent", "failed", "suppressed")},
    "AUTH_RESULTS": {"dmarc": ("pass", "fail", "none", "temperror", "permerror")},
    "WORKER_RESTARTS": {"reason": ("exited", "stalled")},
}


def define(registry: CollectorRegistry) -> None:
    """Create every metric in `registry` (at import, and again in a forked worker)."""
    global REGISTRY, MESSAGES, RECIPIENTS, RULE_MATCHES, SMTP_REPLIES, UPSTREAM_ERRORS
    global INSPECTION_SECONDS, MESSAGE_BYTES, QUARANTINE_HELD, SESSIONS, RELOADS, NOTIFICATIONS
    global AUTH_RESULTS, WORKER_RESTARTS, BUILD_INFO
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
    WORKER_RESTARTS = Counter("gateway_worker_restarts_total",
                              "Worker processes replaced: `exited` (died on its own) or "
                              "`stalled` (its event loop stopped turning; killed)", ["reason"],
                              registry=registry)
    # max: every process reports the same 1, so the workers' sum would be wrong and their pids
    # as labels would be noise.
    BUILD_INFO = Gauge("gateway_build_info",
                       "Always 1; the labels say which gateway, Python and regex engine run",
                       ["version", "python", "regex_engine"], registry=registry,
                       multiprocess_mode="max")
    _initialise_labels()


def _initialise_labels() -> None:
    for name, labels in LABELS.items():
        metric = globals()[name]
        combos: list[dict[str, str]] = [{}]
        for label, choices in labels.items():
            combos = [dict(c, **{label: v}) for c in combos for v in choices]
        for combo in combos:
            metric.labels(**combo)


def version() -> str:
    """The installed distribution's version, or the source tree's when run from a checkout."""
    try:
        return metadata.version("district-mail-gateway")
    except metadata.PackageNotFoundError:
        return gateway.__version__


def set_build_info(regex_engine: str) -> None:
    """One series with value 1; the engine is the one the loaded inspector uses."""
    BUILD_INFO.labels(version=version(), python=platform.python_version(),
                      regex_engine=regex_engine).set(1)


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
