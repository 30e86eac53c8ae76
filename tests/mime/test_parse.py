"""`gateway.mime.parse` must build exactly the tree `BytesParser(policy=compat32)` builds.

Two generators: every way a header block can end (CRLF, LF, CR, none, a non-header line,
continuation lines, a Unix From line) over several bodies; and random MIME trees (nested
multiparts, attachments, forwarded mail, preambles, epilogues) in CRLF and LF, each also
mutated (lines dropped, doubled or cut, boundaries broken, bare CRs). Whatever the fast path
takes must equal the stdlib's tree; whatever it declines goes to the stdlib anyway.
"""

from __future__ import annotations

import itertools
import random
import re
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser
from email.policy import compat32

from gateway.mime import parse as mime
from gateway.mime.parse import _header_end, boundary_lines, parse_fast

HEADER_LINES = (b"Subject: hello", b"X-Folded: one\r\n two", b"not a header line",
                b"From someone@example.org", b"Content-Type: text/plain; charset=utf-8",
                b"Content-Type: multipart/mixed; boundary=b", b"Content-Type: message/rfc822",
                b"Content-Type: application/pdf", b"Subject: caf\xc3\xa9")
ENDS = (b"\r\n", b"\n", b"\r")
BODIES = (b"", b"body text\r\n", b"\r\nleading blank\r\n", b"--b\r\nX: y\r\n\r\npart\r\n--b--\r\n",
          b"Subject: inner\r\n\r\ninner body\r\n", b"8bit \xff\xfe body\n")


def shape(msg: Message) -> tuple[object, ...]:
    payload = msg._payload  # as stored: get_payload() would re-decode (and can raise)
    if isinstance(payload, list):
        payload = [shape(p) for p in payload]
    return (list(msg.raw_items()), payload, [type(d) for d in msg.defects],
            msg.get_unixfrom(), msg.get_content_type(), msg.is_multipart(),
            msg.preamble, msg.epilogue, msg.get_default_type())


def cases() -> list[bytes]:
    out = []
    for n in (0, 1, 2):
        for lines in itertools.product(HEADER_LINES, repeat=n):
            for end, blank in itertools.product(ENDS, ENDS):
                for body in BODIES:
                    head = b"".join(line + end for line in lines)
                    out.append(head + blank + body)
                    out.append(head + body)  # no blank line at all
    return out


def test_short_cut_builds_what_the_stdlib_builds() -> None:
    checked = 0
    for raw in cases():
        full = BytesParser(policy=compat32).parsebytes(raw)
        assert shape(mime.parse(raw)) == shape(full), raw
        checked += 1
    assert checked > 2000


def test_fast_path_is_taken_for_plain_and_multipart_mail() -> None:
    plain = b"Subject: x\r\nContent-Type: text/plain\r\n\r\n" + b"line\r\n" * 1000
    assert _header_end(plain.decode()) == plain.index(b"\r\n\r\n") + 4
    fast = parse_fast(plain)
    assert fast is not None and fast.get_payload() == "line\r\n" * 1000
    multipart = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\n"
                 b"Content-Type: text/plain\r\n\r\none\r\n--b\r\n\r\n\r\n--b--\r\nepi\r\n")
    assert parse_fast(multipart) is None  # a part with no header block: the stdlib decides
    multipart = multipart.replace(b"--b\r\n\r\n\r\n", b"--b\r\nX-Empty: 1\r\n\r\n\r\n")
    tree = parse_fast(multipart)
    assert tree is not None and shape(tree) == shape(BytesParser(policy=compat32).parsebytes(
        multipart))
    assert [p.get_payload() for p in tree.get_payload()] == ["one", ""]
    assert (tree.preamble, tree.epilogue) == ("pre", "epi\r\n")


