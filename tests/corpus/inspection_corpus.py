"""Labelled inspection corpus: true cases in every form, and negative controls that must stay
silent. Each case is built in code (real MIME, XLSX, DOCX, PDF, ZIP) so nothing binary is
committed; `expected` is the exact set of detectors that must fire for the whole message.

Used by tests/detectors/test_corpus.py (asserts precision = recall = 1.0 per detector) and by
bench/bench_inspect.py --corpus (prints the table).
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root
from tests.factories import (
    MP3,
    MP4,
    OCTET,
    PNG,
    docx,
    encrypted_pdf,
    message,
    pdf,
    raw_message,
    xlsx,
    zip_of,
)


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[], bytes]
    expected: frozenset[str]
    positive: bool = True


def _case(case_id: str, build: Callable[[], bytes], *expected: str) -> Case:
    return Case(case_id, build, frozenset(expected), bool(expected))


def _forwarded() -> bytes:
    inner = EmailMessage()
    inner["Subject"] = "benefits form"
    inner["From"] = "hr@example.org"
    inner.set_content("Employee form. Student Sam Lee SSN: 524-61-3378 on file.")
    outer = EmailMessage()
    outer["Subject"] = "Fwd: benefits form"
    outer.set_content("See below.")
    outer.add_attachment(inner)
    return outer.as_bytes()


def _broken_base64() -> bytes:
    encoded = base64.b64encode(b"Please update the file for 482913 today.").decode()
    return raw_message("From: a@example.org\nSubject: update\n"
                       "Content-Type: text/plain; charset=utf-8\n"
                       "Content-Transfer-Encoding: base64\n",
                       (encoded[:20] + "!!\n" + encoded[20:-2]).encode())


def _wrong_charset() -> bytes:
    body = "José Núñez tiene una suspensión: discipline referral.".encode()
    return raw_message("From: a@example.org\nSubject: nota\n"
                       "Content-Type: text/plain; charset=us-ascii\n"
                       "Content-Transfer-Encoding: 8bit\n", body)


def _rfc2231_name() -> bytes:
    data = b"Student ID,Name,GPA\n482913,Alex Jones,3.2\n517204,Sam Lee,2.9\n"
    return raw_message('From: a@example.org\nSubject: list\nMIME-Version: 1.0\n'
                       'Content-Type: multipart/mixed; boundary="b"\n',
                       b"--b\r\nContent-Type: text/plain\r\n\r\nattached\r\n--b\r\n"
                       b"Content-Type: application/octet-stream\r\n"
                       b"Content-Disposition: attachment; "
                       b"filename*=utf-8''cal%C3%A9ndrier.csv\r\n\r\n" + data + b"\r\n--b--\r\n")


ROSTER_CSV = ("Student ID,Last Name,First Name,Grade,Attendance\n"
              "482913,Jones,Alex,B+,94%\n517204,Lee,Sam,A,99%\n530001,Garcia,Maria,C,88%\n"
              "530002,Chen,Wei,A-,97%\n530003,O'Brien,Liam,B,91%\n530004,Patel,Ava,B-,90%\n")
ESSAY = ("My essay on To Kill a Mockingbird. Scout Finch narrates the trial of Tom Robinson; "
         "Atticus Finch defends him. The novel earned Harper Lee the Pulitzer Prize in 1961, "
         "and it is read in many grades. Born in 1926 in Monroeville, Lee was 34 then.")
SIGNATURE = ("Thanks,\nJane Smith\n5th Grade Teacher, Room 12\nLincoln Elementary School\n"
             "Phone: 555-123-4567 | Fax 555-123-4568\n1200 Main St, Springfield, IL 62704-1234")

CASES: tuple[Case, ...] = (
    # --- true cases, one per form ----------------------------------------------------------
    _case("ssn-body", lambda: message("Her SSN is 524-61-3378, please file it."), "ssn"),
    _case("ssn-space", lambda: message("Social Security 524 61 3378"), "ssn"),
    _case("ssn-raw", lambda: message("SSN: 524613378"), "ssn"),
    _case("known-number", lambda: message("Please update the file for 482913 today."),
          "student_number"),
    _case("format-number", lambda: message("Student ID 600123 needs a locker."),
          "student_number_format"),
    _case("format-sid", lambda: message("SID: 600124 was entered twice."),
          "student_number_format"),
    _case("name-category", lambda: message("Alex Jones was suspended for three days."),
          "student_name", "record_category"),
    _case("dob", lambda: message("Sam Lee, DOB 04/12/2010, transfers next week."),
          "student_name", "dob"),
    _case("dob-words", lambda: message("Maria Garcia was born March 4, 2009."),
          "student_name", "dob"),
    _case("html-split", lambda: message("see html", html="<p>Al<b>ex</b> Jo<i>nes</i> has an "
                                         "<span style='display:none'>IEP</span> meeting</p>"),
          "student_name", "record_category"),
    _case("subject", lambda: message("Attached.", subject="Transcript for Sam Lee"),
          "student_name", "record_category"),
    _case("csv-roster", lambda: message("roster", attachments=[
        ("class.csv", ROSTER_CSV.encode(), "text/csv")]),
        "student_number", "student_name", "record_category", "roster"),
    _case("xlsx-ssn-column", lambda: message("list", attachments=[("notes.txt", xlsx(
        [["Name", "SSN"], ["Wei Chen", "524-61-3378"], ["Ava Patel", "524-61-3379"]]), OCTET)]),
        "student_name", "ssn", "roster"),
    _case("docx-table", lambda: message("report", attachments=[("r.docx", docx(
        ["Attendance report"], [["Student ID", "Absences"], ["530005", "7"]]), OCTET)]),
        "student_number", "record_category"),
    _case("pdf", lambda: message("pdf", attachments=[("t.pdf", pdf(
        [["Report card"], ["Emma Brown GPA 3.4"]]), "application/pdf")]),
        "student_name", "record_category"),
    _case("zip-csv", lambda: message("zip", attachments=[("report.zip", zip_of(
        [("inner/list.csv", ROSTER_CSV.encode())]), "application/zip")]),
        "student_number", "student_name", "record_category", "roster"),
    _case("forwarded", _forwarded, "student_name", "ssn"),
    _case("broken-base64", _broken_base64, "student_number"),
    _case("wrong-charset", _wrong_charset, "student_name", "record_category"),
    _case("rfc2231-csv", _rfc2231_name, "student_number", "student_name", "record_category",
          "roster"),
    _case("last-first", lambda: message("Lee, Sam: free or reduced lunch approved."),
          "student_name", "record_category"),
    _case("media-renamed", lambda: message("listen", attachments=[("notes.pdf", MP3, OCTET)]),
          "media"),
    _case("video", lambda: message("watch", attachments=[("clip.bin", MP4, OCTET)]), "media"),
    _case("lexicon", lambda: message("Tell him to shut  up, the little loser."),
          "lexicon:harassment"),
    _case("encrypted-pdf", lambda: message("pdf", attachments=[("locked.pdf", encrypted_pdf(
        ["x"]), "application/pdf")]), "uninspectable"),
    _case("encrypted-zip", lambda: message("zip", attachments=[("l.zip", zip_of(
        [("a.txt", b"x")], encrypted=["a.txt"]), "application/zip")]), "uninspectable"),
    # --- negative controls: must stay silent -----------------------------------------------
    _case("phones", lambda: message("Call 555-867-5309 or (217) 555-0142, ext. 482913.")),
    _case("zip4", lambda: message("Mail it to Springfield, IL 62704-1234 by Friday.")),
    _case("orders", lambda: message("Order #748392 shipped. Invoice 593021 paid. Order ID: "
                                    "600125. Tracking number 600126.")),
    _case("video-call", lambda: message("Join Zoom Meeting\nMeeting ID: 812 3456 7890\n"
                                        "Passcode: 600127\nOne tap mobile +13126266799,,600128#")),
    _case("invalid-ssn", lambda: message("SSN list: 000-12-3456, 666-12-3456, 912-34-5678, "
                                         "524-00-3378, 524-61-0000.")),
    _case("fake-ssn", lambda: message("Example SSN 078-05-1120, 219-09-9999 and 123-45-6789.")),
    _case("ssn-no-keyword", lambda: message("Part number 524-61-3378 is back-ordered.")),
    _case("category-alone", lambda: message("IEP training on Tuesday; attendance is required "
                                            "for all staff. Bring your grades binder.")),
    _case("literature", lambda: message(ESSAY)),
    _case("signature", lambda: message("See you at the meeting.\n\n" + SIGNATURE)),
    _case("name-alone", lambda: message("Thanks to Alex Jones for helping set up the fair.")),
    _case("honor-roll", lambda: message("Congratulations to our honor roll students: Alex "
                                        "Jones, Sam Lee, Maria Garcia and Wei Chen!")),
    _case("birthday-no-student", lambda: message("Birthday party on 05/06/2024 at 3pm.")),
    _case("embedded-number", lambda: message("Ref 482913-22 and serial 517204.5 closed.")),
    _case("image", lambda: message("photo", attachments=[("a.png", PNG, "image/png")])),
)
