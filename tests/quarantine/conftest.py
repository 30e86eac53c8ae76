"""Fixtures for the quarantine store tests: settings whose database folder does not exist
yet, the store opened on them, and `backend`, which runs a test on each store backend."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
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


@dataclass
class Backend:
    """One quarantine database, as the store tests see it: the settings naming it, and a
    side door (`raw`) that changes it behind the store's back, as an intruder or a careless
    administrator could."""

    name: str
    settings: Settings

    def open(self, **kwargs: Any) -> QuarantineStore:
        return open_store(self.settings, **kwargs)

    def raw(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """Run one statement (`?` placeholders) on a connection of its own, committed."""
        if self.name == "sqlite":
            conn = sqlite3.connect(self.settings.quarantine.path)  # type: ignore[arg-type]
            try:
                conn.execute(sql, params)
                conn.commit()
            finally:
                conn.close()
            return
        with psycopg.connect(self.settings.quarantine.url, autocommit=True) as pg:
            pg.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each store test once on SQLite and once on a real PostgreSQL server."""
    if request.param == "sqlite":
        return Backend("sqlite", write_quarantine_settings(tmp_path))
    url = request.getfixturevalue("postgres_url")
    return Backend("postgresql", write_quarantine_settings(tmp_path, url=url))
