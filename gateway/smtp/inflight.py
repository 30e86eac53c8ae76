"""A ceiling on the message bytes one process holds while receiving and deciding them.

Why: every session in DATA keeps its message in memory until it is decided and delivered. With
hundreds of sessions sending large messages at once (or never finishing them), memory would grow
with what clients choose to send. Each message reserves its bytes as they arrive; past the
ceiling the message is read to its end without being kept and answered `452 4.3.1` (the client
retries later), as Postfix answers when its queue is short of space. The reservation is given
back once the reply is sent.
"""

from __future__ import annotations

NO_ROOM = "452 4.3.1 Insufficient system storage, try again later"


class InFlight:
    """The process's pool of message bytes (one event loop: no lock needed)."""

    def __init__(self, ceiling: int):
        self.ceiling = ceiling
        self.used = 0

    def reserve(self) -> Reservation:
        return Reservation(self)


class Reservation:
    """What one message holds of the pool."""

    __slots__ = ("pool", "size")

    def __init__(self, pool: InFlight):
        self.pool = pool
        self.size = 0

    def grow(self, n: int) -> bool:
        """Hold `n` more bytes; False (and nothing held) when the pool has no room."""
        pool = self.pool
        if pool.used + n > pool.ceiling:
            return False
        pool.used += n
        self.size += n
        return True

    def release(self) -> None:
        self.pool.used -= self.size
        self.size = 0
