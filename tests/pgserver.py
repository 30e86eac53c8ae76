"""A real PostgreSQL server for the tests: `initdb` into a temporary folder, `pg_ctl start` on a
loopback port, one fresh database per test (bench/bench_store.py uses it too).

PostgreSQL refuses to run as root, so when the tests run as root the server runs as `nobody`
(`runuser`) in a folder handed to that account. Password authentication is on for TCP, and
the tests connect with a libpq password file, as an operator would; the password never appears
in a URL. `fsync` is off unless `durable`: the tests exercise the gateway's transactions, not
the disk.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "postgres"


def _bindir() -> Path | None:
    """Debian installs the server programs outside PATH (/usr/lib/postgresql/N/bin)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    return versions[0].parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """One running cluster; `url(db)` is what `quarantine.url` would say."""

    bindir: Path
    root: Path
    port: int
    passfile: Path
    runas: str | None
    durable: bool = False  # fsync on (benchmarks compare it with SQLite's synchronous=FULL)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.runas:
            cmd = ["runuser", "-u", self.runas, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120,
                              cwd=self.root)

    def init(self, password: str) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(password + "\n")
        self._chown(pwfile)
        self._run("initdb", "-D", str(self.datadir), "-U", SUPERUSER, "--pwfile", str(pwfile),
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        pwfile.unlink()

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port}"
                   f" -c unix_socket_directories={self.root} -c max_connections=200")
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop",
                  check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def url(self, database: str = "postgres") -> str:
        return (f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"
                f"?passfile={self.passfile}&connect_timeout=5")

    def admin(self, sql: str) -> None:
        """Run one statement as the superuser over the unix socket (trusted)."""
        self._run("psql", "-h", str(self.root), "-p", str(self.port), "-U", SUPERUSER,
                  "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql)

    def create_database(self) -> str:
        name = "gw_" + secrets.token_hex(6)
        self.admin(f"CREATE DATABASE {name}")
        return name

    def _chown(self, path: Path) -> None:
        if self.runas:
            user = pwd.getpwnam(self.runas)
            os.chown(path, user.pw_uid, user.pw_gid)


def start_server(*, durable: bool = False) -> PostgresServer | None:
    """A started server, or None when PostgreSQL is not installed here."""
    bindir = _bindir()
    if bindir is None or not (bindir / "initdb").exists():
        return None
    runas = "nobody" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
    root.chmod(0o700)
    password = secrets.token_urlsafe(18)
    passfile = Path(tempfile.mkdtemp(prefix="gateway-pgpass-")) / "pgpass"
    port = _free_port()
    passfile.write_text(f"127.0.0.1:{port}:*:{SUPERUSER}:{password}\n")
    passfile.chmod(0o600)  # libpq ignores a password file others can read
    server = PostgresServer(bindir, root, port, passfile, runas, durable)
    if runas:
        server._chown(root)
    server.init(password)
    server.start()
    return server


def remove(server: PostgresServer) -> None:
    server.stop("immediate")
    shutil.rmtree(server.root, ignore_errors=True)
    shutil.rmtree(server.passfile.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server. Where the package is not installed the tests that
    need it skip, except under `.ci/run`, which installs it and makes a missing server fail."""
    server = start_server()
    if server is None:
        if os.environ.get("GATEWAY_TEST_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is required here but initdb/pg_ctl were not found")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            remove(server)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A URL to a fresh, empty database of its own."""
    return postgres_server.url(postgres_server.create_database())
