"""Local passwords (argon2id) and sign-in throttling.

Passwords are hashed with argon2-cffi's defaults (argon2id, RFC 9106's low-memory profile);
a hash made with older parameters is upgraded at the next successful sign-in. An unknown
account name costs the same hash verification as a known one, so timing does not tell which
names exist.

Throttling counts failures in the store, not in memory, so several console instances behind a
load balancer share the count: per account name (guessing one reviewer's password) and per
client address (trying many names).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.quarantine.reviewbase import Account, ReviewStore

_HASHER = PasswordHasher()
_DUMMY = _HASHER.hash("not a password anybody has")
MIN_PASSWORD = 12


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)


def check_password(account: Account | None, password: str) -> bool:
    """True when `account` may sign in with `password` (never for disabled or OIDC-only)."""
    stored = account.password_hash if account and account.password_hash else _DUMMY
    try:
        ok = _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and account is not None and account.password_hash is not None \
        and not account.disabled


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


@dataclass(frozen=True, slots=True)
class Throttle:
    """At most `per_account` failures per name and `per_client` per address in `window`."""

    per_account: int = 5
    per_client: int = 20
    window: timedelta = timedelta(minutes=15)

    def keys(self, name: str, client: str) -> tuple[str, str]:
        return f"account:{name.strip().lower()}", f"client:{client}"

    def blocked(self, store: ReviewStore, name: str, client: str, now: datetime) -> bool:
        account_key, client_key = self.keys(name, client)
        since = now - self.window
        return (store.signin_failures(account_key, since) >= self.per_account
                or store.signin_failures(client_key, since) >= self.per_client)

    def failed(self, store: ReviewStore, name: str, client: str, now: datetime) -> None:
        store.record_signin_failure(self.keys(name, client), now)
        store.clear_signin_failures("", before=now - self.window)  # keep the table small

    def succeeded(self, store: ReviewStore, name: str, client: str) -> None:
        store.clear_signin_failures(self.keys(name, client)[0])
