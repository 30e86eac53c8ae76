"""The C-speed wire helpers must agree with the regexes they replaced.

`has_bare_newline` replaced a look-around regex on receipt; `data_payload` replaced
aiosmtplib's two regex substitutions on relay. Both are checked on every way CR, LF and dots can
meet in up to four pieces, against the very code they replaced.
"""

from __future__ import annotations

import itertools

from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from gateway.smtp.wire import BARE_NEWLINE, data_payload, has_bare_newline, to_crlf

PIECES = (b"a", b"\r\n", b"\n", b"\r", b".", b"\r\n.\r\n")


def all_short_contents() -> list[bytes]:
    """Every sequence of up to four pieces: every way CR and LF can meet."""
    out = [b""]
    for n in range(1, 5):
        out += [b"".join(p) for p in itertools.product(PIECES, repeat=n)]
    return out


def aiosmtplib_payload(content: bytes) -> bytes:
    """What aiosmtplib's `execute_data_command` writes after the 354."""
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(content)) + b".\r\n"


def test_count_check_matches_regex() -> None:
    for content in all_short_contents():
        assert has_bare_newline(content) == bool(BARE_NEWLINE.search(content)), content


def test_clean_large_message_is_not_flagged() -> None:
    body = b"line of text\r\n" * 10000
    assert not has_bare_newline(body)
    assert has_bare_newline(body + b"smuggled\n.\n")


def test_to_crlf_leaves_nothing_bare() -> None:
    for content in all_short_contents():
        fixed = to_crlf(content)
        assert not has_bare_newline(fixed), content
        assert fixed.replace(b"\r\n", b"") == content.replace(b"\r\n", b"").replace(
            b"\r", b"").replace(b"\n", b""), content


def test_data_payload_matches_aiosmtplib() -> None:
    for content in all_short_contents():
        assert data_payload(content) == aiosmtplib_payload(content), content


def test_data_payload_of_a_canonical_message_is_stuffed_once() -> None:
    body = b"Subject: x\r\n\r\n.hidden\r\n..two\r\nend\r\n"
    assert data_payload(body) == b"Subject: x\r\n\r\n..hidden\r\n...two\r\nend\r\n.\r\n"
    assert data_payload(b".") == b"..\r\n.\r\n"


def test_data_payload_of_checked_content_skips_only_the_count() -> None:
    """`crlf_only` (content the server already made CRLF-only) gives the same payload, and
    really skips the check: the caller's word is taken (which is why only the server's own
    checked bytes may be sent this way)."""
    for content in all_short_contents():
        fixed = to_crlf(content)
        assert data_payload(fixed, crlf_only=True) == aiosmtplib_payload(content), content
    assert data_payload(b"a\nb\r\n", crlf_only=True) == b"a\nb\r\n.\r\n"
