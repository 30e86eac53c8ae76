"""Which fast engines this installation runs on, and a loud warning when it runs without them.

Three jobs have a native engine and a portable fallback: matching every pattern and directory
literal (Hyperscan, built on the open-source Vectorscan, then RE2, then Python `re`), the event
loop (uvloop, then asyncio's own) and reading PDFs (PDFium in a helper process, then pypdf).
The fallbacks give the same answers several times slower (a 10 KB message at 20 sessions: 80
against 388 messages/s), so a gateway on them must say so where the operator looks: the
start-up log and `gateway --version`.

A plain `pip install` gets the native engines on Linux x86_64 and aarch64, where all of them
publish wheels; elsewhere the `fast` extra asks for them (and builds what has no wheel).
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from dataclasses import dataclass

import structlog

from gateway.detectors.patternset import best_engine

log = structlog.get_logger("gateway.engines")

# Where every fast engine publishes a wheel for CPython (checked on PyPI for 3.11).
WHEEL_PLATFORMS = {("linux", "x86_64"), ("linux", "aarch64")}


@dataclass(frozen=True, slots=True)
class Engine:
    job: str        # patterns | event_loop | pdf
    name: str       # the engine in use
    fast: bool
    package: str    # the distribution that provides the fast engine


def engines() -> tuple[Engine, ...]:
    patterns = best_engine()
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    pdf = "pdfium" if importlib.util.find_spec("pypdfium2") else "pypdf"
    return (Engine("patterns", patterns, patterns == "hyperscan", "hyperscan"),
            Engine("event_loop", loop, loop == "uvloop", "uvloop"),
            Engine("pdf", pdf, pdf == "pdfium", "pypdfium2"))


def summary(found: tuple[Engine, ...] | None = None) -> str:
    """`patterns=hyperscan event_loop=uvloop pdf=pdfium`"""
    return " ".join(f"{e.job}={e.name}" for e in found or engines())


def wheels_expected() -> bool:
    return (sys.platform, platform.machine().lower()) in WHEEL_PLATFORMS


def log_engines() -> tuple[Engine, ...]:
    """One info line naming the engines; a warning naming each slow one and the fix."""
    found = engines()
    log.info("engines", **{e.job: e.name for e in found})
    slow = [e for e in found if not e.fast]
    if slow:
        fix = ("reinstall: a plain `pip install` includes them on this platform"
               if wheels_expected() else
               "pip install 'district-mail-gateway[fast]' (builds them from source here)")
        log.warning("slow_engines_in_use", slow=[e.job for e in slow],
                    missing=[e.package for e in slow],
                    effect="same decisions, several times fewer messages per second", fix=fix)
    return found
