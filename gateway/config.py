"""`gateway.yaml` → typed, immutable settings.

Every problem is collected and reported as `FILE:LINE:COLUMN: message` (SourceErrors). Relative
paths and relative SQLite URLs resolve against the config file's folder.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import math
import re
import socket
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.yamlsrc import Located, SourceError, SourceErrors, YamlPath, did_you_mean, load_yaml

DEFAULT_CONFIG = Path("config/gateway.yaml")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class TlsSettings:
    cert: Path | None = None
    key: Path | None = None
    require: bool = False  # refuse MAIL before STARTTLS (from untrusted clients)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Limits of the listening side; the defaults follow Postfix's."""

    hostname: str = field(default_factory=socket.getfqdn)
    max_message_size: int = 25 * 1024 * 1024
    # Message bytes one process holds at once, over all sessions (received, being decided):
    # past it a message is answered 452 4.3.1 and the client retries. At least
    # max_message_size.
    max_in_flight: int = 512 * 1024 * 1024
    max_recipients: int = 1000
    max_sessions: int = 200
    # Sessions one client address may hold at once (trusted networks exempt, as Postfix's
    # smtpd_client_connection_count_limit); 0 = no limit.
    max_sessions_per_client: int = 50
    # New connections one client address may open per minute (trusted networks exempt, as
    # Postfix's smtpd_client_connection_rate_limit); 0 = no limit, Postfix's default too.
    max_connections_per_minute: int = 0
    command_timeout: float = 300.0
    data_timeout: float = 300.0
    # DATA may take data_timeout plus a second per min_data_rate bytes received (Postfix's
    # smtpd_min_data_rate): a client trickling a byte at a time cannot hold a session forever.
    min_data_rate: int = 500
    line_length: int = 8192
    bare_newline: str = "normalize"  # normalize | reject (Postfix 3.9's default is normalize)
    processing_deadline: float = 240.0  # below Postfix's 600 s data-done timeout
    drain_timeout: float = 30.0
    tls: TlsSettings = TlsSettings()
    # Hosts (networks) that may send XFORWARD: the Postfix in front, when the gateway is its
    # content_filter. Their forwarded client address, HELO and queue id are used instead of
    # the connection's.
    xforward_hosts: tuple[Network, ...] = ()
    workers: int = 1  # serving processes sharing the listening socket; 0 = one per CPU
    # With several workers: a worker whose event loop has not proven it turns for this long is
    # killed and replaced. Below half of systemd's WatchdogSec, so the parent replaces a stuck
    # worker before systemd restarts everything.
    worker_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    host: str = "127.0.0.1"
    port: int = 25
    timeout: float = 60.0
    pool_size: int = 16  # idle connections kept for reuse
    idle_timeout: float = 30.0
    starttls: str = "opportunistic"  # opportunistic | require | off
    helo: str | None = None
    pipelining: bool = True  # MAIL, RCPT and DATA in one write when the upstream offers it


@dataclass(frozen=True, slots=True)
class DistrictSettings:
    staff_domains: tuple[str, ...] = ()
    student_domains: tuple[str, ...] = ()
    student_number_pattern: str = r"\b\d{6}\b"

    @property
    def domains(self) -> tuple[str, ...]:
        return self.staff_domains + self.student_domains


@dataclass(frozen=True, slots=True)
class DirectorySettings:
    people: Path | None = None
    relationships: Path | None = None
    # Providers that deliver every spelling of a mailbox to one inbox: dots in the local part
    # do not count there, and an alias domain is the same mailbox system. A plus tag
    # (`alex+x@`) never counts, at any domain.
    dotless_domains: tuple[str, ...] = ("gmail.com", "googlemail.com")
    domain_aliases: tuple[tuple[str, str], ...] = (("googlemail.com", "gmail.com"),)


