"""The shared PostgreSQL quarantine: several gateway instances, one store.

Driver: psycopg 3 (the maintained successor of psycopg2, libpq underneath, so every libpq URL
option, TLS mode, password file and PG* environment variable works as in psql) with
psycopg_pool's thread-safe pool. The store's calls run in the daemon's worker threads like the
SQLite store's, so the synchronous driver keeps one implementation of each transaction and
nothing of it runs on the event loop.

What keeps several instances correct (each is one transaction):
- hold: an advisory lock on the retry key, so a client retrying on another instance while the
  first attempt is still committing finds that entry instead of making a second;
- release, delete: the entry's row is locked (SELECT … FOR UPDATE) while the lease is checked
  and taken, so of two reviewers pressing release at once one gets the lease and the other
  ReleaseBusy; purge locks the rows it removes, and a row removed meanwhile is skipped;
- P5/P6 contacts: an advisory lock per student-staff pair, taken in a fixed order (no
  deadlock), around the insert and the count;
- the digest: the period's row is locked and moved on by the one instance that claims it;
- the audit chain: an advisory lock around reading the chain's head and appending to it.

Faults: a connection that broke (server restart, failover) is dropped by the pool and a new one
made on the next call; every call waits at most `timeout` seconds for a connection and every
statement at most `timeout` seconds, and then raises StoreUnavailable (a hold that cannot be
written gets 451, so the client retries). Errors never carry the URL's password.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from gateway.quarantine import audit as audit_chain
from gateway.quarantine import pgschema
from gateway.quarantine.base import Actor, QuarantineError, StoreUnavailable
from gateway.quarantine.rows import to_json
from gateway.quarantine.sqlstore import SQLStore
from gateway.quarantine.times import as_utc

log = structlog.get_logger("gateway.quarantine")

POOL_SIZE = 8  # connections per instance: holds and P6 counts are short transactions
DEFAULT_TIMEOUT = 30.0  # seconds; below the processing deadline, so the client gets 451 in time


class PostgresStore(SQLStore):
    """QuarantineStore on a PostgreSQL database that several gateway instances share."""

    FOR_UPDATE = " FOR UPDATE"
    RULE_FILTER = "e.rules @> jsonb_build_array(?::text)"  # served by the GIN index
    RECIPIENT_ORDER = "position"
    CONTACT_ID = "id"

    def __init__(self, url: str, *, readonly: bool = False, actor: Actor | None = None,
                 timeout: float = DEFAULT_TIMEOUT, pool_size: int = POOL_SIZE,
                 start_unreachable: bool = False):
        """Connects once and checks the schema. `start_unreachable` (the daemon): a server
        that cannot be reached at all is not an error yet; the store starts unavailable and
        checks the schema on its first successful connection, so the relaying part of the
        gateway comes up during a database outage. A server that answers and refuses (wrong
        password, unknown database, another schema) is always an error."""
        self.url = url
        self.readonly = readonly
        self.actor = actor or Actor("gateway", "gateway")
        self.timeout = timeout
        self._schema_checked = False
        self._schema_lock = threading.Lock()
        conninfo = conninfo_with_defaults(url, timeout)
        self._pool = ConnectionPool(
            conninfo, min_size=1, max_size=max(pool_size, 1), open=False, timeout=timeout,
            name="quarantine", configure=self._configure, kwargs={"autocommit": True},
            check=ConnectionPool.check_connection, reconnect_timeout=timeout)
        # One direct connection first: it says why a server cannot be used (refused, wrong
        # password, unknown database, schema) where the pool would only time out.
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                self._configure(conn)
                self._check_schema(conn)
        except psycopg.Error as exc:
            if not (start_unreachable and _unreachable(exc)):
                raise StoreUnavailable(f"cannot use the quarantine database {redact(url)}: "
                                       f"{_describe(exc)}") from None
            log.error("quarantine_database_unreachable", url=redact(url),
                      error=_describe(exc), held_mail="answered 451 until it is reachable")
        self._pool.open(wait=False)

    def _check_schema(self, conn: psycopg.Connection) -> None:
        _check_readonly(conn) if self.readonly else pgschema.ensure(conn)
        self._schema_checked = True

    def _configure(self, conn: psycopg.Connection) -> None:
        """Every statement bounded (a slow query becomes StoreUnavailable, not a stuck
        session); a read-only store cannot write even by mistake."""
        millis = int(self.timeout * 1000)
        conn.execute(f"SET statement_timeout = {millis}")
        conn.execute(f"SET lock_timeout = {millis}")
        conn.execute(f"SET idle_in_transaction_session_timeout = {millis * 2}")
        conn.execute("SET TIME ZONE 'UTC'")
        if self.readonly:
            conn.execute("SET default_transaction_read_only = on")

    # -- the shared SQL's needs -----------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self, *, write: bool) -> Iterator[QmarkCursor]:
        if write and self.readonly:
            raise QuarantineError("the quarantine is open read-only")
        try:
            with self._pool.connection() as conn:
                if not self._schema_checked:  # started while the server was unreachable
                    with self._schema_lock:
                        if not self._schema_checked:
                            self._check_schema(conn)
                            log.info("quarantine_database_reachable", url=redact(self.url))
                with conn.transaction(), conn.cursor() as cur:
                    yield QmarkCursor(cur)
        except PoolTimeout:
            raise StoreUnavailable("the quarantine database is unavailable (no connection "
                                   f"within {self.timeout:g} s)") from None
        except psycopg.OperationalError as exc:  # lost connection, statement or lock timeout
            raise StoreUnavailable(f"the quarantine database is unavailable: "
                                   f"{_describe(exc)}") from None

    def _serialise(self, db: QmarkCursor, *names: tuple[str, ...]) -> None:
        """Advisory locks, held to the end of the transaction, taken in one global order
        (the audit chain's last, sorted keys before it) so two transactions never wait on
        each other in a circle."""
        keys = sorted({_lock_key(*name) for name in names if name != ("audit",)})
        if ("audit",) in names:
            keys.append(pgschema.AUDIT_LOCK)
        for key in keys:
            db.execute("SELECT pg_advisory_xact_lock(?)", (key,))

    def _time(self, moment: datetime) -> datetime:
        return as_utc(moment)

    def _datetime(self, value: Any) -> datetime:
        return value  # type: ignore[no-any-return]

    def _json(self, value: Any) -> Jsonb:
        return Jsonb(value, dumps=to_json)

    def _unjson(self, value: Any) -> Any:
        return value  # psycopg loads jsonb already

    def _insert_recipients(self, db: QmarkCursor, entry_id: str, recipients: Iterable[str],
                           now: Any) -> None:
        db.executemany("INSERT INTO entry_recipients (entry_id, position, address, status,"
                       " updated) VALUES (?, ?, ?, 'held', ?)",
                       [(entry_id, n, rcpt, now) for n, rcpt in enumerate(recipients)])

    # -- what only PostgreSQL does --------------------------------------------------------
    def check(self) -> bool:
        if self.readonly:
            return False
        if not self._schema_checked:
            try:  # the first transaction since an unreachable start checks the schema
                with self._tx(write=False):
                    pass
            except QuarantineError:
                return False
        try:
            with self._pool.connection(timeout=min(self.timeout, 5.0)) as conn:
                return conn.execute("SELECT NOT pg_is_in_recovery()").fetchone()[0] is True
        except (psycopg.Error, PoolTimeout):
            return False

    def verify(self) -> list[str]:
        with self._tx(write=False) as db:
            problems = _content_problems(db)
            problems += self._entry_problems(db)
            problems += audit_chain.chain_problems(db)
        return problems

    def close(self) -> None:
        self._pool.close()


class QmarkCursor:
    """psycopg's cursor taking the `?` placeholders the shared SQL is written with."""

    def __init__(self, cursor: psycopg.Cursor[Any]):
        self._cursor = cursor

    def execute(self, sql: str, params: Any = ()) -> psycopg.Cursor[Any]:
        return self._cursor.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]

    def executemany(self, sql: str, rows: Iterable[Any]) -> None:
        self._cursor.executemany(sql.replace("?", "%s"), rows)  # type: ignore[arg-type]


