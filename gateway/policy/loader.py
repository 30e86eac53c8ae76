"""policies.yaml → Policy, with every mistake reported as `FILE:LINE:COLUMN: message`.

IT edits this file by hand, so the loader collects all errors in one pass (unknown keys and
actions with a "did you mean", bad regular expressions, thresholds of the wrong type, unknown
detectors, notices and exemptions) instead of stopping at the first. The language itself is
documented in docs/policy.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gateway.config import Settings
from gateway.model import LEXICON_PREFIX, OTHER_DETECTORS, STUDENT_RECORD_DETECTORS, Action
from gateway.policy.conditions import When
from gateway.policy.engine import (
    AnnotateSpec,
    DirectoryView,
    Exemption,
    Policy,
    PolicyOptions,
    Rule,
)
from gateway.policy.notices import (
    DEFAULT_NOTIFICATIONS,
    NOTICE_FIELDS,
    NOTIFICATION_FIELDS,
    NOTIFY_TARGETS,
    Notices,
    template_fields,
)
from gateway.policy.schema import Reader
from gateway.policy.when import WhenReader
from gateway.policy.wordlists import PACKAGED, WordListError, packaged_words
from gateway.yamlsrc import SourceError, SourceErrors, YamlPath, load_yaml

BUILTIN_GROUPS: dict[str, tuple[str, ...]] = {
    "student_record": STUDENT_RECORD_DETECTORS,
    "any_detector": STUDENT_RECORD_DETECTORS + OTHER_DETECTORS,
}
_TOP = {"version", "options", "groups", "lexicons", "notices", "notifications",
        "exemptions", "rules"}
_RULE = {"id", "item", "description", "when", "exempt", "action", "reason", "mode",
         "annotate", "reject", "notify", "record_contact"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def load_policy(settings: Settings, directory: Any) -> Policy:
    """Load settings.policies; raise SourceErrors listing every problem found."""
    if settings.policies is None:
        raise SourceErrors([SourceError(str(settings.source), 1, 1,
                                        "no 'policies' file configured", "missing")])
    return parse_policy(settings.policies, settings, directory)


def parse_policy(path: Path, settings: Settings, directory: Any) -> Policy:
    located = load_yaml(path, display_name=_display(path))
    reader = PolicyReader(Reader(located))
    policy = reader.policy(settings, directory)
    if reader.r.errors:
        raise SourceErrors(reader.r.errors)
    return policy


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class PolicyReader:
    """Builds the Policy section by section; errors accumulate in the schema Reader."""

    def __init__(self, reader: Reader):
        self.r = reader
        self.detectors: set[str] = set(STUDENT_RECORD_DETECTORS + OTHER_DETECTORS)
        self.groups: dict[str, tuple[str, ...]] = dict(BUILTIN_GROUPS)
        self.notice_names: set[str] = set()
        self.exemptions: dict[str, Exemption] = {}

    def policy(self, settings: Settings, directory: Any) -> Policy:
        r = self.r
        r.mapping((), _TOP)
        version = r.get(("version",), int, 1)
        if version != 1:
            r.fail(("version",), "only policy language version 1 is supported")
        # No option is defined today: the section stays so a file may carry it empty.
        r.mapping(("options",), set())
        lexicons = self.lexicons()
        self.user_groups()
        notices = Notices(self.notices(), self.notifications())
        self.exemptions = {e.id: e for e in self.exemption_list()}
        rules = self.rules()
        return Policy(
            rules=rules, lexicons=lexicons, lookup=_lookup(directory), notices=notices,
            options=PolicyOptions(settings.monitor_only, settings.quarantine.notify_sender,
                                  settings.quarantine.reviewers),
            source=r.src.file, exemptions=tuple(self.exemptions.values()))

    # -- sections -------------------------------------------------------------------------
    def lexicons(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for name in self.r.mapping(("lexicons",), None):
            if not _NAME_RE.match(str(name)):
                self.r.fail(("lexicons", name), f"bad lexicon name '{name}'", key=True)
                continue
            p: YamlPath = ("lexicons", name)
            if isinstance(self.r.value(p), dict):
                out[str(name)] = self.lexicon_sources(p)
            else:
                out[str(name)] = self.r.str_list(p)
            self.detectors.add(LEXICON_PREFIX + str(name))
        return out

    def lexicon_sources(self, p: YamlPath) -> tuple[str, ...]:
        """`{packaged: [list names], terms: [...], except: [...]}`: packaged word lists plus
        the district's own terms, less the words it excepts (whole terms, any case)."""
        self.r.mapping(p, {"packaged", "terms", "except"})
        words: list[str] = []
        for i, list_name in enumerate(self.r.str_list((*p, "packaged"))):
            where = (*p, "packaged", i) if isinstance(self.r.value((*p, "packaged")), list) \
                else (*p, "packaged")
            try:
                words.extend(packaged_words(list_name))
            except KeyError:
                self.r.fail(where, f"unknown packaged word list '{list_name}'"
                            + self.r.hint(list_name, PACKAGED) + "; known: "
                            + ", ".join(sorted(PACKAGED)), code="unknown-word-list")
            except WordListError as exc:
                self.r.fail(where, str(exc), code="word-list")
        words.extend(self.r.str_list((*p, "terms")))
        excepted = {" ".join(w.lower().split()) for w in self.r.str_list((*p, "except"))}
        return tuple(dict.fromkeys(w for w in words
                                   if " ".join(w.lower().split()) not in excepted))

    def user_groups(self) -> None:
        for name in self.r.mapping(("groups",), None):
            if name in BUILTIN_GROUPS:
                self.r.fail(("groups", name), f"'{name}' is a built-in group", key=True)
                continue
            members = self.r.str_list(("groups", name))
            self.groups[str(name)] = self.detector_names(("groups", name), members)

    def notices(self) -> dict[str, str]:
        out = {}
        for name in self.r.mapping(("notices",), None):
            text = self.r.get(("notices", name), str, None)
            if text is not None and self.template(("notices", name), text, NOTICE_FIELDS):
                out[str(name)] = text
            self.notice_names.add(str(name))
        return out

    def notifications(self) -> dict[str, tuple[str, str]]:
        out = dict(DEFAULT_NOTIFICATIONS)
        for kind in self.r.mapping(("notifications",), set(NOTIFY_TARGETS)):
            p: YamlPath = ("notifications", kind)
            self.r.mapping(p, {"subject", "body"})
            subject = self.r.get((*p, "subject"), str, out[kind][0])
            body = self.r.get((*p, "body"), str, out[kind][1])
            fields = NOTIFICATION_FIELDS[kind]
            if self.template((*p, "subject"), subject, fields) and \
                    self.template((*p, "body"), body, fields):
                out[kind] = (subject, body)
        return out

    def template(self, path: YamlPath, text: str, allowed: frozenset[str]) -> bool:
        try:
            names = template_fields(text)
        except ValueError as exc:
            self.r.fail(path, f"bad template: {exc} (write {{{{ and }}}} for literal braces)")
            return False
        bad = [n for n in names if n not in allowed]
        for name in bad:
            self.r.fail(path, f"unknown placeholder '{{{name}}}'" + self.r.hint(name, allowed)
                        + "; allowed: " + ", ".join(sorted(allowed)))
        return not bad

    def exemption_list(self) -> list[Exemption]:
        out = []
        for i, _ in enumerate(self.r.seq(("exemptions",))):
            p: YamlPath = ("exemptions", i)
            self.r.mapping(p, {"id", "reason", "when"})
            ident = self.ident(p, [e.id for e in out])
            reason = self.r.required_str((*p, "reason"), "an exemption needs a 'reason'")
            when = self.when((*p, "when"))
            if ident and reason and when is not None:
                out.append(Exemption(ident, reason, when))
        return out

    def rules(self) -> tuple[Rule, ...]:
        out: list[Rule] = []
        seen: list[str] = []
        for i, _ in enumerate(self.r.seq(("rules",))):
            rule = self.rule(("rules", i), seen)
            if rule is not None:
                out.append(rule)
        return tuple(out)

    def rule(self, p: YamlPath, seen: list[str]) -> Rule | None:
        r = self.r
        r.mapping(p, _RULE)
        ident = self.ident(p, seen)
        action = self.action(p)
        reason = r.required_str((*p, "reason"), "a rule needs a 'reason' (shown to reviewers)")
        when = self.when((*p, "when"))
        mode = r.choice((*p, "mode"), ("enforce", "monitor"), "enforce")
        exempt = self.exempt_refs(p)
        annotate = self.annotate_spec(p, action)
        reject = r.get((*p, "reject"), str, None)
        if reject is not None and action is not Action.REJECT:
            r.fail((*p, "reject"), "'reject' text only applies to action: reject")
        notify = self.r.choice_list((*p, "notify"), NOTIFY_TARGETS)
        record = r.get((*p, "record_contact"), bool, False)
        if not (ident and action and reason and when):
            return None
        seen.append(ident)
        return Rule(ident, action, reason, when, r.get((*p, "item"), str, ""),
                    r.get((*p, "description"), str, ""), mode == "monitor", exempt,
                    annotate, reject, notify, record)

    # -- rule parts -----------------------------------------------------------------------
    def ident(self, p: YamlPath, seen: list[str]) -> str | None:
        ident = self.r.required_str((*p, "id"), "missing 'id'")
        if ident and not _NAME_RE.match(ident):
            self.r.fail((*p, "id"), f"bad id '{ident}' (letters, digits, _ . -)")
            return None
        if ident and ident in seen:
            self.r.fail((*p, "id"), f"duplicate id '{ident}'", code="duplicate-id")
            return None
        return ident

    def action(self, p: YamlPath) -> Action | None:
        names = tuple(a.value for a in Action)
        value = self.r.get((*p, "action"), str, None)
        if value is None:
            self.r.fail(p, "a rule needs an 'action' (" + ", ".join(names) + ")")
            return None
        if value not in names:
            self.r.fail((*p, "action"), f"unknown action '{value}'" + self.r.hint(value, names),
                        code="unknown-action")
            return None
        return Action(value)

    def exempt_refs(self, p: YamlPath) -> tuple[Exemption, ...]:
        out = []
        for i, name in enumerate(self.r.str_list((*p, "exempt"))):
            if name in self.exemptions:
                out.append(self.exemptions[name])
            else:
                self.r.fail((*p, "exempt", i), f"unknown exemption '{name}'"
                            + self.r.hint(name, self.exemptions), code="unknown-exemption")
        return tuple(out)

    def annotate_spec(self, p: YamlPath, action: Action | None) -> AnnotateSpec | None:
        q: YamlPath = (*p, "annotate")
        if self.r.value(q) is None:
            return None
        if action is not Action.ANNOTATE:
            self.r.fail(q, "'annotate' only applies to action: annotate")
        self.r.mapping(q, {"headers", "subject_tag", "notice"})
        headers = []
        for name in self.r.mapping((*q, "headers"), None):
            value = self.r.get((*q, "headers", name), str, None)
            if not re.match(r"^[A-Za-z0-9-]+$", str(name)):
                self.r.fail((*q, "headers", name), f"bad header name '{name}'", key=True)
            elif value is not None:
                headers.append((str(name), value.replace("\r", " ").replace("\n", " ")))
        notice = self.r.get((*q, "notice"), str, None)
        if notice is not None and notice not in self.notice_names:
            self.r.fail((*q, "notice"), f"unknown notice '{notice}'"
                        + self.r.hint(notice, self.notice_names), code="unknown-notice")
            notice = None
        return AnnotateSpec(tuple(headers), self.r.get((*q, "subject_tag"), str, None), notice)

    def when(self, p: YamlPath) -> When | None:
        return WhenReader(self.r, self.detector_names).when(p)

    def detector_names(self, p: YamlPath, names: tuple[str, ...]) -> tuple[str, ...]:
        out: list[str] = []
        for i, name in enumerate(names):
            if name in self.groups:
                out.extend(self.groups[name])
            elif name in self.detectors:
                out.append(name)
            else:
                choices = sorted(self.detectors | set(self.groups))
                self.r.fail((*p, i) if len(names) > 1 or self.r.value(p) != name else p,
                            f"unknown detector '{name}'" + self.r.hint(name, choices),
                            code="unknown-detector")
        return tuple(out)


def _lookup(directory: Any) -> DirectoryView:
    """Adapt the directory (or a minimal stand-in in tests) to what the engine needs."""
    def missing(*_: Any) -> None:
        return None

    return DirectoryView(
        has_relationship=getattr(directory, "has_relationship", lambda *_: False),
        is_district=getattr(directory, "is_district", lambda _a: False),
        district_address=getattr(directory, "district_address", missing),
        name_of=getattr(directory, "name_of", missing),
        party=getattr(directory, "party", missing),
    )
