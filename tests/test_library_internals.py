"""The private internals of aiosmtpd, aiosmtplib, asyncio, prometheus_client, pyspf (and
logging) that the gateway relies on: each still there, of the same kind, with the same parameters.

Why: for speed and for RFC 2920 pipelining the gateway subclasses aiosmtpd's SMTP and
aiosmtplib's SMTP/SMTPProtocol, overrides some of their underscore methods, and reads or sets
underscore attributes of theirs and of asyncio's StreamReader, and prometheus_client's value class.
None of that is public API: any release may rename or drop it, and the gateway then breaks at
run time (or, where it falls back through getattr, silently loses the speed-up). pyproject.toml
therefore caps these dependencies below the next minor version; this file is the check to pass,
and the modules named in a failure are the ones to review, before a cap is raised.

Every table row is (library object, name, kind, our module, why). Kinds:

    "method(a, b)"            a function on the class taking these parameters after `self`
    "async method(a)"         the same, a coroutine function
    "function(a)"             a module-level function taking these parameters
    "attribute"               on a fresh instance (see the `samples`) or on the class/module
    "attribute: T"            the same, an instance of T ("number": int or float)
    "attribute set on connect" assigned as `self.<name> = ...` in the class's source (it only
                              exists once a connection is made)
    "ours: must not exist"    a name our subclass adds: the library must not define it too

Two more kinds of rows, where the contract is more than a name:

    SOURCE_LINES: (library object, name, text, our module, why): the library's source of that
        method still contains `text` (cheap, and only where that line is the contract);
    COPIED: (library object, name, fingerprint, our module, why): methods our module re-implements
        (the fast paths); any change to the library's method (blank lines and whole-line comments
        aside) changes the fingerprint, and the change must be ported to ours.

Read for this and found to use no private library name: gateway/smtp/wire.py,
gateway/smtp/capture.py, gateway/service/daemon.py, gateway/service/health.py (its `_server`,
`_clients`, ... are its own). `argparse._SubParsersAction` (gateway/cli/*) and lxml's
`etree._Element` (gateway/extract/docx.py) appear only in annotations, which are never evaluated
(`from __future__ import annotations`). `os._exit` (gateway/service/workers.py) is public API.

This file imports the libraries only, never `gateway`: the rows name our modules by path.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import platform
import re
from collections.abc import Iterable, Mapping
from importlib.metadata import version
from typing import Any

import aiosmtplib
import aiosmtplib.email
import aiosmtplib.protocol
import prometheus_client.metrics
import prometheus_client.values
import spf
from aiosmtpd.smtp import SMTP as ServerSMTP
from aiosmtplib.protocol import SMTPProtocol
from prometheus_client import Counter, Gauge, Histogram

SERVER = "gateway/smtp/server.py"
DATAREAD = "gateway/smtp/dataread.py"
ADDRESS = "gateway/smtp/address.py"
BATCHING = "gateway/smtp/batching.py"
CLIENT = "gateway/smtp/client.py"
PIPELINING = "gateway/smtp/pipelining.py"
METRICS = "gateway/metrics.py"
LOGSETUP = "gateway/service/logsetup.py"

Row = tuple[Any, str, str, str, str]  # library object, name, kind, our module, why
SourceLine = tuple[Any, str, str, str, str]  # library object, method, text, our module, why
Copied = tuple[Any, str, str, str, str]  # library object, method, fingerprint, module, why

# -- aiosmtpd: aiosmtpd.smtp.SMTP, the server side of every client session -------------------
AIOSMTPD: list[Row] = [
    (ServerSMTP, "_handle_client", "async method()", SERVER,
     "overridden: refuses a session over smtp.max_sessions or while draining (421), counts "
     "sessions, then runs super()._handle_client()"),
    (ServerSMTP, "_timeout_cb", "method()", SERVER,
     "overridden: a session whose message is being decided is kept; otherwise 421 is written "
     "before super()._timeout_cb() closes the connection"),
    (ServerSMTP, "_reset_timeout", "method(duration)", SERVER,
     "called from data_received: the idle timer is re-armed on every chunk of DATA"),
    (ServerSMTP, "_timeout_duration", "attribute: number", SERVER,
     "set to smtp.data_timeout for DATA and back to smtp.command_timeout after it"),
    (ServerSMTP, "_reader", "attribute set on connect", f"{DATAREAD}, {BATCHING}",
     "the session's StreamReader: DATA is read from it in blocks, its _buffer is peeked"),
    (ServerSMTP, "_writer", "attribute set on connect", f"{DATAREAD}, {BATCHING}",
     "closed when the connection drops in DATA; push() writes held replies to it"),
    (ServerSMTP, "_set_post_data_state", "method()", DATAREAD,
     "resets the envelope after DATA, as aiosmtpd's own smtp_DATA does"),
    (ServerSMTP, "_handle_hooks", "attribute: dict", DATAREAD,
     "`'DATA' in self._handle_hooks` decides whether handler.handle_DATA is called"),
    (ServerSMTP, "_call_handler_hook", "async method(command, *args)", DATAREAD,
     "calls handler.handle_DATA with the session and envelope"),
    (ServerSMTP, "_getaddr", "method(arg)", ADDRESS,
     "overridden: plain <local@domain> answered by a regex, anything else by super()._getaddr"),
    (ServerSMTP, "_held", "ours: must not exist", BATCHING,
     "BatchedRepliesSMTP's replies not written yet (a class attribute of ours)"),
    (ServerSMTP, "_next_command_buffered", "ours: must not exist", BATCHING,
     "BatchedRepliesSMTP's check for a complete command in the reader's buffer"),
    (ServerSMTP, "HOLD_LIMIT", "ours: must not exist", BATCHING,
     "BatchedRepliesSMTP's bound on held replies"),
    (ServerSMTP, "_log_session", "ours: must not exist", SERVER,
     "GatewaySMTP's per-session log line"),
    *((ServerSMTP, name, "ours: must not exist", SERVER, "GatewaySMTP's session state")
      for name in ("gateway", "started", "messages", "busy", "receiving")),
]

AIOSMTPD_SOURCE_LINES: list[SourceLine] = [
    (ServerSMTP, "connection_made", "self._handle_client()", SERVER,
     "each connection's task is our _handle_client override (admission control)"),
    (ServerSMTP, "_reset_timeout", "self._timeout_duration", SERVER,
     "the duration is read at every re-arm, so the data timeout set in smtp_DATA applies"),
    (ServerSMTP, "_reset_timeout", "self._timeout_cb", SERVER,
     "the timer calls our _timeout_cb override"),
    (ServerSMTP, "_timeout_cb", "self.transport.close()", SERVER,
     "super()._timeout_cb() is what ends a timed-out session after our 421"),
    (ServerSMTP, "smtp_EHLO", "response.append('250 HELP')", SERVER,
     "Handler.handle_EHLO inserts 250-PIPELINING before the last line, taken to be 250 HELP"),
]

AIOSMTPD_COPIED: list[Copied] = [
    (ServerSMTP, "smtp_DATA", "f53830ed02a5ef3d", DATAREAD,
     "BlockDataSMTP.smtp_DATA re-implements it (replies, end-of-data rules including the SMTP "
     "smuggling fix, size/line limits, dot-unstuffing); "
     "tests/integration/test_smtp_dataread.py compares"),
    (ServerSMTP, "push", "33a2fb0b730f5421", BATCHING,
     "BatchedRepliesSMTP.push re-implements the encoding and the write"),
    (ServerSMTP, "_getaddr", "bf405ad7b6ac9b72", ADDRESS,
     "FastAddressSMTP's fast path must answer what it answers for plain addresses"),
]

# -- aiosmtplib: the relay's client; gateway/smtp/pipelining.py extends its protocol ----------
AIOSMTPLIB: list[Row] = [
    (aiosmtplib.SMTP, "_create_connection", "async method(timeout)", PIPELINING,
     "overridden (aiosmtplib calls it with timeout=): the SMTPProtocol aiosmtplib just made is "
     "given pipelining by changing its class"),
    (SMTPProtocol, "_command_lock", "attribute", PIPELINING,
     "send_pipelined() holds it as execute_command does, so no command runs inside a group; "
     "None means not connected"),
    (SMTPProtocol, "_buffer", "attribute: bytearray", PIPELINING,
     "reply bytes not parsed yet: emptied before and after a group, parsed while in one"),
    (SMTPProtocol, "_response_waiter", "attribute", PIPELINING,
     "the future read_response() awaits; _deliver resolves it; None once the connection is lost"),
    (SMTPProtocol, "_response_pending", "attribute: bool", PIPELINING,
     "set for a group (and cleared after) so its replies are not dropped as unsolicited"),
    (SMTPProtocol, "_read_response_from_buffer", "method()", PIPELINING,
     "aiosmtplib's reply parser, run over every complete reply of a group"),
    (SMTPProtocol, "read_response", "async method(timeout)", f"{PIPELINING}, {CLIENT}",
     "undocumented protocol method: awaits one reply (called with timeout=)"),
    (SMTPProtocol, "write", "method(data)", f"{PIPELINING}, {CLIENT}",
     "undocumented protocol method: the group / the message payload in one write"),
    (aiosmtplib.protocol, "COMMAND_INJECTION_REGEX", "attribute: Pattern", PIPELINING,
     "not in aiosmtplib.protocol.__all__ (since 5.1.1): send_pipelined() applies aiosmtplib's own "
     "control-character check"),
    (aiosmtplib.protocol, "MAX_RESPONSE_LENGTH", "attribute: int", PIPELINING,
     "not in aiosmtplib.protocol.__all__ (since 5.1.2): the bound on unparsed reply bytes"),
    (aiosmtplib.SMTP, "protocol", "attribute", f"{PIPELINING}, {CLIENT}",
     "the connection's SMTPProtocol, upgraded in place and driven directly"),
    (aiosmtplib.SMTP, "transport", "attribute", PIPELINING,
     "handed the upgraded protocol again (uvloop keeps bound methods)"),
    (aiosmtplib.email, "quote_address", "function(address)", CLIENT,
     "not exported by aiosmtplib: the path of an address that is not a plain dot-atom"),
    (SMTPProtocol, "_group", "ours: must not exist", PIPELINING,
     "PipeliningProtocol's replies of a group in flight (a class attribute of ours)"),
    (SMTPProtocol, "_deliver", "ours: must not exist", PIPELINING,
     "PipeliningProtocol's hand-over of a reply to the waiter or the queue"),
    (SMTPProtocol, "_end_group", "ours: must not exist", PIPELINING,
     "PipeliningProtocol's clean-up after a group"),
    (SMTPProtocol, "send_pipelined", "ours: must not exist", PIPELINING,
     "PipeliningProtocol's group send"),
    (aiosmtplib.SMTP, "can_pipeline", "ours: must not exist", PIPELINING,
     "PipeliningSMTP's property"),
]

AIOSMTPLIB_SOURCE_LINES: list[SourceLine] = [
    (aiosmtplib.SMTP, "connect", "self._create_connection(", PIPELINING,
     "connect() goes through the _create_connection we override"),
    (aiosmtplib.SMTP, "_create_connection", "SMTPProtocol(", PIPELINING,
     "the protocol is made there as a plain SMTPProtocol, the class our override upgrades"),
    (SMTPProtocol, "read_response", "self._response_waiter = self._loop.create_future()",
     PIPELINING, "a fresh waiter after every reply: _deliver resolves the next one"),
]

AIOSMTPLIB_COPIED: list[Copied] = [
    (SMTPProtocol, "data_received", "ed944dc429566294", PIPELINING,
     "PipeliningProtocol.data_received replaces it while a group is in flight (limits, "
     "malformed replies, a lost connection must be handled the same way)"),
    (SMTPProtocol, "execute_command", "489bc3e9e58ef0db", PIPELINING,
     "PipeliningProtocol.send_pipelined mirrors it (injection check, lock, _response_pending)"),
]

# -- asyncio (stdlib): the StreamReader under every aiosmtpd session --------------------------
ASYNCIO: list[Row] = [
    (asyncio.StreamReader, "_buffer", "attribute: bytearray", f"{DATAREAD}, {BATCHING}",
     "StreamReader has no peek: bytes arrived and not read yet are looked at there (through "
     "getattr: were it gone, DATA is read more slowly and no reply is ever batched)"),
    (asyncio.StreamReader, "_limit", "attribute: int", DATAREAD,
     "raised to the message size limit for DATA, so readuntil(<CRLF>.<CRLF>) finds the end "
     "in one call, and restored after"),
]

# -- prometheus_client: switched to multiprocess values in each forked worker -----------------
PROMETHEUS_CLIENT: list[Row] = [
    (prometheus_client.values, "ValueClass", "attribute", METRICS,
     "replaced by get_value_class() once PROMETHEUS_MULTIPROC_DIR is set, after the fork, "
     "before the metrics are defined again"),
    (prometheus_client.values, "get_value_class", "function()", METRICS,
     "the multiprocess value class for PROMETHEUS_MULTIPROC_DIR"),
]

PROMETHEUS_CLIENT_SOURCE_LINES: list[SourceLine] = [
    *((metric, "_metric_init", "values.ValueClass(", METRICS,
       "the value class is looked up when a value is made, so replacing it takes effect")
      for metric in (Counter, Gauge, Histogram)),
]

# -- pyspf ------------------------------------------------------------------------------------
SPF_MODULE = "gateway/auth/spf.py"
PYSPF: list[Row] = [
    (spf, "DNSLookup", "function(name, qtype, tcpfallback, timeout)", SPF_MODULE,
     "replaced by ours, so SPF asks the configured resolver"),
]
PYSPF_SOURCE_LINES: list[SourceLine] = [
    (spf.query, "dns", "DNSLookup(name, qtype, self.strict, timeout)", SPF_MODULE,
     "every lookup of a check goes through the module's DNSLookup, looked up at call time"),
]

# -- logging (stdlib) -------------------------------------------------------------------------
LOGGING: list[Row] = [
    (logging, "_srcfile", "attribute", LOGSETUP,
     "set to None so records skip the caller lookup (Logging HOWTO, 'Optimization'); were it "
     "gone, setting it does nothing and every log line costs ~25 us more"),
]

# Our own assignment creates logging._srcfile if the stdlib dropped it, so the row above can
# pass in a process that configured logging: what matters is that Logger._log still reads it.
LOGGING_SOURCE_LINES: list[SourceLine] = [
    (logging.Logger, "_log", "_srcfile", LOGSETUP,
     "a record looks up its caller only while logging._srcfile is set"),
]


# -- the checks -------------------------------------------------------------------------------
def check_rows(rows: Iterable[Row], samples: Mapping[Any, Any] | None = None) -> list[str]:
    """One line per row that no longer holds; `samples` maps an owner to a fresh instance of it,
    where instance attributes are looked for."""
    problems = []
    for owner, name, kind, module, why in rows:
        problem = _row_problem(owner, name, kind, (samples or {}).get(owner))
        if problem:
            problems.append(_entry(owner, name, f"{kind}: {problem}", module, why))
    return problems


def check_source_lines(rows: Iterable[SourceLine]) -> list[str]:
    problems = []
    for owner, name, text, module, why in rows:
        function = getattr(owner, name, None)
        if function is None:
            problem = "missing"
        elif text not in inspect.getsource(function):
            problem = f"its source no longer contains {text!r}"
        else:
            continue
        problems.append(_entry(owner, name, problem, module, why))
    return problems


def check_copied(rows: Iterable[Copied]) -> list[str]:
    problems = []
    for owner, name, expected, module, why in rows:
        function = getattr(owner, name, None)
        if function is None:
            problem = "missing"
        elif (found := fingerprint(function)) != expected:
            problem = (f"its code changed (fingerprint {found}, checked: {expected}); diff it "
                       f"against ours, port the change, then put the new fingerprint here")
        else:
            continue
        problems.append(_entry(owner, name, problem, module, why))
    return problems


def fingerprint(function: Any) -> str:
    """A hash of the function's source, blank lines and whole-line comments left out."""
    lines = inspect.getsource(function).splitlines()
    kept = [line.rstrip() for line in lines
            if line.strip() and not line.lstrip().startswith("#")]
    return hashlib.sha256("\n".join(kept).encode()).hexdigest()[:16]