@dataclass(frozen=True, slots=True)
class QuarantineSettings:
    url: str = "sqlite:///../var/quarantine.db"
    path: Path | None = None  # resolved SQLite file, None for a server URL
    notify_sender: bool = False
    reviewers: tuple[str, ...] = ()
    digest_interval: float = 0.0  # seconds; 0 disables the reviewers' digest


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """The district's OpenID Connect provider for console sign-in (Google, Entra, ...)."""

    issuer: str  # discovery at ISSUER/.well-known/openid-configuration
    client_id: str
    client_secret: str
    label: str = "Sign in with your district account"  # the button on the sign-in page
    # Only e-mail addresses in these domains may sign in (empty: any the provider vouches for).
    domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReviewSettings:
    """The web review console (`gateway review`)."""

    listen: Endpoint | None = None
    public_url: str | None = None  # how reviewers reach it: digest links, OIDC redirect
    session_secret: str | None = None  # None: generated once and kept in the store
    session_lifetime: float = 8 * 3600.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trusted_proxies: tuple[str, ...] = ()  # whose X-Forwarded-For/-Proto to believe
    attachment_roles: tuple[str, ...] = ("administrator",)
    secure_cookies: bool = True  # False only for plain-HTTP development on loopback
    oidc: OidcSettings | None = None


@dataclass(frozen=True, slots=True)
class InspectionSettings:
    max_depth: int = 5
    max_parts: int = 200
    max_part_bytes: int = 20 * 1024 * 1024
    max_extracted_bytes: int = 50 * 1024 * 1024
    max_expansion_ratio: float = 100.0
    time_budget: float = 30.0
    pdf_engine: str = "auto"  # auto (pdfium if installed) | pdfium | pypdf


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Sender authentication of mail from outside trusted_networks (SPF, DKIM, DMARC, ARC)."""

    enabled: bool = True
    resolvers: tuple[tuple[str, int], ...] = ()  # empty: the system's (/etc/resolv.conf)
    timeout: float = 5.0  # seconds per DNS lookup
    deadline: float = 20.0  # seconds for all of one message's checks together
    cache_size: int = 10000  # DNS answers kept (dnspython's LRU cache, honouring TTLs)
    authserv_id: str | None = None  # None: smtp.hostname
    max_signatures: int = 5  # DKIM signatures verified per message (each costs a lookup)
    # ARC sealers whose word on an earlier hop's DMARC pass the gateway takes (RFC 8617):
    # the district's own forwarders, mailing lists. Domains (the seal's d=).
    trusted_arc_sealers: tuple[str, ...] = ()
    arc_seal: ArcSealSettings | None = None  # seal the copies the gateway changed


@dataclass(frozen=True, slots=True)
class ArcSealSettings:
    """The district's ARC sealing key: `SELECTOR._domainkey.DOMAIN` publishes its public half."""

    domain: str
    selector: str
    key: Path  # PEM private key (RSA), readable by the service only


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = "info"
    format: str = "auto"  # auto | json | console


@dataclass(frozen=True, slots=True)
class Settings:
    source: Path
    listen: Endpoint = Endpoint("127.0.0.1", 10025)
    upstream: UpstreamSettings = UpstreamSettings()
    trusted_networks: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"),)
    district: DistrictSettings = DistrictSettings()
    directory: DirectorySettings = DirectorySettings()
    policies: Path | None = None
    quarantine: QuarantineSettings = QuarantineSettings()
    metrics_listen: Endpoint | None = None
    smtp: SmtpSettings = SmtpSettings()
    inspection: InspectionSettings = InspectionSettings()
    log: LogSettings = LogSettings()
    authentication: AuthSettings = AuthSettings()
    review: ReviewSettings = ReviewSettings()
    postmaster: str = "postmaster@localhost"
    monitor_only: bool = False  # global monitor mode: decide and log, but relay
    # is_trusted's answers by client address: each RCPT and each message asks for the same
    # few addresses (parsing one costs ~8 us). Per Settings, so a reload starts afresh.
    _trust: dict[str, bool] = field(default_factory=dict, init=False, repr=False,
                                    compare=False)

    @property
    def base_dir(self) -> Path:
        return self.source.parent

    def is_trusted(self, ip: str | None) -> bool:
        if not ip:
            return False
        known = self._trust.get(ip)
        if known is None:
            if len(self._trust) >= _TRUST_CACHE_SIZE:  # many distinct clients: start over
                self._trust.clear()
            known = self._trust[ip] = self._is_trusted(ip)
        return known

    def _is_trusted(self, ip: str) -> bool:
        return _in_networks(ip, self.trusted_networks)

    def may_xforward(self, ip: str | None) -> bool:
        """May this connecting host send XFORWARD (`smtp.xforward_hosts`)?"""
        return bool(ip) and bool(self.smtp.xforward_hosts) and \
            _in_networks(ip or "", self.smtp.xforward_hosts)


