"""Record categories and names need each other: a name with a category (or a date of birth)
is a finding, either alone is not."""

from __future__ import annotations

import pytest

from tests.factories import findings_in


@pytest.mark.parametrize(("text", "expected"), [
    ("Alex Jones was suspended", {"student_name", "record_category"}),
    ("JONES, ALEX - detention", {"student_name", "record_category"}),
    ("Alex Jones helped at the fair", set()),
    ("Alex Jonesy was suspended", set()),
    ("Alex Jones" + " x" * 200 + " suspended", set()),
    ("IEP training on Tuesday", set()),
    ("482913 was absent", {"student_number", "record_category"}),
    ("Alex Jones DOB 04/12/2010", {"student_name", "dob"}),
    ("Alex Jones party on 04/12/2010", set()),
])
def test_names_and_categories_need_each_other(engine_inspector, text, expected):
    assert set(findings_in(engine_inspector, text)) - {"roster"} == expected
