"""What both quarantine backends share: the retry key, entry ids, JSON columns, log lines.

Kept apart from the SQL so that SQLite and PostgreSQL hold, dedup, name and log an entry the
same way (and a quarantine copied from one to the other keeps its ids and keys).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

import structlog

from gateway.quarantine.base import HoldRequest, HoldResult

log = structlog.get_logger("gateway.quarantine")

# A sending MTA retries a 4xx for up to 5 days (Postfix maximal_queue_lifetime); within that
# window the same bytes to the same recipients are its retry, not a new message.
RETRY_WINDOW = timedelta(days=5)
DIGEST = "reviewers"  # the digest_state row of the reviewers' digest


def dedup_key(request: HoldRequest) -> str:
    """Same bytes, same sender, same recipient set → same key (a client's retry after 4xx)."""
    recipients = sorted({r.lower() for r in request.recipients})
    text = "\0".join([hashlib.sha256(request.content).hexdigest(), request.mail_from.lower(),
                      *recipients])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def is_retry(status: str, received: datetime, request: HoldRequest) -> bool:
    """An existing entry with the request's key is the client's retry while it is still held
    and recent; a reviewed or old one means the same message was sent again."""
    return status == "held" and received >= request.received - RETRY_WINDOW


def new_entry_id(received: datetime) -> str:
    """`YYYYMMDD-xxxxxxxx`: readable on a phone call, sortable, unguessable enough."""
    return f"{received:%Y%m%d}-{secrets.token_hex(4)}"


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def hold_audit_detail(request: HoldRequest) -> dict[str, Any]:
    return {"rules": list(request.rules), "recipients": len(set(request.recipients))}


def log_hold(request: HoldRequest, result: HoldResult) -> None:
    log.info("quarantine_hold", id=result.id, rules=list(request.rules),
             recipients=len(set(request.recipients)), size=len(request.content),
             duplicate=result.duplicate)


def escape_like(text: str) -> str:
    """`text` matched literally by `LIKE … ESCAPE '\\'` (its % and _ are not wildcards)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
