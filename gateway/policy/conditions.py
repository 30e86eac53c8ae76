"""The conditions a policy rule can test, compiled from policies.yaml and evaluated purely.

Each condition is a small frozen value with a `test(ctx)` method. A rule's `when` block is an
`AllOf` of them (every key must hold); `any:` is an `AnyOf`. Nothing here does I/O: the
directory and contact history reach the conditions through `RuleContext`, already loaded.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import getaddresses
from typing import Protocol

from gateway.model import ContactHistory, Envelope, Finding, Inspection, Party, Role


@dataclass(frozen=True, slots=True)
class RuleContext:
    """Everything one (sender, recipient) evaluation may look at."""

    envelope: Envelope
    sender: Party
    recipient: Party
    inspection: Inspection
    history: ContactHistory
    now: datetime
    has_relationship: Callable[[str | None, str | None], bool]
    is_district_domain: Callable[[str], bool]
    # Who an address in a header is (the directory's classification); None: unknown.
    party_of: Callable[[str], Party | None] = lambda _address: None

    def staff_student_pair(self) -> tuple[Party, Party] | None:
        return staff_student_pair(self.sender, self.recipient)


def staff_student_pair(sender: Party, recipient: Party) -> tuple[Party, Party] | None:
    """(staff party, student party) when the message is between the two, else None."""
    for staff, student in ((sender, recipient), (recipient, sender)):
        if staff.role is Role.STAFF and student.role is Role.STUDENT:
            return staff, student
    return None


class Condition(Protocol):
    def test(self, ctx: RuleContext) -> bool: ...


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Condition, ...]

    def test(self, ctx: RuleContext) -> bool:
        return all(p.test(ctx) for p in self.parts)


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Condition, ...]

    def test(self, ctx: RuleContext) -> bool:
        return any(p.test(ctx) for p in self.parts)


# --- parties -----------------------------------------------------------------------------

ACCOUNTS = ("district", "personal", "outside")


def account_kinds(party: Party) -> set[str]:
    """`district`: a District account; `outside`: anything else; `personal`: the non-District
    address of a known staff member or student (the accounts item 1 forbids)."""
    if party.district_account:
        return {"district"}
    kinds = {"outside"}
    if party.role in (Role.STAFF, Role.STUDENT):
        kinds.add("personal")
    return kinds


@dataclass(frozen=True, slots=True)
class PartyCond:
    """Tests the sender or the recipient: role, account kind, known person, domain."""

    side: str  # sender | recipient
    roles: frozenset[Role] | None = None
    accounts: frozenset[str] | None = None
    known: bool | None = None
    domains: frozenset[str] | None = None

    def test(self, ctx: RuleContext) -> bool:
        return self.matches(ctx.sender if self.side == "sender" else ctx.recipient)

    def matches(self, party: Party) -> bool:
        if self.roles is not None and party.role not in self.roles:
            return False
        if self.accounts is not None and not (account_kinds(party) & self.accounts):
            return False
        if self.known is not None and party.known != self.known:
            return False
        return self.domains is None or _domain_in(party.address, self.domains)


@dataclass(frozen=True, slots=True)
class HeaderPartyCond:
    """Some address in the Reply-To (`header="reply_to"`) or From (`"from_header"`) header is
    such a party: where the recipient's reply would go (P15: a staff message to a student
    asking for replies at a personal address).

    `own`: only addresses of the sending person count (the same directory person)."""

    header: str  # reply_to | from_header
    party: PartyCond
    own: bool = False

    def test(self, ctx: RuleContext) -> bool:
        value = getattr(ctx.inspection, self.header)
        if not value:
            return False
        for _, address in getaddresses([value]):
            if "@" not in address:
                continue
            party = ctx.party_of(address) or Party(
                address, Role.EXTERNAL, ctx.is_district_domain(address))
            if self.own and (party.person_id is None
                             or party.person_id != ctx.sender.person_id):
                continue
            if self.party.matches(party):
                return True
        return False


def _domain_in(address: str, domains: frozenset[str]) -> bool:
    domain = address.rpartition("@")[2].lower()
    return any(domain == d or domain.endswith("." + d) for d in domains)


@dataclass(frozen=True, slots=True)
class RelationshipCond:
    """Item 3: the employee reported a personal relationship with this student."""

    reported: bool

    def test(self, ctx: RuleContext) -> bool:
        pair = ctx.staff_student_pair()
        found = pair is not None and ctx.has_relationship(pair[0].person_id, pair[1].person_id)
        return found == self.reported


# --- envelope ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OriginCond:
    """Whether the connecting client is in trusted_networks (the district's own senders)."""

    trusted: bool

    def test(self, ctx: RuleContext) -> bool:
        return ctx.envelope.client_trusted == self.trusted


_ADDRESS_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def claimed_district_domains(ctx: RuleContext) -> list[str]:
    """The District domains the envelope sender or the From header claims, in order."""
    header = ctx.inspection.from_header or ""
    pairs = getaddresses([header])
    # A display name can carry the claim too: "jsmith@staff.district" <x@evil.example>.
    candidates = [ctx.envelope.mail_from, *(a for _, a in pairs),
                  *(m for name, _ in pairs for m in _ADDRESS_IN_TEXT.findall(name))]
    domains = [a.rpartition("@")[2].lower().rstrip(".") for a in candidates
               if a and "@" in a and ctx.is_district_domain(a)]
    return list(dict.fromkeys(domains))


@dataclass(frozen=True, slots=True)
class ClaimsDistrictCond:
    """The envelope sender or the From header uses a District domain (P13 spoofing check)."""

    claims: bool

    def test(self, ctx: RuleContext) -> bool:
        return bool(claimed_district_domains(ctx)) == self.claims


@dataclass(frozen=True, slots=True)
class SenderVerifiedCond:
    """Every District domain the message claims passed DMARC: an SPF or DKIM pass aligned
    with it, found by sender authentication. Mail nobody authenticated (none was run) is
    not verified; mail that claims no District domain has nothing to verify."""

    verified: bool

    def test(self, ctx: RuleContext) -> bool:
        return (unverified_claim(ctx) is None) == self.verified


def unverified_claim(ctx: RuleContext) -> str | None:
    """The first claimed District domain that authentication did not verify, or None."""
    auth = ctx.envelope.auth
    for domain in claimed_district_domains(ctx):
        if auth is None or not auth.verifies(domain):
            return domain
    return None


def authentication_reason(ctx: RuleContext) -> str:
    """Why the claimed sender is (not) verified, in words for a notice."""
    domain = unverified_claim(ctx)
    auth = ctx.envelope.auth
    if domain is None:
        claimed = claimed_district_domains(ctx)
        return auth.explain(claimed[0]) if auth is not None and claimed else "verified"
    if auth is None:
        return f"{domain} was not authenticated (no SPF, DKIM or DMARC check was made)"
    return auth.explain(domain)


@dataclass(frozen=True, slots=True)
class CompleteCond:
    """Whether inspection finished (False: a limit or an error cut it short)."""

    complete: bool

    def test(self, ctx: RuleContext) -> bool:
        return ctx.inspection.complete == self.complete


# --- content ----------------------------------------------------------------------------

ABOUT = ("not_recipient_children", "not_recipient")


@dataclass(frozen=True, slots=True)
class FindingCond:
    """Inspection findings by detector (or group), with thresholds and location.

    min_count: total hits; min_distinct: one finding with that many distinct values (a roster);
    min_students: that many distinct identified students across the selected findings;
    about=not_recipient_children: some selected finding is about a student who is not one of
    the recipient's children, or identifies no student at all (fail closed).
    about=not_recipient: some selected finding is about a student other than the recipient (a
    student's own records are that student's business). A student number in the district's
    format that is not in the directory is someone else's; an SSN that names nobody may be the
    recipient's own, unless the recipient is not in the directory (fail closed).
    """

    detectors: frozenset[str]
    min_count: int = 1
    min_distinct: int = 0
    min_students: int = 0
    location: str | None = None
    about: str | None = None

    def selected(self, findings: tuple[Finding, ...]) -> list[Finding]:
        where = (self.location or "").lower()
        return [f for f in findings if f.detector in self.detectors
                and f.location.lower().startswith(where)]

    def test(self, ctx: RuleContext) -> bool:
        chosen = self.selected(ctx.inspection.findings)
        if not chosen or sum(f.count for f in chosen) < self.min_count:
            return False
        if self.min_distinct and max((f.distinct or f.count) for f in chosen) < self.min_distinct:
            return False
        if self.min_students and len(set().union(*(f.students for f in chosen))) < \
                self.min_students:
            return False
        if self.about == "not_recipient_children":
            children = ctx.recipient.children
            return any(not f.students or not f.students <= children for f in chosen)
        if self.about == "not_recipient":
            return any(_about_someone_else(f, ctx.recipient.person_id) for f in chosen)
        return True


def _about_someone_else(finding: Finding, recipient_id: str | None) -> bool:
    if finding.students:
        return bool(finding.students - {recipient_id})
    return recipient_id is None or finding.detector != "ssn"


@dataclass(frozen=True, slots=True)
class AttachmentCond:
    """Attachments whose sniffed content type (or file name) matches a glob."""

    types: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    def test(self, ctx: RuleContext) -> bool:
        for att in ctx.inspection.attachments:
            ctype = att.content_type.lower()
            name = (att.filename or "").lower()
            if any(fnmatch.fnmatchcase(ctype, t) for t in self.types):
                return True
            if name and any(fnmatch.fnmatchcase(name, n) for n in self.names):
                return True
        return False


@dataclass(frozen=True, slots=True)
class SubjectCond:
    """Words or regular expressions in the Subject header (case-insensitive)."""

    contains: tuple[str, ...] = ()
    matches: tuple[re.Pattern[str], ...] = ()

    def test(self, ctx: RuleContext) -> bool:
        subject = ctx.inspection.subject.casefold()
        return (any(term.casefold() in subject for term in self.contains)
                or any(p.search(ctx.inspection.subject) for p in self.matches))


# --- history -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class HistoryCond:
    """P6: this message is at least the Nth contact of the pair within the window.

    The history holds *earlier* contacts only, so this message counts as one more.
    """

    within_days: float
    at_least: int

    def test(self, ctx: RuleContext) -> bool:
        pair = ctx.staff_student_pair()
        if pair is None or not pair[0].person_id or not pair[1].person_id:
            return False
        since = ctx.now - timedelta(days=self.within_days)
        earlier = ctx.history.count_contacts(pair[1].person_id, pair[0].person_id, since)
        return earlier + 1 >= self.at_least


@dataclass(frozen=True, slots=True)
class When:
    """A rule's condition: the static part plus an optional history test.

    The history part is kept apart so the engine can record a contact whenever the rest
    matches (every contact counts towards the next one), independent of the threshold.
    """

    condition: Condition
    history: HistoryCond | None = None

    def test_static(self, ctx: RuleContext) -> bool:
        return self.condition.test(ctx)

    def test(self, ctx: RuleContext) -> bool:
        return self.condition.test(ctx) and (self.history is None or self.history.test(ctx))
