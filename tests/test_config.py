"""gateway.yaml: every error with file:line:column, paths relative to the file, URL forms,
hostile values refused as errors, never crashes."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path

import pytest

from gateway import config
from gateway.config import load_settings
from gateway.directory import load_directory
from gateway.policy.loader import load_policy
from gateway.yamlsrc import SourceErrors
from tests.factories import write_settings


def errors_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    with pytest.raises(SourceErrors) as info:
        load_settings(path)
    return [str(e).replace(str(path), "gateway.yaml") for e in info.value.errors]


def test_every_error_is_reported_with_line_and_column(tmp_path):
    errors = errors_of(tmp_path, """\
listen: {host: 127.0.0.1, port: 10025}
upstrem: {host: mail}
smtp:
  max_sessions: lots
  bare_newline: rejekt
trusted_networks: [10.0.0.0/8, not-a-net]
district:
  student_number_pattern: '(unclosed'
""")
    assert errors == [
        "gateway.yaml:2:1: unknown key 'upstrem' (did you mean 'upstream'?)",
        "gateway.yaml:4:17: 'max_sessions' must be an integer",
        "gateway.yaml:5:17: 'bare_newline' must be one of normalize, reject (did you mean "
        "'reject'?)",
        "gateway.yaml:6:32: not an IP network: 'not-a-net'",
        "gateway.yaml:8:27: bad regular expression: missing ), unterminated subpattern "
        "at position 0",
    ]


def test_duplicate_keys_and_syntax_errors_point_at_their_line(tmp_path):
    assert errors_of(tmp_path, "listen: {port: 1}\nlisten: {port: 2}\n") == [
        "gateway.yaml:2:1: duplicate key 'listen' (first defined on line 1)"]
    [syntax] = errors_of(tmp_path, "listen: {port: 1\nupstream: x\n")
    assert syntax.startswith("gateway.yaml:2:") and "YAML syntax" in syntax
    # Where the unclosed part began is named too: that is the line to fix.
    assert syntax.endswith("(parsing a flow mapping that starts at line 1, column 9)")
    [quoted] = errors_of(tmp_path, 'postmaster: "x@y.example\nlisten: {port: 1}\n')
    assert "that starts at line 1, column 13" in quoted


def test_paths_and_sqlite_urls_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "gateway.yaml").write_text("""\
directory: {people: people.csv}
policies: rules/policies.yaml
quarantine: {url: "sqlite:///state/q.db"}
smtp: {max_message_size: 10M}
""")
    settings = load_settings(tmp_path / "gateway.yaml")
    assert settings.directory.people == tmp_path / "people.csv"
    assert settings.policies == tmp_path / "rules" / "policies.yaml"
    assert settings.quarantine.path == tmp_path / "state" / "q.db"
    assert settings.smtp.max_message_size == 10 * 1024 * 1024
    (tmp_path / "gateway.yaml").write_text('quarantine: {url: "sqlite:////var/lib/g/q.db"}\n')
    assert load_settings(tmp_path / "gateway.yaml").quarantine.path == Path("/var/lib/g/q.db")


def test_trusted_networks_include_ipv4_mapped_addresses(tmp_path):
    (tmp_path / "gateway.yaml").write_text("trusted_networks: [192.0.2.0/24]\n")
    settings = load_settings(tmp_path / "gateway.yaml")
    assert settings.is_trusted("192.0.2.7") and settings.is_trusted("::ffff:192.0.2.7")
    assert not settings.is_trusted("198.51.100.1") and not settings.is_trusted(None)


def test_trust_answers_are_remembered_per_configuration_and_bounded(tmp_path):
    """is_trusted remembers its answers; a reloaded configuration (a new Settings, also one
    made with dataclasses.replace) asks afresh, and many clients do not grow it unbounded."""
    (tmp_path / "gateway.yaml").write_text("trusted_networks: [192.0.2.0/24]\n")
    settings = load_settings(tmp_path / "gateway.yaml")
    assert settings.is_trusted("192.0.2.7") and settings.is_trusted("192.0.2.7")
    narrowed = replace(settings, trusted_networks=(ipaddress.ip_network("198.51.100.0/24"),))
    assert not narrowed.is_trusted("192.0.2.7") and narrowed.is_trusted("198.51.100.1")
    assert settings.is_trusted("192.0.2.7")  # the old configuration's answer is unchanged
    clients = [f"10.{i // 256 % 256}.{i % 256}.1" for i in range(10_000)] + ["192.0.2.9"]
    assert [settings.is_trusted(ip) for ip in clients] == [False] * 10_000 + [True]
    assert len(settings._trust) <= config._TRUST_CACHE_SIZE
    assert settings == replace(settings)  # the remembered answers take no part in equality


@pytest.mark.parametrize("url, message", [
    ("postgresql://gw@db:54x/quarantine", "not a valid PostgreSQL URL: port '54x'"),
    ("postgresql://gw@db/quarantine?sslmode", "not a valid PostgreSQL URL: option 'sslmode'"),
    ("sqlite:///", "quarantine url must be sqlite:///PATH.db or postgresql://"),
    ("mysql://x", "quarantine url must be sqlite:///PATH.db or postgresql://"),
])
def test_quarantine_urls_serve_cannot_open_fail_validation(tmp_path, url, message):
    [error] = errors_of(tmp_path, f'quarantine: {{url: "{url}"}}\n')
    assert error.startswith("gateway.yaml:1:19: ") and message in error


def test_a_postgresql_url_with_libpq_options_is_valid(tmp_path):
    path = tmp_path / "gateway.yaml"
    url = "postgresql://gw@db.example:5433/q?sslmode=verify-full&passfile=/etc/gateway/pgpass"
    path.write_text(f'quarantine: {{url: "{url}"}}\n')
    settings = load_settings(path)
    assert settings.quarantine.url == url and settings.quarantine.path is None


def test_host_names_sent_in_ehlo_must_be_ascii_words(tmp_path):
    assert errors_of(tmp_path, "upstream: {helo: gw.écoles.example}\n"
                               "smtp: {hostname: 'gw test'}\n") == [
        "gateway.yaml:1:18: 'helo' must be an ASCII host name without spaces "
        "(IDNA-encode it: xn--...)",
        "gateway.yaml:2:18: 'hostname' must be an ASCII host name without spaces "
        "(IDNA-encode it: xn--...)"]


def test_upstream_pipelining_is_on_unless_switched_off(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text("upstream: {port: 25}\n")
    assert load_settings(path).upstream.pipelining
    path.write_text("upstream: {pipelining: false}\n")
    assert load_settings(path).upstream.pipelining is False
    [error] = errors_of(tmp_path, "upstream: {pipelining: maybe}\n")
    assert error == "gateway.yaml:1:24: 'pipelining' must be true or false"


def test_pdf_engine_setting_is_checked(tmp_path):
    settings = write_settings(tmp_path, 25, "inspection: {pdf_engine: pypdf}")
    assert settings.inspection.pdf_engine == "pypdf"

    with pytest.raises(SourceErrors, match=r"pdf_engine.*auto, pdfium, pypdf"):
        write_settings(tmp_path, 25, "inspection: {pdf_engine: pdfiun}")


# --- hostile values, found by fuzzing (bench/fuzz_config.py) --------------------------------
@pytest.mark.parametrize(("text", "message"), [
    ('metrics: {listen: "127.0.0.1:²"}', "metrics listen must be HOST:PORT"),  # was ValueError
    ('metrics: {listen: "127.0.0.1:99999"}', "metrics listen must be HOST:PORT"),
    ("smtp: {max_message_size: '" + "9" * 400 + "'}", "'max_message_size' is too large"),
    ("district: {student_number_pattern: 'a{99999999999}'}", "bad regular expression"),
    ("district: {student_number_pattern: '" + "(" * 3000 + ")" * 3000 + "'}",
     "bad regular expression"),  # was RecursionError
    ("inspection: {time_budget: .nan}", "'time_budget' must be a finite number"),
    ("inspection: {time_budget: .inf}", "'time_budget' must be a finite number"),
    ("upstream: {timeout: " + "9" * 400 + "}", "'timeout' must be a finite number"),
])
def test_config_hostile_values_are_source_errors(tmp_path: Path, text: str,
                                                 message: str) -> None:
    assert errors_of(tmp_path, text)[0].partition(": ")[2].startswith(message)


def test_nul_in_a_configured_path_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text('policies: "p\\0.yaml"\ndirectory: {people: "a\\0b.csv"}\n')
    settings = load_settings(path)
    with pytest.raises(SourceErrors, match="cannot read file: bad file name"):
        load_directory(settings)
    with pytest.raises(SourceErrors, match="cannot read file: bad file name"):
        load_policy(settings, None)


def test_authentication_keys(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text(
        "smtp: {hostname: gw.test}\n"
        "authentication:\n"
        "  resolvers: [192.0.2.53, '127.0.0.1:5353', '[::1]:53']\n"
        "  timeout: 2\n"
        "  trusted_arc_sealers: [Google.COM]\n")
    auth = load_settings(tmp_path / "gateway.yaml").authentication
    assert auth.resolvers == (("192.0.2.53", 53), ("127.0.0.1", 5353), ("::1", 53))
    assert (auth.timeout, auth.trusted_arc_sealers, auth.authserv_id) == (2.0, ("google.com",),
                                                                          None)


def test_authentication_errors_point_at_the_value(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text(
        "authentication:\n"
        "  resolvers: [dns.example, '127.0.0.1:99999']\n"
        "  timeout: 0\n"
        "  resolver: []\n")
    with pytest.raises(SourceErrors) as info:
        load_settings(tmp_path / "gateway.yaml")
    text = str(info.value)
    assert "gateway.yaml:2:15: not a resolver address (IP or IP:PORT): 'dns.example'" in text
    assert "'127.0.0.1:99999'" in text
    assert "gateway.yaml:3:12:" in text and "did you mean 'resolvers'" in text


def test_xforward_hosts(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text("smtp: {xforward_hosts: [127.0.0.1/32, '::1']}\n")
    settings = load_settings(tmp_path / "gateway.yaml")
    assert settings.may_xforward("127.0.0.1") and settings.may_xforward("::1")
    assert not settings.may_xforward("127.0.0.2") and not settings.may_xforward(None)
    assert not load_settings_text(tmp_path, "smtp: {}\n").may_xforward("127.0.0.1")


def load_settings_text(tmp_path: Path, text: str) -> config.Settings:
    (tmp_path / "gateway.yaml").write_text(text)
    return load_settings(tmp_path / "gateway.yaml")


def test_arc_seal_needs_all_three_and_the_key_file(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text(
        "authentication:\n  arc_seal: {domain: d.example, key: missing.pem}\n")
    with pytest.raises(SourceErrors) as info:
        load_settings(tmp_path / "gateway.yaml")
    assert "arc_seal needs 'selector'" in str(info.value)
    assert "no such key file" in str(info.value)
    (tmp_path / "k.pem").write_text("key")
    with pytest.raises(SourceErrors, match="not a PEM private key"):
        load_settings_text(tmp_path, "authentication:\n  arc_seal: "
                                     "{domain: D.example, selector: s1, key: k.pem}\n")
    (tmp_path / "k.pem").write_text("-----BEGIN PRIVATE KEY-----\n...\n")
    seal = load_settings_text(tmp_path, "authentication:\n  arc_seal: "
                                        "{domain: D.example, selector: s1, key: k.pem}\n"
                              ).authentication.arc_seal
    assert seal is not None and (seal.domain, seal.selector) == ("d.example", "s1")
    assert seal.key == tmp_path / "k.pem"
