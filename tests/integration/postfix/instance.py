"""A throwaway Postfix instance: its own configuration and queue folders in a temporary
directory, its own loopback ports, started with `postfix -c DIR start` and stopped (and
removed) at the end. The machine's own Postfix configuration is never read for mail routing
and never changed.

One instance serves every deployment the gateway documents, each on its own port:

- `after_queue`: an smtpd with `content_filter = gateway:[127.0.0.1]:GATEWAY` (Postfix
  queues the mail, then hands it to the gateway; deployment B);
- `before_queue`: an smtpd with `smtpd_proxy_filter = 127.0.0.1:GATEWAY` (the gateway
  answers the client during the SMTP session, before Postfix queues anything);
- `reinject`: the unfiltered smtpd the gateway relays to (its `upstream`), which also plays
  the district mail server that a gateway in front of it (deployment A) relays to.

Everything Postfix delivers goes to one SMTP sink (`default_transport`), the stand-in for the
rest of the world and the mailboxes. Its log is a file (`maillog_file`, Postfix 3.4+), read
as mail.log.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTQUEUE = shutil.which("postqueue") or "/usr/sbin/postqueue"
POSTCONF = shutil.which("postconf") or "/usr/sbin/postconf"


def available() -> str | None:
    """Why a private Postfix cannot run here, or None."""
    if not os.path.exists(POSTFIX):
        return "postfix is not installed (Debian package `postfix`)"
    if os.geteuid() != 0:
        return "a private Postfix instance is started by root (it drops to mail_owner)"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "no `postfix` user (the Debian package creates it)"
    return None


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


@dataclass(frozen=True)
class Ports:
    after_queue: int
    before_queue: int
    reinject: int
    gateway: int
    sink: int


MAIN_CF = """\
compatibility_level = 3.6
config_directory = {root}/etc
queue_directory = {root}/spool
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {root}/mail.log
maillog_file_prefixes = {root}
myhostname = postfix.test
mydomain = test
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions =
relay_domains =
relayhost =
# Everything leaves through the sink: the world and the mailboxes, for the test.
default_transport = smtp:[127.0.0.1]:{sink}
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtputf8_enable = no
biff = no
# Fast retries: a test flushes the queue (postqueue -f) rather than waiting.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtp_connect_timeout = 5s
delay_warning_time = 0
# The gateway (before-queue) has this long to answer each command, DATA's end included.
smtpd_proxy_timeout = 60s
"""

MASTER_CF = """\
# Public smtpd, after-queue filtering: queue first, then the gateway (deployment B).
127.0.0.1:{after_queue} inet n - n - - smtpd
    -o content_filter=gateway:[127.0.0.1]:{gateway}
# Public smtpd, before-queue filtering: the gateway answers inside the client's session.
127.0.0.1:{before_queue} inet n - n - - smtpd
    -o smtpd_proxy_filter=127.0.0.1:{gateway}
    -o smtpd_proxy_options=speed_adjust
# What the gateway relays to: no filter again. Also the district mail server of deployment A.
127.0.0.1:{reinject} inet n - n - - smtpd
    -o content_filter=
    -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
    -o smtpd_relay_restrictions=permit_mynetworks,reject
    -o mynetworks=127.0.0.0/8
gateway   unix  -       -       n       -       4       smtp
    -o smtp_data_done_timeout=1200s
    -o smtp_send_xforward_command=no
    -o disable_mime_output_conversion=yes
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class PostfixInstance:
    def __init__(self, root: Path, ports: Ports):
        self.root = root
        self.ports = ports
        self.config_dir = root / "etc"
        self.log = root / "mail.log"
        self.log_start = 0  # log_text() reads from here: the current test's lines only

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {result.returncode}: "
                               f"{result.stderr.strip() or result.stdout.strip()}")
        return result

    def write_config(self) -> None:
        self.config_dir.mkdir(parents=True)
        for folder in ("spool", "data"):
            (self.root / folder).mkdir()
        values = {"root": self.root, **self.ports.__dict__}
        (self.config_dir / "main.cf").write_text(MAIN_CF.format(**values))
        (self.config_dir / "master.cf").write_text(MASTER_CF.format(**values))
        # Debian builds its lookup tables as plug-ins listed here; without it every
        # command warns.
        for name in ("dynamicmaps.cf", "dynamicmaps.cf.d"):
            source = Path("/etc/postfix") / name
            if source.is_file():
                shutil.copy(source, self.config_dir / name)
            elif source.is_dir():
                shutil.copytree(source, self.config_dir / name)
        # Postfix's safety checks want the path to its queue owned by root and not writable
        # by others all the way up; pytest's temporary folders are (0700, root).
        (self.root / "data").chmod(0o700)
        os.chown(self.root / "data", pwd.getpwnam("postfix").pw_uid, -1)

    def start(self) -> None:
        if not (self.config_dir / "main.cf").exists():
            self.write_config()
            self._run(POSTFIX, "-c", str(self.config_dir), "check")
        self._run(POSTFIX, "-c", str(self.config_dir), "start")
        for port in (self.ports.after_queue, self.ports.before_queue, self.ports.reinject):
            self.wait_listening(port)

    def stop(self) -> None:
        """`postfix stop`, then make sure the master and its children are gone."""
        pid_file = self.root / "spool" / "pid" / "master.pid"
        pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        self._run(POSTFIX, "-c", str(self.config_dir), "stop", check=False)
        if pid is None:
            return
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):  # the master ignored the stop: never leave it running
            os.kill(pid, signal.SIGKILL)

    def flush(self) -> None:
        """Deliver everything queued now (retries included) rather than at the next run."""
        self._run(POSTQUEUE, "-c", str(self.config_dir), "-f")

    def queue(self) -> str:
        return self._run(POSTQUEUE, "-c", str(self.config_dir), "-p").stdout

    def queue_empty(self) -> bool:
        return "Mail queue is empty" in self.queue()

    def mark_log(self) -> None:
        """From now on, log_text() and log_lines() see only what Postfix logs next."""
        self.log_start = self.log.stat().st_size if self.log.exists() else 0

    def log_text(self) -> str:
        if not self.log.exists():
            return ""
        with self.log.open("rb") as log:
            log.seek(self.log_start)
            return log.read().decode(errors="replace")

    def log_lines(self, pattern: str) -> list[str]:
        return [line for line in self.log_text().splitlines() if re.search(pattern, line)]

    @staticmethod
    def wait_listening(port: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"Postfix never listened on 127.0.0.1:{port}")
