"""Prometheus metrics, defined once; the server and actions update them.

Names follow Prometheus conventions (`gateway_…_total` counters, `_seconds`/`_bytes`
histograms). Labels never carry addresses or content: only outcomes, rules and classes.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES = Counter("gateway_messages_total",
                   "Messages by final outcome (relayed, held, rejected, tempfail, split, error)",
                   ["outcome"], registry=REGISTRY)
RECIPIENTS = Counter("gateway_recipients_total", "Recipients by the action decided for them",
                     ["action"], registry=REGISTRY)
RULE_MATCHES = Counter("gateway_rule_matches_total", "Policy rule matches, per rule and mode",
                       ["rule", "mode"], registry=REGISTRY)
SMTP_REPLIES = Counter("gateway_smtp_replies_total",
                       "Replies to end-of-data by class (2xx, 4xx, 5xx)", ["code_class"],
                       registry=REGISTRY)
UPSTREAM_ERRORS = Counter("gateway_upstream_errors_total",
                          "Upstream failures (connect, timeout, tempfail, refused, dropped)",
                          ["kind"], registry=REGISTRY)
INSPECTION_SECONDS = Histogram("gateway_inspection_seconds",
                               "Time to inspect and decide one message",
                               buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5,
                                        1, 2.5, 5, 10, 30), registry=REGISTRY)
MESSAGE_BYTES = Histogram("gateway_message_size_bytes", "Size of received messages",
                          buckets=(1e3, 4e3, 16e3, 64e3, 256e3, 1e6, 4e6, 16e6, 64e6),
                          registry=REGISTRY)
QUARANTINE_HELD = Counter("gateway_quarantine_held_total", "Copies written to quarantine",
                          registry=REGISTRY)
SESSIONS = Gauge("gateway_sessions_in_flight", "SMTP sessions currently open",
                 registry=REGISTRY)
RELOADS = Counter("gateway_policy_reloads_total", "Policy/directory reloads by result",
                  ["result"], registry=REGISTRY)
NOTIFICATIONS = Counter("gateway_notifications_total", "Notices sent by the gateway, by kind",
                        ["kind", "result"], registry=REGISTRY)
