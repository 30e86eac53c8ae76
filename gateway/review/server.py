"""Serve the console with uvicorn: directly over TLS, or plain HTTP behind a reverse proxy.

Behind a proxy, `review.trusted_proxies` names the addresses whose `X-Forwarded-For` and
`X-Forwarded-Proto` uvicorn believes; nobody else can claim another client address (which the
sign-in throttle counts) or HTTPS. uvicorn's access log is off: a request line is not worth
its risk in a log, and the console logs its own events (sign-in, release, delete) instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
import uvicorn

from gateway.config import Settings
from gateway.quarantine import QuarantineError, open_store
from gateway.review.app import create_app
from gateway.smtp.client import Relay

log = structlog.get_logger("gateway.review")


class ConsoleNotConfigured(QuarantineError):
    pass


def uvicorn_config(settings: Settings, app: Any) -> uvicorn.Config:
    review = settings.review
    if review.listen is None:
        raise ConsoleNotConfigured("review.listen is not configured (e.g. \"127.0.0.1:8025\")")
    proxies = ",".join(review.trusted_proxies)
    return uvicorn.Config(
        app, host=review.listen.host, port=review.listen.port,
        ssl_certfile=str(review.tls_cert) if review.tls_cert else None,
        ssl_keyfile=str(review.tls_key) if review.tls_key else None,
        proxy_headers=bool(proxies), forwarded_allow_ips=proxies or "",
        access_log=False, log_config=None, server_header=False, date_header=True,
        timeout_graceful_shutdown=10, lifespan="on")


def serve(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM; the store and the upstream connections close on the way out."""
    if settings.review.listen is None:
        raise ConsoleNotConfigured("review.listen is not configured (e.g. \"127.0.0.1:8025\")")
    if not settings.review.secure_cookies and settings.review.listen.host not in (
            "127.0.0.1", "::1", "localhost"):
        log.warning("review_insecure_cookies", listen=settings.review.listen.host,
                    advice="review.secure_cookies: false belongs on loopback trials only")
    store = open_store(settings)
    relay = Relay(settings.upstream, settings.smtp.hostname)
    try:
        app = create_app(settings, store, relay.send, on_shutdown=relay.close)
        server = uvicorn.Server(uvicorn_config(settings, app))
        log.info("review_start", listen=f"{settings.review.listen.host}:"
                 f"{settings.review.listen.port}", tls=settings.review.tls_cert is not None,
                 oidc=settings.review.oidc is not None)
        asyncio.run(server.serve())
    finally:
        store.close()
    return 0