def random_tree(rng: random.Random, depth: int = 0) -> Message:
    if depth < 3 and rng.random() < 0.5:
        outer = MIMEMultipart(rng.choice(["mixed", "alternative", "related", "mixed"]))
        for _ in range(rng.randint(1, 4)):
            outer.attach(random_tree(rng, depth + 1))
        if rng.random() < 0.3:
            outer.preamble = rng.choice(["This is a multi-part message.", "", "a\nb"])
        if rng.random() < 0.3:
            outer.epilogue = rng.choice(["", "trailer", "end\n\n"])
        return outer
    kind = rng.randrange(6)
    if kind == 0:
        return MIMEText(rng.choice(["Hello Sam", "x" * 200 + "\n" + "y", ""]), "plain",
                        rng.choice(["us-ascii", "utf-8"]))
    if kind == 1:
        return MIMEText("<p>Alex <b>Jones</b></p>\n" * rng.randint(1, 5), "html", "utf-8")
    if kind == 2:
        part = MIMEApplication(rng.randbytes(rng.randint(0, 3000)), "pdf")
        part.add_header("Content-Disposition", "attachment", filename="roster.pdf")
        return part
    if kind == 3:
        inner = MIMEText("forwarded body")
        inner["Subject"] = "fwd"
        return MIMEMessage(inner)
    if kind == 4:
        return MIMEText("caf\xe9 " * 20, "plain", "utf-8")  # base64
    part = MIMEText("a,b\n1,2\n", "csv")
    part.add_header("Content-Disposition", "attachment", filename="x.csv")
    return part


def mutate(rng: random.Random, raw: bytes) -> bytes:
    lines = raw.split(b"\n")
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        op = rng.randrange(8)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            lines.insert(i, b"")
        elif op == 3:
            lines[i] = lines[i][: rng.randint(0, len(lines[i]))]
        elif op == 4:
            lines[i] += b" \t"
        elif op == 5:
            lines[i] = lines[i].replace(b"--", b"-", 1)
        elif op == 6:
            lines.insert(i, b"From someone Mon Jan 1")
        else:
            lines[i] += b"\r"
        if len(lines) < 2:
            break
    return b"\n".join(lines)


def generated_messages(count: int) -> list[bytes]:
    rng = random.Random(2046)
    out = []
    for _ in range(count):
        tree = random_tree(rng)
        tree["Subject"] = "generated"
        raw = tree.as_bytes()
        variants = [raw, raw.replace(b"\n", b"\r\n")]
        variants += [mutate(rng, v) for v in variants]
        out += variants
    return out


def multipart(boundary: bytes, parts: list[bytes], *, head: bytes = b"", pre: bytes = b"",
              epi: bytes = b"", close: bytes = b"--") -> bytes:
    ctype = b"Content-Type: multipart/mixed; boundary=\"" + boundary + b"\"\r\n"
    body = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
    return ctype + head + b"\r\n" + pre + body + b"--" + boundary + close + b"\r\n" + epi


LEAF = b"Content-Type: text/plain\r\n\r\nhello\r\n"
HANDMADE = [
    multipart(b"=_Part_0.1+x(y)?", [LEAF, LEAF]),  # regex metacharacters in the boundary
    multipart(b"b", [LEAF], pre=b"\r\n"), multipart(b"b", [LEAF], pre=b"pre\r\n\r\n"),
    multipart(b"b", [LEAF], epi=b"--b\r\nafter\r\n"), multipart(b"b", [LEAF], close=b"-- \t"),
    multipart(b"b", [multipart(b"b", [LEAF])]),  # the same boundary nested
    multipart(b"b", [multipart(b"c", [LEAF], epi=b"inner epilogue\r\n"), LEAF]),
    multipart(b"b", [multipart(b"c", [LEAF], close=b"")]),  # inner close boundary missing
    multipart(b"b", [LEAF], head=b"Content-Transfer-Encoding: base64\r\n"),
    multipart(b"b", [LEAF]).replace(b"multipart/mixed", b"multipart/digest"),
    multipart(b"b", [LEAF]).replace(b'boundary="b"', b"boundary=b"),
    multipart(b"b", [LEAF]).replace(b'; boundary="b"', b""),
    multipart(b"b", [LEAF]) + b"--b\r\n",
    multipart(b"b", [LEAF])[:-6],  # cut inside the closing boundary
    multipart(b"b", [b"\r\nno headers\r\n", LEAF]),
    multipart(b"b", [b"X: 1\r\n folded\r\n\tagain\r\n\r\nbody", b"Y:\r\n\r\n"]),
    multipart(b"b", [b":empty name\r\n\r\nx", b" first line folded\r\n\r\nx"]),
    multipart(b"b", [b"From someone\r\nX: 1\r\n\r\nx", b"X: caf\xc3\xa9\r\n\r\nx"]),
    multipart(b"b", [LEAF, LEAF]).replace(b"\r\n--b\r\n", b"\r\n--b\r\n--b\r\n"),
    multipart(b"b", [LEAF]).replace(b"\r\n", b"\n"),
]


