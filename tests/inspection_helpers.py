"""Builders for inspection tests: settings, a fake directory, and real MIME/XLSX/DOCX/PDF/ZIP
files made in memory (nothing is mocked: every file goes through its real parser)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

from gateway.config import InspectionSettings, Settings
from gateway.inspect import Inspector, build_inspector
from gateway.model import Finding, Inspection

STUDENTS = (
    ("482913", "Alex Jones"), ("517204", "Sam Lee"), ("530001", "Maria Garcia"),
    ("530002", "Wei Chen"), ("530003", "Liam O'Brien"), ("530004", "Ava Patel"),
    ("530005", "Noah Kim"), ("530006", "Emma Brown"), ("530007", "José Núñez"),
)
LEXICONS = {"harassment": ["idiot", "shut up", "loser"], "restricted_subjects": []}


class FakeDirectory:
    """Just the one method inspection needs from the real directory."""

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


def message(body: str = "Hello.", *, subject: str = "Note", html: str | None = None,
            attachments: Sequence[tuple[str, bytes, str]] = ()) -> bytes:
    """A real message; attachments are (filename, data, declared type)."""
    msg = EmailMessage()
    msg["From"] = "jsmith@staff.district230.example"
    msg["To"] = "someone@example.org"
    msg["Subject"] = subject
    msg["Message-ID"] = "<t1@staff.district230.example>"
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, data, declared in attachments:
        main, _, sub = declared.partition("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=filename)
    return msg.as_bytes()


def by_detector(result: Inspection) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in result.findings:
        out.setdefault(f.detector, []).append(f)
    return out


def detectors(result: Inspection) -> set[str]:
    return {f.detector for f in result.findings}


def xlsx(rows: Sequence[Sequence[object]], *more_sheets: Sequence[Sequence[object]]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    for n, sheet_rows in enumerate((rows, *more_sheets)):
        sheet = book.active if n == 0 else book.create_sheet()
        for row in sheet_rows:
            sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def docx(paragraphs: Sequence[str], rows: Sequence[Sequence[str]] = ()) -> bytes:
    import docx as python_docx

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
    from pypdf import PdfReader, PdfWriter

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