def _row_problem(owner: Any, name: str, kind: str, sample: Any) -> str | None:
    if kind == "ours: must not exist":
        holders = (owner,) if sample is None else (owner, sample)
        if any(hasattr(holder, name) for holder in holders):
            return "the library now defines this name too, which our subclass would shadow"
        return None
    if kind == "attribute set on connect":
        pattern = rf"self\.{re.escape(name)}\s*(?::[^=\n]+)?=(?!=)"
        if not re.search(pattern, inspect.getsource(owner)):
            return f"no longer assigned (`self.{name} = ...`) in the class's source"
        return None
    callable_kind = re.fullmatch(r"(async )?(method|function)\((.*)\)", kind)
    if callable_kind:
        return _callable_problem(owner, name, *callable_kind.groups())
    attribute_kind = re.fullmatch(r"attribute(?:: (\w+))?", kind)
    assert attribute_kind, f"unknown kind {kind!r} in the table"
    return _attribute_problem(owner if sample is None else sample, name, attribute_kind[1])


def _callable_problem(owner: Any, name: str, is_async: str | None, what: str,
                      params: str) -> str | None:
    function = inspect.getattr_static(owner, name, None)
    if function is None:
        return "missing"
    if not inspect.isfunction(function):
        return f"no longer a plain {what} but {type(function).__name__}"
    if bool(is_async) != inspect.iscoroutinefunction(function):
        return "now a coroutine function" if not is_async else "no longer a coroutine function"
    found = [_param(p) for p in inspect.signature(function).parameters.values()]
    if what == "method":
        found = found[1:]  # self
    expected = [p for p in params.split(", ") if p]
    if found != expected:
        return f"its parameters are now ({', '.join(found)})"
    return None


