"""The review console in a real browser: Debian's chromium driven by Playwright, against
`gateway review` running as a subprocess over TLS, releasing to a real SMTP upstream.

A principal signs in, sees only their school's queue, opens an entry, releases it (the message
arrives upstream), deletes another, and finds both in the audit trail. Screenshots of the main
pages land in `test-artifacts/review/` (gitignored) for a human to look at. The browser also
reports any Content-Security-Policy violation as a console error: there must be none.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright

from tests.factories import STUDENT_PERSONAL, TEACHER, held_message, hold_request
from tests.harness import REPO, free_port, self_signed
from tests.review.conftest import ACCOUNTS, LINCOLN, PASSWORD, build_world

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts" / "review"


async def wait_listening(port: int, proc: asyncio.subprocess.Process, log: Path) -> None:
    for _ in range(300):
        if proc.returncode is not None:
            raise AssertionError(f"gateway review exited: {log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"gateway review did not listen: {log.read_text()[-3000:]}")


@pytest.fixture
async def console_url(tmp_path: Path, upstream: Any) -> AsyncIterator[tuple[str, dict[str, str]]]:
    port = free_port()
    cert, key = self_signed(tmp_path, "review.test")
    world = build_world(tmp_path, upstream.port, extra=f"""
review:
  listen: "127.0.0.1:{port}"
  tls: {{cert: {cert}, key: {key}}}
""")
    second = world.store.hold(dataclasses.replace(
        hold_request(held_message("Bus times"), queue_id="QID4"), schools=(LINCOLN,))).id
    ids = {**world.ids, "second": second}
    world.store.close()
    log = tmp_path / "review.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "review", "--config", str(world.settings.source),
            cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=out, stderr=asyncio.subprocess.STDOUT)
    try:
        await wait_listening(port, proc, log)
        yield f"https://127.0.0.1:{port}", ids
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_principal_reviews_their_school_in_a_browser(
        console_url: tuple[str, dict[str, str]], upstream: Any) -> None:
    base, ids = console_url
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM,
                                           args=["--no-sandbox", "--disable-gpu"])
        context = await browser.new_context(ignore_https_errors=True,
                                            viewport={"width": 1280, "height": 800})
        page = await context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        try:
            await page.goto(base + "/queue")
            assert page.url == base + "/signin"
            await shot(page, "signin")
            await page.fill("input[name=name]", ACCOUNTS["lincoln"].name)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button:has-text('Sign in')")
            await page.wait_for_url(base + "/queue")

            # The queue: this principal's school only.
            queue = await page.inner_text("table.queue")
            assert ids["lincoln"] in queue and ids["second"] in queue
            assert ids["washington"] not in queue and ids["p10"] not in queue
            assert "2 entries" in await page.inner_text("h1")
            await shot(page, "queue")

            # One entry, then release it.
            await page.click(f"a:has-text('{ids['lincoln']}')")
            await page.wait_for_url(f"{base}/entry/{ids['lincoln']}")
            assert "P1 matched" in await page.inner_text("main")
            await shot(page, "entry")
            await page.fill("form[action$='/release'] input[name=reason]", "field trip form")
            await page.click("button:has-text('Release to held recipients')")
            await page.wait_for_selector(".notice")
            assert "released to 1 recipient" in await page.inner_text(".notice")
            assert len(upstream.messages) == 1
            assert upstream.messages[0].mail_from == TEACHER
            assert upstream.messages[0].rcpt_tos == [STUDENT_PERSONAL]
            await shot(page, "entry-released")

            # Delete the other one.
            await page.goto(f"{base}/entry/{ids['second']}")
            await page.fill("form[action$='/delete'] input[name=reason]", "duplicate notice")
            await page.click("button:has-text('Delete the held copy')")
            await page.wait_for_selector(".notice")
            assert "deleted" in await page.inner_text(".notice")

            # Another school's entry by id: not found, nothing shown.
            before = len(errors)
            response = await page.goto(f"{base}/entry/{ids['washington']}")
            assert response is not None and response.status == 404
            assert "Grades" not in await page.content()
            del errors[before:]  # the browser reports that 404 itself

            # The audit trail: who, what, why.
            await page.goto(base + "/audit")
            trail = await page.inner_text("table.audit")
            who = ACCOUNTS["lincoln"].name
            assert f"{who}\trelease\t{ids['lincoln']}\tfield trip form" in trail
            assert f"{who}\tdelete\t{ids['second']}\tduplicate notice" in trail
            assert f"{who}\tview\t{ids['lincoln']}" in trail
            await shot(page, "audit")
        finally:
            await browser.close()
    assert not errors, errors  # no CSP violation, no failed resource
