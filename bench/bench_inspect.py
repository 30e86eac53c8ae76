"""Inspection throughput, against a baseline measured in the same run, and corpus accuracy.

    .venv/bin/python bench/bench_inspect.py            # throughput tables
    .venv/bin/python bench/bench_inspect.py --corpus   # precision/recall per detector
    .venv/bin/python bench/bench_inspect.py --students 50000 --mb 16

Plain text: MB/s of a prose body through every detector (one engine pass plus the detector
logic), per engine, against the baseline of the same pattern table run one pattern after
another with Python `re`. Attachments: whole messages per second (MIME parse, sniff, extract,
detect) for one CSV, XLSX, DOCX, PDF and ZIP attachment of a 40-row roster.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.detectors.patterns import table  # noqa: E402
from gateway.detectors.patternset import ENGINES, hyperscan, re2  # noqa: E402
from gateway.inspect import build_inspector  # noqa: E402
from gateway.model import Part  # noqa: E402
from tests import factories as h  # noqa: E402


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST = _words("Alex Sam Maria Wei Liam Ava Noah Emma Olivia Lucas Mia Ethan Zoe Omar Nia Ivan Lea "
         "Ruth Hugo Iris")
LAST = _words("Jones Lee Garcia Chen OBrien Patel Kim Brown Nguyen Lopez Khan Novak Silva Meyer "
              "Rossi "
        "Cohen Dubois Sato Berg Quinn")
PROSE = _words("the of and to a in is was for on that with as by at from this be have are it an or "
         "teacher meeting school homework project science library parents weekend report please "
         "thanks schedule tomorrow class room field trip reminder bus lunch game practice book "
         "reading math board district calendar concert volunteers forms office")


def students(n: int) -> list[tuple[str, str]]:
    rng = random.Random(7)
    return [(str(200000 + i), f"{rng.choice(FIRST)}{i % 997} {rng.choice(LAST)}{i // 997}")
            for i in range(n)]


def prose(megabytes: float, density: float) -> str:
    """Newsletter-like text; `density` is the share of words that are numbers, keywords, dates
    or a student's name (0.001: ordinary mail; 0.01: a dense, record-like text)."""
    rng = random.Random(11)
    words, size = [], 0
    extras = ("grades", "attendance", "student", "ID", "555-867-5309", "2024-05-06",
              "Order #748392", "birthday", "Alex Jones", "62704-1234")
    while size < megabytes * 1_000_000:
        word = rng.choice(extras) if rng.random() < density else rng.choice(PROSE)
        words.append(word)
        size += len(word) + 1
    return "\n".join(" ".join(words[i:i + 12]) for i in range(0, len(words), 12))


def rate(fn, units: float, min_time: float = 1.0) -> float:
    """units per second, repeating `fn` for at least `min_time` seconds."""
    runs, start = 0, time.perf_counter()
    while True:
        fn()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return units * runs / elapsed


def text_table(args: argparse.Namespace) -> None:
    directory = h.FakeDirectory(h.STUDENTS + tuple(students(args.students)))
    settings = h.make_settings()
    text = prose(args.mb, args.density)
    part = Part(text, "body")
    megabytes = len(text.encode()) / 1e6
    small = text[:1_000_000]
    small_mb = len(small.encode()) / 1e6
    dense = Part(prose(args.mb, 0.01), "body")
    rows = table(settings.district.student_number_pattern, h.LEXICONS)
    compiled = [re.compile(rx.encode(), re.IGNORECASE) for _, _, rx in rows]
    data = small.encode()

    def baseline() -> None:
        for rx in compiled:
            for _ in rx.finditer(data):
                pass

    base = rate(baseline, small_mb, 0.5)
    print(f"plain text: {megabytes:.1f} MB prose ({args.density:.1%} trigger words), "
          f"{len(rows)} patterns, {len(directory._students)} directory students")
    print(f"{'engine':<34}{'MB/s':>10}{'vs baseline':>14}")
    print(f"{'baseline: re, one pattern at a time':<34}{base:>10.1f}{1.0:>13.1f}x")
    for engine in ENGINES:
        if (engine == "hyperscan" and not hyperscan) or (engine == "re2" and not re2):
            continue
        start = time.perf_counter()
        inspector = build_inspector(settings, directory, h.LEXICONS, engine=engine)
        built = time.perf_counter() - start
        sample, mb = (part, megabytes) if engine != "re" else (Part(small, "body"), small_mb)
        speed = rate(lambda s=sample, i=inspector: i.scan_part(s), mb)
        label = f"{engine}: all detectors (build {built:.1f}s)"
        print(f"{label:<34}{speed:>10.1f}{speed / base:>13.1f}x")
        if engine == "hyperscan":
            speed = rate(lambda i=inspector: i.scan_part(dense), megabytes)
            print(f"{'  same, dense text (1% triggers)':<34}{speed:>10.1f}{speed / base:>13.1f}x")
    inspector = build_inspector(settings, directory, h.LEXICONS)
    raw = h.message(text)
    speed = rate(lambda: inspector.inspect(raw), len(raw) / 1e6)
    print(f"{'inspect(): MIME + all detectors':<34}{speed:>10.1f}{speed / base:>13.1f}x")