def _in_networks(ip: str, networks: tuple[Network, ...]) -> bool:
    addr = parse_ip(ip)
    if addr is None:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


def load_settings(path: str | Path | None = None) -> Settings:
    """Load and validate the service configuration; raise SourceErrors listing every problem."""
    config_path = Path(path) if path else DEFAULT_CONFIG
    located = load_yaml(config_path)
    reader = _Reader(located, config_path.resolve().parent)
    settings = reader.settings(config_path.resolve())
    if reader.errors:
        raise SourceErrors(sorted(reader.errors, key=lambda e: (e.line, e.column)))
    return settings


# --- schema ---------------------------------------------------------------------------------

_SECTIONS: dict[str, set[str]] = {
    "": {"listen", "upstream", "trusted_networks", "district", "directory", "policies",
         "quarantine", "metrics", "smtp", "inspection", "log", "postmaster", "monitor_only",
         "authentication", "review"},
    "authentication": {"enabled", "resolvers", "timeout", "deadline", "cache_size",
                       "authserv_id", "max_signatures", "trusted_arc_sealers", "arc_seal"},
    "authentication.arc_seal": {"domain", "selector", "key"},
    "review": {"listen", "public_url", "session_secret", "session_lifetime", "tls",
               "trusted_proxies", "attachment_roles", "secure_cookies", "oidc"},
    "review.tls": {"cert", "key"},
    "review.oidc": {"issuer", "client_id", "client_secret", "label", "domains"},
    "listen": {"host", "port"},
    "upstream": {"host", "port", "timeout", "pool_size", "idle_timeout", "starttls", "helo",
                 "pipelining"},
    "district": {"staff_domains", "student_domains", "student_number_pattern"},
    "directory": {"people", "relationships", "dotless_domains", "domain_aliases"},
    "quarantine": {"url", "notify_sender", "reviewers", "digest_interval"},
    "metrics": {"listen"},
    "smtp": {"hostname", "max_message_size", "max_in_flight", "max_recipients", "max_sessions",
             "max_sessions_per_client", "max_connections_per_minute", "command_timeout",
             "data_timeout", "min_data_rate", "line_length", "bare_newline",
             "processing_deadline", "drain_timeout", "tls", "workers", "worker_timeout",
             "xforward_hosts"},
    "smtp.tls": {"cert", "key", "require"},
    "inspection": {"max_depth", "max_parts", "max_part_bytes", "max_extracted_bytes",
                   "max_expansion_ratio", "time_budget", "pdf_engine"},
    "log": {"level", "format"},
}
def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A client address as the daemon reads it (an IPv6 zone, `%eth0`, ignored); None if
    `text` is not one."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


