"""Fuzz `Inspector.inspect` with structure-aware hostile messages: never a crash, whatever the
input.

    .venv/bin/python bench/fuzz_inspect.py --seconds 600          # bounded by time
    .venv/bin/python bench/fuzz_inspect.py --examples 2000 --seed 7
    .venv/bin/python bench/fuzz_inspect.py --replay 123456 --save /tmp/case.eml

Each example is generated from an integer seed (so any finding replays exactly): a real
message (text, HTML, CSV, XLSX, DOCX, PDF, ZIP, forwarded mail) mutated at the MIME level
(headers, boundaries, charsets, transfer encodings, truncation, byte noise), inside its
attachments (broken XML in OOXML, garbled PDFs, nested and bomb ZIPs), or a freshly built
hostile structure (deep nesting, 100k headers, huge lines, NUL bytes). Examples run in a child
process; the parent kills a child that overruns `time_budget + margin` and reports a hang.

A finding is: an exception out of `Inspector._inspect` (which `inspect` would have hidden as an
"internal error" hold), or a run past the budget plus margin (CPU time; the parent's wall-clock
kill limit catches hangs in C code).
Not run by the test suite; each regression found with it is a test beside the code it broke
(tests/test_inspect.py, tests/extract/, tests/detectors/, tests/integration/test_pdf_helper.py).
"""

from __future__ import annotations

import argparse
import base64
import io
import multiprocessing as mp
import random
import re
import resource
import sys
import time
import traceback
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import factories as h  # noqa: E402

BUDGET = 2.0  # inspection.time_budget used while fuzzing
MARGIN = 3.0  # allowed overrun past the budget before it counts as a hang
KILL_AFTER = 30.0  # the parent's hard limit per example
MEMORY_LIMIT = 4 << 30

ROSTER = [["Student ID", "First Name", "Last Name", "Grade", "DOB"],
          ["482913", "Alex", "Jones", "B+", "2010-03-04"],
          ["517204", "Sam", "Lee", "C", "2011-07-19"]]
CHARSETS = ("utf-8", "us-ascii", "iso-8859-1", "utf-7", "utf-16", "utf-32", "idna", "punycode",
            "rot13", "base64", "zlib", "hex", "uu", "unicode-escape", "raw-unicode-escape",
            "x-unknown", "", "\"", "utf-8'en'", "=?utf-8?q?x?=", "cp1252\x00", "a" * 300,
            "shift_jis", "iso-2022-jp", "gb18030", "utf_8_sig", "mbcs", "undefined")
CTES = ("base64", "quoted-printable", "x-uuencode", "uuencode", "8bit", "7bit", "binary",
        "garbage", "", "base64; x=1", "BASE64 ")


# --- seed messages --------------------------------------------------------------------------

def seeds() -> list[bytes]:
    text = "Roster for Alex Jones, student ID 482913, DOB 03/04/2010, SSN 524-61-3378."
    csv_bytes = "\n".join(",".join(r) for r in ROSTER).encode()
    inner = h.message(text, subject="inner")
    out = [
        h.message(text),
        h.message(text, html=f"<html><body><p>{text}</p><table><tr><td>482913</td></tr>"
                             "</table></body></html>"),
        h.message("see attached", attachments=[("r.csv", csv_bytes, "text/csv")]),
        h.message("x", attachments=[("r.xlsx", h.xlsx(ROSTER), "application/octet-stream")]),
        h.message("x", attachments=[("r.docx", h.docx([text], ROSTER), "application/msword")]),
        h.message("x", attachments=[("r.pdf", h.pdf([[text], ["page two 517204"]]),
                                     "application/pdf")]),
        h.message("x", attachments=[("r.zip", h.zip_of([("a.csv", csv_bytes),
                                                        ("b.xlsx", h.xlsx(ROSTER)),
                                                        ("c.eml", inner)]), "application/zip")]),
        h.message("x", attachments=[("fwd.eml", inner, "message/rfc822")]),
        h.message("x", attachments=[("e.pdf", h.encrypted_pdf([text]), "application/pdf")]),
        h.message(text, subject="=?utf-8?b?" + base64.b64encode("Grades é".encode()).decode()
                  + "?="),
    ]
    return out


