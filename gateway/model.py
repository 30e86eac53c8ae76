"""Frozen values shared by every layer: the contract between the pure core and the I/O shell.

Nothing here does I/O. Anything that carries student data (Finding.students, Finding.sample,
Party.name) says so; `public()` views are the only shapes that may reach a log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class Role(StrEnum):
    STAFF = "staff"
    STUDENT = "student"
    PARENT = "parent"
    EXTERNAL = "external"


class Action(StrEnum):
    """What happens to one recipient's copy, weakest first."""

    RELAY = "relay"
    ANNOTATE = "annotate"
    HOLD = "hold"
    REJECT = "reject"

    @property
    def strength(self) -> int:
        return _ACTION_ORDER.index(self)

    @classmethod
    def strongest(cls, actions: Iterable[Action]) -> Action:
        return max(actions, key=lambda a: a.strength, default=cls.RELAY)


_ACTION_ORDER = (Action.RELAY, Action.ANNOTATE, Action.HOLD, Action.REJECT)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One SMTP transaction as received: the raw bytes are exactly what the client sent, except
    that the server has made every bare CR or LF a CRLF (`smtp.bare_newline`) or refused
    the message: the Executor relays unannotated content without counting line ends again."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    client_ip: str | None = None
    client_trusted: bool = True
    helo: str | None = None
    queue_id: str = ""
    received_at: datetime | None = None
    # Sender authentication (SPF, DKIM, DMARC, ARC) of mail from outside trusted_networks;
    # None when nothing was checked (a trusted client, or a dry run without DNS).
    auth: AuthResults | None = None
    # The queue id of the MTA in front (XFORWARD IDENT), to find the message in its logs.
    origin_queue_id: str = ""

    @property
    def sender_trustworthy(self) -> bool:
        """May the gateway write to the envelope sender (bounces, "held" notices)? Only to a
        trusted client's sender or one whose domain passed SPF or DMARC: anything else may
        be forged, and writing to it is backscatter."""
        if self.client_trusted:
            return True
        return self.auth is not None and self.auth.sender_verified


@dataclass(frozen=True, slots=True)
class AuthCheck:
    """One authentication method's result, as RFC 8601 spells it (spf=pass, dkim=fail, ...).

    `properties` are the ptype.property=value pairs of the Authentication-Results header
    (smtp.mailfrom=..., header.d=...); `reason` says why in words, without message content.
    """

    method: str  # spf | dkim | dmarc | arc
    result: str  # pass | fail | softfail | neutral | none | temperror | permerror | policy
    properties: tuple[tuple[str, str], ...] = ()
    reason: str = ""
    domain: str = ""  # the domain the result is about (SPF: sender or HELO; DKIM: d=)

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "result": self.result,
                               "domain": self.domain}
        out.update({k: v for k, v in self.properties})
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class AuthResults:
    """What sender authentication found for one message, and which domains it verified.

    A domain is verified when an SPF pass for the envelope sender (RFC 7208) or a DKIM pass
    (RFC 6376) is aligned with it, relaxed: the same organisational domain (RFC 7489). That
    is "passes DMARC" for the From domain, whatever policy the domain publishes.
    """

    checks: tuple[AuthCheck, ...] = ()
    verified_domains: frozenset[str] = frozenset()  # organisational domains that passed
    temporary_failure: bool = False  # a DNS lookup failed or the deadline passed
    org_domain: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def mail_from_domain(self) -> str:
        check = self.first("spf", "smtp.mailfrom")
        return check.domain if check is not None else ""

    @property
    def sender_verified(self) -> bool:
        """The envelope sender's domain passed SPF, or passed DMARC (an aligned DKIM pass)."""
        spf = self.first("spf", "smtp.mailfrom")
        if spf is not None and spf.result == "pass":
            return True
        return bool(self.mail_from_domain) and self.verifies(self.mail_from_domain)

    def first(self, method: str, ptype: str | None = None) -> AuthCheck | None:
        return next((c for c in self.checks if c.method == method
                     and (ptype is None or any(k == ptype for k, _ in c.properties))), None)

    def verifies(self, domain: str) -> bool:
        """Did an aligned SPF or DKIM pass verify `domain` (relaxed alignment)?"""
        domain = domain.lower().rstrip(".")
        return self.org_domain.get(domain, domain) in self.verified_domains

    def explain(self, domain: str) -> str:
        """Why `domain` is or is not verified, in words for the notice and `gateway check`."""
        domain = domain.lower().rstrip(".")
        if self.verifies(domain):
            return f"{domain} passed DMARC (an aligned SPF or DKIM pass)"
        if self.temporary_failure:
            return (f"{domain} could not be verified: a DNS lookup failed or timed out "
                    "(temperror)")
        found = [f"{c.method}={c.result}" + (f" ({c.domain})" if c.domain else "")
                 for c in self.checks if c.method in ("spf", "dkim")]
        return (f"{domain} did not pass DMARC: no aligned SPF or DKIM pass"
                + (f"; {', '.join(found)}" if found else ""))

    def public(self) -> dict[str, Any]:
        return {"checks": [c.public() for c in self.checks],
                "verified_domains": sorted(self.verified_domains),
                "temporary_failure": self.temporary_failure}


