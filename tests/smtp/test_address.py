"""The fast address path must give exactly aiosmtpd's answer, and leave hard cases to it."""

from __future__ import annotations

import itertools

import pytest
from aiosmtpd.smtp import SMTP

from gateway.smtp.address import FastAddressSMTP


class Handler:
    pass


LOCALS = ("a", "first.last", "x+tag", "o'neil", "a..b", ".a", "a.", '"quoted x"', "ü",
          "a" * 70, "")
DOMAINS = ("example.org", "staff.district230.example", "-x.example", "ex_ample.org",
           "[127.0.0.1]", "xn--bcher-kva.example", "ex..ample", "")
SHAPES = ("<{l}@{d}>", "<{l}@{d}> SIZE=100 BODY=8BITMIME", " <{l}@{d}>", "<{l}@{d}>x",
          "{l}@{d}", "<{l}@{d}", "<{l}@{d}> ", "< {l}@{d}>", "<(c){l}@{d}>",
          "<{l}@{d}>\tSIZE=1", "<{l}@{d}> (c) SIZE=1", "<{l}@{d}>(c)", "<{l}@{d}>  \x0bA=1 ",
          "<{l}@{d}>\x0bA", "<{l}@{d}> SIZE=1 (c)")
ARGS = sorted({s.format(l=lo, d=do) for s, lo, do in itertools.product(SHAPES, LOCALS, DOMAINS)}
              | {"<>", "<> SIZE=1", "", "<@relay:a@b.example>"})


@pytest.mark.parametrize("limit", [0, 64])
def test_same_answer_as_aiosmtpd(limit: int) -> None:
    stock, fast = SMTP(Handler()), FastAddressSMTP(Handler())
    stock.local_part_limit = fast.local_part_limit = limit
    for arg in ARGS:
        assert outcome(fast, arg) == outcome(stock, arg), arg


def outcome(server: SMTP, arg: str) -> object:
    """The answer, or the exception type (aiosmtpd's parser raises on a few inputs)."""
    try:
        return server._getaddr(arg)
    except Exception as exc:
        return type(exc)


def test_fast_path_is_taken_for_plain_addresses() -> None:
    fast = FastAddressSMTP(Handler())
    fast.local_part_limit = 0
    assert fast._getaddr("<Jane.Doe@Staff.Example>") == ("Jane.Doe@Staff.Example", "")
