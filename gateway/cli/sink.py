"""`gateway sink`: a local capture upstream (quick start, demos, benchmarks)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path

from gateway.cli import add_config_argument


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sink", help="run a capture SMTP server that stores mail as .eml")
    add_config_argument(parser)
    parser.add_argument("--host", help="listen address (default: upstream.host from config)")
    parser.add_argument("--port", type=int, help="listen port (default: upstream.port)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to store messages (default: var/delivered next to config/)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway.config import load_settings
    from gateway.smtp.capture import run_sink

    settings = load_settings(args.config)
    host = args.host or settings.upstream.host
    port = args.port or settings.upstream.port
    directory = args.dir or settings.base_dir.parent / "var" / "delivered"
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_sink(host, port, directory))
    return 0