@dataclass(frozen=True, slots=True)
class Party:
    """Who an address belongs to, as far as the directory and the District domains tell.

    `name` is directory data (a student's name for students): never log it.
    """

    address: str
    role: Role
    district_account: bool
    person_id: str | None = None
    name: str | None = None
    supervisor: str | None = None
    children: frozenset[str] = frozenset()
    schools: frozenset[str] = frozenset()  # the directory's optional `school` column

    @property
    def known(self) -> bool:
        return self.person_id is not None

    def public(self) -> dict[str, Any]:
        return {"address": self.address, "role": str(self.role),
                "district_account": self.district_account}


@dataclass(frozen=True, slots=True)
class Part:
    """One text-bearing piece of a message after extraction.

    `location` is safe to log ("body", "subject", "attachment grades.xlsx, sheet 1").
    """

    text: str
    location: str
    kind: str = "body"  # subject | body | attachment
    content_type: str = "text/plain"
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file in the message, identified by content sniffing, not only by its name."""

    filename: str | None
    content_type: str  # the sniffed type, e.g. audio/mpeg, application/pdf
    size: int


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's report about one location.

    `students` (person_ids of identified students) and `sample` (a masked value) are for the
    policy engine and the quarantine reviewer only; `public()` leaves them out.
    """

    detector: str
    count: int
    location: str
    distinct: int = 0
    students: frozenset[str] = field(default=frozenset(), compare=False)
    sample: str | None = field(default=None, compare=False)

    def public(self) -> dict[str, Any]:
        return {"detector": self.detector, "count": self.count,
                "distinct": self.distinct or self.count, "location": self.location}


# Detector names fixed between inspection and policy. Term lists from policies.yaml become
# `lexicon:<list name>` (e.g. lexicon:harassment, lexicon:restricted_subjects).
STUDENT_RECORD_DETECTORS = (
    "student_number",  # a known student number from the directory (exact match)
    "student_number_format",  # district number format near "student"/"ID"/"SID"
    "student_name",  # a directory student's full name next to record content
    "dob",  # date of birth near a birth keyword and an identified student
    "ssn",  # US Social Security number with keyword or column header
    "record_category",  # grades/IEP/discipline/attendance/health/lunch with a student
    "roster",  # several distinct identified students in one part (distinct = how many)
)
OTHER_DETECTORS = (
    "media",  # audio or video attachment
    "uninspectable",  # encrypted, corrupt or cut off by a limit: fail closed
)
LEXICON_PREFIX = "lexicon:"


@dataclass(frozen=True, slots=True)
class Inspection:
    """Everything the content inspection learned about one message."""

    findings: tuple[Finding, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    subject: str = ""
    message_id: str | None = None
    from_header: str | None = None
    has_dkim_signature: bool = False
    complete: bool = True  # False when a limit or error cut inspection short
    reply_to: str | None = None  # the Reply-To header, as text (P15: where replies would go)

    def loggable_findings(self) -> list[dict[str, Any]]:
        """Findings for logs: as `public()`, with attachment file names replaced by aliases.

        A file name can itself be student data ("Alex_Jones_IEP.pdf"); the quarantine entry
        (readable by reviewers only) keeps the real names, logs get `file2.pdf`.
        """
        aliases = _file_aliases(a.filename for a in self.attachments)
        out = []
        for finding in self.findings:
            view = finding.public()
            for name, alias in aliases:
                view["location"] = view["location"].replace(name, alias)
            out.append(view)
        return out


def _file_aliases(names: Iterable[str | None]) -> list[tuple[str, str]]:
    """(name, alias) pairs, longest name first so a zip member path is replaced whole."""
    unique = list(dict.fromkeys(n for n in names if n))
    pairs = []
    for index, name in enumerate(unique, 1):
        ext = name.rpartition(".")[2].lower() if "." in name else ""
        alias = f"file{index}.{ext}" if ext.isalnum() and len(ext) <= 5 else f"file{index}"
        pairs.append((name, alias))
    return sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)


