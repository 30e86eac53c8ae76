"""Sender authentication for the daemon: the checks of one message in a thread of their own,
bounded by a deadline, never on the event loop.

The threads are the authenticator's own pool, not asyncio's default one: a slow or silent
DNS server must not take the threads that message inspection needs. When the deadline
passes, the message goes on with what was learned and temperror for the rest; the thread
finishes its last lookup (bounded by `authentication.timeout`) in the background.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import structlog

from gateway.auth.headers import with_results
from gateway.auth.resolver import Resolver
from gateway.auth.seal import sealer_for
from gateway.auth.verify import MessageFacts, Progress, authenticate
from gateway.config import Settings
from gateway.model import AuthResults

log = structlog.get_logger("gateway.auth")

AUTH_THREADS = 16  # DNS waits, not CPU: more than the cores, fewer than the sessions


class Authenticator:
    """One per serving process and configuration (a reload makes a new one, new cache)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.auth = settings.authentication
        self.authserv_id = self.auth.authserv_id or settings.smtp.hostname
        self.resolver = Resolver(self.auth)
        self.sealer = sealer_for(settings)
        self._pool = ThreadPoolExecutor(AUTH_THREADS, thread_name_prefix="auth")

    async def check(self, facts: MessageFacts) -> AuthResults:
        """The results within the deadline; temperror for what is missing at the deadline."""
        progress = Progress()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, authenticate, self.resolver, self.auth,
                                      facts, self.settings.district.domains, progress)
        try:
            async with asyncio.timeout(self.auth.deadline):
                return await future
        except TimeoutError:
            log.warning("auth_deadline_exceeded", deadline=self.auth.deadline)
            return progress.results(timed_out=True)
        except Exception as exc:  # a library defect on hostile input: not verified, no crash
            # By name only: a parser's message may quote the message's headers.
            log.error("auth_failed", error=type(exc).__name__)
            return progress.results(timed_out=True)

    def annotate(self, content: bytes, results: AuthResults) -> bytes:
        return with_results(content, self.authserv_id, results)

    def close(self) -> None:
        # Messages still being checked finish on the old pool; it goes once they are done.
        self._pool.shutdown(wait=False)
