"""Inputs found by fuzzing (bench/fuzz_*.py), reduced and kept as plain regression tests.

SPEC §5: bad input gets a clear error, never a crash. Loaders raise only SourceErrors;
inspection never raises and holds what it cannot finish.
"""

from __future__ import annotations

import csv
import re
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.actions.annotate import annotate
from gateway.config import InspectionSettings, load_settings
from gateway.detectors.analysis import Mention, near
from gateway.directory import load_directory
from gateway.inspect import Inspector
from gateway.model import Annotation
from gateway.pdfhelper import client as pdfhelper
from gateway.policy.loader import load_policy
from gateway.yamlsrc import SourceErrors, parse_yaml
from tests.inspection_helpers import LEXICONS, STUDENTS, message, pdf


def _yaml_errors(text: str) -> list[str]:
    with pytest.raises(SourceErrors) as info:
        parse_yaml(text, "f.yaml")
    return [str(e) for e in info.value.errors]


# --- YAML ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "where"), [
    ("\x00\x01garbage", "f.yaml:1:1:"),  # binary garbage: PyYAML's ReaderError
    ("a: b\nc: \x07", "f.yaml:2:4:"),
])
def test_yaml_control_characters_are_a_source_error(text: str, where: str) -> None:
    errors = _yaml_errors(text)
    assert errors[0].startswith(where) and "not allowed" in errors[0]


@pytest.mark.parametrize("text", ["[" * 3000 + "]" * 3000,
                                  "".join("  " * i + "a:\n" for i in range(1500))])
def test_yaml_deep_nesting_is_a_source_error(text: str) -> None:
    assert "nested too deeply" in _yaml_errors(text)[0]


@pytest.mark.parametrize("text", ["a: &x [*x]", "&x {a: *x}"])
def test_yaml_recursive_alias_is_a_source_error(text: str) -> None:
    assert "alias refers to a node that contains it" in _yaml_errors(text)[0]


def test_yaml_billion_laughs_is_bounded() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    assert "once aliases are expanded" in _yaml_errors("\n".join(lines))[0]


def test_yaml_small_aliases_still_work() -> None:
    assert parse_yaml("a: &x [1, 2]\nb: *x\n", "f.yaml").data == {"a": [1, 2], "b": [1, 2]}


@pytest.mark.parametrize(("text", "message"), [
    ("a: !foo bar", "f.yaml:1:4: YAML: could not determine a constructor for the tag '!foo'"),
    ("a: !!python/object:os.system x", "f.yaml:1:4: YAML: could not determine a constructor"),
    ("a: 2020-13-45", "f.yaml:1:4: YAML: bad value (month must be in 1..12)"),
    ("a: " + "9" * 5000, "f.yaml:1:4: YAML: bad value"),
    ("a: !!pairs 5", "f.yaml:1:4: YAML: expected a sequence"),
    ("b: &x {c: 1}\nd:\n  <<: *x\n", "f.yaml:3:3: YAML merge keys (<<) are not supported"),
])
def test_yaml_bad_scalars_and_tags_are_source_errors(text: str, message: str) -> None:
    assert _yaml_errors(text)[0].startswith(message)


def test_yaml_keys_equal_as_values_are_duplicates() -> None:
    # 1 and 1.0 are the same dict key but different texts: was a KeyError
    assert _yaml_errors("1: a\n1.0: b")[0] == ("f.yaml:2:1: duplicate key '1.0' "
                                                "(first defined on line 1)")


# --- config, directory, policy files ----------------------------------------------------------

def _settings_errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    with pytest.raises(SourceErrors) as info:
        load_settings(path)
    return [e.message for e in info.value.errors]


@pytest.mark.parametrize(("text", "message"), [
    ('metrics: {listen: "127.0.0.1:²"}', "metrics listen must be HOST:PORT"),  # was ValueError
    ('metrics: {listen: "127.0.0.1:99999"}', "metrics listen must be HOST:PORT"),
    ("smtp: {max_message_size: '" + "9" * 400 + "'}", "'max_message_size' is too large"),
    ("district: {student_number_pattern: 'a{99999999999}'}", "bad regular expression"),
    ("district: {student_number_pattern: '" + "(" * 3000 + ")" * 3000 + "'}",
     "bad regular expression"),  # was RecursionError
    ("inspection: {time_budget: .nan}", "'time_budget' must be a finite number"),
    ("inspection: {time_budget: .inf}", "'time_budget' must be a finite number"),
    ("upstream: {timeout: " + "9" * 400 + "}", "'timeout' must be a finite number"),
])
def test_config_hostile_values_are_source_errors(tmp_path: Path, text: str,
                                                 message: str) -> None:
    assert _settings_errors(tmp_path, text)[0].startswith(message)


