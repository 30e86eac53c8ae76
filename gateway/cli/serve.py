"""`gateway serve`: run the daemon, or `--check-config` to validate everything and exit."""

from __future__ import annotations

import argparse
import sys

from gateway.cli import add_config_argument


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help="run the filtering SMTP proxy")
    add_config_argument(parser)
    parser.add_argument("--check-config", action="store_true",
                        help="validate config, directory and policies, then exit (like nginx -t)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway.daemon import check_config, serve
    from gateway.yamlsrc import SourceErrors

    if not args.check_config:
        return serve(args.config)
    try:
        settings, runtime = check_config(args.config)
    except SourceErrors as exc:
        print(exc, file=sys.stderr)
        return 1
    for warning in runtime.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"gateway: configuration {settings.source} is valid")
    return 0
