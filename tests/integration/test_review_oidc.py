"""OpenID Connect sign-in against a real provider on loopback (tests/review/oidc_issuer.py):
discovery, the authorization redirect, the token request and the ID token's signature all
happen over HTTP through Authlib, exactly as with Google or Entra."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.review.app import create_app
from tests.review.conftest import CONSOLE_YAML, Console, World, build_world
from tests.review.oidc_issuer import CLIENT_ID, CLIENT_SECRET, Issuer


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    i = await Issuer().start()
    yield i
    await i.stop()


@pytest.fixture
def oidc_world(tmp_path: Path, issuer: Issuer) -> Iterator[World]:
    w = build_world(tmp_path, extra=CONSOLE_YAML + f"""
  oidc:
    issuer: "{issuer.url}"
    client_id: {CLIENT_ID}
    client_secret: {CLIENT_SECRET}
    label: Sign in with District Google
    domains: [staff.example.org]
""")
    yield w
    w.store.close()


async def oidc_sign_in(app: Any) -> tuple[Console, httpx.Response]:
    """Follow the whole flow: console → provider → console callback."""
    c = Console(app)
    start = await c.http.get("/signin/oidc")
    assert start.status_code == 302, start.text
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(start.headers["location"])
    assert at_provider.status_code == 302
    callback = httpx.URL(at_provider.headers["location"])
    assert str(callback).startswith("https://review.example.org/signin/oidc/callback?")
    done = await c.http.get(f"{callback.path}?{callback.query.decode()}")
    return c, done


async def test_a_principal_signs_in_through_the_provider(oidc_world: World,
                                                         issuer: Issuer) -> None:
    issuer.claims = {"email": "Principal@staff.example.org", "email_verified": True,
                     "hd": "staff.example.org"}
    app = create_app(oidc_world.settings, oidc_world.store, None)
    signin = await Console(app).http.get("/signin")
    assert "Sign in with District Google" in signin.text
    c, done = await oidc_sign_in(app)
    assert done.status_code == 303 and done.headers["location"] == "/queue"
    page = (await c.http.get("/queue")).text
    assert oidc_world.ids["lincoln"] in page and oidc_world.ids["washington"] not in page
    assert issuer.token_requests == 1
    await c.aclose()


async def test_entra_style_identity_without_verified_email(oidc_world: World,
                                                           issuer: Issuer) -> None:
    issuer.claims = {"preferred_username": "hr@staff.example.org", "tid": "tenant"}
    c, done = await oidc_sign_in(create_app(oidc_world.settings, oidc_world.store, None))
    assert done.status_code == 303
    await c.aclose()


@pytest.mark.parametrize("change,status,text", [
    ({"claims": {"email": "stranger@staff.example.org", "email_verified": True}}, 403,
     "no review console account"),
    ({"claims": {"email": "principal@elsewhere.example", "email_verified": True}}, 401,
     "not in the district"),
    ({"claims": {"email": "principal@staff.example.org", "email_verified": False}}, 401,
     "did not confirm"),
    ({"sign_with_other_key": True,
      "claims": {"email": "principal@staff.example.org", "email_verified": True}}, 401,
     "could not be verified"),
    ({"audience": "another-client",
      "claims": {"email": "principal@staff.example.org", "email_verified": True}}, 401,
     "could not be verified"),
])
async def test_refused_identities_get_no_session(oidc_world: World, issuer: Issuer,
                                                 change: dict[str, Any], status: int,
                                                 text: str) -> None:
    for key, value in change.items():
        setattr(issuer, key, value)
    c, done = await oidc_sign_in(create_app(oidc_world.settings, oidc_world.store, None))
    assert done.status_code == status, done.text
    assert text in done.text
    assert (await c.http.get("/queue")).status_code == 303  # still signed out
    await c.aclose()


async def test_a_forged_callback_without_the_state_is_refused(oidc_world: World,
                                                              issuer: Issuer) -> None:
    issuer.claims = {"email": "principal@staff.example.org", "email_verified": True}
    c = Console(create_app(oidc_world.settings, oidc_world.store, None))
    done = await c.http.get("/signin/oidc/callback?code=abc&state=made-up")
    assert done.status_code == 401
    assert (await c.http.get("/queue")).status_code == 303
    await c.aclose()


async def test_an_unreachable_provider_is_said_and_local_sign_in_still_works(
        oidc_world: World, issuer: Issuer) -> None:
    await issuer.stop()
    c = Console(create_app(oidc_world.settings, oidc_world.store, None))
    response = await c.http.get("/signin/oidc")
    assert response.status_code == 502 and "cannot be reached" in response.text
    assert (await c.sign_in("admin")).status_code == 303
    await c.aclose()
    await issuer.start()  # the fixture stops it again
