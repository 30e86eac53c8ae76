"""Sign-in and sign-out: local accounts (argon2) and the district's OpenID Connect provider.

A session is the signed cookie holding the account name, when it began, the account's session
epoch and the CSRF token. Signing out, disabling the account or setting its password moves
the epoch on in the store, which ends every session begun before (whatever cookie copies
exist).
Signing in starts a fresh session (nothing from before survives, the CSRF token included).
Failures say only "wrong name or password" and are counted per name and per client address
(`accounts.Throttle`); past the limit the form answers 429 without checking the password.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.quarantine import Actor
from gateway.quarantine.reviewbase import Account
from gateway.quarantine.times import utcnow
from gateway.review import accounts
from gateway.review.oidc import finish
from gateway.review.pages import client_address, console, render
from gateway.review.security import CSRF_FIELD, checked_form

log = structlog.get_logger("gateway.review")


def routes() -> list[Route]:
    return [Route("/signin", signin_page, methods=["GET"]),
            Route("/signin", signin_local, methods=["POST"]),
            Route("/signin/oidc", signin_oidc, methods=["GET"]),
            Route("/signin/oidc/callback", oidc_callback, methods=["GET"], name="oidc_callback"),
            Route("/signout", signout, methods=["POST"])]


async def signin_page(request: Request) -> Response:
    if request.session.get("account"):
        return RedirectResponse("/queue", 303)
    return render(request, "signin.html", {})


async def signin_local(request: Request) -> Response:
    form = await checked_form(request)
    name = (form.get("name") or [""])[0].strip().lower()[:254]
    password = (form.get("password") or [""])[0][:1024]
    c = console(request)
    client = client_address(request)
    now = utcnow()
    if await asyncio.to_thread(c.throttle.blocked, c.store, name, client, now):
        log.warning("review_signin_throttled", client=client)
        return render(request, "signin.html", {
            "error": "Too many failed sign-ins. Wait a few minutes and try again."}, 429)
    account = await asyncio.to_thread(c.store.account, name) if name else None
    ok = await asyncio.to_thread(accounts.check_password, account, password)
    if not ok or account is None:
        await asyncio.to_thread(c.throttle.failed, c.store, name, client, now)
        # A name that is no account is not logged: people type passwords into name fields.
        log.warning("review_signin_failed", account=account.name if account else None,
                    client=client, method="password")
        return render(request, "signin.html", {"error": "Wrong name or password.",
                                               "name": name}, 401)
    await asyncio.to_thread(c.throttle.succeeded, c.store, name, client)
    if account.password_hash and accounts.needs_rehash(account.password_hash):
        new_hash = await asyncio.to_thread(accounts.hash_password, password)
        # A new hash ends the account's sessions; this one begins after it.
        account = await asyncio.to_thread(c.store.update_account, name,
                                          Actor(name, "console"), password_hash=new_hash)
    return begin_session(request, account, "password")


def begin_session(request: Request, account: Account, method: str) -> Response:
    request.session.clear()
    request.session.update({"account": account.name, "since": int(time.time()),
                            "epoch": account.session_epoch,
                            CSRF_FIELD: secrets.token_urlsafe(32)})
    log.info("review_signin", account=account.name, client=client_address(request),
             method=method)
    return RedirectResponse("/queue", 303)


async def signout(request: Request) -> Response:
    """Ends the account's sessions in the store, not only this cookie: a copy of the cookie
    (another browser, a stolen one) is refused from now on, by every console instance."""
    await checked_form(request)
    name = request.session.get("account")
    request.session.clear()
    if isinstance(name, str) and name:
        await asyncio.to_thread(console(request).store.end_sessions, name)
        log.info("review_signout", account=name, client=client_address(request))
    return RedirectResponse("/signin", 303)


async def signin_oidc(request: Request) -> Response:
    c = console(request)
    if c.oidc is None:
        return render(request, "signin.html", {"error": "No identity provider is configured."},
                      404)
    try:
        response: Response = await c.oidc.authorize_redirect(request, _callback_url(request))
    except Exception as exc:  # the provider's discovery document cannot be fetched or read
        log.error("review_oidc_unavailable", error=type(exc).__name__)
        return render(request, "signin.html", {
            "error": "The district's sign-in service cannot be reached right now. Try again "
                     "in a few minutes, or sign in with a console password."}, 502)
    return response


async def oidc_callback(request: Request) -> Response:
    c = console(request)
    if c.oidc is None or c.settings.review.oidc is None:
        return render(request, "signin.html", {"error": "No identity provider is configured."},
                      404)
    client = client_address(request)
    try:
        name = await finish(c.oidc, request, c.settings.review.oidc)
    except Exception as exc:  # Authlib's errors, a bad token, a refused domain
        log.warning("review_signin_failed", client=client, method="oidc",
                    error=type(exc).__name__)
        reason = str(exc) if isinstance(exc, ValueError) else "the identity provider's " \
            "answer could not be verified"
        return render(request, "signin.html", {"error": f"Sign-in failed: {reason}."}, 401)
    account = await asyncio.to_thread(c.store.account, name)
    if account is None or account.disabled:
        log.warning("review_signin_refused", account=name, client=client, method="oidc")
        return render(request, "signin.html", {
            "error": "You signed in, but you have no review console account. Ask IT to add "
                     "one for " + name + "."}, 403)
    return begin_session(request, account, "oidc")


def _callback_url(request: Request) -> str:
    public = console(request).settings.review.public_url
    if public:
        return public + "/signin/oidc/callback"
    return str(request.url_for("oidc_callback"))