_TRUST_CACHE_SIZE = 4096  # distinct client addresses remembered by Settings.is_trusted
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class _Reader:
    """Walks the YAML tree, checking types and collecting every error with its position."""

    def __init__(self, located: Located, base_dir: Path):
        self.src = located
        self.base = base_dir
        self.errors: list[SourceError] = []
        self.checked: set[YamlPath] = set()  # sections whose keys were already validated

    # -- generic accessors ----------------------------------------------------------------
    def section(self, path: YamlPath) -> dict[str, Any]:
        node: Any = self.src.data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return {}
        if not isinstance(node, dict):
            self.fail(path, "must be a mapping")
            return {}
        if path in self.checked:
            return node
        self.checked.add(path)
        allowed = _SECTIONS[".".join(str(p) for p in path)]
        for key in node:
            if key not in allowed:
                self.fail((*path, str(key)), f"unknown key '{key}'"
                          + did_you_mean(str(key), allowed), key=True, code="unknown-key")
        return node

    def fail(self, path: YamlPath, message: str, *, key: bool = False,
             code: str = "invalid") -> None:
        self.errors.append(self.src.error(path, message, key=key, code=code))

    def get(self, path: YamlPath, kind: type | tuple[type, ...], default: Any) -> Any:
        value = self.section(path[:-1]).get(path[-1], default)
        if value is default:
            return default
        if isinstance(value, bool) and kind in (int, float):
            self.fail(path, f"'{path[-1]}' must be a number, not a boolean")
            return default
        if kind is float and isinstance(value, int):
            value = float(value) if abs(value) < 1e300 else math.inf
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(path, f"'{path[-1]}' must be a finite number")
            return default
        if not isinstance(value, kind):
            self.fail(path, f"'{path[-1]}' must be {_kind_name(kind)}")
            return default
        return value

    def host_name(self, path: YamlPath, default: str | None) -> str | None:
        """A name sent in EHLO/HELO and trace headers: ASCII, one word."""
        value = self.get(path, str, default)
        if value is not default and (not value or not value.isascii()
                                     or any(c.isspace() for c in value)):
            self.fail(path, f"'{path[-1]}' must be an ASCII host name without spaces "
                            "(IDNA-encode it: xn--...)")
            return default
        return value

    def number(self, path: YamlPath, default: float, *, kind: type = float,
               minimum: float = 0) -> Any:
        value = self.get(path, kind, default)
        if value < minimum:
            self.fail(path, f"'{path[-1]}' must be at least {minimum}")
            return default
        return value

    def size(self, path: YamlPath, default: int) -> int:
        value = self.section(path[:-1]).get(path[-1], default)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        match = _SIZE_RE.match(str(value))
        if not match or isinstance(value, bool):
            self.fail(path, f"'{path[-1]}' must be a size such as 25M or 1048576")
            return default
        unit = (match.group(2) or "").lower()[:1]
        size = float(match.group(1)) * _SIZE_UNITS[unit]
        if not math.isfinite(size):
            self.fail(path, f"'{path[-1]}' is too large")
            return default
        return int(size)

    def choice(self, path: YamlPath, choices: tuple[str, ...], default: str) -> str:
        value = self.get(path, str, default)
        if value not in choices:
            self.fail(path, f"'{path[-1]}' must be one of {', '.join(choices)}"
                      + did_you_mean(str(value), choices))
            return default
        return value

    def path(self, path: YamlPath, default: Path | None = None) -> Path | None:
        value = self.get(path, str, None)
        return self.base / value if value else default

    def str_list(self, path: YamlPath) -> tuple[str, ...]:
        value = self.get(path, list, [])
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str) and item.strip():
                out.append(item.strip())
            else:
                self.fail((*path, i), "must be a non-empty string")
        return tuple(out)

    def endpoint(self, path: YamlPath, default: Endpoint) -> Endpoint:
        host = self.get((*path, "host"), str, default.host)
        port = self.get((*path, "port"), int, default.port)
        if not 0 <= port <= 65535:
            self.fail((*path, "port"), "'port' must be between 0 and 65535")
            port = default.port
        return Endpoint(host, port)

    # -- sections -------------------------------------------------------------------------
    def settings(self, source: Path) -> Settings:
        self.section(())
        metrics = self.metrics_listen()
        return Settings(
            source=source,
            listen=self.endpoint(("listen",), Endpoint("127.0.0.1", 10025)),
            upstream=self.upstream(),
            trusted_networks=self.networks(("trusted_networks",), ["127.0.0.0/8"]),
            district=self.district(),
            directory=self.directory(),
            policies=self.path(("policies",)),
            quarantine=self.quarantine(),
            review=self.review(),
            metrics_listen=metrics,
            smtp=self.smtp(),
            inspection=self.inspection(),
            log=LogSettings(self.choice(("log", "level"),
                                        ("debug", "info", "warning", "error"), "info"),
                            self.choice(("log", "format"), ("auto", "json", "console"), "auto")),
            authentication=self.authentication(),
            postmaster=self.get(("postmaster",), str, "postmaster@localhost"),
            monitor_only=self.get(("monitor_only",), bool, False),
        )

    def directory(self) -> DirectorySettings:
        p = ("directory",)
        d = DirectorySettings()
        given = self.section(p)
        dotless = d.dotless_domains
        if "dotless_domains" in given:
            dotless = tuple(_domain(x) for x in self.str_list((*p, "dotless_domains")))
        aliases = d.domain_aliases
        if "domain_aliases" in given:
            found = self.get((*p, "domain_aliases"), dict, {})
            aliases = tuple((_domain(str(k)), _domain(v)) for k, v in found.items()
                            if self._alias_ok((*p, "domain_aliases", str(k)), v))
        return DirectorySettings(self.path((*p, "people")), self.path((*p, "relationships")),
                                 dotless, aliases)

    def _alias_ok(self, path: YamlPath, value: Any) -> bool:
        if isinstance(value, str) and value.strip():
            return True
        self.fail(path, "an alias names the domain whose mailboxes it shares")
        return False

    def upstream(self) -> UpstreamSettings:
        p = ("upstream",)
        endpoint = self.endpoint(p, Endpoint("127.0.0.1", 25))
        return UpstreamSettings(
            host=endpoint.host, port=endpoint.port,
            timeout=self.number((*p, "timeout"), 60.0, minimum=0.1),
            pool_size=self.number((*p, "pool_size"), 16, kind=int),
            idle_timeout=self.number((*p, "idle_timeout"), 30.0),
            starttls=self.choice((*p, "starttls"), ("opportunistic", "require", "off"),
                                 "opportunistic"),
            helo=self.host_name((*p, "helo"), None),
            pipelining=self.get((*p, "pipelining"), bool, True),
        )

    def networks(self, path: YamlPath, default: list[str]) -> tuple[Network, ...]:
        raw = self.get(path, list, default)
        nets = []
        for i, item in enumerate(raw):
            try:
                nets.append(ipaddress.ip_network(str(item), strict=False))
            except ValueError:
                self.fail((*path, i), f"not an IP network: '{item}'")
        return tuple(nets)

    def district(self) -> DistrictSettings:
        p = ("district",)
        pattern = self.get((*p, "student_number_pattern"), str, r"\b\d{6}\b")
        try:
            re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:  # a{9999999999}, ((((...
            self.fail((*p, "student_number_pattern"), f"bad regular expression: {exc}")
        staff = tuple(d.lower().rstrip(".") for d in self.str_list((*p, "staff_domains")))
        students = tuple(d.lower().rstrip(".") for d in self.str_list((*p, "student_domains")))
        return DistrictSettings(staff, students, pattern)

    def quarantine(self) -> QuarantineSettings:
        p = ("quarantine",)
        url = self.get((*p, "url"), str, "sqlite:///../var/quarantine.db")
        path: Path | None = None
        if url.startswith("sqlite:///") and url != "sqlite:///":
            rest = url[len("sqlite:///"):]
            path = Path(rest) if rest.startswith("/") else self.base / rest
        elif url.startswith(("postgresql://", "postgres://")):
            # A server: libpq reads the rest (hosts, database, TLS, passfile, ...) when the
            # store opens; its shape is checked here so --check-config catches a typo.
            problem = _postgres_url_problem(url)
            if problem:
                self.fail((*p, "url"), f"not a valid PostgreSQL URL: {problem}")
        else:
            self.fail((*p, "url"), "quarantine url must be sqlite:///PATH.db or "
                      "postgresql://USER@HOST/DATABASE")
        return QuarantineSettings(
            url=url, path=path,
            notify_sender=self.get((*p, "notify_sender"), bool, False),
            reviewers=self.str_list((*p, "reviewers")),
            digest_interval=self.number((*p, "digest_interval"), 0.0),
        )

    def metrics_listen(self) -> Endpoint | None:
        return self.host_port(("metrics", "listen"))

    def host_port(self, path: YamlPath) -> Endpoint | None:
        value = self.get(path, str, None)
        if not value:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not (port.isascii() and port.isdigit()) or int(port) > 65535:
            self.fail(path, f"{' '.join(str(p) for p in path)} must be HOST:PORT")
            return None
        return Endpoint(host.strip("[]") or "127.0.0.1", int(port))

    def review(self) -> ReviewSettings:
        p = ("review",)
        cert, key = self.path((*p, "tls", "cert")), self.path((*p, "tls", "key"))
        if (cert is None) != (key is None):
            self.fail((*p, "tls"), "review tls needs both 'cert' and 'key'")
        public_url = self.get((*p, "public_url"), str, None)
        if public_url is not None and not re.match(r"^https?://[^/\s]+", public_url):
            self.fail((*p, "public_url"), "public_url must be an http(s):// URL")
            public_url = None
        roles = self.str_list((*p, "attachment_roles")) or ("administrator",)
        for i, role in enumerate(roles):
            if role not in ("administrator", "reviewer"):
                self.fail((*p, "attachment_roles", i),
                          "attachment roles are administrator and reviewer")
        secret = self.get((*p, "session_secret"), str, None)
        if secret is not None and len(secret) < 32:
            self.fail((*p, "session_secret"), "session_secret must be at least 32 characters")
            secret = None
        return ReviewSettings(
            listen=self.host_port((*p, "listen")),
            public_url=public_url.rstrip("/") if public_url else None,
            session_secret=secret,
            session_lifetime=self.number((*p, "session_lifetime"), 8 * 3600.0, minimum=60),
            tls_cert=cert, tls_key=key,
            trusted_proxies=self.str_list((*p, "trusted_proxies")),
            attachment_roles=roles,
            secure_cookies=self.get((*p, "secure_cookies"), bool, True),
            oidc=self.oidc((*p, "oidc")),
        )

    def oidc(self, p: YamlPath) -> OidcSettings | None:
        if not self.section(p):
            return None
        values = {k: self.get((*p, k), str, "") for k in ("issuer", "client_id", "client_secret")}
        for k, v in values.items():
            if not v:
                self.fail(p, f"review oidc needs '{k}'")
        if values["issuer"] and not values["issuer"].startswith(("https://", "http://")):
            self.fail((*p, "issuer"), "issuer must be an https:// URL")
        return OidcSettings(
            **values, label=self.get((*p, "label"), str, "Sign in with your district account"),
            domains=tuple(d.lower().lstrip("@") for d in self.str_list((*p, "domains"))))

    def smtp(self) -> SmtpSettings:
        p = ("smtp",)
        d = SmtpSettings()
        return SmtpSettings(
            hostname=self.host_name((*p, "hostname"), d.hostname),
            max_message_size=self.size((*p, "max_message_size"), d.max_message_size),
            max_in_flight=self.in_flight((*p, "max_in_flight"), d.max_in_flight,
                                         self.size((*p, "max_message_size"),
                                                   d.max_message_size)),
            max_recipients=self.number((*p, "max_recipients"), d.max_recipients, kind=int,
                                       minimum=1),
            max_sessions=self.number((*p, "max_sessions"), d.max_sessions, kind=int, minimum=1),
            max_sessions_per_client=self.number((*p, "max_sessions_per_client"),
                                                d.max_sessions_per_client, kind=int),
            max_connections_per_minute=self.number((*p, "max_connections_per_minute"),
                                                   d.max_connections_per_minute, kind=int),
            command_timeout=self.number((*p, "command_timeout"), d.command_timeout, minimum=1),
            data_timeout=self.number((*p, "data_timeout"), d.data_timeout, minimum=1),
            min_data_rate=self.number((*p, "min_data_rate"), d.min_data_rate, kind=int,
                                      minimum=1),
            line_length=self.number((*p, "line_length"), d.line_length, kind=int, minimum=1000),
            bare_newline=self.choice((*p, "bare_newline"), ("normalize", "reject"),
                                     "normalize"),
            processing_deadline=self.number((*p, "processing_deadline"),
                                            d.processing_deadline, minimum=1),
            drain_timeout=self.number((*p, "drain_timeout"), d.drain_timeout),
            tls=TlsSettings(self.path((*p, "tls", "cert")), self.path((*p, "tls", "key")),
                            self.get((*p, "tls", "require"), bool, False)),
            workers=self.number((*p, "workers"), d.workers, kind=int),
            xforward_hosts=self.networks((*p, "xforward_hosts"), []),
            # a beat every second: anything shorter would kill healthy workers
            worker_timeout=self.number((*p, "worker_timeout"), d.worker_timeout, minimum=3),
        )

    def in_flight(self, path: YamlPath, default: int, message_size: int) -> int:
        value = self.size(path, default)
        if value < message_size:
            self.fail(path, f"'{path[-1]}' must be at least smtp.max_message_size "
                            f"({message_size} bytes): a message that size could never be taken")
            return max(default, message_size)
        return value

    def authentication(self) -> AuthSettings:
        p = ("authentication",)
        d = AuthSettings()
        return AuthSettings(
            enabled=self.get((*p, "enabled"), bool, d.enabled),
            resolvers=tuple(r for i, item in enumerate(self.get((*p, "resolvers"), list, []))
                            if (r := self.resolver((*p, "resolvers", i), item)) is not None),
            timeout=self.number((*p, "timeout"), d.timeout, minimum=0.05),
            deadline=self.number((*p, "deadline"), d.deadline, minimum=0.1),
            cache_size=self.number((*p, "cache_size"), d.cache_size, kind=int, minimum=1),
            authserv_id=self.host_name((*p, "authserv_id"), None),
            max_signatures=self.number((*p, "max_signatures"), d.max_signatures, kind=int,
                                       minimum=1),
            trusted_arc_sealers=tuple(_domain(x) for x in
                                      self.str_list((*p, "trusted_arc_sealers"))),
            arc_seal=self.arc_seal((*p, "arc_seal")),
        )

    def arc_seal(self, path: YamlPath) -> ArcSealSettings | None:
        given = self.section(path)
        if not given:
            return None
        domain = self.get((*path, "domain"), str, "")
        selector = self.get((*path, "selector"), str, "")
        key = self.path((*path, "key"))
        for name, value in (("domain", domain), ("selector", selector), ("key", key)):
            if not value:
                self.fail(path, f"arc_seal needs '{name}'")
        if key is not None and not key.is_file():
            self.fail((*path, "key"), f"no such key file: {key}")
        elif key is not None and b"PRIVATE KEY-----" not in _head_of(key):
            self.fail((*path, "key"), f"not a PEM private key: {key}")
        if not (domain and selector and key):
            return None
        return ArcSealSettings(_domain(domain), selector, key)

    def resolver(self, path: YamlPath, item: Any) -> tuple[str, int] | None:
        """`IP` or `IP:PORT` (`[IPv6]:PORT`); port 53 when none is given."""
        text = str(item).strip()
        host, port = text, "53"
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif text.count(":") == 1:
            host, port = text.split(":")
        if parse_ip(host) is None or not port.isdigit() or not 0 < int(port) < 65536:
            self.fail(path, f"not a resolver address (IP or IP:PORT): '{text}'")
            return None
        return host, int(port)

    def inspection(self) -> InspectionSettings:
        p = ("inspection",)
        d = InspectionSettings()
        return InspectionSettings(
            max_depth=self.number((*p, "max_depth"), d.max_depth, kind=int, minimum=1),
            max_parts=self.number((*p, "max_parts"), d.max_parts, kind=int, minimum=1),
            max_part_bytes=self.size((*p, "max_part_bytes"), d.max_part_bytes),
            max_extracted_bytes=self.size((*p, "max_extracted_bytes"), d.max_extracted_bytes),
            max_expansion_ratio=self.number((*p, "max_expansion_ratio"),
                                            d.max_expansion_ratio, minimum=1),
            time_budget=self.number((*p, "time_budget"), d.time_budget, minimum=0.1),
            pdf_engine=self.pdf_engine((*p, "pdf_engine"), d.pdf_engine),
        )

    def pdf_engine(self, path: YamlPath, default: str) -> str:
        engine = self.choice(path, ("auto", "pdfium", "pypdf"), default)
        if engine == "pdfium" and importlib.util.find_spec("pypdfium2") is None:
            self.fail(path, "'pdf_engine: pdfium' needs the pypdfium2 package "
                            "(pip install 'district-mail-gateway[fast]')")
            return default
        return engine


def _head_of(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(4096)
    except OSError:
        return b""


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a mapping"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _domain(text: str) -> str:
    return text.strip().lower().rstrip(".")


def _postgres_url_problem(url: str) -> str | None:
    """What makes a `postgresql://` URL unusable before libpq sees it (None when fine):
    ports that are not numbers, options that are not `name=value`."""
    parts = urllib.parse.urlsplit(url)
    hostlist = parts.netloc.rpartition("@")[2]
    for host in hostlist.split(","):
        _, sep, port = host.rpartition(":") if not host.endswith("]") else ("", "", "")
        if sep and port and not (port.isascii() and port.isdigit() and int(port) <= 65535):
            return f"port '{port}' is not a number"
    for option in filter(None, parts.query.split("&")):
        name, sep, _ = option.partition("=")
        if not sep or not name:
            return f"option '{option.split('=')[0]}' is not NAME=VALUE"
    return None