def _param(parameter: inspect.Parameter) -> str:
    stars = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    return stars.get(parameter.kind, "") + parameter.name


def _attribute_problem(holder: Any, name: str, type_name: str | None) -> str | None:
    try:
        value = getattr(holder, name)
    except AttributeError:
        return "missing"
    if inspect.isroutine(value):
        return "now a method"
    if type_name is None:
        return None
    names = {cls.__name__ for cls in type(value).__mro__}
    if type_name == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return None
    if type_name not in names:
        return f"now a {type(value).__name__}"
    return None


def _entry(owner: Any, name: str, problem: str, module: str, why: str) -> str:
    return f"  - {_qualname(owner)}.{name}: {problem}\n      relied on by {module}: {why}"


def _qualname(owner: Any) -> str:
    if inspect.ismodule(owner):
        return owner.__name__
    return f"{owner.__module__}.{owner.__qualname__}"


def report(library: str, problems: list[str], bound: str) -> str:
    return (f"{library} no longer matches the private internals the gateway relies on:\n"
            + "\n".join(problems)
            + f"\n{bound} must not be widened until each module named above has been checked "
              f"against {library} (then update the table in tests/test_library_internals.py).")


def _dependency(dist: str) -> tuple[str, str]:
    installed = f"{dist} {version(dist)}"
    return installed, f"The {dist} version bound in pyproject.toml"


