"""Logging setup: JSON lines by default, console when asked, stdlib records routed through."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from gateway.config import LogSettings
from gateway.service.logsetup import configure_logging, use_console


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    mail_level = logging.getLogger("mail.log").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("mail.log").setLevel(mail_level)
    structlog.reset_defaults()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_with_utc_iso_timestamp() -> None:
    out = io.StringIO()
    configure_logging(LogSettings("info", "json"), stream=out)
    structlog.get_logger("gateway.test").info("message_relayed", rcpts=2)
    (line,) = _lines(out)
    assert line["event"] == "message_relayed"
    assert line["rcpts"] == 2
    assert line["level"] == "info"
    assert line["logger"] == "gateway.test"
    assert str(line["timestamp"]).endswith("Z")
    assert list(line)[:4] == ["timestamp", "level", "logger", "event"]


def test_level_filters_structlog_and_stdlib() -> None:
    out = io.StringIO()
    configure_logging(LogSettings("warning", "json"), stream=out)
    log = structlog.get_logger("gateway.test")
    log.info("dropped")
    log.warning("kept")
    logging.getLogger("aiosmtpd.other").info("dropped too")
    logging.getLogger("aiosmtpd.other").error("kept %s", "too")
    assert [line["event"] for line in _lines(out)] == ["kept", "kept too"]


def test_aiosmtpd_mail_log_is_held_at_warning_even_in_debug() -> None:
    out = io.StringIO()
    configure_logging(LogSettings("debug", "json"), stream=out)
    logging.getLogger("mail.log").info("Data: b'line of the message'")
    logging.getLogger("mail.log").warning("session error")
    structlog.get_logger("gateway.test").debug("debug_event")
    assert [line["event"] for line in _lines(out)] == ["session error", "debug_event"]
    assert _lines(out)[0]["logger"] == "mail.log"


def test_exceptions_render_into_json() -> None:
    out = io.StringIO()
    configure_logging(LogSettings("info", "json"), stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger("gateway.test").exception("hook_failed")
    (line,) = _lines(out)
    assert "ValueError" in str(line["exception"])


def test_console_when_forced() -> None:
    out = io.StringIO()
    configure_logging(LogSettings("info", "console"), stream=out)
    structlog.get_logger("gateway.test").info("message_held", rule="P1")
    text = out.getvalue()
    assert "message_held" in text and "rule=P1" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_reconfiguring_does_not_duplicate_lines() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(LogSettings("info", "json"), stream=first)
    configure_logging(LogSettings("info", "json"), stream=second)
    structlog.get_logger("gateway.test").info("once")
    assert first.getvalue() == ""
    assert len(_lines(second)) == 1


@pytest.mark.parametrize(("fmt", "stream", "expected"), [
    ("auto", io.StringIO(), False),
    ("auto", FakeTty(), True),
    ("json", FakeTty(), False),
    ("console", io.StringIO(), True),
])
def test_use_console(fmt: str, stream: io.StringIO, expected: bool) -> None:
    assert use_console(fmt, stream) is expected


def test_redactor_replaces_student_addresses_only() -> None:
    """Student addresses (District or personal, any spelling) become the same pseudonym;
    staff and outside addresses, and text without an address, pass unchanged."""
    from gateway.addresses import normalize_address
    from gateway.logprivacy import Redactor, student_pseudonym
    from gateway.model import Party, Role

    rows = {"alex.jones@students.example", "o'brien@gmail.example"}

    class Known:  # a directory double: two student rows; students.example is the student domain
        def party(self, address: str) -> Party:
            norm = normalize_address(address)
            row = norm in rows or norm.split("+")[0] + "@students.example" in rows
            student = row or norm.endswith("@students.example")
            return Party(norm, Role.STUDENT if student else Role.STAFF, True,
                         "S1" if row else None)

    redact = Redactor(Known())
    alex = student_pseudonym("alex.jones@students.example")
    assert redact.address("Alex.Jones@Students.example") == alex
    assert redact.address("jsmith@staff.example") == "jsmith@staff.example"
    assert redact.address("") == ""
    reply = ("550 5.1.1 <alex.jones@students.example>: rejected; "
             "s482913@students.example, jsmith@staff.example")
    assert redact.text(reply) == (f"550 5.1.1 <{alex}>: rejected; "
                                  f"{student_pseudonym('s482913@students.example')}, "
                                  "jsmith@staff.example")
    assert redact.text("250 2.0.0 Ok: queued as X") == "250 2.0.0 Ok: queued as X"
    # However a server quotes it, and with a +tag, it is the same pseudonym.
    for quoted in ("'alex.jones@students.example' unknown", "user=alex.jones@students.example",
                   '<"alex.jones"@students.example>', "<alex.jones+band@students.example>.",
                   "<ALEX.JONES@STUDENTS.EXAMPLE>"):
        assert alex in redact.text(quoted) and "jones" not in redact.text(quoted), quoted
    assert "älex" not in redact.text("550 <älex@students.example>")  # any script
    # An apostrophe can be the server's quoting or part of the address: both are found.
    obrien = student_pseudonym("o'brien@gmail.example")
    assert redact.text("550 <o'brien@gmail.example>") == f"550 <{obrien}>"
    assert redact.text("550 user=o'brien@gmail.example") == f"550 user={obrien}"
    assert redact.text("550 'o'brien@gmail.example'") == f"550 '{obrien}'"
    # Hostile or broken upstream replies, up to aiosmtplib's 32 KB: every part of the address
    # pattern is bounded, so each is scanned in one pass (unbounded, the first took 16 s).
    for no_address in ("a" * 32_000 + "@", "a." * 16_000 + "@x"):
        assert redact.text(no_address) == no_address
    for student in ("'" * 32_000 + "@students.example", ("y'" * 40 + "@students.example ") * 350):
        assert "@students.example" not in redact.text(student)
    long_local = "x" * 70 + "@students.example"
    assert redact.text(long_local) == "x" * 6 + student_pseudonym("x" * 64 + "@students.example")
    # A District student account not in the directory: the whole quoted match goes.
    new = redact.text("550 'new.kid@students.example' x=y.z@students.example")
    assert new == (f"550 {student_pseudonym('new.kid@students.example')}' "
                   f"{student_pseudonym('y.z@students.example')}")
