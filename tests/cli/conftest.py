"""Fixtures for the CLI tests."""

from __future__ import annotations

import pytest

from gateway import runtime
from tests.factories import HeaderInspector


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands load the header-scripted inspector instead of the real one: the findings are
    the ones each test message names."""
    monkeypatch.setattr(runtime, "build_inspector",
                        lambda settings, directory, lexicons: HeaderInspector())
