"""The policy engine: (sender, recipients, findings, history) → one Verdict per recipient.

Pure: it reads the already-loaded directory and the contact history, and writes nothing.
Every matching rule is reported with its reason (no student data in reasons); the strongest
enforced action wins (reject > hold > annotate > relay). Exemptions are conditions on the rules
they lift: a lifted rule is not applied, and the exemption is reported in its place so the
decision still shows why mail that looks like P1 went through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gateway.model import (
    Action,
    Annotation,
    ContactHistory,
    ContactPair,
    ContactPlan,
    ContactQuery,
    Decision,
    Envelope,
    Inspection,
    Party,
    RuleMatch,
    Verdict,
)
from gateway.policy.conditions import RuleContext, When
from gateway.policy.notices import Notices, notifications_for

POLICY_HEADER = "X-District-Policy"


class _NotRead:
    """The look-ahead's history: the static conditions it evaluates never count contacts."""

    def count_contacts(self, student_id: str, staff_id: str, since: datetime) -> int:
        raise LookupError("the contact look-ahead reads no history")


_NOT_READ = _NotRead()


@dataclass(frozen=True, slots=True)
class AnnotateSpec:
    headers: tuple[tuple[str, str], ...] = ()
    subject_tag: str | None = None
    notice: str | None = None  # a key of `notices:`


@dataclass(frozen=True, slots=True)
class Exemption:
    id: str
    reason: str
    when: When


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    action: Action
    reason: str
    when: When
    item: str = ""
    description: str = ""
    monitor: bool = False
    exempt: tuple[Exemption, ...] = ()
    annotate: AnnotateSpec | None = None
    reject_text: str | None = None
    notify: tuple[str, ...] = ()
    record_contact: bool = False


