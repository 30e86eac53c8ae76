"""How often each client address connects: a rate limit per address, as Postfix's anvil keeps.

A client over `smtp.max_connections_per_minute` new connections in the last 60 seconds is
turned away with 421 4.7.0 until its rate drops; the district's own relays
(`trusted_networks`) are never counted. One event loop per process: no locks.
"""

from __future__ import annotations

from collections import deque

WINDOW = 60.0  # seconds
MAX_TRACKED = 50_000  # client addresses remembered at once; the idlest are forgotten first


class ConnectionRates:
    def __init__(self) -> None:
        self.recent: dict[str, deque[float]] = {}

    def allow(self, client: str, now: float, per_minute: int) -> bool:
        """Count a new connection from `client` at `now`; False (not counted) when it already
        made `per_minute` of them within the last minute."""
        times = self.recent.pop(client, None)  # re-inserted last: the dict stays idlest-first
        if times is None:
            times = deque()
        while times and times[0] <= now - WINDOW:
            times.popleft()
        allowed = len(times) < per_minute
        if allowed:
            times.append(now)
        self.recent[client] = times
        if len(self.recent) > MAX_TRACKED:
            del self.recent[next(iter(self.recent))]
        return allowed
