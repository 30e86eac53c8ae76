"""The counting bare-newline check must agree with the look-around regex it replaced."""

from __future__ import annotations

import itertools

from gateway.server import BARE_NEWLINE, _has_bare_newline

PIECES = (b"a", b"\r\n", b"\n", b"\r", b".", b"\r\n.\r\n")


def all_short_contents() -> list[bytes]:
    """Every sequence of up to four pieces: every way CR and LF can meet."""
    out = [b""]
    for n in range(1, 5):
        out += [b"".join(p) for p in itertools.product(PIECES, repeat=n)]
    return out


def test_count_check_matches_regex() -> None:
    for content in all_short_contents():
        assert _has_bare_newline(content) == bool(BARE_NEWLINE.search(content)), content


def test_clean_large_message_is_not_flagged() -> None:
    body = b"line of text\r\n" * 10000
    assert not _has_bare_newline(body)
    assert _has_bare_newline(body + b"smuggled\n.\n")
