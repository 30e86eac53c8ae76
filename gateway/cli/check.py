"""`gateway check FILE.eml`: a dry run of directory, inspection and policy.

It runs exactly what `serve` runs up to the Decision and prints it; nothing is sent, held or
recorded. Exit 0 whatever the verdict; non-zero only when the message or the configuration
cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gateway.cli import add_config_argument, die, log_to_stderr


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("check", help="dry-run one message through the policy")
    add_config_argument(parser)
    parser.add_argument("--mail-from", metavar="ADDR", default=None,
                        help="envelope sender (default: the From header)")
    parser.add_argument("--rcpt", metavar="ADDR", action="append", default=[],
                        help="envelope recipient, repeatable (default: To and Cc headers)")
    parser.add_argument("--client-ip", metavar="IP", default=None,
                        help="connecting client address (default: 127.0.0.1, trusted)")
    parser.add_argument("--helo", metavar="NAME", default=None,
                        help="the client's HELO name, for SPF (default: none)")
    parser.add_argument("--no-dns", action="store_true",
                        help="no sender authentication (offline): a District domain claimed "
                             "from an untrusted client counts as unverified")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("file", metavar="FILE.eml", help="the message (RFC 5322), '-' for stdin")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway.cli.dryrun import (
        authenticated,
        envelope_for,
        explain,
        read_only_history,
        report,
    )
    from gateway.config import load_settings, parse_ip
    from gateway.pipeline import decide
    from gateway.runtime import load_runtime
    from gateway.yamlsrc import SourceErrors

    if args.client_ip is not None and parse_ip(args.client_ip) is None:
        return die(f"--client-ip {args.client_ip!r} is not an IPv4 or IPv6 address")
    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        return die(f"cannot read {args.file}: {exc.strerror or exc}")
    try:
        settings = load_settings(args.config)
        log_to_stderr(settings)
        runtime = load_runtime(settings)
    except SourceErrors as exc:
        print(exc, file=sys.stderr)
        return 2
    envelope = envelope_for(raw, settings, mail_from=args.mail_from, rcpts=args.rcpt,
                            client_ip=args.client_ip, helo=args.helo)
    if not envelope.rcpt_tos:
        return die("no recipients: the message has no To or Cc header; give --rcpt ADDR")
    if not envelope.client_trusted and not args.no_dns and settings.authentication.enabled:
        envelope = authenticated(envelope, settings)
    with read_only_history(settings) as history:
        decision = decide(envelope, runtime, history)
    if args.json:
        print(json.dumps(report(decision), indent=2, ensure_ascii=False))
    else:
        print(explain(decision))
    return 0