def migrate_database(url: str, *, timeout: float = DEFAULT_TIMEOUT,
                     progress: Callable[[int], None] = lambda version: None) -> tuple[int, int]:
    """`gateway quarantine migrate`: create or upgrade the schema; (from, to) versions."""
    try:
        with psycopg.connect(conninfo_with_defaults(url, timeout), autocommit=True) as conn:
            return pgschema.migrate(conn, progress)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"quarantine database {redact(url)}: {_describe(exc)}"
                               ) from None


# --- URLs -----------------------------------------------------------------------------------

def conninfo_with_defaults(url: str, timeout: float) -> str:
    """The operator's URL, with a connect timeout when it names none (libpq waits forever
    by default) and the application name that shows the gateway in pg_stat_activity."""
    try:
        given = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise QuarantineError(f"quarantine.url {redact(url)} is not a valid PostgreSQL URL: "
                              f"{_describe(exc)}") from None
    extra = []
    if "connect_timeout" not in given:
        extra.append(f"connect_timeout={max(2, int(timeout))}")
    if "application_name" not in given:
        extra.append("application_name=district-mail-gateway")
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)


def redact(url: str) -> str:
    """The URL without any password (in the user part or a `password=` option)."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        userinfo, host = rest.split("@", 1)
        rest = userinfo.split(":", 1)[0] + ("@" if ":" not in userinfo else ":…@") + host
    base, q, query = rest.partition("?")
    if q:
        parts = [("password=…" if p.lower().startswith("password=") else p)
                 for p in query.split("&")]
        rest = base + "?" + "&".join(parts)
    return scheme + sep + rest


def _describe(exc: BaseException) -> str:
    """A driver error's first line (libpq's messages name host and user, not passwords)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --- helpers ----------------------------------------------------------------------------------