# -- behaviour the names stand for, where a name alone says too little ------------------------
class _Handler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def aiosmtpd_behaviour(smtp: ServerSMTP) -> list[str]:
    problems = []
    if "DATA" not in getattr(smtp, "_handle_hooks", {}):
        problems.append(_entry(ServerSMTP, "_handle_hooks",
                               "a handler's handle_DATA is no longer found under 'DATA'",
                               DATAREAD, "decides whether handle_DATA is called"))
    return problems


def aiosmtplib_behaviour(protocol: SMTPProtocol) -> list[str]:
    class Upgraded(SMTPProtocol):  # what PipeliningProtocol is: methods and a class attribute
        _group = None

    try:
        protocol.__class__ = Upgraded
    except TypeError as exc:
        return [_entry(SMTPProtocol, "__class__", f"can no longer be changed ({exc})",
                       PIPELINING, "PipeliningSMTP upgrades the protocol aiosmtplib made")]
    return []


def stream_reader_behaviour(loop: asyncio.AbstractEventLoop) -> list[str]:
    problems = []
    reader = asyncio.StreamReader(limit=8, loop=loop)
    line = b"MAIL FROM:<a@example.org>\r\n"  # longer than the limit it was made with
    reader.feed_data(line)
    if bytes(getattr(reader, "_buffer", b"")) != line:
        problems.append(_entry(asyncio.StreamReader, "_buffer",
                               "no longer holds the bytes fed and not yet read",
                               f"{DATAREAD}, {BATCHING}", "peeked for what has arrived"))
    reader._limit = 64  # type: ignore[attr-defined]
    try:
        loop.run_until_complete(asyncio.wait_for(reader.readuntil(b"\r\n"), 0.5))
    except (asyncio.LimitOverrunError, ValueError, TimeoutError) as exc:
        problems.append(_entry(asyncio.StreamReader, "_limit",
                               f"raising it no longer lets readuntil read further ({exc!r})",
                               DATAREAD, "raised for DATA so the message is read in one call"))
    return problems