# --- mutators on raw message bytes ----------------------------------------------------------

def m_flip(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 40)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def m_truncate(rng: random.Random, raw: bytes) -> bytes:
    return raw[:rng.randrange(len(raw))]


def m_splice(rng: random.Random, raw: bytes) -> bytes:
    a, b = sorted(rng.randrange(len(raw)) for _ in range(2))
    if rng.random() < 0.5:
        return raw[:a] + raw[b:]
    return raw[:b] + raw[a:b] * rng.randint(2, 50) + raw[b:]


def m_nul(rng: random.Random, raw: bytes) -> bytes:
    pos = rng.randrange(len(raw))
    junk = rng.choice([b"\x00", b"\x00" * 1000, b"\r", b"\r\r\n", b"\n.\r\n", b"\xff\xfe",
                       b"\x1b$B", b"=\r\n", b"=?", b"--", b"\t"])
    return raw[:pos] + junk + raw[pos:]


def m_charset(rng: random.Random, raw: bytes) -> bytes:
    cs = rng.choice(CHARSETS).encode("latin-1", "replace")
    return re.sub(rb'charset="?[^";\r\n]*"?', b'charset="' + cs + b'"', raw,
                  count=rng.randint(0, 3))


def m_cte(rng: random.Random, raw: bytes) -> bytes:
    cte = rng.choice(CTES).encode()
    return re.sub(rb"Content-Transfer-Encoding: [^\r\n]*", b"Content-Transfer-Encoding: " + cte,
                  raw, count=rng.randint(0, 3))


def m_boundary(rng: random.Random, raw: bytes) -> bytes:
    match = re.search(rb'boundary="([^"]+)"', raw)
    if not match:
        return m_flip(rng, raw)
    b = match.group(1)
    choice = rng.randrange(5)
    if choice == 0:  # drop every closing delimiter
        return raw.replace(b"--" + b + b"--", b"")
    if choice == 1:  # a boundary the body never uses
        return raw.replace(b'boundary="' + b + b'"', b'boundary="zz"', 1)
    if choice == 2:
        return raw.replace(b'boundary="' + b + b'"', b'boundary=""', 1)
    if choice == 3:  # boundary that is a prefix of the body lines
        return raw.replace(b'boundary="' + b + b'"', b'boundary="' + b[:1] + b'"', 1)
    return raw.replace(b"--" + b + b"\n", b"--" + b + b"\n" * rng.randint(1, 3)
                       + b"Content-Type: multipart/mixed\n", rng.randint(1, 3))


def m_header(rng: random.Random, raw: bytes) -> bytes:
    lines = [
        b"Content-Type: multipart/mixed",
        b"Content-Type: message/rfc822",
        b"Content-Type: text/plain; charset*=utf-8''%ff%fe%00",
        b"Content-Type: application/pdf; name*0*=utf-8''a%; name*1=b",
        b"Content-Disposition: attachment; filename*=x'y'%E9%",
        b"Content-Disposition: attachment; filename=\"=?utf-8?b?****?=\"",
        b"Content-Disposition: attachment; filename*=''" + b"%41" * 5000,
        b"Subject: " + b"=?utf-8?q?=FF=FE?= " * 2000,
        b"Subject: =?x-unknown?b?YWJj?= =?utf-8?b?===?= =?utf-7?q?+AGEAYgBj-?=",
        b"From: " + b"<" * 10000,
        b"Content-Type: " + b"multipart/mixed; boundary=a; " * 2000,
        b"Content-Type: text/plain; charset=" + rng.choice(CHARSETS).encode("latin-1", "replace"),
        b"Content-Transfer-Encoding: " + rng.choice(CTES).encode(),
        b"X-Long: " + b"a" * rng.choice([1000, 100_000, 2_000_000]),
        b"X-Folded: a\n" + b" b\n" * 20000,
        b":\n: :",
        b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"",
        b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data",
    ]
    starts = [m.start() for m in re.finditer(rb"\nContent-Type:", raw)][:10]
    pos = rng.choice([0, raw.find(b"\n") + 1, *starts])
    return raw[:pos] + rng.choice(lines) + b"\n" + raw[pos:]


