"""The console's pages over HTTPS (httpx on the ASGI app): scope, audit of every view, release
through the real release path to an aiosmtpd upstream, delete, bulk actions, search."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from gateway.quarantine import open_store
from gateway.quarantine.reviewbase import QueueQuery, Scope
from gateway.review.app import create_app
from gateway.smtp.client import Relay
from tests.factories import STUDENT_PERSONAL, TEACHER, held_message, hold_request
from tests.review.conftest import LINCOLN, World, build_world, csrf_of, signed_in


async def test_queue_of_a_school_reviewer_shows_only_that_school(console_app: Any,
                                                                 world: World) -> None:
    c = await signed_in(console_app, "lincoln")
    page = (await c.http.get("/queue")).text
    assert world.ids["lincoln"] in page
    assert world.ids["washington"] not in page and world.ids["p10"] not in page
    assert "1 entry, oldest first" in page
    await c.aclose()


async def test_rule_reviewer_sees_the_rule_and_administrator_everything(
        console_app: Any, world: World) -> None:
    hr = await signed_in(console_app, "hr")
    page = (await hr.http.get("/queue")).text
    assert world.ids["p10"] in page and world.ids["lincoln"] not in page
    admin = await signed_in(console_app, "admin")
    page = (await admin.http.get("/queue")).text
    assert all(entry_id in page for entry_id in world.ids.values())
    assert "3 entries, oldest first" in page
    await hr.aclose()
    await admin.aclose()


async def test_filters_by_school_rule_status_and_age(console_app: Any, world: World) -> None:
    admin = await signed_in(console_app, "admin")
    by_school = (await admin.http.get("/queue", params={"school": LINCOLN})).text
    assert world.ids["lincoln"] in by_school and world.ids["washington"] not in by_school
    by_rule = (await admin.http.get("/queue", params={"rule": "P7"})).text
    assert world.ids["washington"] in by_rule and world.ids["lincoln"] not in by_rule
    released = (await admin.http.get("/queue", params={"status": "released"})).text
    assert "Nothing here" in released
    old = (await admin.http.get("/queue", params={"age": "1d"})).text
    assert "Nothing here" in old  # everything was held just now
    await admin.aclose()


async def test_another_schools_entry_by_id_is_404_and_not_audited(console_app: Any,
                                                                  world: World) -> None:
    c = await signed_in(console_app, "lincoln")
    for path in (f"/entry/{world.ids['washington']}",
                 f"/entry/{world.ids['washington']}/attachment/0"):
        response = await c.http.get(path)
        assert response.status_code in (403, 404)
        assert "Grades" not in response.text
    token = await c.token()
    response = await c.http.post(f"/entry/{world.ids['washington']}/delete",
                                 data={"csrf": token, "reason": "not mine"})
    assert response.status_code == 404
    assert world.store.get(world.ids["washington"]).status == "held"
    assert [r.action for r in world.store.audit(world.ids["washington"])] == ["hold"]
    await c.aclose()


async def test_every_view_is_in_the_audit_trail_with_who(console_app: Any,
                                                         world: World) -> None:
    c = await signed_in(console_app, "lincoln")
    page = await c.http.get(f"/entry/{world.ids['lincoln']}")
    assert page.status_code == 200 and "Field trip" in page.text
    views = [r for r in world.store.audit(world.ids["lincoln"]) if r.action == "view"]
    assert len(views) == 1
    assert views[0].operator == "principal@staff.example.org"
    assert views[0].detail["client"]
    await c.aclose()


async def test_release_arrives_upstream_and_is_audited_with_the_reason(
        tmp_path: Path, upstream: Any) -> None:
    w = build_world(tmp_path, upstream.port)
    relay = Relay(w.settings.upstream, w.settings.smtp.hostname)
    app = create_app(w.settings, w.store, relay.send)
    c = await signed_in(app, "lincoln")
    page = await c.http.get(f"/entry/{w.ids['lincoln']}")
    response = await c.http.post(f"/entry/{w.ids['lincoln']}/release",
                                 data={"csrf": csrf_of(page.text), "reason": "trip form, fine"})
    assert response.status_code == 303
    assert len(upstream.messages) == 1
    assert upstream.messages[0].mail_from == TEACHER
    assert upstream.messages[0].rcpt_tos == [STUDENT_PERSONAL]
    assert upstream.messages[0].content.startswith(b"Received: ")
    release = [r for r in w.store.audit(w.ids["lincoln"]) if r.action == "release"]
    assert release[0].operator == "principal@staff.example.org"
    assert release[0].reason == "trip form, fine"
    shown = (await c.http.get(f"/entry/{w.ids['lincoln']}")).text
    assert "released to 1 recipient" in shown
    await c.aclose()
    await relay.close()
    w.store.close()


async def test_release_with_the_upstream_down_stays_held_and_says_so(console_app: Any,
                                                                    world: World) -> None:
    c = await signed_in(console_app, "lincoln")  # upstream port 9: nothing listens
    token = await c.token(f"/entry/{world.ids['lincoln']}")
    await c.http.post(f"/entry/{world.ids['lincoln']}/release",
                      data={"csrf": token, "reason": "ok"})
    assert world.store.get(world.ids["lincoln"]).status == "held"
    page = (await c.http.get(f"/entry/{world.ids['lincoln']}")).text
    assert "NOT to 1" in page and "stays held" in page
    await c.aclose()


async def test_delete_needs_a_reason_and_is_audited(console_app: Any, world: World) -> None:
    c = await signed_in(console_app, "lincoln")
    token = await c.token()
    entry = world.ids["lincoln"]
    empty = await c.http.post(f"/entry/{entry}/delete", data={"csrf": token, "reason": " "})
    assert empty.status_code == 400
    assert world.store.get(entry).status == "held"
    done = await c.http.post(f"/entry/{entry}/delete",
                             data={"csrf": token, "reason": "personal note, not needed"})
    assert done.status_code == 303
    assert world.store.get(entry).status == "deleted"
    assert world.store.content(entry) is None
    row = next(r for r in world.store.audit(entry) if r.action == "delete")
    assert (row.operator, row.reason) == ("principal@staff.example.org",
                                          "personal note, not needed")
    await c.aclose()


async def test_bulk_delete_acts_only_within_scope(console_app: Any, world: World) -> None:
    c = await signed_in(console_app, "lincoln")
    token = await c.token()
    response = await c.http.post("/bulk", data={
        "csrf": token, "action": "delete", "reason": "cleanup",
        "id": [world.ids["lincoln"], world.ids["washington"]]})
    assert response.status_code == 303
    assert world.store.get(world.ids["lincoln"]).status == "deleted"
    assert world.store.get(world.ids["washington"]).status == "held"  # not theirs
    notice = (await c.http.get("/queue")).text
    assert "1 entry not found" in notice
    await c.aclose()


async def test_search_is_posted_scoped_and_audited(console_app: Any, world: World) -> None:
    c = await signed_in(console_app, "lincoln")
    token = await c.token()
    found = (await c.http.post("/search", data={"csrf": token, "q": "trip"})).text
    assert world.ids["lincoln"] in found and "1 match" in found
    other = (await c.http.post("/search", data={"csrf": token, "q": "Grades"})).text
    assert world.ids["washington"] not in other and "0 matches" in other
    assert any(r.action == "search" and r.operator == "principal@staff.example.org"
               for r in world.store.audit())
    await c.aclose()


async def test_audit_page_shows_who_did_what_within_scope(console_app: Any,
                                                          world: World) -> None:
    c = await signed_in(console_app, "lincoln")
    await c.http.get(f"/entry/{world.ids['lincoln']}")
    page = (await c.http.get("/audit")).text
    assert "principal@staff.example.org" in page and ">view<" in page
    assert world.ids["washington"] not in page
    await c.aclose()


@pytest.mark.parametrize("who,allowed", [("admin", True), ("lincoln", False)])
async def test_attachments_only_for_allowed_roles_and_audited(
        tmp_path: Path, who: str, allowed: bool) -> None:
    w = build_world(tmp_path)
    content = held_message("Roster", attachment=b"name,grade\nA,B\n")
    entry = w.store.hold(dataclasses.replace(hold_request(content, queue_id="Q9"),
                                             schools=(LINCOLN,))).id
    app = create_app(w.settings, w.store, None)
    c = await signed_in(app, who)
    page = (await c.http.get(f"/entry/{entry}")).text
    response = await c.http.get(f"/entry/{entry}/attachment/0")
    if allowed:
        assert response.status_code == 200 and response.content == b"name,grade\nA,B\n"
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["content-disposition"].startswith("attachment;")
        assert any(r.action == "download" for r in w.store.audit(entry))
        assert f"/entry/{entry}/attachment/0" in page
    else:
        assert response.status_code == 403
        assert f"/entry/{entry}/attachment/0" not in page
        assert not any(r.action == "download" for r in w.store.audit(entry))
    await c.aclose()
    w.store.close()


def test_the_store_applies_scope_in_the_query(world: World) -> None:
    entries, total = world.store.queue(QueueQuery(scope=Scope(schools=frozenset({LINCOLN}))))
    assert total == 1 and [e.id for e in entries] == [world.ids["lincoln"]]
    entries, total = world.store.queue(QueueQuery(scope=Scope()))
    assert (entries, total) == ([], 0)  # an empty scope sees nothing


async def test_two_consoles_releasing_one_entry_at_once_deliver_it_once(
        tmp_path: Path, upstream: Any, store_url: str | None) -> None:
    """Two console instances on one store (two stores here: two connection pools on
    PostgreSQL), two reviewers pressing release at the same moment: one delivery, one
    release in the audit trail, and the other reviewer is told."""
    w = build_world(tmp_path, upstream.port, url=store_url)
    second_store = open_store(w.settings)
    relay = Relay(w.settings.upstream, w.settings.smtp.hostname)
    apps = [create_app(w.settings, w.store, relay.send),
            create_app(w.settings, second_store, relay.send)]
    clients = [await signed_in(app, who) for app, who in zip(apps, ("lincoln", "admin"),
                                                                strict=True)]
    entry = w.ids["lincoln"]
    tokens = [await c.token(f"/entry/{entry}") for c in clients]
    await asyncio.gather(*(c.http.post(f"/entry/{entry}/release",
                                       data={"csrf": t, "reason": "fine"})
                           for c, t in zip(clients, tokens, strict=True)))
    assert len(upstream.messages) == 1
    assert [r.action for r in w.store.audit(entry)].count("release") == 1
    pages = [(await c.http.get(f"/entry/{entry}")).text for c in clients]
    assert sum("released to 1 recipient" in p for p in pages) == 1
    assert sum("releasing it right now" in p or "nothing was still held" in p
               for p in pages) == 1
    for c in clients:
        await c.aclose()
    await relay.close()
    second_store.close()
    w.store.close()