@dataclass(frozen=True, slots=True)
class Annotation:
    """What an `annotate` rule adds to a relayed copy."""

    headers: tuple[tuple[str, str], ...] = ()
    subject_tag: str | None = None
    notice: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form, kept with a held copy so a release annotates it as relaying would have."""
        return {"headers": [list(h) for h in self.headers], "subject_tag": self.subject_tag,
                "notice": self.notice}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Annotation:
        return cls(tuple((str(k), str(v)) for k, v in data.get("headers", ())),
                   data.get("subject_tag"), data.get("notice"))


@dataclass(frozen=True, slots=True)
class Notification:
    """A message the gateway itself sends because of a decision (supervisor, reviewers, sender).

    The body may name people (it goes to an authorised person by mail); it never goes to a log.
    """

    kind: str  # supervisor | reviewers | sender
    to: str
    subject: str
    body: str
    rule: str


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """One rule that matched one recipient, with the reason in words (no student data)."""

    rule: str
    action: Action
    reason: str
    monitor: bool = False  # decided and logged, but not enforced
    annotation: Annotation | None = None
    reject_text: str | None = None
    notify: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The action for one recipient and every rule that led to it."""

    recipient: Party
    action: Action
    matches: tuple[RuleMatch, ...] = ()
    rcpt: str = ""  # the RCPT address exactly as the client gave it (Party.address is normalised)

    @property
    def envelope_address(self) -> str:
        """Where the copy goes: the client's own spelling (case, IDN form), not ours."""
        return self.rcpt or self.recipient.address

    @property
    def rules(self) -> list[str]:
        return [m.rule for m in self.matches]

    @property
    def annotations(self) -> tuple[Annotation, ...]:
        return tuple(m.annotation for m in self.matches
                     if m.annotation is not None and not m.monitor)

    @property
    def reject_text(self) -> str | None:
        texts = [m.reject_text for m in self.matches
                 if m.action is Action.REJECT and not m.monitor and m.reject_text]
        return texts[0] if texts else None

    def public(self) -> dict[str, Any]:
        return {**self.recipient.public(), "action": str(self.action), "rules": self.rules}


@dataclass(frozen=True, slots=True)
class Decision:
    """One Verdict per envelope recipient, plus what inspection found."""

    envelope: Envelope
    sender: Party
    verdicts: tuple[Verdict, ...]
    inspection: Inspection = Inspection()
    notifications: tuple[Notification, ...] = ()
    contacts: tuple[tuple[str, str], ...] = ()  # (student_id, staff_id) pairs to record (P6)
    body_notice: bool = True  # may annotations touch body/Subject (a held copy's record)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.inspection.findings

    def public(self) -> dict[str, Any]:
        """The `gateway check --json` shape; safe to log."""
        out = {
            "sender": self.sender.public(),
            "recipients": [v.public() for v in self.verdicts],
            "findings": [f.public() for f in self.findings],
        }
        if self.envelope.auth is not None:
            out["authentication"] = self.envelope.auth.public()
        return out


class ContactHistory(Protocol):
    """P5/P6 contact counting: student personal address → staff member, per pair. The core
    only reads it; recording is the quarantine store's, in the same transaction as the count
    (`QuarantineStore.count_and_record`)."""

    def count_contacts(self, student_id: str, staff_id: str, since: datetime) -> int: ...


# (student person_id, staff person_id, since): one count the policy may ask the history for.
ContactQuery = tuple[str, str, datetime]
# (student person_id, staff person_id): one contact a message adds to the history.
ContactPair = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ContactPlan:
    """What deciding one message reads from the P5/P6 history and adds to it, known before the
    decision (`Policy.contact_plan`). The store counts and records in one transaction, so
    messages decided at the same moment, on any instance, each see the ones before them."""

    queries: frozenset[ContactQuery] = frozenset()
    record: tuple[ContactPair, ...] = ()
    at: datetime | None = None  # when the message was received (the recorded contacts' time)

    def __bool__(self) -> bool:
        return bool(self.queries or self.record)


@dataclass(frozen=True, slots=True)
class CountedHistory:
    """Counts read from the store beforehand (off the event loop), answered from memory.

    A count nobody read beforehand is a bug in the look-ahead (`Policy.contact_queries`): it
    raises, and the message is held as internal-error rather than decided on a guess."""

    counts: Mapping[ContactQuery, int]

    def count_contacts(self, student_id: str, staff_id: str, since: datetime) -> int:
        return self.counts[(student_id, staff_id, since)]


class NoHistory:
    """A history that remembers nothing (used where no store is configured)."""

    def count_contacts(self, student_id: str, staff_id: str, since: datetime) -> int:
        return 0

    def record_contact(self, student_id: str, staff_id: str, at: datetime) -> None:
        return None