def m_base64(rng: random.Random, raw: bytes) -> bytes:
    """Mutate the decoded bytes of one base64 attachment, then re-encode (or break) it."""
    blocks = list(re.finditer(rb"\n\n((?:[A-Za-z0-9+/=]{1,76}\n){3,})", raw))
    if not blocks:
        return m_flip(rng, raw)
    block = rng.choice(blocks)
    try:
        data = base64.b64decode(block.group(1))
    except ValueError:
        return m_flip(rng, raw)
    if rng.random() < 0.2:
        encoded = block.group(1)[:rng.randrange(len(block.group(1)))] + b"!!@@\x00=="
    else:
        encoded = base64.encodebytes(mutate_file(rng, data))
    return raw[:block.start(1)] + encoded + raw[block.end(1):]


# --- mutators on attachment files -----------------------------------------------------------

def mutate_file(rng: random.Random, data: bytes) -> bytes:
    if data.startswith(b"PK") and rng.random() < 0.7:
        return mutate_zip(rng, data)
    if data.startswith(b"%PDF") and rng.random() < 0.7:
        return mutate_pdf(rng, data)
    return rng.choice([m_flip, m_truncate, m_splice, m_nul])(rng, data)


XML_BOMBS = (
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(b'<!ENTITY %c "%s">' % (98 + i, (b"&%c;" % (97 + i)) * 10) for i in range(9))
    + b"]><l>&j;</l>",
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    b"<a>" * 100_000 + b"</a>" * 100_000,
    b"<?xml version='1.0'?><unclosed",
    b"\x00\x01<not xml",
)


def mutate_zip(rng: random.Random, data: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [(i.filename, zf.read(i)) for i in zf.infolist()]
    except Exception:
        return m_flip(rng, data)
    if not members:
        return data
    i = rng.randrange(len(members))
    name, body = members[i]
    choice = rng.randrange(6)
    if choice == 0 and name.endswith(".xml"):
        body = rng.choice(XML_BOMBS)
    elif choice == 1 and name.endswith(".xml"):
        body = _xml_mutate(rng, body)
    elif choice == 2:
        body = mutate_file(rng, body)
    elif choice == 3:
        members.append((rng.choice(["word/header1.xml", "xl/sharedStrings.xml", "../../x",
                                    "a/" * 200 + "x", "\x00.csv"]), rng.choice(XML_BOMBS)))
    elif choice == 4:
        return m_flip(rng, data)
    else:
        members = members * rng.randint(2, 300)
    members[i] = (name, body)
    try:
        return _zip(members)
    except (ValueError, IndexError):  # a name zipfile cannot write (empty after a NUL)
        return m_flip(rng, data)


def _xml_mutate(rng: random.Random, body: bytes) -> bytes:
    ops = [
        lambda b: b.replace(b'ref="A1:', b'ref="A1:XFD1048576" x="', 1),
        lambda b: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', b),
        lambda b: re.sub(rb'r="(\d+)"', lambda m: b'r="%d"' % rng.choice(
            [1048576, 0, -1, 99999999999]), b, count=rng.randint(1, 3)),
        lambda b: re.sub(rb'r="([A-Z]+)(\d+)"', lambda m: b'r="XFD%s"' % m.group(2), b, count=1),
        lambda b: b.replace(b"<", b"<x:", 3),
        lambda b: b[:rng.randrange(len(b))],
        lambda b: re.sub(rb"<v>[^<]*</v>", rng.choice([b"<v>1e999</v>", b"<v>nan</v>",
                                                       b"<v>99999999999999999999</v>",
                                                       b"<v>-1</v>"]), b, count=3),
        lambda b: re.sub(rb't="[a-z]+"', rng.choice([b't="s"', b't="d"', b't="e"', b't="b"',
                                                      b't="zz"']), b, count=3),
    ]
    return rng.choice(ops)(body)


def mutate_pdf(rng: random.Random, data: bytes) -> bytes:
    ops = [
        lambda d: d[:rng.randrange(len(d))],
        lambda d: d.replace(b"/Count 2", b"/Count 999999999"),
        lambda d: d.replace(b"/Kids [", b"/Kids [2 0 R 2 0 R "),  # page tree loop
        lambda d: re.sub(rb"/Length \d+", b"/Length 999999999", d),
        lambda d: re.sub(rb"startxref\n\d+", b"startxref\n" + str(rng.randrange(10**9)).encode(),
                         d),
        lambda d: d.replace(b"xref", b"xraf"),
        lambda d: d.replace(b"/Root 1 0 R", b"/Root 99 0 R"),
        lambda d: d.replace(b"BT", b"BT " + b"[" * 5000 + b"]" * 5000),
        lambda d: d.replace(b"<< /Type /Catalog", b"<< /Type /Catalog " + b"<<" * 3000),
        lambda d: d.replace(b"/Resources <<", b"/Resources 3 0 R /X <<"),
        lambda d: m_flip(rng, d),
    ]
    return rng.choice(ops)(data)


def _zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as zf:
        for name, body in members:
            zf.writestr(name, body)
    return out.getvalue()


# --- fresh hostile structures ---------------------------------------------------------------

def g_deep_multipart(rng: random.Random) -> bytes:
    n = rng.choice([10, 60, 300, 3000])
    head = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i)
                    for i in range(n))
    return b"From: a@b\nSubject: deep\n" + head + b"Content-Type: text/plain\n\n482913\n"


