"""The sd_notify protocol, spoken directly over `$NOTIFY_SOCKET` (no python-systemd needed).

Why: with `Type=notify` systemd considers the service started only after READY=1, so
dependants (and `systemctl start`) wait until the listening sockets are really open; with
`WatchdogSec=` systemd restarts a daemon whose event loop has stopped turning. Every function
is a no-op when `NOTIFY_SOCKET` is unset (a terminal, a container, a test), and a failed send is
logged and ignored: telling systemd about our state must never take the daemon down.

Protocol: one AF_UNIX datagram of newline-separated `KEY=value` assignments; an address that
starts with '@' is in the Linux abstract namespace. Reloads follow systemd ≥ 253
(`Type=notify-reload` semantics): RELOADING=1 together with MONOTONIC_USEC, then READY=1.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

import structlog

log = structlog.get_logger("gateway.sdnotify")


def _address() -> str | None:
    """The socket to talk to, in the form `socket.sendto` wants, or None when not under systemd."""
    raw = os.environ.get("NOTIFY_SOCKET", "")
    if not raw:
        return None
    if raw.startswith("@"):
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    return None  # e.g. vsock: addresses are not for us


def notify(*assignments: str) -> bool:
    """Send `KEY=value` assignments as one datagram; True when it was delivered."""
    address = _address()
    if address is None or not assignments:
        return False
    message = "\n".join(assignments).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)  # a full receive queue must not stall the event loop
            sock.sendto(message, address)
    except OSError as exc:
        log.warning("sd_notify_failed", error=type(exc).__name__, errno=exc.errno)
        return False
    return True


def ready(status: str | None = None) -> bool:
    """Listening sockets are open and the first policy is loaded."""
    return notify("READY=1", *_status(status))


def reloading(status: str | None = None) -> bool:
    """A SIGHUP reload starts; follow with `ready()` when it is done (success or not)."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify("RELOADING=1", f"MONOTONIC_USEC={usec}", *_status(status))


def stopping(status: str | None = None) -> bool:
    """Shutdown (drain) has begun."""
    return notify("STOPPING=1", *_status(status))


def status(text: str) -> bool:
    """Free-form line shown by `systemctl status`; must not carry student data."""
    return notify(*_status(text))


def watchdog() -> bool:
    """One keep-alive ping."""
    return notify("WATCHDOG=1")


def _status(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    return ("STATUS=" + " ".join(text.split()),)  # one line: a newline would end the value


def watchdog_interval() -> float | None:
    """Seconds between pings (half of WatchdogSec), or None when no watchdog is expected.

    `WATCHDOG_PID`, when set, names the process systemd watches; a child that inherited the
    environment must not ping on the parent's behalf.
    """
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2 / 1_000_000 if usec > 0 else None


async def watchdog_loop(interval: float) -> None:
    """Ping every `interval` seconds for as long as the event loop keeps turning."""
    while True:
        watchdog()
        await asyncio.sleep(interval)


def start_watchdog() -> asyncio.Task[None] | None:
    """Start the ping task when systemd expects one; the caller keeps and cancels the task."""
    interval = watchdog_interval()
    if interval is None or _address() is None:
        return None
    log.info("watchdog_started", interval_seconds=round(interval, 3))
    return asyncio.create_task(watchdog_loop(interval), name="sd-watchdog")
