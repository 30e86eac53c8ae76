"""Compiles a rule's `when:` block into conditions, reporting mistakes by line and column.

Every key of a `when:` block must hold (AND); `any:` takes a list of blocks of which one must
hold (OR); `all:` a list of blocks that must all hold (to use `any:` twice in one rule).
The key vocabulary is listed in `CONDITION_KEYS` and documented in docs/policy.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gateway.model import Role
from gateway.policy.conditions import (
    ABOUT,
    ACCOUNTS,
    AllOf,
    AnyOf,
    AttachmentCond,
    ClaimsDistrictCond,
    CompleteCond,
    Condition,
    FindingCond,
    HeaderPartyCond,
    HistoryCond,
    OriginCond,
    PartyCond,
    RelationshipCond,
    SenderVerifiedCond,
    SubjectCond,
    When,
)
from gateway.policy.schema import Reader
from gateway.yamlsrc import YamlPath

CONDITION_KEYS = {"sender", "recipient", "relationship", "origin", "claims_district_domain",
                  "sender_verified", "inspection", "findings", "attachments", "subject",
                  "history", "any", "all", "reply_to", "from_header"}
_PARTY_KEYS = {"role", "account", "known", "domain"}
_FINDING_KEYS = {"detector", "min_count", "min_distinct", "min_students", "location", "about"}
_ROLES = tuple(r.value for r in Role)

DetectorNames = Callable[[YamlPath, tuple[str, ...]], tuple[str, ...]]


class WhenReader:
    def __init__(self, reader: Reader, detector_names: DetectorNames):
        self.r = reader
        self.detector_names = detector_names

    def when(self, p: YamlPath) -> When | None:
        if self.r.value(p) is None:
            self.r.fail(p[:-1], "missing 'when' (the conditions of this rule)", code="missing")
            return None
        before = len(self.r.errors)
        condition = self.block(p, top=True)
        history = self.history((*p, "history"))
        if len(self.r.errors) > before:
            return None
        return When(condition, history)

    def block(self, p: YamlPath, *, top: bool) -> Condition:
        node = self.r.mapping(p, CONDITION_KEYS)
        parts: list[Condition] = []
        for key in node:
            q: YamlPath = (*p, str(key))
            if key == "history":
                if not top:
                    self.r.fail(q, "'history' is only allowed at the top of 'when'", key=True)
                continue
            build = getattr(self, f"c_{key}", None)
            if build is not None:
                cond = build(q)
                if cond is not None:
                    parts.append(cond)
        return AllOf(tuple(parts))

    # -- one method per condition key ------------------------------------------------------
    def c_sender(self, p: YamlPath) -> Condition | None:
        return self.party(p, "sender")

    def c_recipient(self, p: YamlPath) -> Condition | None:
        return self.party(p, "recipient")

    def c_reply_to(self, p: YamlPath) -> Condition | None:
        return self.header_party(p, "reply_to")

    def c_from_header(self, p: YamlPath) -> Condition | None:
        return self.header_party(p, "from_header")

    def header_party(self, p: YamlPath, header: str) -> Condition | None:
        own = self.r.get((*p, "own"), bool, False)
        party = self.party(p, header, keys=_PARTY_KEYS | {"own"})
        return HeaderPartyCond(header, party, bool(own)) if party is not None else None

    def party(self, p: YamlPath, side: str,
              keys: set[str] = _PARTY_KEYS) -> PartyCond | None:
        self.r.mapping(p, keys)
        roles = self.r.choice_list((*p, "role"), _ROLES)
        accounts = self.r.choice_list((*p, "account"), ACCOUNTS)
        known = self.r.get((*p, "known"), bool, None)
        domains = self.r.str_list((*p, "domain"))
        return PartyCond(
            side,
            frozenset(Role(r) for r in roles) if self.r.value((*p, "role")) is not None
            else None,
            frozenset(accounts) if self.r.value((*p, "account")) is not None else None,
            known,
            frozenset(d.lower().lstrip(".") for d in domains) if domains else None)

    def c_relationship(self, p: YamlPath) -> Condition:
        return RelationshipCond(self.r.choice(p, ("reported", "none"), "reported") == "reported")

    def c_origin(self, p: YamlPath) -> Condition:
        return OriginCond(self.r.choice(p, ("trusted", "untrusted"), "trusted") == "trusted")

    def c_claims_district_domain(self, p: YamlPath) -> Condition:
        return ClaimsDistrictCond(self.r.get(p, bool, True))

    def c_sender_verified(self, p: YamlPath) -> Condition:
        return SenderVerifiedCond(self.r.get(p, bool, True))

    def c_inspection(self, p: YamlPath) -> Condition:
        return CompleteCond(self.r.choice(p, ("complete", "incomplete"), "complete")
                            == "complete")

    def c_findings(self, p: YamlPath) -> Condition | None:
        self.r.mapping(p, _FINDING_KEYS)
        names = self.r.str_list((*p, "detector"))
        if not names:
            self.r.fail(p, "'findings' needs a 'detector' (a detector name or group)")
            return None
        detectors = self.detector_names((*p, "detector"), names)
        about = self.r.get((*p, "about"), str, None)
        if about is not None and about not in ABOUT:
            self.r.fail((*p, "about"), f"'about' must be one of {', '.join(ABOUT)}"
                        + self.r.hint(about, ABOUT))
        return FindingCond(
            frozenset(detectors),
            min_count=self.r.number((*p, "min_count"), 1, minimum=1),
            min_distinct=self.r.number((*p, "min_distinct"), 0, minimum=0),
            min_students=self.r.number((*p, "min_students"), 0, minimum=0),
            location=self.r.get((*p, "location"), str, None),
            about=about if about in ABOUT else None)

    def c_attachments(self, p: YamlPath) -> Condition | None:
        self.r.mapping(p, {"types", "names"})
        types = tuple(t.lower() for t in self.r.str_list((*p, "types")))
        names = tuple(n.lower() for n in self.r.str_list((*p, "names")))
        if not types and not names:
            self.r.fail(p, "'attachments' needs 'types' or 'names' (glob patterns)")
            return None
        return AttachmentCond(types, names)

    def c_subject(self, p: YamlPath) -> Condition | None:
        self.r.mapping(p, {"contains", "matches"})
        contains = self.r.str_list((*p, "contains"))
        patterns = []
        for i, text in enumerate(self.r.str_list((*p, "matches"))):
            try:
                patterns.append(re.compile(text, re.IGNORECASE))
            except re.error as exc:
                where = (*p, "matches", i) if isinstance(self.r.value((*p, "matches")), list) \
                    else (*p, "matches")
                self.r.fail(where, f"bad regular expression: {exc}", code="bad-regex")
        if not contains and not patterns and self.r.value((*p, "matches")) is None:
            self.r.fail(p, "'subject' needs 'contains' or 'matches'")
            return None
        return SubjectCond(contains, tuple(patterns))

    def c_any(self, p: YamlPath) -> Condition | None:
        items = self.r.seq(p)
        if not items and self.r.value(p) is not None:
            self.r.fail(p, "'any' needs at least one block of conditions")
            return None
        return AnyOf(tuple(self.block((*p, i), top=False) for i in range(len(items))))

    def c_all(self, p: YamlPath) -> Condition | None:
        items = self.r.seq(p)
        return AllOf(tuple(self.block((*p, i), top=False) for i in range(len(items))))

    def history(self, p: YamlPath) -> HistoryCond | None:
        if self.r.value(p) is None:
            return None
        self.r.mapping(p, {"within_days", "at_least"})
        days = self.r.number((*p, "within_days"), None, kind=float, minimum=0.001)
        count = self.r.number((*p, "at_least"), None, kind=int, minimum=1)
        if days is None or count is None:
            if self.r.value((*p, "within_days")) is None or \
                    self.r.value((*p, "at_least")) is None:
                self.r.fail(p, "'history' needs 'within_days' and 'at_least'")
            return None
        return HistoryCond(days, count)
