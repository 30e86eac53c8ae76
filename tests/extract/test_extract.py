"""`extract_file`, the entry point for every file in a message: what cannot be read fails
closed with its reason, an oversized text part is still scanned as far as the limit, and
no file, however mangled, raises."""

from __future__ import annotations

import random

import pytest

from tests.factories import (
    OLE,
    attached,
    detectors,
    docx,
    encrypted_pdf,
    make_inspector,
    pdf,
    uninspectable_reasons,
    xlsx,
    zip_of,
)


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("locked.pdf", encrypted_pdf(["Alex Jones"]), "encrypted"),
    ("locked.zip", zip_of([("a.csv", b"x")], encrypted=["a.csv"]), "encrypted"),
    ("old.doc", OLE, "legacy Office file or password-protected document"),
    ("a.7z", b"7z\xbc\xaf\x27\x1c" + b"\x00" * 40, "unsupported archive"),
    ("cut.pdf", pdf([["Alex Jones GPA"]])[:120], "unreadable or corrupt file"),
    ("cut.xlsx", xlsx([["a", "b"]])[:300], "corrupt archive"),
])
def test_unreadable_files_fail_closed(inspector, name, data, reason):
    result = inspector.inspect(attached(name, data))
    assert reason in uninspectable_reasons(result)
    assert not result.complete


def test_part_size_limit_still_scans_the_text_it_keeps():
    text = b"SSN 524-61-3378 " + b"filler " * 40000
    result = make_inspector(max_part_bytes=100_000).inspect(attached("big.txt", text))
    assert uninspectable_reasons(result) == {"part size limit"} and "ssn" in detectors(result)


@pytest.mark.parametrize("seed", range(8))
def test_random_and_mangled_files_never_raise(inspector, seed):
    rng = random.Random(seed)
    base = [xlsx([["a"]]), docx(["x"]), pdf([["x"]]), zip_of([("a", b"b")])][seed % 4]
    mangled = bytearray(base)
    for _ in range(20):
        mangled[rng.randrange(len(mangled))] = rng.randrange(256)
    result = inspector.inspect(attached("m.bin", bytes(mangled)))
    assert isinstance(result.findings, tuple)
