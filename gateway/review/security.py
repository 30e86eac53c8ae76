"""Response headers every console page carries, and the CSRF token every form carries.

The Content-Security-Policy allows nothing but the console's own stylesheet: no script at all,
no inline style, no image or frame from anywhere else, forms that post only back here. A held
message's HTML is sanitised before it is shown; this policy is what still holds if the
sanitiser ever misses something.

CSRF: a random token is kept in the signed session cookie and repeated in every form; a POST
whose token does not match is refused with 403 before it is read further. The session cookie is
SameSite=Lax besides (the OpenID Connect callback is a cross-site GET and must still carry it).
"""

from __future__ import annotations

import hmac
import secrets

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    # Held mail must not stay in a browser's or a proxy's cache after sign-out.
    "Cache-Control": "no-store",
}
HSTS = "max-age=31536000"
CSRF_FIELD = "csrf"


class SecurityHeaders:
    """Adds HEADERS to every response (and HSTS to those served over HTTPS)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, with_headers)


def csrf_token(request: Request) -> str:
    """The session's token, made on first use (the sign-in form has one too)."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


async def checked_form(request: Request) -> dict[str, list[str]]:
    """The posted form, once its CSRF token matches the session's; 403 otherwise."""
    form = await request.form(max_files=0, max_fields=2000)
    sent = form.get(CSRF_FIELD)
    expected = request.session.get(CSRF_FIELD)
    if not (isinstance(sent, str) and isinstance(expected, str)
            and hmac.compare_digest(sent.encode(), expected.encode())):
        raise HTTPException(403, "The form has expired or did not come from this console. "
                                 "Go back, reload the page and try again.")
    return {key: [str(v) for v in form.getlist(key)] for key in form}
