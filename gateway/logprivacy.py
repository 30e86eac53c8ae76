"""What the log may say about people: a student's address appears as a pseudonym.

A student's address (a District student account, in many districts the student number, or a
personal address the directory lists) is student data. The log names it as `student:` and the
first 12 hex digits of the SHA-256 of the address as the directory normalises it, without a
`+tag`: whoever holds the directory can compute the same digest to find a student's messages
(docs/operations.md, "Logs"); the log alone does not say who it was. Other addresses (staff,
parents, outsiders) are logged as they are, as mail logs do. Upstream replies are passed through the
same filter, since servers quote the address they refuse, in any punctuation
("550 5.1.1 <alex@…>: Recipient address rejected", "'alex@…' unknown", "user=alex@…").
"""

from __future__ import annotations

import hashlib
import re

from gateway.addresses import without_subaddress
from gateway.directory import PartyLookup
from gateway.model import Role

# An address as servers quote it: a quoted local part, or any characters a local part may hold
# (letters and digits in any script, and RFC 5322's atext punctuation), then a domain in any
# script. Punctuation before the address proper is often the server's quoting (`'addr'`,
# `user=addr`), and can also be part of it (`o'brien@`): each start after such a character is
# tried, longest first, and the first that is a student in the directory is replaced; a
# student only by the District's student domain has the whole match replaced.
# Every part is bounded by RFC 5321's limits (64 characters of local part, 63 a label): with
# `+` a reply of 32 KB of letters and one `@`, which an upstream may send, took 16 s of the
# event loop (every start position scanned to the end); bounded, 60 ms at most.
_ADDRESS = re.compile(r"""(?:"[^"\r\n]{0,64}"|[\w.!#$%&'*+/=?^`{|}~-]{1,64})"""
                      r"@[\w-]{1,63}(?:\.[\w-]{1,63}){1,126}")
_STARTS = 4  # candidate starts tried per match: the whole, and after the last 3 punctuations
_QUOTING = re.compile(r"[^\w.%+-]")  # where a quoting prefix could end


def student_pseudonym(address: str) -> str:
    """`address` as a normalised address (`Directory.party(...).address`)."""
    plain = without_subaddress(address.lower())
    return "student:" + hashlib.sha256(plain.encode()).hexdigest()[:12]


class Redactor:
    """Student addresses out of log fields, by the directory in force."""

    def __init__(self, directory: PartyLookup):
        self.directory = directory

    def address(self, address: str) -> str:
        if not address:
            return address
        party = self.directory.party(address)
        return student_pseudonym(party.address) if party.role is Role.STUDENT else address

    def text(self, text: str) -> str:
        if "@" not in text:
            return text
        return _ADDRESS.sub(self._quoted, text)

    def _quoted(self, match: re.Match[str]) -> str:
        found = match.group()
        starts = [0]
        if not found.startswith('"'):
            local = found.rpartition("@")[0]
            starts += [cut.end() for cut in _QUOTING.finditer(local)][1 - _STARTS:]
        for start in starts:
            party = self.directory.party(found[start:])
            if party.role is Role.STUDENT and party.known:  # exactly a directory row
                return found[:start] + student_pseudonym(party.address)
        # A student by domain alone (not in the directory): which start is the address cannot
        # be told, so nothing of the match stays; the digest is of the plainest candidate.
        party = self.directory.party(found[starts[-1]:])
        return student_pseudonym(party.address) if party.role is Role.STUDENT else found
