"""The console's pages: the queue, one entry, its actions, bulk actions, search, audit.

Every handler that touches held mail first loads the entry through the store's scoped read
(`get_scoped`, `queue`): an entry outside the reviewer's scope is "not found" (404), the same
answer as an id that does not exist, so ids cannot be probed. Store calls run in a thread; the
event loop only serves requests. Nothing from a message goes into a URL: search terms are
POSTed, attachments are addressed by position.
"""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.actions.release import release_entry
from gateway.quarantine import Actor, EntryNotFound, QuarantineError, ReleaseBusy, os_user
from gateway.quarantine.base import ENTRY_STATUSES, Entry
from gateway.quarantine.reviewbase import Account, QueueQuery
from gateway.quarantine.times import as_utc, utcnow
from gateway.review.message import attachment, safe_message
from gateway.review.security import checked_form, csrf_token

log = structlog.get_logger("gateway.review")
Handler = Callable[[Request, Account], Awaitable[Response]]
PAGE_SIZE = 100
AGES = {"1d": timedelta(days=1), "3d": timedelta(days=3), "7d": timedelta(days=7),
        "30d": timedelta(days=30)}
_ID = re.compile(r"^[0-9A-Za-z-]{4,64}$")


def routes() -> list[Route]:
    return [
        Route("/healthz", healthz), Route("/", home), Route("/favicon.ico", no_icon),
        Route("/queue", queue), Route("/search", search, methods=["POST"]),
        Route("/bulk", bulk, methods=["POST"]),
        Route("/entry/{entry_id}", entry_page, name="entry"),
        Route("/entry/{entry_id}/attachment/{index:int}", download),
        Route("/entry/{entry_id}/release", release, methods=["POST"]),
        Route("/entry/{entry_id}/delete", delete, methods=["POST"]),
        Route("/audit", audit_page),
    ]


# --- what every page shares -------------------------------------------------------------

def console(request: Request) -> Any:
    return request.app.state.console


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def render(request: Request, template: str, context: dict[str, Any],
           status: int = 200) -> Response:
    notice = request.session.pop("notice", None) if "session" in request.scope else None
    return console(request).templates.TemplateResponse(request, template, {
        "csrf": csrf_token(request), "notice": notice, "when": _when, "age": _age,
        **context}, status_code=status)


