"""The review console's world: a store with three held entries (two schools and a P10 one), an
administrator and two reviewers with different scopes, and the console app over them, spoken
to over HTTPS through httpx's ASGI transport on the test's own event loop (so a release reaches
the test's aiosmtpd upstream)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config import Settings
from gateway.quarantine import Actor, open_store
from gateway.quarantine.reviewbase import Account
from gateway.review.accounts import hash_password
from gateway.review.app import create_app
from gateway.smtp.client import Relay
from tests.factories import (
    PARENT,
    STUDENT_PERSONAL,
    held_message,
    hold_request,
    write_quarantine_settings,
)

PASSWORD = "correct horse battery staple"
LINCOLN = "Lincoln Elementary"
WASHINGTON = "Washington High"
ACCOUNTS = {
    "admin": Account("admin", "administrator"),
    "lincoln": Account("principal@staff.example.org", "reviewer", schools=(LINCOLN,),
                       email="principal@staff.example.org"),
    "hr": Account("hr@staff.example.org", "reviewer", rules=("P10",),
                  email="hr@staff.example.org"),
}
CONSOLE_YAML = """
review:
  listen: "127.0.0.1:0"
  public_url: "https://review.example.org"
  attachment_roles: [administrator]
"""


@dataclass
class World:
    settings: Settings
    store: Any
    ids: dict[str, str]  # lincoln, washington, p10


def build_world(tmp_path: Path, upstream_port: int = 9, extra: str = CONSOLE_YAML,
                url: str | None = None) -> World:
    """The world on the SQLite file, or on the PostgreSQL database at `url`."""
    settings = write_quarantine_settings(tmp_path, upstream_port, extra=extra, url=url)
    store = open_store(settings)
    hashed = hash_password(PASSWORD)
    for account in ACCOUNTS.values():
        store.add_account(dataclasses.replace(account, password_hash=hashed),
                          Actor("setup", "test"))
    ids = {
        "lincoln": store.hold(dataclasses.replace(
            hold_request(held_message("Field trip"), recipients=(STUDENT_PERSONAL,)),
            schools=(LINCOLN,))).id,
        "washington": store.hold(dataclasses.replace(
            hold_request(held_message("Grades"), recipients=(PARENT,), rules=("P7",)),
            schools=(WASHINGTON,))).id,
        "p10": store.hold(hold_request(held_message("You idiot"), rules=("P10",),
                                       queue_id="QID3")).id,
    }
    return World(settings, store, ids)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """Each console test once on SQLite (None) and once on a real PostgreSQL server."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def world(tmp_path: Path, store_url: str | None) -> Iterator[World]:
    w = build_world(tmp_path, url=store_url)
    yield w
    w.store.close()


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF token in the page"
    return match.group(1)


class Console:
    """An HTTPS client of the console app, signed in or not."""

    def __init__(self, app: Any):
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                      base_url="https://testserver",
                                      headers={"accept": "text/html"})

    async def sign_in(self, name: str, password: str = PASSWORD) -> httpx.Response:
        page = await self.http.get("/signin")
        return await self.http.post("/signin", data={
            "csrf": csrf_of(page.text), "name": name, "password": password})

    async def token(self, path: str = "/queue") -> str:
        return csrf_of((await self.http.get(path)).text)

    async def aclose(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def console_app(world: World) -> AsyncIterator[Any]:
    relay = Relay(world.settings.upstream, world.settings.smtp.hostname)
    yield create_app(world.settings, world.store, relay.send)
    await relay.close()


@pytest.fixture
async def client(console_app: Any) -> AsyncIterator[Console]:
    c = Console(console_app)
    yield c
    await c.aclose()


async def signed_in(app: Any, who: str) -> Console:
    c = Console(app)
    response = await c.sign_in(ACCOUNTS[who].name)
    assert response.status_code == 303, response.text
    return c
