"""XFORWARD (Postfix's XFORWARD_README): the real client behind a Postfix that hands mail to
the gateway (`smtp_send_xforward_command = yes` on its content_filter transport).

Only hosts listed in `smtp.xforward_hosts` are offered the command and may use it; for them,
the forwarded client address, HELO name and queue id replace the connection's for
trusted_networks, sender authentication, P13 and the log line. Relay control stays with the
connecting host: the Postfix in front already decided who may relay.

The attributes live on aiosmtpd's envelope object, which aiosmtpd makes anew after each
message, RSET and EHLO: they never outlive the transaction they were sent for.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

ATTRIBUTES = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE")
EHLO_LINE = "250-XFORWARD " + " ".join(ATTRIBUTES)
UNAVAILABLE = ("[UNAVAILABLE]", "[TEMPUNAVAIL]")
_XTEXT = re.compile(r"\+([0-9A-Fa-f]{2})")
MAX_VALUE = 255

OK = "250 2.0.0 Ok"
NOT_AUTHORISED = "550 5.7.0 Error: insufficient authorization"
IN_TRANSACTION = "503 5.5.1 Error: MAIL transaction in progress"
SYNTAX = "501 5.5.4 Syntax: XFORWARD attribute=value..."
BAD_NAME = "501 5.5.4 Bad XFORWARD attribute name"


def parse(arg: str | None) -> dict[str, str] | str:
    """The attributes of one XFORWARD command, xtext-decoded; or the error reply."""
    if not arg or not arg.strip():
        return SYNTAX
    out: dict[str, str] = {}
    for item in arg.split():
        name, sep, value = item.partition("=")
        name = name.upper()
        if not sep or not value:
            return SYNTAX
        if name not in ATTRIBUTES:
            return BAD_NAME
        decoded = _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)
        if len(decoded) > MAX_VALUE or not decoded.isprintable():
            return SYNTAX
        out[name] = decoded
    return out


def forwarded(envelope: Any, name: str) -> str | None:
    """An attribute forwarded for this transaction; None if absent or unavailable."""
    attrs: dict[str, str] = getattr(envelope, "xforward", None) or {}
    value = attrs.get(name)
    if value is None or value.upper() in UNAVAILABLE:
        return None
    if name == "ADDR":
        value = value[5:] if value.upper().startswith("IPV6:") else value
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return None  # not an address: as unavailable, the connection's is used
    return value
