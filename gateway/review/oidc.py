"""Sign-in through the district's OpenID Connect provider (Google Workspace, Microsoft Entra).

Authlib does the protocol: discovery, the authorization-code flow with state and nonce, the
token request, and the ID token's signature (the provider's JWKS), issuer, audience, expiry and
nonce. What is ours is only who that makes the person: an e-mail address the provider vouches
for (Google's `email` with `email_verified`; Entra's `preferred_username`, the tenant's own user
name, when it gives no verified e-mail), inside `review.oidc.domains` when that is set. The
address must also name an enabled console account: the provider says who someone is, the
console's accounts say what they may see.
"""

from __future__ import annotations

import warnings
from typing import Any

from authlib.deprecate import AuthlibDeprecationWarning
from starlette.requests import Request

with warnings.catch_warnings():
    # Authlib 1.9 announces, at import, a future move from httpx to "httpx2"; httpx is what
    # it uses today (hence the cap below 2 in pyproject.toml). Not an operator's concern.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App

from gateway.config import OidcSettings

NAME = "district"


def oidc_client(settings: OidcSettings) -> StarletteOAuth2App:
    oauth = OAuth()
    issuer = settings.issuer.rstrip("/")
    oauth.register(NAME, client_id=settings.client_id, client_secret=settings.client_secret,
                   server_metadata_url=f"{issuer}/.well-known/openid-configuration",
                   client_kwargs={"scope": "openid email profile"})
    client = oauth.create_client(NAME)
    assert isinstance(client, StarletteOAuth2App)
    return client


async def finish(client: StarletteOAuth2App, request: Request,
                 settings: OidcSettings) -> str:
    """The verified identity (lower-case address); ValueError with a reason to show."""
    token = await client.authorize_access_token(request)
    claims = token.get("userinfo") or {}
    return identity(claims, settings)


def identity(claims: dict[str, Any], settings: OidcSettings) -> str:
    email = claims.get("email")
    if isinstance(email, str) and claims.get("email_verified") is True:
        name = email
    elif isinstance(claims.get("preferred_username"), str) and "@" in claims["preferred_username"]:
        name = claims["preferred_username"]
    else:
        raise ValueError("the identity provider did not confirm an e-mail address")
    name = name.strip().lower()
    domain = name.rpartition("@")[2]
    if settings.domains and domain not in settings.domains:
        raise ValueError("that account is not in the district's domains")
    hosted = claims.get("hd")
    if settings.domains and hosted is not None and str(hosted).lower() not in settings.domains:
        raise ValueError("that account is not in the district's domains")
    return name
