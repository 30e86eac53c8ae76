"""How uvicorn is told to serve the console: TLS files, whose forwarded headers to believe."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.review.server import ConsoleNotConfigured, uvicorn_config
from tests.factories import write_quarantine_settings


def test_behind_a_proxy_only_the_named_proxies_are_believed(tmp_path: Path) -> None:
    settings = write_quarantine_settings(tmp_path, extra="""
review: {listen: "127.0.0.1:8025", trusted_proxies: [127.0.0.1, 10.0.0.5]}
""")
    config = uvicorn_config(settings, app=None)
    assert (config.host, config.port) == ("127.0.0.1", 8025)
    assert config.proxy_headers and config.forwarded_allow_ips == "127.0.0.1,10.0.0.5"
    assert config.ssl_certfile is None and not config.access_log and not config.server_header


def test_without_proxies_no_forwarded_header_is_believed_and_tls_is_direct(
        tmp_path: Path) -> None:
    settings = write_quarantine_settings(tmp_path, extra="""
review: {listen: "[::1]:8443", tls: {cert: review.crt, key: review.key}}
""")
    config = uvicorn_config(settings, app=None)
    assert config.host == "::1" and not config.proxy_headers
    assert config.forwarded_allow_ips == ""
    assert config.ssl_certfile == str(tmp_path / "review.crt")
    assert config.ssl_keyfile == str(tmp_path / "review.key")


def test_no_listen_no_console(tmp_path: Path) -> None:
    with pytest.raises(ConsoleNotConfigured, match=r"review\.listen is not configured"):
        uvicorn_config(write_quarantine_settings(tmp_path), app=None)