def signed_in(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Only for a signed-in, enabled account; otherwise the sign-in page (or 401)."""
    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        account = await _account(request)
        if account is None:
            if "text/html" in request.headers.get("accept", "") and request.method == "GET":
                return RedirectResponse("/signin", 303)
            return PlainTextResponse("sign-in required", 401,
                                     headers={"WWW-Authenticate": 'Cookie realm="review"'})
        request.state.account = account
        return await handler(request, account)
    return wrapper


async def _account(request: Request) -> Account | None:
    name = request.session.get("account")
    since = request.session.get("since")
    if not isinstance(name, str) or not isinstance(since, int):
        return None
    c = console(request)
    if since + c.settings.review.session_lifetime < utcnow().timestamp():
        request.session.clear()
        return None
    account: Account | None = await asyncio.to_thread(c.store.account, name)
    if account is None or account.disabled \
            or request.session.get("epoch") != account.session_epoch:
        request.session.clear()  # disabled, signed out elsewhere, or a new password since
        return None
    return account


def actor(account: Account) -> Actor:
    return Actor(account.name, f"{os_user()} (review console)")


async def _store(request: Request, method: str, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(getattr(console(request).store, method), *args, **kwargs)


# --- pages ------------------------------------------------------------------------------

async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def no_icon(request: Request) -> Response:
    return Response(status_code=204)


async def home(request: Request) -> Response:
    return RedirectResponse("/queue", 303)


@signed_in
async def queue(request: Request, account: Account) -> Response:
    params = request.query_params
    status = params.get("status", "held")
    age = params.get("age", "")
    page = max(int(params.get("page", "1")) if params.get("page", "1").isdigit() else 1, 1)
    query = QueueQuery(
        scope=account.scope, status=status if status in ENTRY_STATUSES else None,
        school=params.get("school") or None, rule=params.get("rule") or None,
        received_before=utcnow() - AGES[age] if age in AGES else None,
        limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    entries, total = await _store(request, "queue", query)
    counts = await _store(request, "queue_counts", account.scope)
    filters = {"status": status, "school": query.school or "", "rule": query.rule or "",
               "age": age}
    return render(request, "queue.html", {
        "account": account, "entries": entries, "total": total, "counts": counts,
        "filters": filters, "page": page, "pages": max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        "page_link": lambda n: "/queue?" + urlencode({**filters, "page": n}),
        "schools": sorted(set(counts.held_by_school) | set(account.schools)),
        "rules": sorted(set(counts.held_by_rule) | set(account.rules)),
        "statuses": ENTRY_STATUSES, "ages": list(AGES), "searched": None})


@signed_in
async def search(request: Request, account: Account) -> Response:
    form = await checked_form(request)
    text = (form.get("q") or [""])[0].strip()[:200]
    entries, total = (await _store(request, "queue", QueueQuery(
        scope=account.scope, status=None, text=text, limit=PAGE_SIZE))) if text else ([], 0)
    counts = await _store(request, "queue_counts", account.scope)
    await _store(request, "record", actor(account), "search", None, "searched the queue",
                 {"matches": total, "client": client_address(request)})
    return render(request, "queue.html", {
        "account": account, "entries": entries, "total": total, "counts": counts,
        "filters": {"status": "", "school": "", "rule": "", "age": ""}, "page": 1, "pages": 1,
        "page_link": lambda n: "/queue", "schools": sorted(counts.held_by_school),
        "rules": sorted(counts.held_by_rule), "statuses": ENTRY_STATUSES,
        "ages": list(AGES), "searched": text})


@signed_in
async def entry_page(request: Request, account: Account) -> Response:
    entry = await _scoped(request, account)
    # The view is on the record before anything of the message is sent.
    await _store(request, "record", actor(account), "view", entry.id, "opened in the console",
                 {"client": client_address(request)})
    content = await _store(request, "content", entry.id)
    message = await asyncio.to_thread(safe_message, content)
    trail = await _store(request, "audit_scoped", account.scope, entry.id, 200)
    return render(request, "entry.html", {
        "account": account, "entry": entry, "message": message, "trail": trail,
        "may_download": account.role in console(request).settings.review.attachment_roles})


@signed_in
async def download(request: Request, account: Account) -> Response:
    if account.role not in console(request).settings.review.attachment_roles:
        raise HTTPException(403, "Your role may not download attachments.")
    entry = await _scoped(request, account)
    content = await _store(request, "content", entry.id)
    index = int(request.path_params["index"])
    found = await asyncio.to_thread(attachment, content, index) if content else None
    if found is None:
        raise HTTPException(404, "No such attachment.")
    part, data = found
    await _store(request, "record", actor(account), "download", entry.id,
                 "attachment downloaded in the console",
                 {"attachment": index, "size": len(data), "client": client_address(request)})
    return Response(data, media_type="application/octet-stream", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(part.filename)}"})


@signed_in
async def bulk(request: Request, account: Account) -> Response:
    form = await checked_form(request)
    action = (form.get("action") or [""])[0]
    reason = _reason(form)
    ids = tuple(dict.fromkeys(i for i in form.get("id", []) if _ID.match(i)))[:PAGE_SIZE]
    if action not in ("release", "delete") or not ids:
        raise HTTPException(400, "Choose entries and an action.")
    # Re-read in scope: an id from outside it (a forged form) is simply not there.
    entries, _ = await _store(request, "queue", QueueQuery(
        scope=account.scope, status=None, ids=ids, limit=len(ids)))
    one = release_one if action == "release" else delete_one
    results = [await one(request, account, e, reason) for e in entries]
    skipped = len(ids) - len(entries)
    request.session["notice"] = " ".join(results) + (
        f" {skipped} entr{'y' if skipped == 1 else 'ies'} not found." if skipped else "")
    return RedirectResponse("/queue", 303)


@signed_in
async def audit_page(request: Request, account: Account) -> Response:
    records = await _store(request, "audit_scoped", account.scope, None, 500)
    return render(request, "audit.html", {"account": account, "records": records})


# --- actions ----------------------------------------------------------------------------

async def release_one(request: Request, account: Account, entry: Entry, reason: str) -> str:
    """Deliver through the same release path as `gateway quarantine release`."""
    settings = console(request).settings
    try:
        outcome = await release_entry(
            console(request).store, entry.id, actor(account), reason, console(request).send,
            hostname=settings.smtp.hostname,
            lease_seconds=settings.upstream.timeout * 4 + 60, seal=console(request).seal)
    except ReleaseBusy:
        return f"{entry.id}: someone else is releasing it right now; try again in a minute."
    log.info("review_release", id=entry.id, account=account.name,
             delivered=len(outcome.delivered), failed=len(outcome.failed))
    if outcome.nothing_to_do:
        return f"{entry.id}: nothing was still held." if outcome.entry.status != "deleted" \
            else f"{entry.id}: deleted; there is nothing to release."
    if outcome.failed:
        return (f"{entry.id}: released to {len(outcome.delivered)}, NOT to "
                f"{len(outcome.failed)} (the mail server did not accept it; it stays held "
                "and can be released again).")
    return f"{entry.id}: released to {len(outcome.delivered)} recipient(s)."


async def delete_one(request: Request, account: Account, entry: Entry, reason: str) -> str:
    try:
        deleted = await _store(request, "delete", entry.id, actor(account), reason)
    except ReleaseBusy:
        return f"{entry.id}: being released right now; not deleted."
    log.info("review_delete", id=entry.id, account=account.name, changed=deleted)
    return f"{entry.id}: deleted." if deleted else f"{entry.id}: was already deleted."


def _decision(one: Callable[[Request, Account, Entry, str], Awaitable[str]]
              ) -> Callable[[Request], Awaitable[Response]]:
    """The release or delete form of one entry: CSRF, scope, reason, act, back to the entry."""
    @signed_in
    async def decide(request: Request, account: Account) -> Response:
        form = await checked_form(request)
        entry = await _scoped(request, account)
        request.session["notice"] = await one(request, account, entry, _reason(form))
        return RedirectResponse(f"/entry/{entry.id}", 303)
    return decide


release = _decision(release_one)
delete = _decision(delete_one)


async def _scoped(request: Request, account: Account) -> Entry:
    entry_id = request.path_params["entry_id"]
    if not _ID.match(entry_id):
        raise HTTPException(404, "No such entry.")
    try:
        entry: Entry = await _store(request, "get_scoped", entry_id, account.scope)
    except EntryNotFound:
        raise HTTPException(404, "No such entry, or not one you may see.") from None
    return entry


def _reason(form: dict[str, list[str]]) -> str:
    reason = " ".join((form.get("reason") or [""])[0].split())[:500]
    if not reason:
        raise HTTPException(400, "A reason is required: it goes into the audit trail.")
    return reason


def _when(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def _age(moment: datetime) -> str:
    seconds = max((utcnow() - moment).total_seconds(), 0)
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if "text/html" not in request.headers.get("accept", ""):
        return PlainTextResponse(str(exc.detail) + "\n", exc.status_code)
    account = getattr(request.state, "account", None)
    return render(request, "error.html", {"account": account, "status": exc.status_code,
                                          "detail": exc.detail}, exc.status_code)


async def _store_error(request: Request, exc: Exception) -> Response:
    """The store is unreachable, locked past its timeout or broken: say so, reveal nothing."""
    log.error("review_store_error", error=type(exc).__name__)
    return PlainTextResponse("The quarantine cannot be read right now; try again shortly.\n",
                             503, headers={"Retry-After": "30"})


EXCEPTION_HANDLERS: dict[Any, Any] = {HTTPException: _http_error,
                                      QuarantineError: _store_error,
                                      sqlite3.Error: _store_error}
