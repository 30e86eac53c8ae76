"""The console's security properties, each asked of the app over HTTPS."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route
from structlog.testing import capture_logs

from gateway.quarantine import Actor
from gateway.review.accounts import Throttle, hash_password
from gateway.review.app import create_app
from tests.factories import crlf, hold_request, message
from tests.review.conftest import (
    ACCOUNTS,
    LINCOLN,
    PASSWORD,
    Console,
    World,
    build_world,
    signed_in,
)

PROTECTED_GETS = ["/queue", "/audit", "/entry/{id}", "/entry/{id}/attachment/0"]


@pytest.mark.parametrize("path", PROTECTED_GETS)
async def test_no_session_redirects_a_browser_and_shows_no_data(client: Console, world: World,
                                                                path: str) -> None:
    response = await client.http.get(path.format(id=world.ids["lincoln"]))
    assert response.status_code == 303
    assert response.headers["location"] == "/signin"
    assert "Field trip" not in response.text and world.ids["lincoln"] not in response.text


@pytest.mark.parametrize("path", PROTECTED_GETS)
async def test_no_session_is_401_for_a_non_html_request(client: Console, world: World,
                                                        path: str) -> None:
    response = await client.http.get(path.format(id=world.ids["lincoln"]),
                                     headers={"accept": "application/json"})
    assert response.status_code == 401
    assert world.ids["lincoln"] not in response.text


def post_routes(app: Any) -> list[str]:
    return sorted({r.path for r in app.routes
                   if isinstance(r, Route) and r.methods and "POST" in r.methods})


async def test_every_form_without_its_csrf_token_is_403(console_app: Any,
                                                        world: World) -> None:
    paths = post_routes(console_app)
    assert {"/signin", "/signout", "/search", "/bulk", "/entry/{entry_id}/release",
            "/entry/{entry_id}/delete"} <= set(paths)
    c = await signed_in(console_app, "admin")
    for path in paths:
        url = path.replace("{entry_id}", world.ids["lincoln"])
        data = {"reason": "x", "action": "delete", "id": world.ids["lincoln"], "q": "trip",
                "name": "admin", "password": PASSWORD}
        assert (await c.http.post(url, data=data)).status_code == 403, path
        forged = await c.http.post(url, data={**data, "csrf": "forged" * 8})
        assert forged.status_code == 403, path
    assert world.store.get(world.ids["lincoln"]).status == "held"
    await c.aclose()


async def test_headers_csp_and_cookie_flags(client: Console) -> None:
    response = await client.http.get("/signin")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["strict-transport-security"].startswith("max-age=")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-review=")
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= flags


async def test_held_html_is_sanitised_on_the_page(tmp_path: Path) -> None:
    w = build_world(tmp_path)
    hostile = crlf(message("plain part", subject="Look", html=(
        "<p onclick='x()'>Hi <script>alert(1)</script>"
        "<img src='https://tracker.example/p.gif'>"
        "<a href='javascript:alert(2)'>j</a><a href='https://ok.example/'>ok</a></p>")))
    entry = w.store.hold(dataclasses.replace(hold_request(hostile, queue_id="QH"),
                                             schools=(LINCOLN,))).id
    c = await signed_in(create_app(w.settings, w.store, None), "lincoln")
    page = (await c.http.get(f"/entry/{entry}")).text
    body = page[page.index('class="body html"'):]
    assert "<script" not in body and "alert(1)" not in body
    assert "tracker.example" not in page and "<img" not in page
    assert "javascript:" not in page and "onclick" not in page
    assert 'href="https://ok.example/"' in body and "noreferrer" in body
    assert "remote content were removed" in page
    await c.aclose()
    w.store.close()


async def test_sign_in_is_rate_limited_per_account(world: World) -> None:
    app = create_app(world.settings, world.store, None,
                     throttle=Throttle(per_account=3, per_client=100))
    c = Console(app)
    name = ACCOUNTS["lincoln"].name
    for _ in range(3):
        assert (await c.sign_in(name, "wrong password here")).status_code == 401
    blocked = await c.sign_in(name)  # the right password, but too late
    assert blocked.status_code == 429 and "Too many" in blocked.text
    other = await c.sign_in(ACCOUNTS["hr"].name)  # another account is unaffected
    assert other.status_code == 303
    await c.aclose()


async def test_sign_in_is_rate_limited_per_client(world: World) -> None:
    app = create_app(world.settings, world.store, None,
                     throttle=Throttle(per_account=100, per_client=2))
    c = Console(app)
    assert (await c.sign_in("nobody1", "x" * 12)).status_code == 401
    assert (await c.sign_in("nobody2", "x" * 12)).status_code == 401
    assert (await c.sign_in(ACCOUNTS["hr"].name)).status_code == 429
    await c.aclose()


async def test_wrong_password_and_unknown_name_look_the_same(client: Console) -> None:
    with capture_logs() as logs:
        wrong = await client.sign_in(ACCOUNTS["lincoln"].name, "not the password")
        unknown = await client.sign_in("my secret passphrase", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong name or password." in wrong.text and "Wrong name or password." in unknown.text
    # a password typed into the name field never reaches the log; no password ever does
    failures = [e for e in logs if e["event"] == "review_signin_failed"]
    assert [e["account"] for e in failures] == [ACCOUNTS["lincoln"].name, None]
    assert "passphrase" not in str(logs) and "not the password" not in str(logs)


async def test_a_disabled_account_is_signed_out_at_its_next_request(console_app: Any,
                                                                    world: World) -> None:
    c = await signed_in(console_app, "lincoln")
    assert (await c.http.get("/queue")).status_code == 200
    world.store.update_account(ACCOUNTS["lincoln"].name, Actor("it", "root"), disabled=True)
    response = await c.http.get("/queue")
    assert response.status_code == 303 and response.headers["location"] == "/signin"
    assert (await c.sign_in(ACCOUNTS["lincoln"].name)).status_code == 401
    await c.aclose()


async def test_sign_out_ends_the_session_and_every_copy_of_its_cookie(
        console_app: Any) -> None:
    c = await signed_in(console_app, "lincoln")
    copy = Console(console_app)  # the same cookie elsewhere: another tab, or a stolen copy
    copy.http.cookies = httpx.Cookies(c.http.cookies)
    assert (await copy.http.get("/queue")).status_code == 200
    token = await c.token()
    assert (await c.http.post("/signout", data={"csrf": token})).status_code == 303
    assert (await c.http.get("/queue")).status_code == 303
    assert (await copy.http.get("/queue")).status_code == 303  # refused by the server
    again = await signed_in(console_app, "lincoln")  # signing in again works
    assert (await again.http.get("/queue")).status_code == 200
    for client in (c, copy, again):
        await client.aclose()


async def test_a_new_password_ends_the_sessions_begun_before(console_app: Any,
                                                             world: World) -> None:
    c = await signed_in(console_app, "lincoln")
    assert (await c.http.get("/queue")).status_code == 200
    world.store.update_account(ACCOUNTS["lincoln"].name, Actor("it", "root"),
                               password_hash=hash_password("a brand new passphrase"))
    assert (await c.http.get("/queue")).status_code == 303
    assert (await c.sign_in(ACCOUNTS["lincoln"].name,
                            "a brand new passphrase")).status_code == 303
    assert (await c.http.get("/queue")).status_code == 200
    await c.aclose()


async def test_instances_on_one_store_share_sign_outs(world: World) -> None:
    first = create_app(world.settings, world.store, None)
    second = create_app(world.settings, world.store, None)  # another instance, same store
    c = await signed_in(first, "lincoln")
    other = Console(second)
    other.http.cookies = httpx.Cookies(c.http.cookies)
    await c.http.post("/signout", data={"csrf": await c.token()})
    assert (await other.http.get("/queue")).status_code == 303
    await c.aclose()
    await other.aclose()


async def test_logs_carry_no_message_content(console_app: Any, world: World) -> None:
    c = await signed_in(console_app, "admin")
    token = await c.token()
    with capture_logs() as logs:
        await c.http.get(f"/entry/{world.ids['washington']}")
        await c.http.post("/search", data={"csrf": token, "q": "Grades"})
        await c.http.post(f"/entry/{world.ids['washington']}/delete",
                          data={"csrf": token, "reason": "done"})
    events = {e["event"] for e in logs}
    assert {"quarantine_view", "review_delete"} <= events  # the actions were logged...
    logged = str(logs)
    assert "Grades" not in logged and "grades.csv" not in logged and "4321" not in logged
    assert "kid.home" not in logged and "parent@home" not in logged  # ...without content
    await c.aclose()


async def test_healthz_needs_no_session(client: Console) -> None:
    response = await client.http.get("/healthz")
    assert response.status_code == 200 and response.text == "ok\n"


async def test_instances_on_one_store_share_the_generated_session_secret(
        world: World) -> None:
    first = create_app(world.settings, world.store, None)
    second = create_app(world.settings, world.store, None)  # another instance, same store
    c = await signed_in(first, "lincoln")
    other = Console(second)
    other.http.cookies = c.http.cookies
    assert (await other.http.get("/queue")).status_code == 200
    await c.aclose()
    await other.aclose()


async def test_a_broken_store_is_503_and_reveals_nothing(console_app: Any,
                                                         world: World) -> None:
    c = await signed_in(console_app, "admin")
    world.store.close()  # the database goes away under the console
    response = await c.http.get("/queue")
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert "sqlite" not in response.text.lower() and "postgres" not in response.text.lower()
    await c.aclose()