def test_nul_in_a_configured_path_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text('policies: "p\\0.yaml"\ndirectory: {people: "a\\0b.csv"}\n')
    settings = load_settings(path)
    with pytest.raises(SourceErrors, match="cannot read file: bad file name"):
        load_directory(settings)
    with pytest.raises(SourceErrors, match="cannot read file: bad file name"):
        load_policy(settings, None)


def test_directory_csv_parse_error_is_a_source_error(tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_bytes(b"address,role,person_id,name,supervisor,students\n"
                       b'a@b.example,staff,T1,"'  # an unclosed quote runs past the limit
                       + b"x" * (csv.field_size_limit() + 1) + b"\n")
    path = tmp_path / "gateway.yaml"
    path.write_text("directory: {people: people.csv}\n")
    with pytest.raises(SourceErrors) as info:
        load_directory(load_settings(path))
    assert info.value.errors[0].message.startswith("cannot parse CSV: field larger than")


# --- inspection ----------------------------------------------------------------------------------

class _StepClock:
    """Deterministic time: every reading is one second later than the last."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _stepped_inspector(time_budget: float, pdf_engine: str = "auto") -> Inspector:
    limits = replace(InspectionSettings(), time_budget=time_budget, pdf_engine=pdf_engine)
    return Inspector(limits, r"\b\d{6}\b", STUDENTS, LEXICONS, clock=_StepClock())


def _pdf_with_content(stream: bytes) -> bytes:
    """A one-page PDF whose page content stream is `stream` (FlateDecode)."""
    packed = zlib.compress(stream, 9)
    data = pdf([["x"]]).replace(b"<< /Length", b"<< /Filter /FlateDecode /Length", 1)
    start, end = data.index(b"stream\n") + 7, data.index(b"\nendstream")
    data = data[:start] + packed + data[end:]
    return re.sub(rb"/Length \d+", b"/Length %d" % len(packed), data, count=1)


def test_pdf_page_content_bomb_stops_at_the_deadline() -> None:
    # Found as: a 170 KB attachment whose page inflates to 50 MB of text operators; pypdf
    # parsed it in pure Python for minutes, and the deadline was only checked between pages.
    bomb = _pdf_with_content(b"BT /F1 11 Tf (482913 ) Tj ET\n" * 100_000)
    raw = message("x", attachments=[("p.pdf", bomb, "application/pdf")])
    result = _stepped_inspector(time_budget=60, pdf_engine="pypdf").inspect(raw)
    assert not result.complete
    assert any(f.location == "attachment p.pdf, page 1 (time budget exceeded)"
               for f in result.findings)


@pytest.mark.skipif(not pdfhelper.available(), reason="pypdfium2 not installed")
def test_pdf_page_content_bomb_is_read_whole_by_pdfium() -> None:
    # The same page takes PDFium (in its helper process) well under a second.
    bomb = _pdf_with_content(b"BT /F1 11 Tf (482913 ) Tj ET\n" * 100_000)
    raw = message("x", attachments=[("p.pdf", bomb, "application/pdf")])
    result = Inspector(replace(InspectionSettings(), pdf_engine="pdfium"), r"\b\d{6}\b",
                       STUDENTS, LEXICONS).inspect(raw)
    assert result.complete and "student_number" in {f.detector for f in result.findings}


def test_pdf_within_the_deadline_is_read_normally() -> None:
    raw = message("x", attachments=[("p.pdf", pdf([["Student ID 482913 Alex Jones"]]),
                                     "application/pdf")])
    result = _stepped_inspector(time_budget=60).inspect(raw)
    assert result.complete and "student_number" in {f.detector for f in result.findings}


# --- annotate --------------------------------------------------------------------------------

_ANNOTATION = (Annotation(headers=(("X-Policy", "P5"),), subject_tag="[EXT]",
                          notice="From outside."),)


@pytest.mark.parametrize("raw", [
    # a charset the codec machinery accepts but cannot decode with: UnicodeError, not
    # UnicodeDecodeError (idna: "label empty")
    b"Subject: hi\nContent-Type: text/plain; charset=idna\n\na..b\n",
    # nesting deeper than the email generator's recursion: RecursionError
    b"Subject: hi\n" + b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n'
                                % (i, i) for i in range(1200))
    + b"Content-Type: text/plain\n\nx\n",
])
def test_annotate_falls_back_to_headers_when_the_body_cannot_be_rebuilt(raw: bytes) -> None:
    out = annotate(raw, _ANNOTATION, body_notice=True)
    head, _, body = out.partition(b"\n\n")
    assert b"X-Policy: P5" in head and b"Subject: [EXT] hi" in head
    assert body == raw.partition(b"\n\n")[2]  # body untouched, no half-written notice


def test_annotate_subject_with_an_unknown_encoded_word_charset() -> None:
    raw = b"Subject: =?u\xfff-8?q?x?=\nContent-Type: text/plain\n\nbody\n"  # was CharsetError
    out = annotate(raw, _ANNOTATION, body_notice=True)
    assert b"Subject: [EXT] =?u\xfff-8?q?x?=" in out and b"From outside." in out


# --- detectors -------------------------------------------------------------------------------

class _CountingList(list):  # type: ignore[type-arg]
    """Counts the elements read, through indexing or slicing."""

    read = 0

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        got = super().__getitem__(index)
        _CountingList.read += len(got) if isinstance(index, slice) else 1
        return got


def test_near_reads_only_the_window_not_the_tail() -> None:
    # Found as: 2 MB of "grades 482913 dob 03/04/2010 ssn 524-61-3378" lines took 19 s of CPU
    # (time budget 2 s): near() copied items[lo:] on every call, O(n²) in mentions.
    items = _CountingList(Mention(i * 50, i * 50 + 6, "482913") for i in range(20_000))
    starts = [m.start for m in items]
    _CountingList.read = 0
    found = near(items, starts, Mention(500_000, 500_006, "x"))
    assert len(found) == 12  # every 50 characters within ±300, less the one at m itself
    assert _CountingList.read <= len(found) + 2


def test_a_part_with_too_many_matches_is_held_not_analysed_for_minutes(monkeypatch):
    """Millions of IDs in one part used to run 8-25 s past the time budget; past a match
    count the part is reported uninspectable (fail closed) instead."""
    import gateway.inspect as inspect_module
    from tests.inspection_helpers import make_inspector, message

    monkeypatch.setattr(inspect_module, "MAX_MATCHES_PER_PART", 50)
    body = "\n".join("grades 482913 dob 03/04/2010 ssn 524-61-3378" for _ in range(40))
    result = make_inspector().inspect(message(body))
    assert not result.complete
    assert [f.location for f in result.findings if f.detector == "uninspectable"] == \
        ["body (match count limit)"]
    small = make_inspector().inspect(message("grades 482913 dob 03/04/2010 ssn 524-61-3378"))
    assert small.complete


def test_a_subject_of_a_million_encoded_words_is_held_not_decoded() -> None:
    # Found as: 1 MB of "=?utf-8?q?=FF=FE?=" words; the stdlib's decode_header is quadratic in
    # encoded words per line and took 22 s of CPU, beyond the reach of the time budget.
    subject = b" ".join([b"=?utf-8?q?=FF=FE?="] * 20_000)
    raw = b"Subject: " + subject + b"\r\nFrom: a@b.example\r\n\r\nhello\r\n"
    result = _stepped_inspector(time_budget=60).inspect(raw)
    assert not result.complete
    assert any(f.location == "subject (header too long to decode)" for f in result.findings)
    short = b"Subject: =?utf-8?q?Student_ID_482913?=\r\n\r\nhello\r\n"
    assert "student_number" in {f.detector for f in _stepped_inspector(60).inspect(short).findings}


def test_zip_of_a_version_zipfile_cannot_read_is_a_corrupt_archive_not_an_internal_error() -> None:
    # Found as: a DOCX whose central directory says "version needed to extract: 8.3";
    # zipfile raises NotImplementedError for it, which the sniffer did not expect.
    import io as _io
    import zipfile as _zipfile

    buf = _io.BytesIO()
    with _zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
    data = bytearray(buf.getvalue())
    at = data.find(b"PK\x01\x02")
    while at != -1:
        data[at + 6] = 83  # version needed to extract
        at = data.find(b"PK\x01\x02", at + 4)
    raw = message("x", attachments=[("r.docx", bytes(data), "application/octet-stream")])
    result = _stepped_inspector(time_budget=60).inspect(raw)
    locations = {f.location for f in result.findings}
    assert not result.complete and "message (internal error)" not in locations
    assert any(loc.endswith("(corrupt archive)") for loc in locations)
