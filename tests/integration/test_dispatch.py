"""Which messages are decided on the event loop, and that a disguised file never is.

Small messages are inspected on the loop with text extractors only (`dispatch.TEXT_ONLY`):
a thread hand-off costs more than a CSV. A part that sniffs as anything else, whatever it was
declared as, sends the whole decision to a thread, where it is inspected in full. The real
inspector is used, wrapped only to record the thread it ran on; the messages go over SMTP.

P6's contact counts are read the same way: in a thread, before a message is decided on the
loop."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_settings
from gateway.extract.base import Venue
from gateway.inspect import WalkedMessage
from gateway.model import Inspection
from gateway.quarantine import open_store
from gateway.runtime import load_runtime
from gateway.service.listener import Gateway
from tests.factories import (
    PNG,
    REPO,
    attached,
    crlf,
    make_inspector,
    pdf,
    write_settings,
    xlsx,
    zip_of,
)
from tests.harness import send

ROSTER_CSV = b"Student ID,Name,Grade\r\n482913,Alex Jones,B\r\n517204,Sam Lee,A\r\n"
SENDER = "teacher@staff.example.org"
STUDENT = "student@students.example.org"


class RecordingInspector:
    """The real inspector; remembers whether each message was inspected on the loop."""

    def __init__(self) -> None:
        self.inner = make_inspector()
        self.on_loop: list[bool] = []
        self.loop_thread = threading.get_ident()
        self.results: list[Inspection] = []

    def inspect(self, raw: bytes) -> Inspection:
        return self.finish(self.begin(raw))

    def begin(self, raw: bytes, venue: Venue | None = None) -> WalkedMessage:
        return self.inner.begin(raw, venue)

    def finish(self, walked: WalkedMessage) -> Inspection:
        """Called once per message, where its inspection completes."""
        result = self.inner.finish(walked)
        self.on_loop.append(threading.get_ident() == self.loop_thread)
        self.results.append(result)
        return result


@pytest.mark.parametrize(("name", "data", "declared", "on_loop"), [
    ("roster.csv", ROSTER_CSV, "text/csv", True),
    ("notes.txt", b"Alex Jones, 482913, failed the test\r\n", "text/plain", True),
    ("logo.png", PNG, "image/png", True),
    ("roster.zip", zip_of([("r.csv", ROSTER_CSV)]), "text/csv", False),  # disguised archive
    ("roster.pdf", pdf([["Alex Jones 482913"]]), "image/png", False),  # disguised PDF
    ("roster.xlsx", xlsx([["Student ID", "Name"], ["482913", "Alex Jones"]]),
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", False),
])
async def test_text_is_decided_on_the_loop_and_any_other_file_in_a_thread(
        tmp_path: Any, upstream: Any, gateways: Any, name: str, data: bytes, declared: str,
        on_loop: bool) -> None:
    inspector = RecordingInspector()
    gw = await gateways(write_settings(tmp_path, upstream.port), inspector=inspector)
    _, reply = await send(gw.port, SENDER, [STUDENT], crlf(attached(name, data, declared)))
    assert reply.startswith("2.0.0 Ok: queued as "), reply
    assert inspector.on_loop == [on_loop]
    [result] = inspector.results
    assert result.complete
    # Inspected in full wherever it ran: the attached roster's students are found.
    if name != "logo.png":
        assert any(f.detector in ("student_id", "roster", "student_name")
                   for f in result.findings), result.findings


# --- P6's contact counts, read in a thread before a message is decided on the loop --------
async def test_a_message_decided_on_the_loop_reads_its_counts_in_a_thread(
        tmp_path: Path, upstream: Any) -> None:
    folder = tmp_path / "config"
    shutil.copytree(REPO / "config", folder)
    config = folder / "gateway.yaml"
    config.write_text(config.read_text().replace("port: 10025", "port: 0").replace(
        "port: 10026", f"port: {upstream.port}").replace(
        'metrics: {listen: "127.0.0.1:9125"}', ""))
    settings = load_settings(config)
    store = open_store(settings)
    loop_thread = threading.get_ident()
    reads: list[bool] = []
    real = store.count_and_record

    def count_and_record(plan: Any, key: Any) -> Any:
        reads.append(threading.get_ident() == loop_thread)
        return real(plan, key)

    store.count_and_record = count_and_record  # type: ignore[method-assign]
    gw = Gateway(settings, load_runtime(settings), store)
    await gw.start()
    try:
        staff = "jsmith@staff.district230.example"
        for n in range(2):
            content = (f"From: alexj2009@gmail.example\r\nTo: {staff}\r\nSubject: q{n}\r\n\r\n"
                       "Can you help with the homework?\r\n").encode()
            errors, _ = await send(gw.port, "alexj2009@gmail.example", [staff], content)
            assert errors == {}
        plain = (f"From: {staff}\r\nTo: principal@staff.district230.example\r\n"
                 "Subject: lunch\r\n\r\nSee you at noon.\r\n").encode()
        await send(gw.port, staff, ["principal@staff.district230.example"], plain)
    finally:
        await gw.drain(0)
        store.close()
    assert reads == [False, False]  # one read per P6 message, none for staff-to-staff mail