def prometheus_behaviour() -> list[str]:
    try:
        Gauge("internals_check_livesum", "check", registry=None, multiprocess_mode="livesum")
    except ValueError as exc:
        return [_entry(Gauge, "multiprocess_mode", f"'livesum' is no longer a mode ({exc})",
                       METRICS, "the mode of the sessions gauge across workers")]
    return []


# -- one test per library ---------------------------------------------------------------------
def test_aiosmtpd_internals() -> None:
    library, bound = _dependency("aiosmtpd")
    loop = asyncio.new_event_loop()
    try:
        smtp = ServerSMTP(_Handler(), hostname="gateway.test", loop=loop)
        problems = (check_rows(AIOSMTPD, {ServerSMTP: smtp})
                    + check_source_lines(AIOSMTPD_SOURCE_LINES)
                    + check_copied(AIOSMTPD_COPIED)
                    + aiosmtpd_behaviour(smtp))
    finally:
        loop.close()
    assert not problems, report(library, problems, bound)


def test_aiosmtplib_internals() -> None:
    library, bound = _dependency("aiosmtplib")
    loop = asyncio.new_event_loop()
    try:
        protocol = SMTPProtocol(loop=loop)
        client = aiosmtplib.SMTP(hostname="upstream.test")
        problems = (check_rows(AIOSMTPLIB, {SMTPProtocol: protocol, aiosmtplib.SMTP: client})
                    + check_source_lines(AIOSMTPLIB_SOURCE_LINES)
                    + check_copied(AIOSMTPLIB_COPIED)
                    + aiosmtplib_behaviour(protocol))
    finally:
        loop.close()
    assert not problems, report(library, problems, bound)


