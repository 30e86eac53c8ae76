"""`gateway policy test`: YAML cases that pin what the policy must decide.

IT edits policies.yaml; these cases say "this mail, to this recipient, must be held by P7" so
an edit that changes behaviour is caught before a reload. A case is an .eml file or an inline
envelope (built into real MIME, so the real inspection runs), plus the expected action and,
optionally, the exact rules per recipient. A case from an untrusted network may say what sender
authentication found (`auth:`), so rules that depend on it (P13) can be pinned offline.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from gateway.cli.dryrun import envelope_for
from gateway.model import Action, AuthCheck, AuthResults, Decision
from gateway.policy.schema import Reader
from gateway.runtime import Runtime
from gateway.yamlsrc import SourceErrors, YamlPath, load_yaml

_CASE_KEYS = {"name", "eml", "mail_from", "rcpt", "from", "subject", "body", "html",
              "attachments", "headers", "client_ip", "history", "auth", "expect"}
_ACTIONS = tuple(a.value for a in Action)
# The results each method can record (RFC 8601), as `gateway check --json` shows them.
_AUTH_RESULTS = {
    "spf": ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"),
    "dkim": ("pass", "fail", "neutral", "none", "policy", "temperror", "permerror"),
    "dmarc": ("pass", "fail", "none", "temperror", "permerror"),
}
_AUTH_KEYS = {*_AUTH_RESULTS, "from_domain_verified"}


class FixedHistory:
    """A contact history that reports the same number of earlier contacts for every pair."""

    def __init__(self, earlier: int):
        self.earlier = earlier

    def count_contacts(self, student_id: str, staff_id: str, since: datetime) -> int:
        return self.earlier

    def record_contact(self, student_id: str, staff_id: str, at: datetime) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Expectation:
    recipient: str
    action: str
    rules: tuple[str, ...] | None
    where: str  # file:line:col of the expectation


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    where: str
    raw: bytes
    mail_from: str | None
    rcpts: tuple[str, ...]
    client_ip: str | None
    earlier_contacts: int
    expect: tuple[Expectation, ...]
    auth: AuthResults | None = None  # recorded sender authentication, when the case gives it
    auth_where: str = ""


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def load_cases(path: Path) -> list[Case]:
    """Parse a case file; SourceErrors with positions for every problem."""
    located = load_yaml(path)
    r = Reader(located)
    root: YamlPath = ("cases",) if isinstance(located.data, dict) else ()
    if isinstance(located.data, dict):
        r.mapping((), {"cases"})
    cases = []
    for i, _ in enumerate(r.seq(root)):
        case = _case(r, (*root, i), path.parent)
        if case is not None:
            cases.append(case)
    if r.errors:
        raise SourceErrors(r.errors)
    return cases


def _case(r: Reader, p: YamlPath, base: Path) -> Case | None:
    r.mapping(p, _CASE_KEYS)
    line, col = r.src.where(p)
    where = f"{r.src.file}:{line}:{col}"
    name = r.get((*p, "name"), str, f"case at line {line}")
    raw = _message(r, p, base)
    history = r.mapping((*p, "history"), {"earlier_contacts"})
    earlier = r.number((*p, "history", "earlier_contacts"), 0) if history else 0
    expect = _expectations(r, (*p, "expect"))
    auth = _auth(r, p)
    if raw is None or not expect:
        return None
    auth_line, auth_col = r.src.where((*p, "auth"), key=True) if auth else (line, col)
    return Case(name, where, raw, r.get((*p, "mail_from"), str, None),
                r.str_list((*p, "rcpt")), r.get((*p, "client_ip"), str, None), earlier,
                tuple(expect), auth, f"{r.src.file}:{auth_line}:{auth_col}")


def _auth(r: Reader, p: YamlPath) -> AuthResults | None:
    """`auth: {spf: pass, dkim: pass, dmarc: pass, from_domain_verified: true}`: what sender
    authentication found, as `serve` would have recorded it. SPF is about the envelope
    sender's domain, DKIM and DMARC about the From domain. A pass of SPF or DKIM verifies its
    domain (relaxed alignment, as `serve` decides it); `dmarc` and `from_domain_verified`
    say whether the From domain passed, and must agree with each other and with an aligned
    pass. Any method left out was not recorded."""
    q: YamlPath = (*p, "auth")
    if r.value(q) is None:
        return None
    node = r.mapping(q, _AUTH_KEYS)
    if not node:
        if isinstance(r.value(q), dict):
            r.fail(q, "'auth' needs at least one of: " + ", ".join(sorted(_AUTH_KEYS)))
        return None
    from gateway.auth.dmarc import organisational_domain

    results = {m: r.choice((*q, m), choices, "") for m, choices in _AUTH_RESULTS.items()}
    stated = r.get((*q, "from_domain_verified"), bool, None)
    mail_from = r.get((*p, "mail_from"), str, "") or ""
    from_address = r.get((*p, "from"), str, mail_from) or ""
    mail_domain = mail_from.rpartition("@")[2].lower().rstrip(".")
    from_domain = from_address.rpartition("@")[2].lower().rstrip(".").strip(">")
    org = {d: organisational_domain(d) for d in (mail_domain, from_domain) if d}
    verified = set()
    if results["spf"] == "pass" and mail_domain:
        verified.add(org[mail_domain])
    if results["dkim"] == "pass" and from_domain:
        verified.add(org[from_domain])
    aligned = bool(from_domain) and org[from_domain] in verified
    dmarc = results["dmarc"]
    if dmarc and stated is not None and (dmarc == "pass") != stated:
        r.fail((*q, "from_domain_verified"), f"'from_domain_verified: {str(stated).lower()}' "
               f"contradicts 'dmarc: {dmarc}'")
        return None
    from_verified = stated if stated is not None else (dmarc == "pass" if dmarc else aligned)
    if aligned and not from_verified:
        r.fail((*q, "dmarc" if dmarc else "from_domain_verified"),
               "an SPF or DKIM pass aligned with the From domain verifies it: the From "
               "domain cannot be unverified here")
        return None
    if from_verified:
        if not from_domain:
            r.fail((*q, "from_domain_verified"), "the case has no From domain to verify")
            return None
        verified.add(org[from_domain])
    checks = [AuthCheck("spf", results["spf"], (("smtp.mailfrom", mail_from),),
                        domain=mail_domain)] if results["spf"] else []
    if results["dkim"]:
        checks.append(AuthCheck("dkim", results["dkim"], (("header.d", from_domain),),
                                domain=from_domain))
    if dmarc or stated is not None:
        checks.append(AuthCheck("dmarc", dmarc or ("pass" if from_verified else "fail"),
                                (("header.from", from_domain),), domain=from_domain))
    temporary = any(c.result == "temperror" for c in checks)
    return AuthResults(tuple(checks), frozenset(verified), temporary, org)


def _message(r: Reader, p: YamlPath, base: Path) -> bytes | None:
    eml = r.get((*p, "eml"), str, None)
    if eml is not None:
        try:
            return (base / eml).read_bytes()
        except OSError as exc:
            r.fail((*p, "eml"), f"cannot read {eml}: {exc.strerror or exc}")
            return None
    if r.value((*p, "mail_from")) is None:
        r.fail(p, "a case needs 'eml' or an inline message ('mail_from', 'rcpt', ...)")
        return None
    return _build(r, p)


def _build(r: Reader, p: YamlPath) -> bytes | None:
    msg = EmailMessage()
    mail_from = r.get((*p, "mail_from"), str, "")
    msg["From"] = r.get((*p, "from"), str, mail_from) or "unknown@invalid"
    msg["To"] = ", ".join(r.str_list((*p, "rcpt")))
    msg["Subject"] = r.get((*p, "subject"), str, "test")
    msg["Date"] = format_datetime(datetime(2026, 9, 1, 9, 0))
    msg["Message-ID"] = make_msgid(domain="policy-test.invalid")
    for name, value in r.mapping((*p, "headers"), None).items():
        msg[str(name)] = str(value)
    msg.set_content(r.get((*p, "body"), str, "") or "\n")
    html = r.get((*p, "html"), str, None)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for i, _ in enumerate(r.seq((*p, "attachments"))):
        if not _attach(r, (*p, "attachments", i), msg):
            return None
    return msg.as_bytes()


def _attach(r: Reader, p: YamlPath, msg: EmailMessage) -> bool:
    r.mapping(p, {"filename", "content_type", "text", "base64"})
    filename = r.get((*p, "filename"), str, "attachment.bin")
    ctype = r.get((*p, "content_type"), str, "application/octet-stream")
    maintype, _, subtype = ctype.partition("/")
    text = r.get((*p, "text"), str, None)
    try:
        data = text.encode("utf-8") if text is not None else \
            base64.b64decode(r.get((*p, "base64"), str, ""), validate=True)
    except (binascii.Error, ValueError):
        r.fail((*p, "base64"), "not valid base64")
        return False
    msg.add_attachment(data, maintype=maintype or "application",
                       subtype=subtype or "octet-stream", filename=filename)
    return True


def _expectations(r: Reader, p: YamlPath) -> list[Expectation]:
    out = []
    node = r.mapping(p, None)
    if r.value(p) is None:
        r.fail(p[:-1], "a case needs 'expect' (recipient: action)")
    for rcpt, value in node.items():
        q: YamlPath = (*p, str(rcpt))
        line, col = r.src.where(q, key=True)
        where = f"{r.src.file}:{line}:{col}"
        if isinstance(value, dict):
            r.mapping(q, {"action", "rules"})
            action = r.choice((*q, "action"), _ACTIONS, "")
            rules: tuple[str, ...] | None = r.str_list((*q, "rules")) \
                if r.value((*q, "rules")) is not None else None
        else:
            action, rules = r.choice(q, _ACTIONS, ""), None
        if action:
            out.append(Expectation(str(rcpt), action, rules, where))
        elif not r.errors:
            r.fail(q, "expected an action: " + ", ".join(_ACTIONS))
    return out


def run_case(case: Case, runtime: Runtime) -> CaseResult:
    from gateway.pipeline import decide

    envelope = envelope_for(case.raw, runtime.settings, mail_from=case.mail_from,
                            rcpts=case.rcpts, client_ip=case.client_ip)
    if case.auth is not None:
        if envelope.client_trusted:  # serve never authenticates a trusted network's mail
            return CaseResult(case, (f"{case.auth_where}: 'auth' is for mail from an untrusted "
                                     f"client_ip; {envelope.client_ip} is in trusted_networks",))
        envelope = replace(envelope, auth=case.auth)
    decision = decide(envelope, runtime, FixedHistory(case.earlier_contacts))
    return CaseResult(case, tuple(compare(decision, case.expect)))


def compare(decision: Decision, expect: Sequence[Expectation]) -> list[str]:
    """Human-readable differences between a decision and the expectations."""
    from gateway.addresses import normalize_address

    verdicts = {v.recipient.address: v for v in decision.verdicts}
    failures = []
    for exp in expect:
        verdict = verdicts.get(normalize_address(exp.recipient))
        if verdict is None:
            failures.append(f"{exp.where}: {exp.recipient} is not a recipient of the message")
            continue
        got_rules = sorted(dict.fromkeys(verdict.rules))
        if verdict.action.value != exp.action:
            failures.append(f"{exp.where}: {exp.recipient}: expected {exp.action}, got "
                            f"{verdict.action.value} (rules: {', '.join(got_rules) or 'none'})")
        if exp.rules is not None and sorted(set(exp.rules)) != got_rules:
            failures.append(f"{exp.where}: {exp.recipient}: expected rules "
                            f"{', '.join(sorted(set(exp.rules))) or 'none'}, got "
                            f"{', '.join(got_rules) or 'none'}")
    return failures


def describe(results: Sequence[CaseResult]) -> list[str]:
    lines = []
    for result in results:
        status = "pass" if result.passed else "FAIL"
        lines.append(f"{status}  {result.case.name}  ({result.case.where})")
        lines.extend(f"      {failure}" for failure in result.failures)
    return lines
