"""Open the configured quarantine store: SQLite (a file, the default) or PostgreSQL (a server
that several gateway instances share), chosen by the scheme of `quarantine.url`.

Held mail is the most sensitive data the gateway keeps, so an SQLite database lives in a
directory only the service account can enter (0700) and the file (with its WAL and
shared-memory companions, which SQLite creates with the database's own mode) is 0600. A
server's URL is never echoed with its password.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import sqlite3
import stat
from pathlib import Path

import structlog

from gateway.config import Settings
from gateway.quarantine.base import (
    Actor,
    EntryNotFound,
    HoldRequest,
    HoldResult,
    QuarantineError,
    QuarantineStore,
    ReleaseBusy,
    StoreUnavailable,
)
from gateway.quarantine.sqlite import SQLiteStore

__all__ = ["Actor", "EntryNotFound", "HoldRequest", "HoldResult", "QuarantineError",
           "QuarantineStore", "ReleaseBusy", "SQLiteStore", "StoreUnavailable", "open_store",
           "os_user", "store_timeout"]

log = structlog.get_logger("gateway.quarantine")


def open_store(settings: Settings, *, readonly: bool = False,
               actor: Actor | None = None, start_unreachable: bool = False) -> QuarantineStore:
    """The store named by `quarantine.url`; raises QuarantineError with an operator message.

    readonly=True is for `gateway check`: it reads the P6 contact history and records nothing;
    when no database exists yet it behaves as an empty one instead of creating a file.
    """
    path = settings.quarantine.path
    if path is None:
        return open_server(settings, readonly=readonly, actor=actor,
                           start_unreachable=start_unreachable)
    try:
        if readonly:
            if not path.exists():
                return SQLiteStore(":memory:", readonly=True)
            return SQLiteStore(path, readonly=True)
        prepare_path(path)
        store = SQLiteStore(path, actor=actor or Actor("gateway", os_user()))
    except sqlite3.Error as exc:
        raise QuarantineError(f"cannot open the quarantine database {path}: {exc}") from None
    except OSError as exc:
        raise QuarantineError(f"cannot create the quarantine database {path}: "
                              f"{exc.strerror or exc}") from None
    _tighten_companions(path)
    _fsync_dir(path.parent)
    return store


def open_server(settings: Settings, *, readonly: bool = False, actor: Actor | None = None,
                start_unreachable: bool = False) -> QuarantineStore:
    """The PostgreSQL store (psycopg is imported only when one is configured)."""
    from gateway.quarantine.postgres import PostgresStore  # noqa: PLC0415

    return PostgresStore(settings.quarantine.url, readonly=readonly,
                         actor=actor or Actor("gateway", os_user()),
                         timeout=store_timeout(settings, readonly=readonly),
                         start_unreachable=start_unreachable)


def store_timeout(settings: Settings, *, readonly: bool = False) -> float:
    """How long one store call may wait for a server: well inside the processing deadline,
    so a message whose hold cannot be written still gets its 451 before the client gives
    up; shorter for a reading command, which an operator is waiting on."""
    deadline = settings.smtp.processing_deadline
    return max(1.0, min(10.0 if readonly else 30.0, deadline / 4))


def prepare_path(path: Path) -> None:
    """Create the folder (0700) and an empty database file (0600) before SQLite touches them."""
    folder = path.parent
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
    elif folder.stat().st_mode & 0o077:
        log.warning("quarantine_dir_permissions", path=str(folder),
                    mode=oct(stat.S_IMODE(folder.stat().st_mode)), expected="0o700")
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        _tighten(path)
    else:
        os.close(fd)
        path.chmod(0o600)


def os_user() -> str:
    """The account running this process, for the audit trail (containers may lack a name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def _tighten(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        path.chmod(0o600)
        log.warning("quarantine_file_permissions_fixed", path=str(path), was=oct(mode))


def _tighten_companions(path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            _tighten(companion)


def _fsync_dir(folder: Path) -> None:
    """Make the new file names themselves durable (POSIX needs the directory fsynced)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


