"""`gateway review account …` in-process, on a real config and a real database, and what
`gateway review` says when it cannot serve."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import Settings
from gateway.quarantine import open_store
from gateway.review.accounts import check_password
from tests.factories import write_quarantine_settings

PASSWORD = "a long enough password"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return write_quarantine_settings(tmp_path)


def account_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                settings: Settings, *args: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    capsys.readouterr()
    code = main(["review", "account", *args, "--config", str(settings.source)])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_a_local_administrator_then_disable_and_enable(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        settings: Settings) -> None:
    code, out, _ = account_cli(capsys, monkeypatch, settings, "add", "Admin", "--role",
                               "administrator", "--password", "--operator", "it-lead",
                               stdin=PASSWORD + "\n")
    assert code == 0 and "account admin added: administrator, sign-in by password" in out
    assert account_cli(capsys, monkeypatch, settings, "disable", "admin")[0] == 0
    store = open_store(settings)
    try:
        account = store.account("admin")
        assert account is not None and account.disabled
        assert not check_password(account, PASSWORD)  # disabled: never signs in
        trail = [(r.action, r.operator, r.detail.get("account")) for r in store.audit()]
        assert ("account_add", "it-lead", "admin") in trail
        assert ("account_change", store.audit()[-1].operator, "admin") in trail
        assert all("argon2" not in str(r.detail) for r in store.audit())  # never the hash
    finally:
        store.close()
    assert account_cli(capsys, monkeypatch, settings, "enable", "admin")[0] == 0
    store = open_store(settings)
    try:
        assert check_password(store.account("admin"), PASSWORD)
    finally:
        store.close()


def test_a_reviewer_needs_a_scope_and_an_oidc_account_no_password(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        settings: Settings) -> None:
    code, _, err = account_cli(capsys, monkeypatch, settings, "add", "p@staff.example.org")
    assert code == 2 and "needs at least one --school or --rule" in err
    code, out, _ = account_cli(capsys, monkeypatch, settings, "add", "P@staff.example.org",
                               "--school", "Lincoln Elementary", "--rule", "P10")
    assert code == 0 and "OpenID Connect only" in out
    code, out, _ = account_cli(capsys, monkeypatch, settings, "list")
    assert "p@staff.example.org  reviewer  enabled  oidc  school Lincoln Elementary, rule P10" \
        in out
    code, _, err = account_cli(capsys, monkeypatch, settings, "add", "p@staff.example.org",
                               "--school", "X")
    assert code == 1 and "already exists" in err


def test_short_passwords_are_refused(capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch,
                                     settings: Settings) -> None:
    code, _, err = account_cli(capsys, monkeypatch, settings, "add", "admin", "--role",
                               "administrator", "--password", stdin="short\n")
    assert code == 2 and "at least 12 characters" in err


def test_password_of_an_unknown_account(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch,
                                        settings: Settings) -> None:
    code, _, err = account_cli(capsys, monkeypatch, settings, "password", "nobody",
                               stdin=PASSWORD + "\n")
    assert code == 2 and "no account named 'nobody'" in err


def test_review_without_a_listen_address_says_so(capsys: pytest.CaptureFixture[str],
                                                 settings: Settings) -> None:
    code = main(["review", "--config", str(settings.source)])
    assert code == 2
    assert "review.listen is not configured" in capsys.readouterr().err


def test_bad_review_settings_point_at_their_line(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = write_quarantine_settings(tmp_path).source
    config.write_text(config.read_text() + 'review: {listen: "nowhere", tls: {cert: c}}\n')
    code = main(["review", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert "gateway.yaml:" in err and "review listen must be HOST:PORT" in err
    assert "needs both 'cert' and 'key'" in err
