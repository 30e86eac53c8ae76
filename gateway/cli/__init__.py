"""`gateway` command line: one module per command group, listed explicitly below."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

# Each module defines register(subparsers) and sets `func` on its parsers.
COMMAND_MODULES = (
    "gateway.cli.serve",
    "gateway.cli.sink",
    "gateway.cli.check",
    "gateway.cli.policy",
    "gateway.cli.quarantine",
    "gateway.cli.init",
    "gateway.cli.review",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway", description="District mail gateway (board policy 5.125 enforcement)")
    parser.add_argument("--version", action=VersionAction, nargs=0,
                        help="print the version and the engines in use, then exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


class VersionAction(argparse.Action):
    """`gateway --version`: the version, and the engines it runs on (loaded only here, so
    `--help` stays quick)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(version_text())
        parser.exit()


def version_text() -> str:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from gateway import __version__
    from gateway.service.engines import summary

    try:
        installed = version("district-mail-gateway")
    except PackageNotFoundError:  # run from a checkout without installing
        installed = __version__
    return (f"gateway {installed} ({summary()}; Python {platform.python_version()} "
            f"{platform.machine()})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", default=None,
                        help="service configuration (default: config/gateway.yaml)")


class LiveStderr:
    """Writes to whatever sys.stderr is at the time of writing: stdout is for results
    (`--json`), and main() may run under a test's capture that is closed afterwards while
    the logging handler lives on."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def log_to_stderr(settings: Any) -> None:
    """Command-line tools log to stderr in the configured format."""
    from gateway.service.logsetup import configure_logging

    configure_logging(settings.log, stream=LiveStderr())  # type: ignore[arg-type]


def die(message: str, status: int = 2) -> int:
    print(f"gateway: {message}", file=sys.stderr)
    return status
