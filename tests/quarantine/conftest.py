"""Fixtures for the quarantine store tests: settings whose database folder does not exist
yet, and the store opened on them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.quarantine import QuarantineStore, open_store
from tests.factories import write_quarantine_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return write_quarantine_settings(tmp_path)


@pytest.fixture
def store(settings: Settings) -> Iterator[QuarantineStore]:
    s = open_store(settings)
    yield s
    s.close()
