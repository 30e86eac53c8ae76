"""Wording: annotation notices and the notifications a decision sends.

IT edits the wording in policies.yaml; the placeholders each template may use are fixed here
so the loader can reject a misspelt one with its line and column. Notices and supervisor
notifications may name the student (they go by mail to the employee or the principal); the
sender's notice and the reviewers' notice carry only rule ids and policy items, and nothing
here ever goes to a log.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from gateway.model import Action, Envelope, Notification, Party, Role, Verdict
from gateway.policy.conditions import authentication_reason

if TYPE_CHECKING:
    from gateway.policy.conditions import RuleContext
    from gateway.policy.engine import DirectoryView, Policy, Rule

log = structlog.get_logger("gateway.policy")

NOTICE_FIELDS = frozenset({"student_address", "student_name", "employee_name",
                           "employee_address", "sender", "recipient", "rule", "item",
                           "auth_result"})
NOTIFICATION_FIELDS: Mapping[str, frozenset[str]] = {
    "supervisor": NOTICE_FIELDS | {"supervisor"},
    "sender": frozenset({"rules", "held_count"}),
    "reviewers": frozenset({"rules", "held_count"}),
}
NOTIFY_TARGETS = tuple(NOTIFICATION_FIELDS)

DEFAULT_NOTIFICATIONS: Mapping[str, tuple[str, str]] = {
    "supervisor": (
        "Board policy 5.125: repeated student contact from a personal account",
        "{employee_name} ({employee_address}) has again received mail from a student's "
        "personal address: {student_name}. District account to use instead: "
        "{student_address}.\nRule {rule}, {item}. Personal guideline 7 asks the employee to "
        "share continued contact with their supervisor; this notice does that for them.\n"),
    "sender": (
        "Your message is held for review (board policy 5.125)",
        "Your message to {held_count} recipient(s) was held for review by the District "
        "under: {rules}.\nA reviewer will release or remove it. You do not need to send "
        "it again.\n"),
    "reviewers": (
        "Mail held for review (board policy 5.125)",
        "A message to {held_count} recipient(s) was held under: {rules}.\n"
        "Review it with `gateway quarantine list`.\n"),
}


def template_fields(template: str) -> list[str]:
    """The {placeholders} a template uses; ValueError if its braces are malformed."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "(unknown)"


@dataclass(frozen=True, slots=True)
class Notices:
    texts: Mapping[str, str] = field(default_factory=dict)
    notifications: Mapping[str, tuple[str, str]] = field(
        default_factory=lambda: dict(DEFAULT_NOTIFICATIONS))

    def render(self, name: str, rule: Rule, ctx: RuleContext, lookup: DirectoryView) -> str:
        values = party_values(ctx.sender, ctx.recipient, lookup)
        values.update(rule=rule.id, item=rule.item)
        if "{auth_result" in self.texts[name]:  # worked out only where a notice says it
            values["auth_result"] = authentication_reason(ctx)
        return self.texts[name].format_map(values)

    def notification(self, kind: str, values: Mapping[str, str]) -> tuple[str, str]:
        subject, body = self.notifications.get(kind, DEFAULT_NOTIFICATIONS[kind])
        filled = _Values(values)
        return subject.format_map(filled), body.format_map(filled)


def party_values(sender: Party, recipient: Party, lookup: DirectoryView) -> _Values:
    """Template values about the student and the employee of this message."""
    values = _Values(sender=sender.address, recipient=recipient.address)
    staff = next((p for p in (recipient, sender) if p.role is Role.STAFF), None)
    student = next((p for p in (sender, recipient) if p.role is Role.STUDENT), None)
    if student is not None:
        pid = student.person_id
        values["student_address"] = (lookup.district_address(pid) if pid else None) or \
            (student.address if student.district_account else "(not in the directory)")
        values["student_name"] = student.name or (lookup.name_of(pid) if pid else None) or \
            student.address
    if staff is not None:
        values["employee_address"] = staff.address
        values["employee_name"] = staff.name or staff.address
        values["supervisor"] = staff.supervisor or ""
    return values


def notifications_for(policy: Policy, envelope: Envelope, sender: Party,
                      verdicts: Sequence[Verdict]) -> tuple[Notification, ...]:
    """Supervisor notices per enforced rule that asks for one; one sender notice and one
    reviewers notice per message covering every held recipient."""
    out: list[Notification] = []
    for verdict in verdicts:
        for match in verdict.matches:
            if "supervisor" in match.notify and not match.monitor:
                for note in _supervisor_notices(policy, sender, verdict.recipient, match.rule):
                    if note not in out:
                        out.append(note)
    held = [v for v in verdicts if v.action is Action.HOLD]
    if not held:
        return tuple(out)
    wants = {t for v in held for m in v.matches if not m.monitor for t in m.notify}
    rules = _held_rules(policy, held)
    values = {"rules": rules, "held_count": str(len(held))}
    if (policy.options.notify_sender or "sender" in wants) and envelope.mail_from:
        subject, body = policy.notices.notification("sender", values)
        out.append(Notification("sender", envelope.mail_from, subject, body, _first(held)))
    if "reviewers" in wants:
        subject, body = policy.notices.notification("reviewers", values)
        out.extend(Notification("reviewers", to, subject, body, _first(held))
                   for to in policy.options.reviewers)
    return tuple(out)


NO_SUPERVISOR = ("No supervisor is listed for this employee in the District directory, so "
                 "this notice goes to the quarantine reviewers instead. Please pass it on "
                 "and add the supervisor to the directory.\n\n")


def _supervisor_notices(policy: Policy, sender: Party, recipient: Party,
                        rule_id: str) -> list[Notification]:
    """To the employee's supervisor; with none in the directory, to the reviewers, so the
    contact the rule exists to report is never dropped in silence."""
    staff = recipient if recipient.role is Role.STAFF else sender
    if staff.role is not Role.STAFF:
        return []
    rule = policy.rule(rule_id)
    values = party_values(sender, recipient, policy.lookup)
    values.update(rule=rule_id, item=rule.item if rule else "")
    subject, body = policy.notices.notification("supervisor", values)
    if staff.supervisor:
        return [Notification("supervisor", staff.supervisor, subject, body, rule_id)]
    # Staff ids are not student data; `gateway policy validate` lists these people too.
    log.warning("supervisor_missing", rule=rule_id, staff_id=staff.person_id,
                notified="reviewers" if policy.options.reviewers else "nobody")
    return [Notification("reviewers", to, subject, NO_SUPERVISOR + body, rule_id)
            for to in policy.options.reviewers]


def _held_rules(policy: Policy, held: Sequence[Verdict]) -> str:
    ids = dict.fromkeys(m.rule for v in held for m in v.matches
                        if m.action is Action.HOLD and not m.monitor)
    parts = []
    for rule_id in ids:
        rule = policy.rule(rule_id)
        parts.append(f"{rule_id} ({rule.item})" if rule and rule.item else rule_id)
    return ", ".join(parts)


def _first(held: Sequence[Verdict]) -> str:
    return next((m.rule for v in held for m in v.matches
                 if m.action is Action.HOLD and not m.monitor), "")
