"""Builders for what the tests feed the gateway: settings files, a small district, messages and
attachments made in memory, and stand-ins for the pure core's parts.

Nothing here opens a socket or starts a process (that is `tests.harness` and `tests.upstream`).
Nothing is mocked either: every message and file built here goes through the real parsers, and
the stand-ins replace only policy *content* (who decides what), never the wire or the store.
"""

from __future__ import annotations

import email
import email.policy
import io
import re
import shutil
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import docx as python_docx
import openpyxl
from pypdf import PdfReader, PdfWriter

from gateway import pipeline
from gateway.config import InspectionSettings, Settings, load_settings
from gateway.detectors.patternset import ENGINES, hyperscan, re2
from gateway.directory import Directory, load_directory
from gateway.inspect import Inspector, build_inspector
from gateway.model import (
    Action,
    Annotation,
    Attachment,
    AuthResults,
    ContactHistory,
    ContactPlan,
    Decision,
    Envelope,
    Finding,
    Inspection,
    NoHistory,
    Part,
    Party,
    Role,
    RuleMatch,
    Verdict,
)
from gateway.policy.engine import Policy
from gateway.policy.loader import load_policy
from gateway.quarantine import open_store
from gateway.quarantine.base import HoldRequest
from gateway.runtime import Runtime

REPO = Path(__file__).resolve().parent.parent
SHIPPED_POLICY = REPO / "config" / "policies.yaml"

# --- addresses in the example.org district the SMTP-level tests use -------------------------

TEACHER = "teacher@staff.example.org"
STUDENT = "student@students.example.org"
STUDENT_PERSONAL = "kid.home@gmail.example"
PARENT = "parent@home.example"


# --- settings files ---------------------------------------------------------------------------

def write_settings(tmp_path: Path, upstream_port: int, extra: str = "",
                   listen_port: int = 0, *, smtp: str = "", upstream_timeout: float = 5,
                   trusted: str = "127.0.0.0/8",
                   authentication: str = "{resolvers: ['127.0.0.1:9'], timeout: 0.5}"
                   ) -> Settings:
    """A gateway.yaml in tmp_path pointing at the test upstream; returns loaded Settings.
    Sender authentication (for clients outside `trusted`) asks a loopback port where nothing
    listens unless told otherwise: refused at once, never a lookup off the machine."""
    (tmp_path / "var").mkdir(exist_ok=True)
    text = f"""
listen: {{host: 127.0.0.1, port: {listen_port}}}
upstream: {{host: 127.0.0.1, port: {upstream_port}, timeout: {upstream_timeout}}}
trusted_networks: [{trusted}]
district:
  staff_domains: [staff.example.org]
  student_domains: [students.example.org]
quarantine: {{url: "sqlite:///var/quarantine.db"}}
postmaster: postmaster@staff.example.org
smtp: {{hostname: gw.test, processing_deadline: 20, {smtp}}}
authentication: {authentication}
{extra}
"""
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return load_settings(path)


def write_daemon_config(folder: Path, upstream_port: int, people: str, *,
                        url: str = "sqlite:///quarantine.db", extra: str = "",
                        smtp: str = "drain_timeout: 120", log_format: str = "auto") -> Path:
    """A whole installation for `gateway serve` as a subprocess: the directory `people`, no
    relationships, the shipped policies, and a gateway.yaml on loopback ports chosen by the
    kernel (the daemon reports them). Returns the gateway.yaml's path."""
    folder.mkdir(exist_ok=True)
    (folder / "people.csv").write_text(people)
    (folder / "relationships.csv").write_text(
        "staff_id,student_id,relationship,reported_to,reported_on\n")
    shutil.copy(REPO / "config" / "policies.yaml", folder / "policies.yaml")
    config = folder / "gateway.yaml"
    config.write_text(f"""
listen: {{host: 127.0.0.1, port: 0}}
upstream: {{host: 127.0.0.1, port: {upstream_port}, timeout: 30}}
trusted_networks: [127.0.0.0/8]
district:
  staff_domains: [staff.example.org]
  student_domains: [students.example.org]
directory: {{people: people.csv, relationships: relationships.csv}}
policies: policies.yaml
quarantine:
  url: "{url}"
{extra}
metrics: {{listen: "127.0.0.1:0"}}
postmaster: postmaster@staff.example.org
smtp: {{hostname: gw.test, {smtp}}}
log: {{level: info, format: {log_format}}}
""")
    return config


