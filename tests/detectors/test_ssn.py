"""SSNs: found near their keyword, by every engine."""

from __future__ import annotations

import pytest

from tests.factories import findings_in


@pytest.mark.parametrize(("text", "hit"), [
    ("SSN: 524-61-3378", True),
    ("SSN" + " x" * 140 + " 524-61-3378", True),  # keyword 280 characters away
    ("SSN" + " x" * 200 + " 524-61-3378", False),  # 400 away
    ("524-61-3378 is her social security number", True),
    ("SSN 524-61 3378", True),  # mixed separators: what a reader sees as an SSN
    ("SS# 524613378", True),
    ("SSN" + " x" * 60 + " 524613378", False),  # undelimited digits need the keyword closer
    ("Part 524-61-3378 shipped", False),
])
def test_ssn_keyword_rules(engine_inspector, text, hit):
    assert ("ssn" in findings_in(engine_inspector, text)) is hit