def attachment_table(args: argparse.Namespace) -> None:
    inspector = build_inspector(h.make_settings(), h.FakeDirectory(), h.LEXICONS)
    header = ["Student ID", "Last Name", "First Name", "Grade", "DOB"]
    rows = [header] + [[str(530000 + i), f"Last{i}", f"First{i}", "B", "04/12/2010"]
                       for i in range(40)]
    csv_bytes = "\n".join(",".join(r) for r in rows).encode()
    files = {
        "CSV": ("a.csv", csv_bytes),
        "XLSX": ("a.xlsx", h.xlsx(rows)),
        "DOCX": ("a.docx", h.docx(["Roster"], rows)),
        "PDF": ("a.pdf", h.pdf([[", ".join(r) for r in rows]])),
        "ZIP": ("a.zip", h.zip_of([("a.csv", csv_bytes)])),
    }
    print(f"\nattachments (40-row roster, whole message through inspect()): engine "
          f"{inspector.engine}")
    print(f"{'type':<8}{'bytes':>10}{'messages/s':>14}")
    for kind, (name, data) in files.items():
        raw = h.message("see attached", attachments=[(name, data, "application/octet-stream")])
        print(f"{kind:<8}{len(data):>10}{rate(lambda r=raw: inspector.inspect(r), 1):>14.0f}")


def corpus_table() -> None:
    spec = importlib.util.spec_from_file_location(
        "inspection_corpus", ROOT / "tests" / "corpus" / "inspection_corpus.py")
    corpus = importlib.util.module_from_spec(spec)
    sys.modules["inspection_corpus"] = corpus  # dataclasses look their module up
    spec.loader.exec_module(corpus)
    inspector = build_inspector(h.make_settings(), h.FakeDirectory(), h.LEXICONS)
    counts: dict[str, list[int]] = {}
    for case in corpus.CASES:
        got = {f.detector for f in inspector.inspect(case.build()).findings}
        for det in got | case.expected:
            row = counts.setdefault(det, [0, 0, 0])
            row[0 if det in got and det in case.expected else 1 if det in got else 2] += 1
    negatives = sum(not c.positive for c in corpus.CASES)
    print(f"corpus: {len(corpus.CASES)} cases ({negatives} negative controls), "
          f"engine {inspector.engine}")
    print(f"{'detector':<24}{'TP':>4}{'FP':>4}{'FN':>4}{'precision':>11}{'recall':>8}")
    for det in sorted(counts):
        tp, fp, fn = counts[det]
        print(f"{det:<24}{tp:>4}{fp:>4}{fn:>4}{tp / max(tp + fp, 1):>11.2f}"
              f"{tp / max(tp + fn, 1):>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", action="store_true", help="print precision/recall only")
    parser.add_argument("--students", type=int, default=20000)
    parser.add_argument("--mb", type=float, default=8.0)
    parser.add_argument("--density", type=float, default=0.001)
    args = parser.parse_args()
    if args.corpus:
        corpus_table()
        return
    text_table(args)
    attachment_table(args)


if __name__ == "__main__":
    main()