def write_quarantine_settings(tmp_path: Path, upstream_port: int = 9, *,
                              db: str = "qdir/quarantine.db", extra: str = "",
                              url: str | None = None) -> Settings:
    """gateway.yaml for the quarantine tests, with reviewers; the database's folder does not
    exist yet (the tests check the mode it is created with). `url` names another database
    (a PostgreSQL server's) instead of the SQLite file `db`."""
    text = f"""
upstream: {{host: 127.0.0.1, port: {upstream_port}, timeout: 5}}
district:
  staff_domains: [staff.example.org]
  student_domains: [students.example.org]
quarantine:
  url: "{url or f'sqlite:///{db}'}"
  reviewers: [principal@staff.example.org]
smtp: {{hostname: gw.test}}
log: {{format: json}}
{extra}
"""
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return load_settings(path)


# --- messages ---------------------------------------------------------------------------------

def crlf(raw: bytes) -> bytes:
    """Every line end CRLF, as a message travels over SMTP."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def raw_message(headers: str, body: bytes) -> bytes:
    """A message typed out by hand: header lines (LF in the text) and the body, CRLF."""
    return headers.replace("\n", "\r\n").encode() + b"\r\n" + body


def message(body: str = "Hello.", *, subject: str = "Note", html: str | None = None,
            attachments: Sequence[tuple[str, bytes, str]] = (),
            sender: str = "jsmith@staff.district230.example", to: str = "someone@example.org",
            message_id: str | None = "<t1@staff.district230.example>",
            date: str | None = None) -> bytes:
    """A real message with LF line ends (as the inspection tests read it); attachments are
    (filename, data, declared type)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    if message_id is not None:
        msg["Message-ID"] = message_id
    if date is not None:
        msg["Date"] = date
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, data, declared in attachments:
        main, _, sub = declared.partition("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=filename)
    return msg.as_bytes()


def make_message(subject: str = "Hello", body: str = "Hi there.\n", *, sender: str = TEACHER,
                 to: str = STUDENT, message_id: str | None = "<test@example.org>",
                 date: str | None = None, attachment: bytes | None = None,
                 size: int = 0) -> bytes:
    """A message as a client sends it (CRLF). `size` pads the body to about that many bytes;
    `attachment` is attached as grades.csv."""
    if size:
        body = body + ("x" * 75 + "\n") * (size // 76)
    files = [("grades.csv", attachment, "text/csv")] if attachment is not None else []
    return crlf(message(body, subject=subject, sender=sender, to=to, message_id=message_id,
                        date=date, attachments=files))


def held_message(subject: str = "Report cards", body: str = "Please see attached.\n", *,
                 attachment: bytes | None = None) -> bytes:
    """What the quarantine tests hold: a teacher writing to a student's personal address."""
    return make_message(subject, body, to=STUDENT_PERSONAL, message_id="<q1@staff.example.org>",
                        date="Fri, 31 Jan 2025 08:00:00 +0000", attachment=attachment)


def hold_request(content: bytes | None = None, *, recipients: tuple[str, ...] = (
                 STUDENT_PERSONAL,), rules: tuple[str, ...] = ("P1",),
                 received: datetime | None = None, mail_from: str = TEACHER,
                 queue_id: str = "QID1", subject: str | None = None) -> HoldRequest:
    """What the executor asks the quarantine to keep, with an SSN finding and its sample."""
    content = content if content is not None else held_message(subject or "Report cards")
    if subject is None:
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        subject = str(parsed.get("Subject", ""))
    return HoldRequest(
        queue_id=queue_id, received=received or datetime.now(UTC), client_ip="127.0.0.1",
        mail_from=mail_from, recipients=recipients, message_id="<q1@staff.example.org>",
        subject=subject, content=content, rules=rules,
        reasons=tuple({"recipient": r, "rule": rule, "reason": f"{rule} matched",
                       "action": "hold"} for r in recipients for rule in rules),
        findings=({"detector": "ssn", "count": 1, "distinct": 1,
                   "location": "attachment grades.csv"},),
        samples=({"detector": "ssn", "location": "attachment grades.csv",
                  "sample": "***-**-4321"},))


def hold_in_store(settings: Settings, content: bytes | None = None, **request: object) -> str:
    """Hold `hold_request(content, **request)` in the quarantine `settings` name; the entry id."""
    store = open_store(settings)
    try:
        return store.hold(hold_request(content, **request)).id  # type: ignore[arg-type]
    finally:
        store.close()


# --- attachments, built in memory -------------------------------------------------------------

def xlsx(rows: Sequence[Sequence[object]], *more_sheets: Sequence[Sequence[object]]) -> bytes:
    book = openpyxl.Workbook()
    for n, sheet_rows in enumerate((rows, *more_sheets)):
        sheet = book.active if n == 0 else book.create_sheet()
        for row in sheet_rows:
            sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def docx(paragraphs: Sequence[str], rows: Sequence[Sequence[str]] = ()) -> bytes:
    doc = python_docx.Document()
    for text in paragraphs:
        doc.add_paragraph(text)
    if rows:
        tbl = doc.add_table(rows=len(rows), cols=len(rows[0]))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                tbl.cell(r, c).text = value
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def pdf(pages: Sequence[Sequence[str]]) -> bytes:
    """A minimal but valid PDF with a Helvetica text layer, one list of lines per page."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    for lines in pages:
        ops = b"BT /F1 11 Tf 50 750 Td 14 TL " + b" ".join(
            b"(" + line.encode("latin-1").replace(b"(", b"\\(").replace(b")", b"\\)")
            + b") Tj T*" for line in lines) + b" ET"
        objects.append(b"<< /Length %d >>\nstream\n" % len(ops) + ops + b"\nendstream")
        content = len(objects)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                       % (len(pages) * 2 + 3, content))
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % off for off in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, xref))
    return out.getvalue()


def encrypted_pdf(lines: Sequence[str], password: str = "s3cret") -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf([lines]))))
    writer.encrypt(user_password=password, owner_password=password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def zip_of(members: Sequence[tuple[str, bytes]], *, encrypted: Sequence[str] = ()) -> bytes:
    """A ZIP; members named in `encrypted` carry the encryption flag (as a locked zip does)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    raw = bytearray(out.getvalue())
    for name in encrypted:  # zipfile cannot encrypt: set the flag bit in both headers
        for signature, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
            pos = raw.find(signature)
            while pos != -1:
                if raw[pos + name_at:pos + name_at + len(name)] == name.encode():
                    raw[pos + flag_at] |= 0x1
                pos = raw.find(signature, pos + 4)
    return bytes(raw)


MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x0f" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
OCTET = "application/octet-stream"
ROSTER_PDF = pdf([["Student ID 482913 Alex Jones"], ["second page"]])
NEWSLETTER_PDF = pdf([["The concert moves to Friday."]])


def attached(name: str, data: bytes, declared: str = OCTET) -> bytes:
    """A short message with one attachment (LF line ends)."""
    return message("see attached", attachments=[(name, data, declared)])


def pdf_with_content(stream: bytes) -> bytes:
    """A one-page PDF whose page content stream is `stream` (FlateDecode)."""
    packed = zlib.compress(stream, 9)
    data = pdf([["x"]]).replace(b"<< /Length", b"<< /Filter /FlateDecode /Length", 1)
    start, end = data.index(b"stream\n") + 7, data.index(b"\nendstream")
    data = data[:start] + packed + data[end:]
    return re.sub(rb"/Length \d+", b"/Length %d" % len(packed), data, count=1)


# --- inspection -------------------------------------------------------------------------------

STUDENTS = (
    ("482913", "Alex Jones"), ("517204", "Sam Lee"), ("530001", "Maria Garcia"),
    ("530002", "Wei Chen"), ("530003", "Liam O'Brien"), ("530004", "Ava Patel"),
    ("530005", "Noah Kim"), ("530006", "Emma Brown"), ("530007", "José Núñez"),
)
LEXICONS = {"harassment": ["idiot", "shut up", "loser"], "restricted_subjects": []}
# The pattern engines installed here ("re" always; Hyperscan and RE2 when their wheels are).
AVAILABLE_ENGINES = [e for e in ENGINES
                     if e == "re" or (e == "hyperscan" and hyperscan) or (e == "re2" and re2)]


class FakeDirectory:
    """Just the one method inspection needs from the real directory: the students."""

    def __init__(self, students: Iterable[tuple[str, str]] = STUDENTS):
        self._students = tuple(students)

    def students(self) -> Iterable[tuple[str, str]]:
        return iter(self._students)


def make_settings(**limits: object) -> Settings:
    return Settings(source=Path("gateway.yaml"),
                    inspection=replace(InspectionSettings(), **limits))


def make_inspector(engine: str | None = None, lexicons: dict | None = None,
                   **limits: object) -> Inspector:
    return build_inspector(make_settings(**limits), FakeDirectory(),
                           LEXICONS if lexicons is None else lexicons, engine=engine)


def by_detector(result: Inspection) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in result.findings:
        out.setdefault(f.detector, []).append(f)
    return out


def detectors(result: Inspection) -> set[str]:
    return {f.detector for f in result.findings}


def locations(result: Inspection, detector: str) -> set[str]:
    return {f.location for f in by_detector(result).get(detector, [])}


def uninspectable_reasons(result: Inspection) -> set[str | None]:
    """Why parts could not be read (the `uninspectable` findings' samples)."""
    return {f.sample for f in by_detector(result).get("uninspectable", [])}


def findings_in(inspector: Inspector, text: str) -> dict[str, Finding]:
    """What the detectors report for `text` as a message body, by detector."""
    return {f.detector: f for f in inspector.scan_part(Part(text, "body"))}


class StepClock:
    """Deterministic time: every reading is one second later than the last."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def stepped_inspector(time_budget: float, pdf_engine: str = "auto") -> Inspector:
    """An inspector whose clock advances a second at every reading."""
    limits = replace(InspectionSettings(), time_budget=time_budget, pdf_engine=pdf_engine)
    return Inspector(limits, r"\b\d{6}\b", STUDENTS, LEXICONS, clock=StepClock())


# --- stand-ins for the pure core, so SMTP-level tests control the decision exactly ------------

class DomainDirectory:
    """Roles from the District domains alone (no people file)."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def party(self, address: str) -> Party:
        domain = address.rpartition("@")[2].lower()
        if domain in self.settings.district.staff_domains:
            return Party(address.lower(), Role.STAFF, True)
        if domain in self.settings.district.student_domains:
            return Party(address.lower(), Role.STUDENT, True)
        return Party(address.lower(), Role.EXTERNAL, False)


class NullInspector:
    def inspect(self, raw: bytes) -> Inspection:
        return Inspection()


class ExplodingInspector:
    def inspect(self, raw: bytes) -> Inspection:
        raise RuntimeError("boom")


class HeaderInspector:
    """Reports the findings a message names in X-Test-Finding headers ("detector count
    location"), and nothing else: the CLI tests pin what a command does with findings."""

    def inspect(self, raw: bytes) -> Inspection:
        msg = email.message_from_bytes(raw)
        findings = []
        for value in msg.get_all("X-Test-Finding") or []:
            detector, count, location = value.split(" ", 2)
            findings.append(Finding(detector, int(count), location))
        return Inspection(tuple(findings), (), str(msg.get("Subject", "")), None,
                          msg.get("From"), False, True)


@dataclass
class ScriptedPolicy:
    """Decides by recipient address: {address: Action}; everyone else is relayed."""

    actions: dict[str, Action] = field(default_factory=dict)
    annotation: Annotation = field(
        default_factory=lambda: Annotation(headers=(("X-Test-Annotated", "yes"),)))
    lexicons: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def contact_plan(self, envelope: Envelope, sender: Party, recipients: Sequence[Party],
                     inspection: Inspection) -> ContactPlan:
        return ContactPlan()  # it never asks the history

    def decide(self, envelope: Envelope, sender: Party, recipients: Sequence[Party],
               inspection: Inspection, history: ContactHistory) -> Decision:
        verdicts = []
        for party in recipients:
            action = self.actions.get(party.address, Action.RELAY)
            matches: tuple[RuleMatch, ...] = ()
            if action is not Action.RELAY:
                matches = (RuleMatch("T1", action, "scripted for the test",
                                     annotation=self.annotation
                                     if action is Action.ANNOTATE else None),)
            verdicts.append(Verdict(party, action, matches))
        return Decision(envelope, sender, tuple(verdicts), inspection)


def runtime_for(settings: Settings, policy: object = None, inspector: object = None) -> Runtime:
    return Runtime(settings, DomainDirectory(settings), inspector or NullInspector(),
                   policy or ScriptedPolicy())  # type: ignore[arg-type]


# --- a small district (d230) with the shipped policy, decided through the pipeline -------------

STAFF_DOMAIN = "staff.d230.example"
STUDENT_DOMAIN = "students.d230.example"

PEOPLE = f"""address,role,person_id,name,supervisor,students
jsmith@{STAFF_DOMAIN},staff,T1,Jane Smith,principal@{STAFF_DOMAIN},
jane.home@gmail.example,staff,T1,Jane Smith,,
mbrown@{STAFF_DOMAIN},staff,T2,Mark Brown,principal@{STAFF_DOMAIN},
mark.brown@home.example,staff,T2,Mark Brown,,
principal@{STAFF_DOMAIN},staff,T0,Pat Principal,,
alex@{STUDENT_DOMAIN},student,482913,Alex Jones,,
alexj@gmail.example,student,482913,Alex Jones,,
sam@{STUDENT_DOMAIN},student,517204,Sam Lee,,
sam.lee@yahoo.example,student,517204,Sam Lee,,
robin@parents.example,parent,P1,Robin Jones,,482913
"""
RELATIONSHIPS = f"""staff_id,student_id,relationship,reported_to,reported_on
T2,517204,uncle,principal@{STAFF_DOMAIN},2026-08-20
"""


def write_district_config(tmp_path: Path, *, policy: str | None = None, people: str = PEOPLE,
                          relationships: str = RELATIONSHIPS, extra: str = "",
                          quarantine: str = '{url: "sqlite:///var/q.db"}') -> Path:
    """A gateway.yaml plus directory files (and the shipped policy unless one is given)."""
    (tmp_path / "people.csv").write_text(people, encoding="utf-8")
    (tmp_path / "relationships.csv").write_text(relationships, encoding="utf-8")
    text = policy if policy is not None else SHIPPED_POLICY.read_text(encoding="utf-8")
    (tmp_path / "policies.yaml").write_text(text, encoding="utf-8")
    config = tmp_path / "gateway.yaml"
    config.write_text(f"""
listen: {{host: 127.0.0.1, port: 0}}
upstream: {{host: 127.0.0.1, port: 1}}
trusted_networks: [127.0.0.0/8]
district:
  staff_domains: [{STAFF_DOMAIN}]
  student_domains: [{STUDENT_DOMAIN}]
directory: {{people: people.csv, relationships: relationships.csv}}
policies: policies.yaml
quarantine: {quarantine}
postmaster: postmaster@{STAFF_DOMAIN}
{extra}
""", encoding="utf-8")
    return config


class _GivenInspection:
    """World.decide hands the pipeline its inspection; nothing may inspect again."""

    def inspect(self, raw: bytes) -> Inspection:
        raise AssertionError("World.decide passes the inspection itself")


@dataclass
class World:
    settings: Settings
    directory: Directory
    policy: Policy

    @property
    def runtime(self) -> Runtime:
        return Runtime(self.settings, self.directory, _GivenInspection(), self.policy)

    def decide(self, mail_from: str, rcpts: str | Sequence[str], *,
               findings: Iterable[Finding] = (), attachments: Iterable[Attachment] = (),
               trusted: bool = True, from_header: str | None = None, complete: bool = True,
               history: ContactHistory | None = None, auth: AuthResults | None = None,
               reply_to: str | None = None) -> Decision:
        """What `gateway.pipeline.decide` makes of this envelope, given what inspection found
        (and what sender authentication found, `auth`)."""
        rcpt_list = (rcpts,) if isinstance(rcpts, str) else tuple(rcpts)
        envelope = Envelope(mail_from, rcpt_list, b"", client_ip="127.0.0.1" if trusted
                            else "203.0.113.9", client_trusted=trusted,
                            received_at=datetime(2026, 9, 1, tzinfo=UTC), auth=auth)
        inspection = Inspection(tuple(findings), tuple(attachments), "subject", None,
                                from_header or mail_from, False, complete,
                                reply_to=reply_to)
        return pipeline.decide(envelope, self.runtime, history or NoHistory(), inspection)


def world(tmp_path: Path, **kwargs: str) -> World:
    settings = load_settings(write_district_config(tmp_path, **kwargs))
    directory = load_directory(settings)
    return World(settings, directory, load_policy(settings, directory))


def finding(detector: str, *students: str, count: int = 1, distinct: int = 0,
            location: str = "body") -> Finding:
    return Finding(detector, count, location, distinct, frozenset(students))


class CountingHistory:
    """Reports a fixed number of earlier contacts and remembers what it was asked."""

    def __init__(self, earlier: int):
        self.earlier = earlier
        self.asked: list[tuple[str, str, datetime]] = []

    def count_contacts(self, student_id: str, staff_id: str, since: datetime) -> int:
        self.asked.append((student_id, staff_id, since))
        return self.earlier

    def record_contact(self, student_id: str, staff_id: str, at: datetime) -> None:
        raise AssertionError("the engine must not record contacts")