def test_handmade_edge_cases_match_the_stdlib() -> None:
    for raw in HANDMADE:
        full = BytesParser(policy=compat32).parsebytes(raw)
        assert shape(mime.parse(raw)) == shape(full), raw
    assert sum(parse_fast(raw) is not None for raw in HANDMADE) >= 8


def test_generated_mime_trees_match_the_stdlib() -> None:
    fast = 0
    for raw in generated_messages(700):
        full = BytesParser(policy=compat32).parsebytes(raw)
        tree = parse_fast(raw)
        if tree is not None:
            fast += 1
            assert shape(tree) == shape(full), raw
        assert shape(mime.parse(raw)) == shape(full), raw
    assert fast > 700  # the unmutated messages at least: the fast path is really exercised


def test_surrogates_and_nul_in_a_part_body_do_not_break_the_fast_path() -> None:
    # Reading a payload back through get_payload() decodes surrogates with the part's charset
    # (and raised on this one, found by bench/fuzz_inspect.py); the tree is built without it.
    raw = multipart(b"b", [b"Content-Type: text/plain; charset=\"x\x00y\"\r\n\r\n\xff\x00body"])
    assert shape(mime.parse(raw)) == shape(BytesParser(policy=compat32).parsebytes(raw))
    nested_epilogues = multipart(b"b", [multipart(b"c", [LEAF], epi=e) for e in
                                        (b"", b"\r\n", b"x\r\n")])
    assert parse_fast(nested_epilogues) is not None
    assert shape(mime.parse(nested_epilogues)) == shape(
        BytesParser(policy=compat32).parsebytes(nested_epilogues))


def test_review_findings_go_to_the_stdlib() -> None:
    # A boundary holding a line break (folded, or RFC 2231 %0A) never matches for FeedParser,
    # which compares line by line; a regex over the body would match across the two lines.
    folded = (b'Content-Type: multipart/mixed; boundary="a\r\n b"\r\n\r\n--a\r\n b\r\n'
              b"X: y\r\n\r\nbody\r\n--a\r\n b--\r\n")
    encoded = (b"Content-Type: multipart/mixed; boundary*=us-ascii''a%0Ab\n\n--a\nb\nX: y\n\n"
               b"body\n--a\nb--\n")
    # Nesting the stdlib parses but this recursion would not (RecursionError).
    head = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
                    for i in range(500))
    tail = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(500)))
    deep = head + b"Content-Type: text/plain\r\n\r\nx" + tail
    for raw in (folded, encoded):
        assert parse_fast(raw) is None
        assert shape(mime.parse(raw)) == shape(BytesParser(policy=compat32).parsebytes(raw))
    assert parse_fast(deep) is None and mime.parse(deep).is_multipart()  # (too deep for shape)


def _regex_boundary_lines(body: str, boundary: str) -> list[tuple[int, int, bool]]:
    """The regex `boundary_lines` replaced (compiled once per boundary), up to the first
    closing line."""
    found = []
    for m in re.finditer(rf"\n--{re.escape(boundary)}(--)?[ \t]*(?=\r\n|\n|\Z)", body):
        found.append((m.start(), m.end(), bool(m.group(1))))
        if m.group(1):
            break
    return found


def test_boundary_lines_finds_what_the_regex_found() -> None:
    rng = random.Random(2920)
    pieces = ["\n", "\r\n", "--", "-", " ", "\t", "b", "bb", "x", "\r", "b--", ".", "b+("]
    for boundary in ("b", "b--", "b+(", "=_b b", "-"):
        choices = [*pieces, "\n--" + boundary]
        for _ in range(3000):
            body = "".join(rng.choice(choices) for _ in range(rng.randint(0, 14)))
            assert boundary_lines(body, boundary) == _regex_boundary_lines(body, boundary), \
                (body, boundary)


def test_unique_boundaries_are_not_compiled_as_regexes() -> None:
    """Each message's boundary is its own: parsing must not add a regex per message."""
    re.purge()
    for i in range(50):
        raw = (f"Content-Type: multipart/mixed; boundary=u{i}\r\n\r\n--u{i}\r\n"
               f"Content-Type: text/plain\r\n\r\nhello\r\n--u{i}--\r\n").encode()
        assert parse_fast(raw) is not None
    assert not any(f"u{i}" in str(key) for key in re._cache for i in range(50))  # type: ignore[attr-defined]
