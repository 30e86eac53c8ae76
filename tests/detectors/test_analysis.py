"""The shared analysis: SSN validity by range, and the neighbourhood search reading only its
window."""

from __future__ import annotations

import pytest

from gateway.detectors.analysis import Mention, near, prepare, valid_ssn


@pytest.mark.parametrize(("value", "valid"), [
    ("524-61-3378", True), ("524613378", True), ("001-01-0001", True), ("899-99-9999", True),
    ("000-61-3378", False), ("666-61-3378", False), ("900-61-3378", False),
    ("999-61-3378", False), ("524-00-3378", False), ("524-61-0000", False),
    ("078-05-1120", False), ("219-09-9999", False), ("123-45-6789", False),
])
def test_ssn_ranges(value, valid):
    assert valid_ssn(value) is valid


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
    findings_in = near(items, starts, Mention(500_000, 500_006, "x"))
    assert len(findings_in) == 12  # every 50 characters within ±300, less the one at m itself
    assert _CountingList.read <= len(findings_in) + 2


@pytest.mark.parametrize(("text", "data"), [
    ("Alex\r\n   Jones", b"Alex  Jones"), ("Alex\r\n\tJones", b"Alex  Jones"),
    ("Alex\n \t Jones", b"Alex Jones"), ("Alex\r\nJones", b"Alex  Jones"),
    ("Alex\nJones", b"Alex Jones"), ("Alex\tJones", b"Alex Jones"),
    ("a   b\n", b"a   b "),  # blanks inside a line stay: only a line's indentation goes
    ("Jos\u00e9", "Jos\u00e9".encode()),
])
def test_prepare_turns_line_breaks_and_indentation_into_at_most_two_spaces(text, data):
    assert prepare(text) == data
