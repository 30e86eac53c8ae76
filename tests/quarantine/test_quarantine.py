"""open_store: a private folder and files (also when the database exists already), a
read-only store that creates nothing, and a clear error for an unsupported URL."""

from __future__ import annotations

import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.quarantine import open_store
from gateway.quarantine.base import StoreUnavailable
from tests.factories import hold_request


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_store_creates_private_directory_and_files(settings: Settings, store) -> None:
    store.hold(hold_request())
    db = settings.quarantine.path
    assert db is not None
    assert mode(db.parent) == 0o700
    files = sorted(p for p in db.parent.iterdir() if p.name.startswith(db.name))
    assert {p.name for p in files} >= {"quarantine.db", "quarantine.db-wal"}
    for path in files:
        assert mode(path) == 0o600, path.name


def test_existing_loose_database_is_tightened(settings: Settings) -> None:
    db = settings.quarantine.path
    assert db is not None
    db.parent.mkdir(mode=0o700)
    db.touch()
    db.chmod(0o644)
    open_store(settings).close()
    assert mode(db) == 0o600


def test_readonly_without_database_creates_nothing(settings: Settings) -> None:
    readonly = open_store(settings, readonly=True)
    try:
        assert readonly.count_contacts("1", "2", datetime.now(UTC) - timedelta(days=30)) == 0
    finally:
        readonly.close()
    assert settings.quarantine.path is not None
    assert not settings.quarantine.path.parent.exists()


def test_an_unreachable_postgresql_server_is_a_clear_error_without_the_password(
        settings: Settings) -> None:
    pg = replace(settings, quarantine=replace(
        settings.quarantine, url="postgresql://gw:s3cret@127.0.0.1:1/quarantine?password=s3cret",
        path=None), smtp=replace(settings.smtp, processing_deadline=4))
    with pytest.raises(StoreUnavailable, match="cannot use") as info:
        open_store(pg)
    assert "s3cret" not in str(info.value) and "127.0.0.1:1/quarantine" in str(info.value)