def test_asyncio_internals() -> None:
    library = f"Python {platform.python_version()}'s asyncio"
    bound = "requires-python in pyproject.toml (and the Python the gateway is deployed on)"
    loop = asyncio.new_event_loop()
    try:
        reader = asyncio.StreamReader(limit=1024, loop=loop)
        problems = (check_rows(ASYNCIO, {asyncio.StreamReader: reader})
                    + stream_reader_behaviour(loop))
    finally:
        loop.close()
    assert not problems, report(library, problems, bound)


def test_prometheus_client_internals() -> None:
    library, bound = _dependency("prometheus-client")
    problems = (check_rows(PROMETHEUS_CLIENT)
                + check_source_lines(PROMETHEUS_CLIENT_SOURCE_LINES)
                + prometheus_behaviour())
    assert not problems, report(library, problems, bound)


def test_pyspf_internals() -> None:
    library, bound = _dependency("pyspf")
    saved = spf.DNSLookup
    try:
        spf.DNSLookup = spf.DNSLookup_dnspython  # the library's own, not ours, is checked
        problems = check_rows(PYSPF) + check_source_lines(PYSPF_SOURCE_LINES)
    finally:
        spf.DNSLookup = saved
    assert not problems, report(library, problems, bound)


def test_logging_internals() -> None:
    library = f"Python {platform.python_version()}'s logging"
    bound = "requires-python in pyproject.toml (and the Python the gateway is deployed on)"
    problems = check_rows(LOGGING) + check_source_lines(LOGGING_SOURCE_LINES)
    assert not problems, report(library, problems, bound)
