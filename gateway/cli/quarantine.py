"""`gateway quarantine …`: the review workflow for held mail.

Every change (release, delete, purge, export) lands in the append-only audit trail with who
(`--operator`, else the OS user; the OS user is recorded either way), when and why. Reading
commands open the database read-only, and no command creates it: a `list` run as root before
the daemon's first start must not leave a root-owned file the service cannot open.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from gateway.cli import add_config_argument, die, log_to_stderr
from gateway.config import Settings
from gateway.quarantine.base import ENTRY_STATUSES, Actor, EntryQuery, QuarantineStore
from gateway.quarantine.times import parse_duration, parse_since, utcnow

Handler = Callable[[argparse.Namespace, Settings, QuarantineStore], int]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("quarantine", help="review held mail (list, show, release, ...)",
                            description="Review held mail. Every action is audited.")
    actions = parser.add_subparsers(dest="quarantine_command", required=True, metavar="ACTION")

    p = _command(actions, "list",
                 "list entries, newest first (all statuses; --status held for the queue)",
                 run_list)
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.add_argument("--status", choices=ENTRY_STATUSES, help="only entries with this status")
    p.add_argument("--rule", metavar="RULE", help="only entries held by this rule (e.g. P7)")
    p.add_argument("--recipient", metavar="ADDR", help="only entries for this recipient")
    p.add_argument("--since", metavar="WHEN", type=_since,
                   help="received since: a duration (24h, 7d) or a date (2025-01-31)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N entries")

    p = _command(actions, "show", "show one entry: metadata, reasons, headers, text", run_show)
    p.add_argument("id", metavar="ID", help="entry id (or a unique prefix of it)")
    p.add_argument("--raw", action="store_true", help="print the held .eml exactly as received")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")

    p = _command(actions, "release", "deliver the held copy to its held recipients",
                 run_release, write=True)
    p.add_argument("id", metavar="ID")
    _reason(p, required=True)

    p = _command(actions, "delete", "discard the held copy (metadata and audit stay)",
                 run_delete, write=True)
    p.add_argument("id", metavar="ID")
    _reason(p, required=True)

    p = _command(actions, "purge", "retention: remove entries older than a duration",
                 run_purge, write=True)
    p.add_argument("--older-than", required=True, type=_duration, metavar="AGE",
                   help="e.g. 30d, 12w")
    p.add_argument("--status", action="append", choices=ENTRY_STATUSES,
                   help="only entries with this status (repeatable; default: all)")
    p.add_argument("--contacts-older-than", type=_duration, metavar="AGE",
                   help="also forget P5/P6 contact history older than AGE (keep ≥ the P6 window)")
    p.add_argument("--dry-run", action="store_true", help="only say what would be purged")
    _reason(p, required=False, default="retention")

    p = _command(actions, "export", "write the held .eml to stdout or a file (audited)",
                 run_export, write=True)
    p.add_argument("id", metavar="ID")
    p.add_argument("-o", "--output", metavar="FILE", help="write here (mode 0600)")
    _reason(p, required=False, default="export")

    p = _command(actions, "audit", "show the audit trail, of one entry or all", run_audit)
    p.add_argument("id", metavar="ID", nargs="?")
    p.add_argument("--since", metavar="WHEN", type=_since)
    p.add_argument("--json", action="store_true")

    _command(actions, "verify", "check database integrity, held-copy hashes, audit chain",
             run_verify)

    p = _command(actions, "digest", "preview the reviewers' digest for a period", run_digest)
    p.add_argument("--since", metavar="WHEN", type=_since, default="24h")

    p = actions.add_parser(
        "migrate", help="create or upgrade the quarantine database's schema",
        description="Create the schema on an empty database, or upgrade an older one to the "
                    "version this gateway writes (PostgreSQL: run it on purpose, after a "
                    "backup; an SQLite file is upgraded when the gateway opens it).")
    add_config_argument(p)
    p.set_defaults(func=run_migrate)

    p = actions.add_parser(
        "copy", help="copy an SQLite quarantine into the configured PostgreSQL one",
        description="Copy every entry, held copy, audit row (hash chain intact), P5/P6 "
                    "contact and the digest's state from an SQLite quarantine into the empty "
                    "PostgreSQL database that quarantine.url names. The source is not changed.")
    add_config_argument(p)
    p.add_argument("--from", dest="source", required=True, metavar="URL",
                   help="the SQLite quarantine: sqlite:////ABSOLUTE/PATH.db or a file path")
    p.set_defaults(func=run_copy)


# --- commands ------------------------------------------------------------------------------

def run_list(args: argparse.Namespace, settings: Settings, store: QuarantineStore) -> int:
    from gateway.quarantine.render import entry_table

    entries = store.list_entries(EntryQuery(status=args.status, rule=args.rule,
                                            recipient=args.recipient, since=args.since,
                                            limit=args.limit))
    if args.json:
        _print_json([e.public() for e in entries])
    else:
        sys.stdout.write(entry_table(entries))
    return 0


def run_show(args: argparse.Namespace, settings: Settings, store: QuarantineStore) -> int:
    from gateway.quarantine.render import entry_details

    entry = store.get(args.id)
    content = store.content(entry.id)
    if args.raw:
        if content is None:
            return die(f"entry {entry.id}: the held copy has been deleted", 1)
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
    elif args.json:
        _print_json({**entry.public(), "reasons": list(entry.reasons),
                     "samples": list(entry.samples), "sha256": entry.sha256,
                     "recipients_detail": [{"address": r.address, "status": r.status,
                                            "updated": r.updated.isoformat(),
                                            "detail": r.detail} for r in entry.recipients]})
    else:
        sys.stdout.write(entry_details(entry, content))
    return 0


def run_release(args: argparse.Namespace, settings: Settings, store: QuarantineStore) -> int:
    from gateway.actions.release import ReleaseOutcome, release_entry
    from gateway.auth.seal import sealer_for
    from gateway.smtp.client import Relay

    sealer = sealer_for(settings)

    async def attempt() -> ReleaseOutcome:
        relay = Relay(settings.upstream, settings.smtp.hostname)
        try:
            return await release_entry(store, args.id, _actor(args), args.reason, relay.send,
                                       hostname=settings.smtp.hostname,
                                       lease_seconds=settings.upstream.timeout * 4 + 60,
                                       seal=sealer.seal if sealer is not None else None)
        finally:
            await relay.close()

    outcome = asyncio.run(attempt())
    entry = outcome.entry
    if outcome.nothing_to_do:
        if entry.status == "deleted":
            return die(f"entry {entry.id} was deleted; there is nothing to release", 1)
        print(f"entry {entry.id}: already released to every recipient; nothing to do")
        return 0
    for rcpt in outcome.delivered:
        print(f"released to {rcpt}")
    for rcpt, why in outcome.failed.items():
        print(f"NOT released to {rcpt}: {why}")
    if outcome.failed:
        return die(f"entry {entry.id} stays held for {len(outcome.failed)} recipient(s); "
                   "run release again once the upstream accepts", 1)
    print(f"entry {entry.id}: released to every held recipient")
    return 0


def run_delete(args: argparse.Namespace, settings: Settings, store: QuarantineStore) -> int:
    entry = store.get(args.id)
    if store.delete(entry.id, _actor(args), args.reason):
        print(f"entry {entry.id}: deleted (held copy discarded; metadata and audit kept)")
    else:
        print(f"entry {entry.id}: already deleted; nothing to do")
    return 0


def run_purge(args: argparse.Namespace, settings: Settings, store: QuarantineStore) -> int:
    now = utcnow()
    before = now - args.older_than
    statuses = tuple(dict.fromkeys(args.status or ()))
    if args.dry_run:
        entries = [e for e in store.list_entries(EntryQuery(before=before))
                   if not statuses or e.status in statuses]
        print(f"would purge {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} "
              f"received before {before:%Y-%m-%d %H:%M} UTC")
        for entry in entries:
            print(f"  {entry.id}  {entry.status}")
        return 0
    purged = store.purge(before, _actor(args), args.reason, statuses)
    print(f"purged {len(purged)} entr{'y' if len(purged) == 1 else 'ies'} received before "
          f"{before:%Y-%m-%d %H:%M} UTC")
    if args.contacts_older_than is not None:
        count = store.purge_contacts(now - args.contacts_older_than)
        print(f"forgot {count} contact-history record(s)")
    return 0


def run_export(args: argparse.Namespace, settings: Settings, store: QuarantineStore) -> int:
    entry = store.get(args.id)
    content = store.content(entry.id)
    if content is None:
        return die(f"entry {entry.id}: the held copy has been deleted", 1)
    if args.output:
        _write_private(Path(args.output), content)
    else:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
    store.record(_actor(args), "export", entry.id, args.reason,
                 {"to": args.output or "stdout", "size": len(content)})
    return 0


def run_audit(args: argparse.Namespace, settings: Settings, store: QuarantineStore) -> int:
    from gateway.quarantine.render import audit_table

    records = store.audit(args.id, args.since)
    if args.json:
        _print_json([r.public() for r in records])
    else:
        sys.stdout.write(audit_table(records))
    return 0


def run_verify(args: argparse.Namespace, settings: Settings, store: QuarantineStore) -> int:
    problems = store.verify()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return die(f"{len(problems)} problem(s) found in the quarantine", 1)
    print(f"quarantine is sound: {len(store.list_entries())} entries, "
          f"{len(store.audit())} audit records, chain intact")
    return 0


def run_digest(args: argparse.Namespace, settings: Settings, store: QuarantineStore) -> int:
    from gateway.quarantine.digest import build_digest, digest_entries

    until = utcnow()
    entries, waiting = digest_entries(store, args.since, until)
    to = ", ".join(settings.quarantine.reviewers) or "(no quarantine.reviewers configured)"
    note = build_digest(entries, since=args.since, until=until, to=to, waiting=waiting)
    if note is None:
        print("nothing held in that period; no digest would be sent")
        return 0
    print(f"To: {note.to}\nSubject: {note.subject}\n\n{note.body}", end="")
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    from gateway.quarantine import open_store, store_timeout
    from gateway.quarantine.base import QuarantineError

    settings = _load_or_exit(args.config)
    if settings is None:
        return 2
    try:
        if settings.quarantine.path is not None:
            open_store(settings).close()  # SQLite upgrades itself on opening
            from gateway.quarantine.schema import SCHEMA_VERSION

            print(f"quarantine database {settings.quarantine.path}: schema version "
                  f"{SCHEMA_VERSION}, current")
            return 0
        from gateway.quarantine.postgres import migrate_database, redact

        url = settings.quarantine.url
        before, after = migrate_database(
            url, timeout=store_timeout(settings),
            progress=lambda v: print(f"schema version {v} applied", flush=True))
    except QuarantineError as exc:
        return die(str(exc), 1)
    if before == after:
        print(f"quarantine database {redact(url)}: schema version {after}, current")
    else:
        print(f"quarantine database {redact(url)}: schema upgraded from version {before} "
              f"to {after}")
    return 0


def run_copy(args: argparse.Namespace) -> int:
    from gateway.quarantine import store_timeout
    from gateway.quarantine.base import QuarantineError

    settings = _load_or_exit(args.config)
    if settings is None:
        return 2
    if settings.quarantine.path is not None:
        return die("quarantine.url names an SQLite file; copy needs a postgresql:// target", 2)
    source = args.source
    if source.startswith("sqlite:///"):
        rest = source[len("sqlite:///"):]
        source = rest if rest.startswith("/") else str(settings.source.parent / rest)
    from gateway.quarantine.transfer import copy_sqlite_to_postgres

    try:
        report = copy_sqlite_to_postgres(
            Path(source), settings.quarantine.url, timeout=store_timeout(settings),
            progress=lambda table, n: print(f"{table}: {n} rows", flush=True))
    except QuarantineError as exc:
        return die(str(exc), 1)
    print(f"copied {report.entries} entries, {report.audit_rows} audit records (chain "
          f"verified, head {report.audit_head[:16]}), {report.contacts} contacts")
    return 0


# --- plumbing ------------------------------------------------------------------------------

def _load_or_exit(config: str | None) -> Settings | None:
    from gateway.yamlsrc import SourceErrors

    try:
        settings = _load(config)
    except SourceErrors as exc:
        print(exc, file=sys.stderr)
        return None
    log_to_stderr(settings)
    return settings


def _command(actions: argparse._SubParsersAction, name: str, help_text: str, handler: Handler,
             *, write: bool = False) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=help_text, description=help_text)
    add_config_argument(parser)
    parser.set_defaults(func=_runner(handler, write=write))
    return parser


def _reason(parser: argparse.ArgumentParser, *, required: bool, default: str | None = None
            ) -> None:
    parser.add_argument("--reason", required=required, default=default, type=_text,
                        metavar="TEXT", help="why (recorded in the audit trail)")
    parser.add_argument("--operator", metavar="NAME", type=_text,
                        help="who is acting (default: the OS user; the OS user is kept too)")


def _runner(handler: Handler, *, write: bool) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from gateway.quarantine.base import QuarantineError
        from gateway.yamlsrc import SourceErrors

        try:
            settings = _load(args.config)
        except SourceErrors as exc:
            print(exc, file=sys.stderr)
            return 2
        log_to_stderr(settings)  # stdout is for results (--json)
        try:
            store = _open(settings, write=write)
            try:
                return handler(args, settings, store)
            finally:
                store.close()
        except QuarantineError as exc:
            return die(str(exc), 1)
    return run


def _load(config: str | None) -> Settings:
    from gateway.config import load_settings

    return load_settings(config)


def _open(settings: Settings, *, write: bool) -> QuarantineStore:
    from gateway.quarantine import open_store
    from gateway.quarantine.sqlite import SQLiteStore

    path = settings.quarantine.path
    if path is not None and not path.exists():
        return SQLiteStore(":memory:")  # nothing held yet; never create the daemon's file
    return open_store(settings, readonly=not write)


def _actor(args: argparse.Namespace) -> Actor:
    from gateway.quarantine import os_user

    user = os_user()
    return Actor(getattr(args, "operator", None) or user, user)


def _write_private(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    path.chmod(0o600)


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _text(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value.strip()


def _duration(value: str) -> object:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _since(value: str) -> datetime:
    try:
        return parse_since(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
