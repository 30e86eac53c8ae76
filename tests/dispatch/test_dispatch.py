"""Where a message is decided: the loop's venue reads text and leaves any other file for a
thread; the quick check for application parts agrees with the regex it replaced.

(Over SMTP with the real inspector: tests/integration/test_dispatch.py.)"""

from __future__ import annotations

import itertools
import re

from gateway import extract
from gateway.dispatch import TEXT_ONLY, application_parts
from gateway.extract.base import Budget, Context, Sink
from tests.factories import make_settings, zip_of

ROSTER_CSV = b"Student ID,Name,Grade\r\n482913,Alex Jones,B\r\n517204,Sam Lee,A\r\n"


def test_the_loop_reads_text_and_leaves_any_other_file_for_a_thread() -> None:
    limits = make_settings().inspection
    ctx = Context(Budget(limits), Sink(), venue=TEXT_ONLY)
    extract.extract_file(zip_of([("r.csv", ROSTER_CSV)]), ctx, "attachment a.zip")
    assert not ctx.sink.parts and ctx.sink.elsewhere == "application/zip"
    extract.extract_file(zip_of([("r.csv", ROSTER_CSV)]), ctx.deeper(), "attachment b.zip")
    assert ctx.sink.elsewhere == "application/zip"  # the first one is what is reported
    extract.extract_file(ROSTER_CSV, ctx, "attachment r.csv")
    assert ctx.sink.parts  # text extractors run as usual
    in_thread = Context(Budget(limits), Sink())  # no venue: every format is read in place
    extract.extract_file(zip_of([("r.csv", ROSTER_CSV)]), in_thread, "attachment a.zip")
    assert any("a.zip/r.csv" in p.location for p in in_thread.sink.parts)
    assert in_thread.sink.elsewhere is None


def test_application_part_check_matches_the_multiline_regex_it_replaced() -> None:
    reference = re.compile(rb"^content-type:[ \t]*application/([\w.+-]*)",
                           re.IGNORECASE | re.MULTILINE)
    lines = (b"Content-Type: application/pdf", b"content-type:\tApplication/zip",
             b"Content-Disposition: attachment", b"Content-Type: text/plain",
             b"X-Content-Type: application/pdf", b" content-disposition: attachment", b"body",
             b"Content-Type: APPLICATION/PDF; name=a.pdf", b"Content-Type: application/",
             b"Content-Type: application/vnd.ms-excel")
    for n in (1, 2, 3):
        for combo in itertools.product(lines, repeat=n):
            for end in (b"\r\n", b"\n", b"\r"):
                content = end.join(combo) + end
                expected = {m.group(1).lower() for m in reference.finditer(content)}
                assert application_parts(content) == expected, content
