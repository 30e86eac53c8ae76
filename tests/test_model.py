"""The values shared by every layer: a contact count nobody read beforehand is an error, not
a guess."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.model import CountedHistory

AT = datetime(2026, 9, 1, tzinfo=UTC)


def test_a_count_not_read_beforehand_is_an_error_not_a_guess() -> None:
    with pytest.raises(KeyError):
        CountedHistory({}).count_contacts("482913", "T1", AT)
