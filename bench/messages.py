"""Bench inputs: a generated district directory and realistic messages, written as files.

Why generated rather than shipped: a directory with thousands of students makes the exact-match
student-number and name detectors work as hard as in a real district, and the messages look like
ordinary school mail (newsletters, schedules) that the default policy relays, so the bench
measures the common path. The text is built from a fixed vocabulary with a fixed seed, so every
run sends the same bytes. No six-digit numbers appear in message text: they would look like
student numbers and turn the bench into a quarantine benchmark.
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

STAFF_DOMAIN = "staff.district230.example"
STUDENT_DOMAIN = "students.district230.example"
SENDER = f"teacher0001@{STAFF_DOMAIN}"
RECIPIENT = "parent0001@parents.example"

def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_WORDS = _words("the school board meeting schedule will include updates about the library "
          "renovation field trip permission forms band concert volunteers cafeteria menu "
          "changes next week please remember that picture day is coming and the science "
          "fair projects are due before the winter break our teachers thank every family "
          "for the support with the reading program homework club art show soccer practice "
          "bus routes parking lot construction weather closing policy early dismissal lunch "
          "time recess garden club chess tournament spelling bee assembly guest speaker "
          "museum visit history project math night open house conference sign up sheet")
_FIRST = _words("Alex Sam Jordan Taylor Morgan Casey Riley Jamie Avery Quinn Drew Parker Reese "
          "Rowan Skyler Emerson Finley Harper Logan Elliot")
_LAST = _words("Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Wilson Anderson Thomas "
         "Moore Jackson Martin Lee Thompson White Harris Clark Lewis Walker")


@dataclass(frozen=True, slots=True)
class BenchMessage:
    name: str
    path: Path
    size: int


def prose(rng: random.Random, size: int) -> str:
    """Paragraphs of ordinary school-newsletter words, lines under 78 characters."""
    lines: list[str] = []
    line: list[str] = []
    total = 0
    while total < size:
        word = rng.choice(_WORDS)
        if sum(len(w) + 1 for w in line) + len(word) > 72:
            text = " ".join(line).capitalize() + ("." if rng.random() < 0.3 else "")
            lines.append(text)
            total += len(text) + 1
            line = []
            if rng.random() < 0.15:
                lines.append("")
        line.append(word)
    return "\n".join(lines) + "\n"


def write_directory(folder: Path, students: int = 3000, staff: int = 200,
                    parents: int = 1500, seed: int = 230) -> tuple[Path, Path]:
    """people.csv and relationships.csv shaped like a mid-size district's."""
    rng = random.Random(seed)
    people = folder / "people.csv"
    with people.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["address", "role", "person_id", "name", "supervisor", "students"])
        principal = f"principal@{STAFF_DOMAIN}"
        out.writerow([principal, "staff", "T0000", "Pat Principal", "", ""])
        for i in range(1, staff + 1):
            name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
            out.writerow([f"teacher{i:04d}@{STAFF_DOMAIN}", "staff", f"T{i:04d}", name,
                          principal, ""])
        ids = rng.sample(range(100000, 999999), students)
        for i, sid in enumerate(ids, 1):
            name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}{i}"
            out.writerow([f"s{sid}@{STUDENT_DOMAIN}", "student", str(sid), name, "", ""])
        for i in range(1, parents + 1):
            kids = ";".join(str(k) for k in rng.sample(ids, rng.choice((1, 1, 2))))
            out.writerow([f"parent{i:04d}@parents.example", "parent", f"P{i:04d}",
                          f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", "", kids])
    relationships = folder / "relationships.csv"
    with relationships.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["staff_id", "student_id", "relationship", "reported_to", "reported_on"])
        out.writerow(["T0002", str(ids[0]), "aunt", principal, "2026-08-20"])
    return people, relationships


def _base(rng: random.Random, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Teacher One <{SENDER}>"
    msg["To"] = f"Parent One <{RECIPIENT}>"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 14 Sep 2026 08:30:00 -0500"
    msg["Message-ID"] = f"<bench-{rng.randrange(1 << 40):x}@{STAFF_DOMAIN}>"
    return msg


def plain(rng: random.Random, size: int) -> EmailMessage:
    msg = _base(rng, "Weekly classroom update")
    msg.set_content(prose(rng, size))
    return msg


def html(rng: random.Random, size: int) -> EmailMessage:
    msg = _base(rng, "Newsletter: this week at school")
    text = prose(rng, size // 3)
    paragraphs = "".join(f"<p>{p}</p>\n" for p in prose(rng, size // 2).split("\n\n"))
    msg.set_content(text)
    msg.add_alternative(f"<html><body><h1>This week</h1>\n{paragraphs}</body></html>\n",
                        subtype="html")
    return msg


def schedule_rows(rng: random.Random, rows: int) -> list[list[str]]:
    days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
    return [["day", "time", "activity", "room"]] + [
        [rng.choice(days), f"{rng.randrange(8, 16)}:{rng.choice(('00', '30'))}",
         " ".join(rng.sample(_WORDS, 3)), f"Room {rng.randrange(100, 300)}"]
        for _ in range(rows)]


def with_csv(rng: random.Random, size: int) -> EmailMessage:
    msg = plain(rng, size // 3)
    buf = io.StringIO()
    csv.writer(buf).writerows(schedule_rows(rng, size // 80))
    msg.add_attachment(buf.getvalue().encode(), maintype="text", subtype="csv",
                       filename="schedule.csv")
    return msg


def with_xlsx(rng: random.Random, size: int) -> EmailMessage:
    msg = plain(rng, size // 3)
    msg.add_attachment(xlsx_bytes(schedule_rows(rng, size // 200)), maintype="application",
                       subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                       filename="schedule.xlsx")
    return msg


def with_pdf(rng: random.Random, size: int) -> EmailMessage:
    msg = plain(rng, size // 3)
    msg.add_attachment(pdf_bytes(prose(rng, size // 3).splitlines()), maintype="application",
                       subtype="pdf", filename="newsletter.pdf")
    return msg


def xlsx_bytes(rows: list[list[str]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def pdf_bytes(lines: list[str]) -> bytes:
    """A minimal valid one-page PDF with a text stream (no PDF writer needed)."""
    ops = ["BT /F1 9 Tf 40 800 Td 11 TL"]
    for text in lines[:70]:
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) '")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, xref))
    return out.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


KINDS = {"plain": plain, "html": html, "csv": with_csv, "xlsx": with_xlsx, "pdf": with_pdf}
MIX = ("plain", "html", "csv", "xlsx", "pdf")


def write_messages(folder: Path, seed: int = 5125) -> dict[str, BenchMessage]:
    """10 KB and 100 KB plain messages plus the ~10 KB realistic mix, as LF-terminated files.

    LF line ends because smtp-source -F appends CRLF to every line and dot-stuffs itself.
    """
    rng = random.Random(seed)
    specs = [("plain-10k", "plain", 10_000), ("plain-100k", "plain", 100_000)]
    specs += [(f"mix-{kind}", kind, 10_000) for kind in MIX]
    out: dict[str, BenchMessage] = {}
    for name, kind, size in specs:
        data = KINDS[kind](rng, size).as_bytes().replace(b"\r\n", b"\n")
        path = folder / f"{name}.eml"
        path.write_bytes(data)
        out[name] = BenchMessage(name, path, len(data))
    return out


def wire_bytes(path: Path) -> bytes:
    """The DATA payload as smtp-source sends it: CRLF lines, dot-stuffed, with terminator."""
    lines = path.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    stuffed = [b"." + line if line.startswith(b".") else line for line in lines]
    return b"\r\n".join(stuffed) + b"\r\n.\r\n"
