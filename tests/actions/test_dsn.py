"""Bounces (RFC 3464): what they say, what they never carry, and lines a strict server takes."""

from __future__ import annotations

import email
from email.policy import compat32

from gateway.actions.dsn import MAX_LINE, build_dsn, folded

RECIPIENTS = [f"Person Number{i} <person.number{i}@students.district230.example>"
              for i in range(60)]
ORIGINAL = ("From: teacher@staff.example\r\nTo: " + ",\r\n ".join(RECIPIENTS) +
            "\r\nSubject: " + "word " * 200 + "\r\n\r\nStudent ID 482913 in the body\r\n").encode()


def bounce(failures: dict[str, tuple[int, str]]) -> bytes:
    return build_dsn(original=ORIGINAL, mail_from="teacher@staff.example",
                     postmaster="postmaster@staff.example", reporting_mta="gw.test",
                     queue_id="Q1", failures=failures)


def test_no_line_is_longer_than_rfc_5322_allows() -> None:
    dsn = bounce({"a@b.example": (550, "5.1.1 " + "x" * 3000),
                  "c@d.example": (550, "5.1.1 unknown user " + "because " * 300)})
    lines = dsn.split(b"\r\n")
    assert max(len(line) for line in lines) <= MAX_LINE
    assert b"\n" not in dsn.replace(b"\r\n", b"")  # CRLF only


def test_a_long_folded_to_stays_folded_and_complete() -> None:
    dsn = email.message_from_bytes(bounce({"a@b.example": (550, "5.1.1 no")}), policy=compat32)
    returned = dsn.get_payload()[2].get_payload()
    lines = returned.split("\r\n")
    assert all(len(line) <= 78 for line in lines)
    unfolded = " ".join(line.strip() for line in lines)
    for recipient in RECIPIENTS:  # nothing lost to the folding
        assert recipient in unfolded
    assert "Student ID" not in dsn.as_string()  # never the body


def test_the_status_fields_name_each_recipient_and_its_reply() -> None:
    dsn = email.message_from_bytes(bounce({"a@b.example": (550, "5.1.1 user unknown"),
                                           "c@d.example": (554, "refused")}), policy=compat32)
    status = dsn.get_payload()[1].as_string()
    assert "Final-Recipient: rfc822; a@b.example" in status
    assert "Status: 5.1.1" in status and "Status: 5.0.0" in status
    assert "Diagnostic-Code: smtp; 554 refused" in status


def test_folding_breaks_at_whitespace_and_cuts_only_an_endless_word() -> None:
    assert folded("To:", "a b c") == "To: a b c"
    text = folded("To:", " ".join(["word"] * 40))
    assert all(len(line) <= 78 for line in text.split("\n"))
    assert text.replace("\n ", " ") == "To: " + " ".join(["word"] * 40)
    endless = folded("Subject:", "y" * 5000)
    assert len(endless) == MAX_LINE and "\n" not in endless