def g_deep_rfc822(rng: random.Random) -> bytes:
    n = rng.choice([10, 60, 300, 2000])
    return (b"From: a@b\nSubject: deep\n" + b"Content-Type: message/rfc822\n\n" * n
            + b"Subject: inner\n\nstudent 482913\n")


def g_many_parts(rng: random.Random) -> bytes:
    n = rng.choice([500, 5000, 30000])
    body = b"".join(b"--b\nContent-Type: text/plain\n\nstudent %d\n" % (482913 + i)
                    for i in range(n))
    return b'From: a@b\nContent-Type: multipart/mixed; boundary="b"\n\n' + body + b"--b--\n"


def g_many_headers(rng: random.Random) -> bytes:
    n = rng.choice([10_000, 100_000])
    line = rng.choice([b"X-H: v\n", b"Subject: =?utf-8?q?a?=\n", b"Received: from x\n",
                       b"Content-Type: text/plain\n", b" folded\n"])
    return b"From: a@b\n" + line * n + b"\nbody\n"


def g_huge_line(rng: random.Random) -> bytes:
    size = rng.choice([1 << 20, 8 << 20, 24 << 20])
    unit = rng.choice([b"a", b"482913 ", b"<", b"<a ", b"&amp;", b"=", b"\x00", b"1,", b"\"",
                       b"03/04/2010 ", b"Alex Jones ", b"student ", b"=?utf-8?q?a?= "])
    ctype = rng.choice([b"text/plain", b"text/html", b"text/csv", b"application/octet-stream"])
    body = (unit * (size // len(unit)))
    return b"From: a@b\nContent-Type: " + ctype + b"\n\n" + body + b"\n"


def g_zip_bomb(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:  # one big member of zeros
        data = _zip([("z.csv", b"0" * rng.choice([30 << 20, 200 << 20]))])
    elif kind == 1:  # nested zips
        data = _zip([("a.csv", b"student 482913\n")])
        for i in range(rng.choice([3, 10, 40])):
            data = _zip([(f"n{i}.zip", data)] * rng.randint(1, 3))
    elif kind == 2:  # many members of moderate size (ratio bomb under the per-member limit)
        data = _zip([(f"m{i}.txt", b"482913 " * 150_000) for i in range(rng.choice([10, 60]))])
    else:  # stored (uncompressed) members whose headers lie about sizes
        raw = bytearray(_zip([("a.txt", b"student 482913 " * 100)], zipfile.ZIP_STORED))
        pos = raw.find(b"PK\x01\x02")
        raw[pos + 24:pos + 28] = (0x7FFFFFFF).to_bytes(4, "little")
        data = bytes(raw)
    return h.message("bomb", attachments=[("b.zip", data, "application/zip")])


def g_xlsx_dimension(rng: random.Random) -> bytes:
    """An XLSX whose sheet claims (or uses) a huge cell range."""
    book = h.xlsx(ROSTER)
    with zipfile.ZipFile(io.BytesIO(book)) as zf:
        members = [(i.filename, zf.read(i)) for i in zf.infolist()]
    out = []
    for name, body in members:
        if name.startswith("xl/worksheets/"):
            body = _xml_mutate(rng, body) if rng.random() < 0.5 else re.sub(
                rb'<row r="3"', b'<row r="1048576"', body).replace(b'r="A3"', b'r="A1048576"')
        out.append((name, body))
    return h.message("x", attachments=[("d.xlsx", _zip(out), "application/octet-stream")])


def g_pdf_bomb(rng: random.Random) -> bytes:
    n = rng.choice([50 << 20, 300 << 20])
    stream = zlib.compress(b"BT /F1 11 Tf (482913 ) Tj ET\n" * (n // 30), 9)
    pdf = h.pdf([["x"]])
    pdf = pdf.replace(b"<< /Length", b"<< /Filter /FlateDecode /Length", 1)
    start = pdf.index(b"stream\n") + 7
    end = pdf.index(b"\nendstream")
    pdf = pdf[:start] + stream + pdf[end:]
    pdf = re.sub(rb"/Length \d+", b"/Length %d" % len(stream), pdf, count=1)
    return h.message("x", attachments=[("p.pdf", pdf, "application/pdf")])


def g_pdf_pages(rng: random.Random) -> bytes:
    pages = [["student 482913 " * 20] for _ in range(rng.choice([200, 3000]))]
    return h.message("x", attachments=[("p.pdf", h.pdf(pages), "application/pdf")])


def g_csv(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        data = b'"' + b"a" * (20 << 20)
    elif kind == 1:
        data = (b"," * 100_000 + b"\n") * 50
    elif kind == 2:
        data = b"id,name\n" + b"482913,Alex\x00Jones\n" * 100_000
    else:
        data = b"Student ID,DOB\n" + b"482913,03/04/2010\n" * rng.choice([100_000, 400_000])
    return h.message("x", attachments=[("r.csv", data, "text/csv")])


def g_hits(rng: random.Random) -> bytes:
    """Few bytes, many detector hits: Python-side work per hit."""
    unit = rng.choice(["482913 ", "Alex Jones ", "524-61-3378 ", "03/04/2010 ", "student 1 ",
                       "idiot ", "grades 482913 dob 03/04/2010 ssn 524-61-3378\n"])
    return h.message(unit * ((rng.choice([2, 8, 19]) << 20) // len(unit)))


GENERATORS: tuple[Callable[[random.Random], bytes], ...] = (
    g_deep_multipart, g_deep_rfc822, g_many_parts, g_many_headers, g_huge_line, g_zip_bomb,
    g_xlsx_dimension, g_pdf_bomb, g_pdf_pages, g_csv, g_hits)
MUTATORS = (m_flip, m_truncate, m_splice, m_nul, m_charset, m_cte, m_boundary, m_header,
            m_base64, m_base64, m_base64)


def example(seed: int, corpus: list[bytes]) -> tuple[str, bytes]:
    rng = random.Random(seed)
    if rng.random() < 0.15:
        gen = rng.choice(GENERATORS)
        return gen.__name__, gen(rng)
    raw = rng.choice(corpus)
    names = []
    for _ in range(rng.choice([1, 1, 2, 3, 5])):
        mut = rng.choice(MUTATORS)
        names.append(mut.__name__)
        raw = mut(rng, raw) or b"x"
    return "+".join(names), raw


# --- running --------------------------------------------------------------------------------

def _worker(jobs: mp.Queue, results: mp.Queue) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    inspector = h.make_inspector(time_budget=BUDGET)
    corpus = seeds()
    while (seed := jobs.get()) is not None:
        label, raw = example(seed, corpus)
        results.put(("start", seed, "", 0.0))  # the parent's hang timer starts here
        start, cpu = time.monotonic(), time.process_time()
        problem = ""
        try:
            inspector._inspect(raw)  # what inspect() would hide behind "internal error"
        except Exception:
            problem = "exception:\n" + traceback.format_exc(limit=6)
        elapsed = time.process_time() - cpu  # CPU time: the machine may be shared and busy
        if not problem and elapsed > BUDGET + MARGIN:
            problem = f"slow: {elapsed:.1f}s CPU, {time.monotonic() - start:.1f}s wall"
        results.put(("done", seed, f"{label} ({len(raw)} bytes) {problem}".strip()
                     if problem else label, elapsed))


def run(args: argparse.Namespace) -> int:
    ctx = mp.get_context("fork")
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.seconds
    findings: list[str] = []
    done = 0
    slowest = (0.0, 0, "")
    while done < args.examples and time.monotonic() < deadline:
        jobs, results = ctx.Queue(), ctx.Queue()
        proc = ctx.Process(target=_worker, args=(jobs, results), daemon=True)
        proc.start()
        current = None
        while done < args.examples and time.monotonic() < deadline:
            seed = rng.randrange(1 << 31)
            jobs.put(seed)
            try:
                _, got, _, _ = results.get(timeout=KILL_AFTER + 60)  # worker start-up
                _, got, label, elapsed = results.get(timeout=KILL_AFTER)
            except Exception:  # queue.Empty: a hang (or the worker died: memory limit)
                current = seed
                break
            done += 1
            if elapsed > slowest[0]:
                slowest = (elapsed, got, label)
            if "(" in label:
                findings.append(f"seed {got}: {label}")
                print(f"FINDING seed {got}: {label}", flush=True)
            if done % 100 == 0:
                print(f"{done} examples, {len(findings)} findings", flush=True)
        if current is not None:
            alive = proc.is_alive()
            proc.kill()
            done += 1
            what = "hang (killed)" if alive else f"worker died (exit {proc.exitcode})"
            findings.append(f"seed {current}: {what}")
            print(f"FINDING seed {current}: {what}", flush=True)
        else:
            jobs.put(None)
            proc.join(5)
            proc.kill()
    print(f"\n{done} examples; slowest {slowest[0]:.2f}s (seed {slowest[1]}: {slowest[2]})")
    print(f"{len(findings)} findings")
    for line in findings:
        print(" ", line.splitlines()[0])
    return 1 if findings else 0


def replay(args: argparse.Namespace) -> int:
    label, raw = example(args.replay, seeds())
    print(f"seed {args.replay}: {label}, {len(raw)} bytes")
    if args.save:
        Path(args.save).write_bytes(raw)
    inspector = h.make_inspector(time_budget=BUDGET)
    start = time.monotonic()
    try:
        inspector._inspect(raw)
    except Exception:
        traceback.print_exc()
    result = inspector.inspect(raw)
    print(f"{time.monotonic() - start:.2f}s complete={result.complete}")
    for f in result.findings:
        print(" ", f.public() if hasattr(f, "public") else f.detector)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--replay", type=int, help="run one example by its seed")
    parser.add_argument("--save", help="with --replay: write the message to this file")
    args = parser.parse_args()
    if args.replay is not None:
        return replay(args)
    print(f"seed {args.seed}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
