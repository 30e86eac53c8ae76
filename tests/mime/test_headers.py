"""Header lookups: the shortcuts that skip parsing a header which cannot hold the parameter
give the stdlib's answers."""

from __future__ import annotations

import itertools
from email.message import Message

from gateway.mime.headers import charset as _charset
from gateway.mime.headers import filename


def test_file_name_and_charset_shortcuts_agree_with_the_stdlib_lookups():
    """filename() and _charset() skip parsing headers that cannot hold the parameter."""
    dispositions = [None, "inline", "attachment", 'attachment; filename="a.csv"',
                    "attachment; FILENAME=b.pdf", "attachment; filename*=utf-8''%C3%A9.txt",
                    "attachment; filename*0=a; filename*1=b", "attachment; file name=x",
                    'attachment; note="name"', "attachment; size=3"]
    types = [None, "text/plain", 'text/plain; charset="utf-8"', "text/plain; CHARSET=Latin-1",
             'application/pdf; name="x.pdf"', "text/plain; charset*=utf-8''x", "text/html; Name=y",
             "text/plain; format=flowed", 'text/plain; x="charset=utf-8"']
    for cd, ct in itertools.product(dispositions, types):
        part = Message()
        if cd is not None:
            part["Content-Disposition"] = cd
        if ct is not None:
            part["Content-Type"] = ct
        stdlib_name = part.get_filename() or part.get_param("name")
        assert (filename(part) is None) == (not stdlib_name), (cd, ct)
        assert _charset(part) == part.get_content_charset(), (cd, ct)