@dataclass(frozen=True, slots=True)
class PolicyOptions:
    monitor_only: bool = False
    notify_sender: bool = False
    reviewers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DirectoryView:
    """The directory functions the engine needs (pure, in-memory lookups)."""

    has_relationship: Callable[[str | None, str | None], bool]
    is_district: Callable[[str], bool]
    district_address: Callable[[str], str | None]
    name_of: Callable[[str], str | None]
    party: Callable[[str], Party | None] = lambda _address: None


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[Rule, ...]
    lexicons: Mapping[str, tuple[str, ...]]
    lookup: DirectoryView
    notices: Notices
    options: PolicyOptions = PolicyOptions()
    source: str = ""
    exemptions: tuple[Exemption, ...] = field(default=())
    # The conditions of rules and exemptions with a history test (P6), for
    # `contact_queries`; worked out once.
    history_whens: tuple[When, ...] = field(init=False, default=())
    # The rules whose matching records a contact (as `decide` reports them).
    recording_rules: tuple[Rule, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        whens = ([rule.when for rule in self.rules]
                 + [e.when for rule in self.rules for e in rule.exempt]
                 + [e.when for e in self.exemptions])
        with_history = {id(when): when for when in whens if when.history is not None}
        object.__setattr__(self, "history_whens", tuple(with_history.values()))
        object.__setattr__(self, "recording_rules", tuple(
            rule for rule in self.rules if rule.record_contact or rule.when.history is not None))

    def contact_queries(self, envelope: Envelope, sender: Party, recipients: Sequence[Party],
                        inspection: Inspection) -> frozenset[ContactQuery]:
        """The counts of `contact_plan`."""
        return self.contact_plan(envelope, sender, recipients, inspection).queries

    def contact_plan(self, envelope: Envelope, sender: Party, recipients: Sequence[Party],
                     inspection: Inspection) -> ContactPlan:
        """Every count `decide` may ask the history for, and every contact it will report,
        without reading the history: for each staff-student pair of the message, one count
        per history condition whose other conditions hold (the engine reads a count only
        then), and the pair itself when a recording rule's conditions other than the count
        hold. So the I/O shell counts and records them in one store transaction, off the
        event loop, only for the messages that need it, and hands the counts in."""
        now = envelope.received_at or datetime.now(UTC)
        if not self.history_whens and not self.recording_rules:
            return ContactPlan(at=now)
        queries: set[ContactQuery] = set()
        record: dict[ContactPair, None] = {}
        for recipient in recipients:
            ctx = RuleContext(envelope, sender, recipient, inspection, _NOT_READ, now,
                              self.lookup.has_relationship, self.lookup.is_district,
                              self.lookup.party)
            pair = ctx.staff_student_pair()
            if pair is None or not pair[0].person_id or not pair[1].person_id:
                continue
            student_staff = (pair[1].person_id, pair[0].person_id)
            for rule in self.recording_rules:
                if rule.when.test_static(ctx):
                    record[student_staff] = None
            for when in self.history_whens:
                assert when.history is not None
                if when.test_static(ctx):
                    since = now - timedelta(days=when.history.within_days)
                    queries.add((*student_staff, since))
        return ContactPlan(frozenset(queries), tuple(record), now)

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def decide(self, envelope: Envelope, sender: Party, recipients: Sequence[Party],
               inspection: Inspection, history: ContactHistory) -> Decision:
        now = envelope.received_at or datetime.now(UTC)
        verdicts: list[Verdict] = []
        contacts: list[tuple[str, str]] = []
        for recipient in recipients:
            ctx = RuleContext(envelope, sender, recipient, inspection, history, now,
                              self.lookup.has_relationship, self.lookup.is_district,
                              self.lookup.party)
            verdicts.append(self._verdict(ctx, contacts))
        notes = notifications_for(self, envelope, sender, verdicts)
        # Notices always go into the body, signed or not: an unverified header must never
        # decide what the reader sees. Copies changed so are ARC-sealed (gateway.auth.seal).
        return Decision(envelope, sender, tuple(verdicts), inspection, notes,
                        tuple(dict.fromkeys(contacts)))

    # -- one recipient ------------------------------------------------------------------
    def _verdict(self, ctx: RuleContext, contacts: list[tuple[str, str]]) -> Verdict:
        matches: list[RuleMatch] = []
        lifted: dict[str, list[str]] = {}
        for rule in self.rules:
            if not rule.when.test_static(ctx):
                continue
            if rule.record_contact or rule.when.history is not None:
                _add_contact(ctx, contacts)
            if not rule.when.test(ctx):
                continue
            exemption = next((e for e in rule.exempt if e.when.test(ctx)), None)
            if exemption is not None:
                lifted.setdefault(exemption.id, []).append(rule.id)
                continue
            matches.append(self._match(rule, ctx))
        matches.extend(self._exemption_matches(lifted))
        enforced = [m.action for m in matches if not m.monitor]
        return Verdict(ctx.recipient, Action.strongest(enforced), tuple(matches))

    def _match(self, rule: Rule, ctx: RuleContext) -> RuleMatch:
        monitor = rule.monitor or self.options.monitor_only
        annotation = None
        if rule.action is Action.ANNOTATE:
            annotation = self._annotation(rule, ctx)
        return RuleMatch(rule.id, rule.action, _reason(rule), monitor, annotation,
                         rule.reject_text if rule.action is Action.REJECT else None,
                         rule.notify)

    def _annotation(self, rule: Rule, ctx: RuleContext) -> Annotation:
        spec = rule.annotate or AnnotateSpec()
        headers = ((POLICY_HEADER, f"{rule.id}; annotate"), *spec.headers)
        notice = self.notices.render(spec.notice, rule, ctx, self.lookup) if spec.notice else None
        return Annotation(headers, spec.subject_tag, notice)

    def _exemption_matches(self, lifted: dict[str, list[str]]) -> list[RuleMatch]:
        out = []
        for exemption_id, rule_ids in lifted.items():
            exemption = next(e for r in self.rules for e in r.exempt if e.id == exemption_id)
            reason = f"{exemption.reason}; lifts {', '.join(dict.fromkeys(rule_ids))}"
            out.append(RuleMatch(exemption_id, Action.RELAY, reason))
        return out


def _reason(rule: Rule) -> str:
    return f"{rule.reason} ({rule.item})" if rule.item else rule.reason


def _add_contact(ctx: RuleContext, contacts: list[tuple[str, str]]) -> None:
    pair = ctx.staff_student_pair()
    if pair is not None and pair[0].person_id and pair[1].person_id:
        contacts.append((pair[1].person_id, pair[0].person_id))
