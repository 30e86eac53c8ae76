"""The console application: routes, middleware and what the pages share.

Every page but `/healthz`, `/signin` and the stylesheet goes through `pages.signed_in`, which
loads the account from the store on every request: an account disabled a minute ago is signed
out at its next click, on every console instance.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from gateway.auth.seal import sealer_for
from gateway.config import Settings
from gateway.quarantine.base import QuarantineStore
from gateway.quarantine.reviewbase import ReviewStore
from gateway.review import pages, signin
from gateway.review.accounts import Throttle
from gateway.review.oidc import oidc_client
from gateway.review.security import SecurityHeaders

HERE = Path(__file__).parent
SECRET_NAME = "review_session_secret"


class ConsoleStore(QuarantineStore, ReviewStore, Protocol):
    """The store the console needs: the daemon's protocol and the console's."""


@dataclass
class Console:
    settings: Settings
    store: Any  # ConsoleStore
    send: Any  # gateway.actions.release.Send
    templates: Jinja2Templates
    throttle: Throttle
    oidc: Any = None  # authlib StarletteOAuth2App when review.oidc is configured
    seal: Any = None  # ARC-seals released copies that annotations change, as the daemon does


def create_app(settings: Settings, store: Any, send: Any, *,
               throttle: Throttle | None = None, on_shutdown: Any = None) -> Starlette:
    review = settings.review
    secret = review.session_secret or store.console_secret(SECRET_NAME,
                                                           secrets.token_urlsafe(48))
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["oidc_label"] = review.oidc.label if review.oidc else None
    oidc = oidc_client(review.oidc) if review.oidc is not None else None
    sealer = sealer_for(settings)
    console = Console(settings, store, send, templates, throttle or Throttle(), oidc,
                      sealer.seal if sealer is not None else None)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await on_shutdown()

    cookie = "__Host-review" if review.secure_cookies else "review"
    app = Starlette(
        routes=[*pages.routes(), *signin.routes(),
                Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")],
        middleware=[Middleware(SecurityHeaders),
                    Middleware(SessionMiddleware, secret_key=secret, session_cookie=cookie,
                               max_age=int(review.session_lifetime), same_site="lax",
                               https_only=review.secure_cookies)],
        exception_handlers=pages.EXCEPTION_HANDLERS,
        lifespan=lifespan)
    app.state.console = console
    return app
