"""`gateway review`: serve the web review console, and keep its accounts.

`gateway review [--config PATH]` serves the console on `review.listen`.
`gateway review account add|disable|enable|password|list` keeps the accounts, which live in the
quarantine store (several console instances share them). Every change is in the audit trail.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.cli import add_config_argument, die, log_to_stderr

if TYPE_CHECKING:
    from gateway.quarantine import Actor
    from gateway.review.app import ConsoleStore


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("review", help="serve the web review console; keep its accounts",
                            description="Serve the web review console on review.listen, or "
                                        "manage its accounts.")
    add_config_argument(parser)
    parser.set_defaults(func=run_serve)
    commands = parser.add_subparsers(dest="review_command", metavar="COMMAND")
    account = commands.add_parser("account", help="add, disable, enable, list accounts")
    actions = account.add_subparsers(dest="account_command", required=True, metavar="ACTION")

    p = actions.add_parser("add", help="create an account (an administrator or a reviewer)")
    p.add_argument("name", help="sign-in name; for OpenID Connect the person's e-mail address")
    p.add_argument("--role", choices=("administrator", "reviewer"), default="reviewer")
    p.add_argument("--school", action="append", default=[], metavar="NAME",
                   help="a school whose held mail the reviewer sees (repeatable; as in the "
                        "directory's school column)")
    p.add_argument("--rule", action="append", default=[], metavar="RULE",
                   help="a rule whose held mail the reviewer sees, e.g. P10 (repeatable)")
    p.add_argument("--email", metavar="ADDR",
                   help="where the reviewer's digest goes (default: NAME if it is an address)")
    p.add_argument("--password", action="store_true",
                   help="a local account: ask for a password (read from stdin when not a "
                        "terminal); without it the account signs in through OIDC only")
    _common(p, run_add)

    for name, text in (("disable", "stop an account signing in (its sessions end)"),
                       ("enable", "let a disabled account sign in again")):
        p = actions.add_parser(name, help=text)
        p.add_argument("name")
        _common(p, run_disable if name == "disable" else run_enable)

    p = actions.add_parser("password", help="set a local account's password")
    p.add_argument("name")
    _common(p, run_password)

    p = actions.add_parser("list", help="list accounts")
    _common(p, run_accounts)


AccountCommand = Callable[[argparse.Namespace, "ConsoleStore"], int]


def _common(parser: argparse.ArgumentParser, func: AccountCommand) -> None:
    add_config_argument(parser)
    parser.add_argument("--operator", metavar="NAME",
                        help="who is making the change (default: the OS user)")
    parser.set_defaults(func=_runner(func))


def run_serve(args: argparse.Namespace) -> int:
    from gateway.config import load_settings
    from gateway.quarantine import QuarantineError
    from gateway.review.server import serve
    from gateway.service.logsetup import configure_logging
    from gateway.yamlsrc import SourceErrors

    try:
        settings = load_settings(args.config)
    except SourceErrors as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log)
    try:
        return serve(settings)
    except QuarantineError as exc:
        return die(str(exc), 2)


def _runner(func: AccountCommand) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from gateway.config import load_settings
        from gateway.quarantine import QuarantineError, open_store
        from gateway.yamlsrc import SourceErrors

        try:
            settings = load_settings(args.config)
        except SourceErrors as exc:
            print(exc, file=sys.stderr)
            return 2
        log_to_stderr(settings)
        try:
            store = open_store(settings)
            try:
                return func(args, store)  # type: ignore[arg-type]
            finally:
                store.close()
        except QuarantineError as exc:
            return die(str(exc), 1)
        except ValueError as exc:
            return die(str(exc), 2)
    return run


def _actor(args: argparse.Namespace) -> Actor:
    from gateway.quarantine import Actor, os_user

    user = os_user()
    return Actor(args.operator or user, user)


def _read_password() -> str:
    from gateway.review.accounts import MIN_PASSWORD

    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"Password (at least {MIN_PASSWORD} characters): ")
    if first != getpass.getpass("Again: "):
        raise ValueError("the passwords differ")
    return first


def run_add(args: argparse.Namespace, store: ConsoleStore) -> int:
    from gateway.quarantine.reviewbase import Account
    from gateway.review.accounts import hash_password

    if args.role == "reviewer" and not (args.school or args.rule):
        raise ValueError("a reviewer needs at least one --school or --rule (their scope)")
    password_hash = hash_password(_read_password()) if args.password else None
    name = args.name.strip().lower()
    email = args.email or (name if "@" in name else None)
    store.add_account(Account(name, args.role, tuple(args.school), tuple(args.rule), email,
                              password_hash), _actor(args))
    how = "password" if password_hash else "OpenID Connect only"
    print(f"account {name} added: {args.role}, sign-in by {how}")
    return 0


def run_disable(args: argparse.Namespace, store: ConsoleStore) -> int:
    store.update_account(args.name, _actor(args), disabled=True)
    print(f"account {args.name.lower()} disabled")
    return 0


def run_enable(args: argparse.Namespace, store: ConsoleStore) -> int:
    store.update_account(args.name, _actor(args), disabled=False)
    print(f"account {args.name.lower()} enabled")
    return 0


def run_password(args: argparse.Namespace, store: ConsoleStore) -> int:
    from gateway.review.accounts import hash_password

    if store.account(args.name) is None:
        raise ValueError(f"no account named '{args.name}'")
    store.update_account(args.name, _actor(args), password_hash=hash_password(_read_password()))
    print(f"password of {args.name.lower()} set")
    return 0


def run_accounts(args: argparse.Namespace, store: ConsoleStore) -> int:
    accounts = store.accounts()
    if not accounts:
        print("no accounts; add the first with: gateway review account add NAME "
              "--role administrator --password")
        return 0
    for a in accounts:
        scope = "everything" if a.role == "administrator" else ", ".join(
            [*(f"school {s}" for s in a.schools), *(f"rule {r}" for r in a.rules)])
        state = "disabled" if a.disabled else "enabled"
        login = "password" if a.password_hash else "oidc"
        print(f"{a.name}  {a.role}  {state}  {login}  {scope}")
    return 0
