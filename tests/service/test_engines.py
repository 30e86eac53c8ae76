"""The engines report: what this installation runs on, and the loud warning without them."""

from __future__ import annotations

import sys

import pytest
from structlog.testing import capture_logs

from gateway.detectors import patternset
from gateway.service import engines


def test_with_every_fast_engine_one_info_line_and_no_warning(monkeypatch) -> None:
    monkeypatch.setattr(patternset, "hyperscan", object())
    monkeypatch.setattr(engines.importlib.util, "find_spec", lambda name: object())
    with capture_logs() as logs:
        found = engines.log_engines()
    assert [(e.job, e.name, e.fast) for e in found] == [
        ("patterns", "hyperscan", True), ("event_loop", "uvloop", True), ("pdf", "pdfium", True)]
    assert [(e["event"], e["log_level"]) for e in logs] == [("engines", "info")]
    assert engines.summary(found) == "patterns=hyperscan event_loop=uvloop pdf=pdfium"


@pytest.mark.parametrize(("machine", "fix"), [
    ("x86_64", "a plain `pip install` includes them"),
    ("riscv64", "[fast]"),
])
def test_without_them_a_warning_names_each_and_the_fix(monkeypatch, machine: str,
                                                       fix: str) -> None:
    monkeypatch.setattr(patternset, "hyperscan", None)
    monkeypatch.setattr(patternset, "re2", None)
    for name in ("uvloop", "pypdfium2"):
        monkeypatch.setitem(sys.modules, name, None)  # find_spec: None, import: ImportError
    monkeypatch.setattr(engines.sys, "platform", "linux")
    monkeypatch.setattr(engines.platform, "machine", lambda: machine)
    with capture_logs() as logs:
        engines.log_engines()
    info, warning = logs
    assert info == {"event": "engines", "log_level": "info", "patterns": "re",
                    "event_loop": "asyncio", "pdf": "pypdf"}
    assert warning["event"] == "slow_engines_in_use" and warning["log_level"] == "warning"
    assert warning["missing"] == ["hyperscan", "uvloop", "pypdfium2"]
    assert fix in warning["fix"]


def test_re2_alone_still_counts_as_slow_patterns(monkeypatch) -> None:
    monkeypatch.setattr(patternset, "hyperscan", None)
    monkeypatch.setattr(patternset, "re2", object())
    [patterns, *_] = engines.engines()
    assert (patterns.name, patterns.fast) == ("re2", False)
