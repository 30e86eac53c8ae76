"""Two `gateway serve` processes on one PostgreSQL database behave as one gateway: a retry on
the other instance is not held twice, P6 counts every instance's contacts exactly, a release
pressed twice at once delivers once, the reviewers' digest goes out once. And with the
database stopped mid-run, mail that must be held gets 451 while relayed mail keeps flowing,
`/readyz` says so, and after the restart every message is delivered or held exactly once.

Real parts throughout: the daemons are subprocesses, the database a real server
(tests.pgserver), the upstream an SMTP server in the test, the mail sent over SMTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import aiosmtplib
import psycopg
import pytest

from tests.factories import REPO, make_message, write_daemon_config
from tests.harness import DaemonProcess, http_get, run_cli, send, wait_for
from tests.pgserver import PostgresServer, remove, start_server
from tests.upstream import Upstream

STAFF = "teacher@staff.example.org"
COLLEAGUE = "colleague@staff.example.org"
PRINCIPAL = "principal@staff.example.org"
STUDENT_PERSONAL = "kid.home@mail.example.net"

PEOPLE = f"""address,role,person_id,name,supervisor,students
{STAFF},staff,T1,Terry Teacher,{PRINCIPAL},
{COLLEAGUE},staff,T2,Cody Colleague,{PRINCIPAL},
{PRINCIPAL},staff,T0,Pat Principal,,
kid@students.example.org,student,400001,Kim Kid,,
{STUDENT_PERSONAL},student,400001,Kim Kid,,
"""


def write_config(folder: Path, upstream_port: int, url: str, extra: str = "") -> Path:
    return write_daemon_config(folder, upstream_port, PEOPLE, url=url, extra=extra,
                               smtp="drain_timeout: 30, processing_deadline: 12",
                               log_format="json")


async def start_instances(tmp_path: Path, upstream: Upstream, url: str, n: int = 2,
                          extra: str = "") -> list[DaemonProcess]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFY_SOCKET", None)
    procs = []
    for i in range(n):
        config = write_config(tmp_path / f"site{i}", upstream.port, url, extra)
        proc = await DaemonProcess(config, env).start()
        procs.append(proc)
    for proc in procs:
        await proc.wait_event("gateway_started")
        await proc.wait_event("health_listening")
    return procs


@pytest.fixture
async def instances(tmp_path: Path, upstream: Upstream,
                    postgres_url: str) -> AsyncIterator[list[DaemonProcess]]:
    procs = await start_instances(tmp_path, upstream, postgres_url)
    yield procs
    for proc in procs:
        await proc.close()


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


async def test_a_client_retrying_on_the_other_instance_is_held_once(
        instances: list[DaemonProcess], postgres_url: str) -> None:
    content = make_message("Report", "Your report card.\n", sender=STAFF, to=STUDENT_PERSONAL)
    first, second = instances
    # The reply of the first attempt was lost; the client's MTA tries the other MX host.
    assert (await send(first.smtp_port, STAFF, [STUDENT_PERSONAL], content))[0] == {}
    assert (await send(second.smtp_port, STAFF, [STUDENT_PERSONAL], content))[0] == {}
    # And two more attempts racing each other on both at once.
    other = make_message("Report 2", "Your report card.\n", sender=STAFF, to=STUDENT_PERSONAL)
    await asyncio.gather(send(first.smtp_port, STAFF, [STUDENT_PERSONAL], other),
                         send(second.smtp_port, STAFF, [STUDENT_PERSONAL], other))
    assert sorted(r[0] for r in rows(postgres_url, "SELECT subject FROM entries")) == [
        "Report", "Report 2"]
    assert rows(postgres_url, "SELECT count(*) FROM audit WHERE action = 'hold'") == [(2,)]


async def test_p6_counts_contacts_arriving_at_once_on_both_instances_exactly(
        instances: list[DaemonProcess], upstream: Upstream, postgres_url: str) -> None:
    """Six messages of one student to one teacher at the same moment, three per instance:
    contacts 1 and 2 are P5 only, 3 to 6 are P6 (annotated, the supervisor told)."""
    async def contact(n: int) -> None:
        content = make_message(f"Question {n}", "Can you help with the homework?\n",
                               sender=STUDENT_PERSONAL, to=STAFF, message_id=None)
        errors, _ = await send(instances[n % 2].smtp_port, STUDENT_PERSONAL, [STAFF], content)
        assert errors == {}

    await asyncio.gather(*(contact(n) for n in range(6)))
    to_staff = [m for m in upstream.messages if m.rcpt_tos == [STAFF]]
    assert len(to_staff) == 6
    p6 = [m for m in to_staff
          if any("P6" in h for h in message_from_bytes(m.content).get_all(
              "X-District-Policy", []))]
    assert len(p6) == 4
    assert rows(postgres_url, "SELECT count(*) FROM contacts") == [(6,)]
    await wait_for(lambda: sum(m.rcpt_tos == [PRINCIPAL] for m in upstream.messages) == 4, 30)


async def test_two_reviewers_releasing_at_once_on_two_sites_deliver_once(
        instances: list[DaemonProcess], upstream: Upstream, tmp_path: Path) -> None:
    content = make_message("Held", "Your report card.\n", sender=STAFF, to=STUDENT_PERSONAL)
    assert (await send(instances[0].smtp_port, STAFF, [STUDENT_PERSONAL], content))[0] == {}
    listed = await run_cli("quarantine", "list", "--json",
                           "--config", str(tmp_path / "site0" / "gateway.yaml"))
    [entry] = json.loads(listed.stdout)
    results = await asyncio.gather(*(
        run_cli("quarantine", "release", entry["id"], "--reason", f"reviewer {site}",
                "--config", str(tmp_path / f"site{site}" / "gateway.yaml"))
        for site in (0, 1)))
    assert sorted(r.returncode for r in results) in ([0, 0], [0, 1]), results
    assert sum(m.rcpt_tos == [STUDENT_PERSONAL] for m in upstream.messages) == 1
    audit = await run_cli("quarantine", "audit", entry["id"], "--json",
                          "--config", str(tmp_path / "site1" / "gateway.yaml"))
    assert [r["action"] for r in json.loads(audit.stdout)] == ["hold", "release"]


async def test_the_digest_goes_out_once_per_period_from_two_instances(
        tmp_path: Path, upstream: Upstream, postgres_url: str) -> None:
    extra = "  reviewers: [reviewer@staff.example.org]\n  digest_interval: 1"
    procs = await start_instances(tmp_path, upstream, postgres_url, extra=extra)
    try:
        await asyncio.sleep(1.5)  # the first claim starts the first period
        content = make_message("Held", "Your report card.\n", sender=STAFF,
                               to=STUDENT_PERSONAL)
        assert (await send(procs[0].smtp_port, STAFF, [STUDENT_PERSONAL], content))[0] == {}

        def digests() -> int:
            return sum(m.rcpt_tos == ["reviewer@staff.example.org"] for m in upstream.messages)

        await wait_for(lambda: digests() >= 1, 30)
        await asyncio.sleep(3)  # several more periods on both instances
        assert digests() == 1  # the one held message, in one digest, from one instance
    finally:
        for proc in procs:
            await proc.close()


async def test_console_accounts_get_their_digest_without_quarantine_reviewers(
        tmp_path: Path, upstream: Upstream, postgres_url: str) -> None:
    """No `quarantine.reviewers`: a review-console account with an address still gets its
    digest, with a link to the console, once per period from two instances."""
    extra = ("  digest_interval: 1\nreview:\n  listen: \"127.0.0.1:0\"\n"
             "  public_url: \"https://review.example.org\"")
    procs = await start_instances(tmp_path, upstream, postgres_url, extra=extra)
    try:
        added = await run_cli("review", "account", "add", "privacy@staff.example.org",
                              "--role", "administrator",
                              "--config", str(tmp_path / "site1" / "gateway.yaml"))
        assert added.returncode == 0, added.stderr
        await asyncio.sleep(1.5)  # the first claim starts the first period
        content = make_message("Held", "Your report card.\n", sender=STAFF,
                               to=STUDENT_PERSONAL)
        assert (await send(procs[0].smtp_port, STAFF, [STUDENT_PERSONAL], content))[0] == {}

        def digests() -> list[Any]:
            return [m for m in upstream.messages
                    if m.rcpt_tos == ["privacy@staff.example.org"]]

        await wait_for(lambda: len(digests()) >= 1, 30)
        await asyncio.sleep(3)  # several more periods on both instances
        [digest] = digests()
        assert b"https://review.example.org/entry/" in digest.content
    finally:
        for proc in procs:
            await proc.close()


# --- the database stopped under load ---------------------------------------------------------

@pytest.fixture
def own_server() -> Any:
    server = start_server()
    if server is None:
        pytest.skip("PostgreSQL is not installed")
    yield server
    remove(server)


async def test_database_down_holds_get_451_relays_flow_and_nothing_is_lost_or_doubled(
        tmp_path: Path, upstream: Upstream, own_server: PostgresServer) -> None:
    url = own_server.url(own_server.create_database())
    [proc] = await start_instances(tmp_path, upstream, url, n=1)
    replies: dict[str, list[int]] = {}
    stopped, down, relays_done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    try:
        async def deliver(subject: str, rcpt: str) -> None:
            """An MTA with a queue: the message retried until it gets a 250."""
            content = make_message(subject, "Your report card.\n", sender=STAFF, to=rcpt)
            codes = replies.setdefault(subject, [])
            while True:
                try:
                    await send(proc.smtp_port, STAFF, [rcpt], content)
                    codes.append(250)
                    return
                except aiosmtplib.SMTPResponseException as exc:
                    codes.append(exc.code)
                    await asyncio.sleep(0.2)

        async def held_mail() -> None:
            for n in range(10):
                await deliver(f"held {n}", STUDENT_PERSONAL)
                if n == 2:
                    await asyncio.to_thread(own_server.stop)
                    stopped.set()

        async def relayed_mail() -> None:
            for n in range(10):
                if n == 3:
                    await down.wait()  # the rest while the database is down
                await deliver(f"relayed {n}", COLLEAGUE)
            relays_done.set()

        async def operator() -> None:
            await stopped.wait()
            await wait_for(lambda: any(451 in c for c in replies.values()), 60)
            status, body = await http_get(proc.health_port, "/readyz")
            assert status == 503 and json.loads(body)["checks"]["store_writable"] is False
            # A student writing to staff needs the P5/P6 history: it cannot be decided
            # exactly now, so it is held, and the hold cannot be written: 451, not a guess.
            question = make_message("Question", "Can you help?\n", sender=STUDENT_PERSONAL,
                                    to=STAFF)
            with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
                await send(proc.smtp_port, STUDENT_PERSONAL, [STAFF], question)
            assert refused.value.code == 451
            down.set()
            await relays_done.wait()
            await asyncio.to_thread(own_server.start)

        await asyncio.gather(held_mail(), relayed_mail(), operator())
        status, _ = await http_get(proc.health_port, "/readyz")
        assert status == 200
    finally:
        await proc.close()
    held = sorted(r[0] for r in rows(url, "SELECT subject FROM entries"))
    assert held == sorted(f"held {n}" for n in range(10))  # each once, none lost
    arrived = sorted(message_from_bytes(m.content)["Subject"] for m in upstream.messages)
    assert arrived == sorted(f"relayed {n}" for n in range(10))  # each once
    assert 451 in replies["held 3"]  # the outage was felt by mail that must be held
    assert all(codes == [250] for s, codes in replies.items() if s.startswith("relayed"))


async def test_a_gateway_started_while_the_database_is_down_relays_and_catches_up(
        tmp_path: Path, upstream: Upstream, own_server: PostgresServer) -> None:
    """A host rebooted during a database outage: the relaying part comes up, held mail gets
    451, and the first connection once the server is back creates the schema and holds."""
    url = own_server.url(own_server.create_database())
    own_server.stop()
    [proc] = await start_instances(tmp_path, upstream, url, n=1)
    try:
        assert proc.found("quarantine_database_unreachable") is not None
        relay = make_message("Meeting", "Room 12.\n", sender=STAFF, to=COLLEAGUE)
        assert (await send(proc.smtp_port, STAFF, [COLLEAGUE], relay))[0] == {}
        held = make_message("Report", "Your report card.\n", sender=STAFF, to=STUDENT_PERSONAL)
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            await send(proc.smtp_port, STAFF, [STUDENT_PERSONAL], held)
        assert refused.value.code == 451
        status, _ = await http_get(proc.health_port, "/readyz")
        assert status == 503
        await asyncio.to_thread(own_server.start)
        assert (await send(proc.smtp_port, STAFF, [STUDENT_PERSONAL], held))[0] == {}
        status, _ = await http_get(proc.health_port, "/readyz")
        assert status == 200
    finally:
        await proc.close()
        if not (own_server.datadir / "postmaster.pid").exists():
            own_server.start()
    assert rows(url, "SELECT subject FROM entries") == [("Report",)]
    assert [m.rcpt_tos for m in upstream.messages] == [[COLLEAGUE]]


def test_a_gateway_does_not_start_on_a_database_that_refuses_it(
        tmp_path: Path, postgres_server: PostgresServer) -> None:
    """Unreachable is an outage; a wrong password is a mistake to fix before serving."""
    url = postgres_server.url(postgres_server.create_database()).split("?")[0]
    config = write_config(tmp_path / "site", 9, url.replace("postgres@", "postgres:wr0ng@"))
    run = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(config)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "password authentication failed" in run.stderr and "wr0ng" not in run.stderr