# What a server (or its TLS) answers when it is there but will not have us: a mistake to fix,
# not an outage to wait out. libpq reports connection failures without an SQLSTATE, so the
# messages are what tells them apart.
_REFUSALS = ("authentication", "no pg_hba.conf entry", "does not exist", "permission denied",
             "certificate")


def _unreachable(exc: psycopg.Error) -> bool:
    """No server answered (refused connection, timeout, no route, shutting down), as opposed
    to one that answered and refused us (password, database, pg_hba, TLS)."""
    if not isinstance(exc, psycopg.OperationalError) or exc.sqlstate is not None:
        return False
    text = str(exc).lower()
    return not any(refusal in text for refusal in _REFUSALS)


def _check_readonly(conn: psycopg.Connection) -> None:
    """A read-only store (gateway check, the review CLI's reading commands) needs the schema
    to be the one it reads, and creates nothing."""
    version = pgschema.schema_version(conn)
    if version is not None and version != pgschema.SCHEMA_VERSION:
        pgschema.ensure(conn)  # raises the SchemaMismatch that explains it
    if version is None:
        raise StoreUnavailable("the quarantine database has no gateway schema yet (start "
                               "the gateway once, or run `gateway quarantine migrate`)")


def _lock_key(kind: str, *parts: str) -> int:
    """A signed 64-bit advisory-lock key for a name (same in every instance)."""
    digest = hashlib.blake2b("\0".join((kind, *parts)).encode("utf-8", "surrogatepass"),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _content_problems(db: QmarkCursor) -> list[str]:
    """Held copies missing or not matching their hash; the server hashes them, so checking
    a large quarantine moves no mail over the network."""
    problems = []
    rows = db.execute("SELECT e.id, e.status, c.entry_id IS NOT NULL,"
                      " length(c.data) = e.size AND encode(sha256(c.data), 'hex') = e.sha256"
                      " FROM entries e LEFT JOIN contents c ON c.entry_id = e.id ORDER BY e.id")
    for entry_id, status, present, intact in rows.fetchall():
        if not present:
            if status != "deleted":
                problems.append(f"entry {entry_id}: held copy is missing")
        elif not intact:
            problems.append(f"entry {entry_id}: held copy does not match its hash")
    return problems
