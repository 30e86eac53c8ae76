"""Where a message is decided: on the event loop, in a worker thread, or on the loop while the
PDF helper reads its PDFs. The decision itself is always the pipeline's (`decide_classified`);
this module only picks the place, so no session waits behind another's heavy message.

Small messages are decided on the loop (a thread hop costs more than deciding them), reading
text formats only: a part that turns out to be an archive, a workbook or a PDF, whatever it was
labelled, is not read there (`gateway.extract.base.Venue`), and the whole decision is made again
in a thread. Big messages, and any declaring an application/* part other than PDF (an XLSX parse
takes milliseconds, a hostile one up to the time budget), go to a thread straight away. A small
message whose only documents are PDFs is decided on the loop too, the PDF helper process reading
them meanwhile (`pdfjobs`).
"""

from __future__ import annotations

import asyncio
import re

from gateway.dispatch import pdfjobs
from gateway.extract.base import Context, Venue
from gateway.model import (
    ContactHistory,
    ContactPlan,
    CountedHistory,
    Decision,
    Envelope,
    Inspection,
    NoHistory,
)
from gateway.pdfhelper import client as pdfhelper
from gateway.pipeline import Parties, classify, contact_plan, decide_classified
from gateway.quarantine.base import QuarantineStore, contact_key
from gateway.runtime import Runtime

INLINE_DECIDE_LIMIT = 64 * 1024
# A header line (at the start or after a newline) announcing an application/* part. Written
# with a literal "\n" first so the regex engine can skip from newline to newline; the same
# pattern under ^/MULTILINE/IGNORECASE tried every byte (9x slower).
_APPLICATION_HEADER = rb"(?i:content-type:[ \t]*application/([!#$%&'*+.^_`|~0-9a-z-]*))"
APPLICATION_PART = re.compile(rb"\n" + _APPLICATION_HEADER)
APPLICATION_FIRST_LINE = re.compile(_APPLICATION_HEADER)


async def decide_message(envelope: Envelope, runtime: Runtime,
                         store: QuarantineStore | None) -> Decision:
    """`pipeline.decide`, in the place that suits the message (see the module docstring).
    The store's P5/P6 contact history is never touched on the loop: a message decided there
    has its contacts counted and recorded in a thread first. Raises what `decide` raises
    (the store's failure included); the caller fails closed."""
    content = envelope.content
    if len(content) <= INLINE_DECIDE_LIMIT:
        inspection = None
        kinds = application_parts(content)
        if not kinds:
            inspection = inspect_on_loop(runtime, content)
        elif kinds == {b"pdf"}:
            inspection = await inspect_reading_pdfs(runtime, content)
        if inspection is not None:
            parties = classify(envelope, runtime.directory, inspection)
            history = await count_contacts(envelope, runtime, parties, inspection, store)
            return decide_classified(envelope, runtime, history, inspection, parties)
    return await asyncio.to_thread(decide_in_thread, envelope, runtime, store)


async def count_contacts(envelope: Envelope, runtime: Runtime, parties: Parties,
                         inspection: Inspection, store: QuarantineStore | None) -> ContactHistory:
    """`counted_history` from the loop: in a thread, and only for the messages that touch
    the history (most do not, and cost no thread hop)."""
    if store is None:
        return NoHistory()
    plan = contact_plan(envelope, runtime, parties, inspection)
    if not plan:
        return CountedHistory({})
    return await asyncio.to_thread(counted_history, envelope, plan, store)


def decide_in_thread(envelope: Envelope, runtime: Runtime,
                     store: QuarantineStore | None) -> Decision:
    """Inspect, classify, count and record the message's contacts, decide (a worker thread)."""
    inspection = runtime.inspector.inspect(envelope.content)
    parties = classify(envelope, runtime.directory, inspection)
    history: ContactHistory = NoHistory()
    if store is not None:
        plan = contact_plan(envelope, runtime, parties, inspection)
        history = counted_history(envelope, plan, store) if plan else CountedHistory({})
    return decide_classified(envelope, runtime, history, inspection, parties)


def counted_history(envelope: Envelope, plan: ContactPlan,
                    store: QuarantineStore) -> CountedHistory:
    """The message's contacts recorded and the counts before them, in one store transaction
    and before the decision (so before the reply): durable, exact when other sessions or
    instances decide messages of the same pair at the same moment, and not counted twice
    when the client retries. Blocking: call it in a worker thread."""
    key = contact_key(envelope.mail_from, envelope.content)
    return CountedHistory(store.count_and_record(plan, key))


class TextOnly:
    """The event loop's venue for a message without documents: it takes no file."""

    def take(self, ctype: str, data: bytes, ctx: Context, location: str) -> bool:
        return False


TEXT_ONLY: Venue = TextOnly()


def inspect_on_loop(runtime: Runtime, content: bytes) -> Inspection | None:
    """Inspect here, reading text formats only; None when a file needs a thread."""
    inspector = runtime.inspector
    begin, finish = getattr(inspector, "begin", None), getattr(inspector, "finish", None)
    if begin is None or finish is None:  # an inspector without the two steps (a double)
        return inspector.inspect(content)
    walked = begin(content, TEXT_ONLY)
    return None if walked.elsewhere is not None else finish(walked)


async def inspect_reading_pdfs(runtime: Runtime, content: bytes) -> Inspection | None:
    """A small message whose only documents are PDFs, inspected on the loop while the PDF
    helper reads them; None when it has to go to a thread."""
    inspector = runtime.inspector
    begin, finish = getattr(inspector, "begin", None), getattr(inspector, "finish", None)
    limits = runtime.settings.inspection
    helper = pdfhelper.for_inspection(limits)
    if begin is None or finish is None or helper is None:  # a double, or pypdf reads PDFs
        return None
    return await pdfjobs.inspect(begin, finish, content, limits, helper)


def application_parts(content: bytes) -> set[bytes]:
    """The subtypes of the application/* parts header lines announce (b"pdf", ...), lowered."""
    kinds = {m.group(1).lower() for m in APPLICATION_PART.finditer(content)}
    first = APPLICATION_FIRST_LINE.match(content)
    if first:
        kinds.add(first.group(1).lower())
    return kinds
