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
