"""`gateway serve`: run the daemon, or `--check-config` to validate everything and exit."""

from __future__ import annotations

import argparse
import sys

from gateway.cli import LiveStderr, add_config_argument


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help="run the filtering SMTP proxy")
    add_config_argument(parser)
    parser.add_argument("--check-config", action="store_true",
                        help="validate config, directory and policies, then exit (like nginx -t)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway.service.startup import serve

    if not args.check_config:
        return serve(args.config)
    return run_check_config(args.config)


def run_check_config(config: str | None) -> int:
    """Load everything `serve` would; every problem on stderr as FILE:LINE:COLUMN, exit 1.

    A directory row the daemon would skip (and log) counts as an error here, as in
    `gateway policy validate`: a check before a start or reload should catch it."""
    from gateway.cli.policy import directory_and_policy_problems
    from gateway.config import LogSettings, load_settings
    from gateway.runtime import load_runtime
    from gateway.service.logsetup import configure_logging
    from gateway.yamlsrc import SourceErrors

    try:
        settings = load_settings(config)
        # Only the errors on stderr, one per line; the loaders' progress events stay quiet.
        configure_logging(LogSettings(level="warning", format=settings.log.format),
                          stream=LiveStderr())  # type: ignore[arg-type]
        errors, _policy = directory_and_policy_problems(settings)
        if errors:
            raise SourceErrors(errors)
        load_runtime(settings)  # the rest: the inspector, with the directory's students
    except SourceErrors as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"gateway: configuration {settings.source} is valid")
    return 0
