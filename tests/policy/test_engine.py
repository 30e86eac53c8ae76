"""The shipped policies.yaml, decided through the pipeline: P1–P13, the P3 exemption and both
directions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.model import (
    Action,
    Attachment,
    AuthCheck,
    AuthResults,
    CountedHistory,
    Envelope,
    Inspection,
)
from tests.factories import (
    PEOPLE,
    SHIPPED_POLICY,
    STAFF_DOMAIN,
    STUDENT_DOMAIN,
    CountingHistory,
    World,
    finding,
    world,
)

JSMITH = f"jsmith@{STAFF_DOMAIN}"  # staff T1, District
JANE_HOME = "jane.home@gmail.example"  # staff T1, personal
MBROWN = f"mbrown@{STAFF_DOMAIN}"  # staff T2 (reported relationship with student 517204)
MARK_HOME = "mark.brown@home.example"  # staff T2, personal
ALEX = f"alex@{STUDENT_DOMAIN}"  # student 482913, District
ALEX_HOME = "alexj@gmail.example"  # student 482913, personal
SAM = f"sam@{STUDENT_DOMAIN}"  # student 517204, District
SAM_HOME = "sam.lee@yahoo.example"  # student 517204, personal
ROBIN = "robin@parents.example"  # parent of 482913
OUTSIDER = "someone@example.com"
UNLISTED_STAFF = f"newhire@{STAFF_DOMAIN}"  # District domain, not in the people file
UNLISTED_STUDENT = f"newkid@{STUDENT_DOMAIN}"

RECORD = finding("student_number", "482913")
OTHER_CHILD = finding("record_category", "517204")


@pytest.fixture
def w(tmp_path: Path) -> World:
    return world(tmp_path)


def _outcome(w: World, mail_from: str, rcpt: str, **kwargs) -> tuple[str, list[str]]:
    verdict = w.decide(mail_from, rcpt, **kwargs).verdicts[0]
    return verdict.action.value, verdict.rules


ACCOUNT_CASES = [
    # P1: staff (any address) → a student's personal address
    ("P1 district→personal", JSMITH, ALEX_HOME, "hold", ["P1"]),
    ("P1 personal→personal", JANE_HOME, ALEX_HOME, "hold", ["P1"]),
    ("P1 unlisted staff", UNLISTED_STAFF, ALEX_HOME, "hold", ["P1"]),
    ("P1 tagged spelling", JSMITH, "AlexJ+homework@gmail.example", "hold", ["P1"]),
    ("P1 other pair not exempt", MBROWN, ALEX_HOME, "hold", ["P1"]),
    # P2: staff personal → student District account
    ("P2", JANE_HOME, ALEX, "hold", ["P2"]),
    ("P2 unlisted student", JANE_HOME, UNLISTED_STUDENT, "hold", ["P2"]),
    # P3: a reported relationship lifts P1/P2/P5, reported in their place
    ("P3 lifts P1", MBROWN, SAM_HOME, "relay", ["P3"]),
    ("P3 lifts P1 personal", MARK_HOME, SAM_HOME, "relay", ["P3"]),
    ("P3 lifts P2", MARK_HOME, SAM, "relay", ["P3"]),
    ("P3 lifts P5", SAM_HOME, MBROWN, "relay", ["P3"]),
    # P4: staff District → student District, parent, colleague: relay, no rule
    ("P4 student", JSMITH, ALEX, "relay", []),
    ("P4 parent", JSMITH, ROBIN, "relay", []),
    ("P4 colleague", JSMITH, MBROWN, "relay", []),
    ("P4 outsider", JSMITH, OUTSIDER, "relay", []),
    # the other direction: students writing from District accounts are fine
    ("student district→staff", ALEX, JSMITH, "relay", []),
    # P14: a student's District account → an employee's personal address
    ("P14", ALEX, JANE_HOME, "hold", ["P14"]),
    ("P14 lifted by P3", SAM, MARK_HOME, "relay", ["P3"]),
    ("P14 not for an outsider", ALEX, OUTSIDER, "relay", []),
    # P5: student personal → staff District account
    ("P5", ALEX_HOME, JSMITH, "annotate", ["P5"]),
    ("P5 unlisted staff", ALEX_HOME, UNLISTED_STAFF, "annotate", ["P5"]),
    ("student personal→staff personal", ALEX_HOME, JANE_HOME, "relay", []),
    ("parent→staff", ROBIN, JSMITH, "relay", []),
    ("outsider→staff", OUTSIDER, JSMITH, "relay", []),
]


@pytest.mark.parametrize(("label", "sender", "rcpt", "action", "rules"), ACCOUNT_CASES,
                         ids=[c[0] for c in ACCOUNT_CASES])
def test_account_rules(w: World, label: str, sender: str, rcpt: str, action: str,
                       rules: list[str]) -> None:
    assert _outcome(w, sender, rcpt) == (action, rules)


DATA_CASES = [
    # P7: student-record data from staff
    ("P7 outsider", JSMITH, OUTSIDER, [RECORD], "hold", ["P7"]),
    ("P7 own personal", JSMITH, JANE_HOME, [RECORD], "hold", ["P7"]),
    ("P7 student personal", JSMITH, ALEX_HOME, [RECORD], "hold", ["P1", "P7"]),
    ("P7 parent, other child", JSMITH, ROBIN, [OTHER_CHILD], "hold", ["P7"]),
    ("P7 parent, mixed", JSMITH, ROBIN, [RECORD, OTHER_CHILD], "hold", ["P7"]),
    ("P7 parent, unidentified number", JSMITH, ROBIN, [finding("student_number_format")],
     "hold", ["P7"]),
    ("P7 not lifted by P3", MBROWN, SAM_HOME, [finding("dob", "517204")], "hold",
     ["P7", "P3"]),
    ("parent, own child", JSMITH, ROBIN, [RECORD], "relay", []),
    ("own record to the student", JSMITH, ALEX, [RECORD], "relay", []),
    ("another student's record to a student", JSMITH, ALEX, [OTHER_CHILD], "hold", ["P7"]),
    ("record to colleague", JSMITH, MBROWN, [RECORD], "relay", []),
    ("record from outsider", OUTSIDER, JSMITH, [RECORD], "relay", []),
    ("record from parent", ROBIN, JSMITH, [RECORD], "relay", []),
    # P8: roster to a parent, even with their own child on it
    ("P8 roster", JSMITH, ROBIN,
     [finding("roster", "482913", "517204", "1", "2", "3", count=5, distinct=5)],
     "hold", ["P7", "P8"]),
    ("P8 five students across findings", JSMITH, ROBIN,
     [finding("student_name", "482913"), finding("student_name", "1", "2", "3", "4")],
     "hold", ["P7", "P8"]),
    ("roster of 4 to colleague", JSMITH, MBROWN,
     [finding("roster", "1", "2", "3", "4", count=4, distinct=4)], "relay", []),
    # P9: SSN from a District account to outside the District
    ("P9 staff", JSMITH, OUTSIDER, [finding("ssn")], "hold", ["P7", "P9"]),
    ("P9 student district", ALEX, OUTSIDER, [finding("ssn")], "hold", ["P9"]),
    ("P9 to parent", JSMITH, ROBIN, [finding("ssn", "482913")], "hold", ["P9"]),
    ("ssn inside", JSMITH, MBROWN, [finding("ssn")], "relay", []),
    ("ssn from personal", ALEX_HOME, OUTSIDER, [finding("ssn")], "relay", []),
    # P10: harassing or prohibited language from staff
    ("P10 harassment", JSMITH, ALEX, [finding("lexicon:harassment")], "hold", ["P10"]),
    ("P10 prohibited", JSMITH, OUTSIDER, [finding("lexicon:prohibited")], "hold", ["P10"]),
    ("P10 not for students", ALEX, JSMITH, [finding("lexicon:harassment")], "relay", []),
    # P11: audio/video from staff to students or outside: copyright reminder
    ("P11 to student", JSMITH, ALEX, [finding("media")], "annotate", ["P11"]),
    ("P11 to outsider", JSMITH, OUTSIDER, [finding("media")], "annotate", ["P11"]),
    ("P11 to parent", JSMITH, ROBIN, [finding("media")], "annotate", ["P11"]),
    ("media to colleague", JSMITH, MBROWN, [finding("media")], "relay", []),
    ("media from student", ALEX, JSMITH, [finding("media")], "relay", []),
    ("P11 with P1: hold wins", JSMITH, ALEX_HOME, [finding("media")], "hold", ["P1", "P11"]),
    # P12: restricted subjects, any sender
    ("P12", ALEX, JSMITH, [finding("lexicon:restricted_subjects")], "hold", ["P12"]),
    # fail closed
    ("uninspectable", JSMITH, MBROWN, [finding("uninspectable")], "hold", ["INSPECT"]),
]


@pytest.mark.parametrize(("label", "sender", "rcpt", "findings", "action", "rules"),
                         DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_data_rules(w: World, label: str, sender: str, rcpt: str, findings: list,
                    action: str, rules: list[str]) -> None:
    assert _outcome(w, sender, rcpt, findings=findings) == (action, rules)


@pytest.mark.parametrize(("ctype", "action"), [("video/mp4", "annotate"),
                                               ("audio/mpeg", "annotate"),
                                               ("application/pdf", "relay")])
def test_p11_by_attachment_type(w: World, ctype: str, action: str) -> None:
    att = Attachment("clip", ctype, 1000)
    assert _outcome(w, JSMITH, ALEX, attachments=[att])[0] == action


def test_incomplete_inspection_holds(w: World) -> None:
    assert _outcome(w, JSMITH, MBROWN, complete=False) == ("hold", ["INSPECT"])


P13_CASES = [
    ("envelope claims staff domain", JSMITH, None, False, "annotate"),
    ("From header claims student domain", OUTSIDER, f"x@{STUDENT_DOMAIN}", False, "annotate"),
    ("From header with display name", OUTSIDER,
     f'"Principal, Pat" <p@{STAFF_DOMAIN.upper()}>', False, "annotate"),
    ("District address as the display name", OUTSIDER,
     f'"jsmith@{STAFF_DOMAIN}" <x@evil.example>', False, "annotate"),
    ("From header outside", OUTSIDER, "Pat <p@example.org>", False, "relay"),
    ("trusted network", JSMITH, None, True, "relay"),
    ("outsider untrusted", OUTSIDER, None, False, "relay"),
]


@pytest.mark.parametrize(("label", "sender", "from_header", "trusted", "action"), P13_CASES,
                         ids=[c[0] for c in P13_CASES])
def test_p13_unverified(w: World, label: str, sender: str, from_header: str | None,
                        trusted: bool, action: str) -> None:
    verdict = w.decide(sender, MBROWN, trusted=trusted, from_header=from_header).verdicts[0]
    assert verdict.action.value == action
    assert ("P13" in verdict.rules) == (action == "annotate")
    if action == "annotate":
        (ann,) = verdict.annotations
        assert ann.subject_tag == "[UNVERIFIED]"
        assert ("X-District-Policy", "P13; annotate") in ann.headers


@pytest.mark.parametrize(("earlier", "rules"), [(0, ["P5"]), (1, ["P5"]), (2, ["P5", "P6"]),
                                                (7, ["P5", "P6"])])
def test_p6_third_contact_notifies_supervisor(w: World, earlier: int, rules: list[str]) -> None:
    history = CountingHistory(earlier)
    decision = w.decide(ALEX_HOME, JSMITH, history=history)
    verdict = decision.verdicts[0]
    assert (verdict.action, verdict.rules) == (Action.ANNOTATE, rules)
    assert decision.contacts == (("482913", "T1"),)
    student, staff, since = history.asked[0]
    assert (student, staff) == ("482913", "T1")
    assert datetime(2026, 9, 1, tzinfo=UTC) - since == timedelta(days=30)
    notes = [n for n in decision.notifications if n.kind == "supervisor"]
    if "P6" in rules:
        (note,) = notes
        assert note.to == f"principal@{STAFF_DOMAIN}" and note.rule == "P6"
        assert "Alex Jones" in note.body and "Jane Smith" in note.body
        assert f"alex@{STUDENT_DOMAIN}" in note.body
    else:
        assert notes == []


def test_p6_lifted_by_relationship(w: World) -> None:
    decision = w.decide(SAM_HOME, MBROWN, history=CountingHistory(5))
    assert decision.verdicts[0].rules == ["P3"]
    assert "lifts P5, P6" in decision.verdicts[0].matches[0].reason
    assert decision.notifications == ()


def test_p5_notice_names_the_district_account(w: World) -> None:
    (ann,) = w.decide(ALEX_HOME, JSMITH).verdicts[0].annotations
    assert f"alex@{STUDENT_DOMAIN}" in (ann.notice or "")
    assert ("X-District-Policy", "P5; annotate") in ann.headers


def test_reasons_carry_no_student_data(w: World) -> None:
    decision = w.decide(JSMITH, [OUTSIDER, ROBIN, ALEX_HOME],
                        findings=[finding("ssn", "482913"), OTHER_CHILD])
    reasons = " ".join(m.reason for v in decision.verdicts for m in v.matches)
    for secret in ("482913", "517204", "Alex", "Sam", "Jones"):
        assert secret not in reasons


def test_one_verdict_per_recipient_in_order(w: World) -> None:
    decision = w.decide(JSMITH, [ALEX, ALEX_HOME, ROBIN, OUTSIDER], findings=[RECORD])
    assert [v.recipient.address for v in decision.verdicts] == [ALEX, ALEX_HOME, ROBIN,
                                                                 OUTSIDER]
    assert [v.action.value for v in decision.verdicts] == ["relay", "hold", "relay", "hold"]


def test_monitor_only_reports_but_relays(tmp_path: Path) -> None:
    w = world(tmp_path, extra="monitor_only: true")
    verdict = w.decide(JSMITH, ALEX_HOME, findings=[RECORD]).verdicts[0]
    assert verdict.action is Action.RELAY
    assert verdict.rules == ["P1", "P7"]
    assert all(m.monitor for m in verdict.matches)


def test_rule_in_monitor_mode_is_ignored_by_the_verdict(tmp_path: Path) -> None:
    text = SHIPPED_POLICY.read_text().replace(
        "    exempt: [P3]\n    action: hold\n\n  # P2", "    exempt: [P3]\n    mode: monitor\n"
        "    action: hold\n\n  # P2")
    w = world(tmp_path, policy=text)
    verdict = w.decide(JSMITH, ALEX_HOME, findings=[finding("media")]).verdicts[0]
    assert verdict.action is Action.ANNOTATE
    assert [(m.rule, m.monitor) for m in verdict.matches] == [("P1", True), ("P11", False)]


def test_sender_notice_when_configured(tmp_path: Path) -> None:
    w = world(tmp_path, quarantine="{url: 'sqlite:///q.db', notify_sender: true}")
    decision = w.decide(JSMITH, [OUTSIDER, ALEX], findings=[finding("ssn", "482913")])
    (note,) = decision.notifications
    assert (note.kind, note.to) == ("sender", JSMITH)
    assert "P7" in note.body and "P9" in note.body and "item 4" in note.body
    assert "482913" not in note.body and OUTSIDER not in note.body


def test_no_sender_notice_by_default(w: World) -> None:
    decision = w.decide(JSMITH, OUTSIDER, findings=[finding("ssn")])
    assert decision.verdicts[0].action is Action.HOLD
    assert decision.notifications == ()


def _auth(verified: tuple[str, ...] = (), temporary: bool = False) -> AuthResults:
    """As sender authentication reports them: verified organisational domains, and the
    organisational domain of each District domain (from the Public Suffix List)."""
    checks = (AuthCheck("dkim", "pass", (("header.d", d),), "", d) for d in verified)
    orgs = {STAFF_DOMAIN: "d230.example", STUDENT_DOMAIN: "d230.example"}
    return AuthResults(tuple(checks), frozenset(verified), temporary, orgs)


@pytest.mark.parametrize(("auth", "p13"), [
    (None, True),                                     # nothing authenticated
    (_auth(), True),                                  # no aligned pass
    (_auth(("evil.example",)), True),                 # a pass, for another domain
    (_auth(temporary=True), True),                    # DNS failed: not verified
    (_auth(("d230.example",)), False),                # aligned (relaxed) DKIM pass
])
def test_p13_is_decided_by_dmarc(w: World, auth: AuthResults | None, p13: bool) -> None:
    verdict = w.decide(JSMITH, MBROWN, trusted=False, auth=auth).verdicts[0]
    assert ("P13" in verdict.rules) == p13


def test_p13_notice_says_why(w: World) -> None:
    for auth, words in ((None, "was not authenticated"), (_auth(temporary=True), "temperror"),
                        (_auth(("evil.example",)), "did not pass DMARC")):
        (ann,) = w.decide(JSMITH, MBROWN, trusted=False, auth=auth).verdicts[0].annotations
        assert ann.notice is not None and words in ann.notice, ann.notice


def test_body_notice_whether_or_not_signed(w: World) -> None:
    decision = w.decide(ALEX_HOME, JSMITH, trusted=False,
                        auth=_auth(("gmail.example",)))
    assert decision.body_notice
    assert "P5" in decision.verdicts[0].rules


# --- P6's look-ahead: the counts the policy names beforehand are the ones it asks for ------
# (the dispatcher reads them in a thread and decides with a CountedHistory of them)
AT = datetime(2026, 9, 1, tzinfo=UTC)
PAIRS = [
    (ALEX_HOME, [JSMITH]),  # P5/P6: personal → staff
    (JSMITH, [ALEX, ALEX_HOME]),  # staff → both accounts
    (MBROWN, [SAM_HOME]),  # a reported relative
    (ROBIN, [JSMITH]),  # no pair at all
    (SAM_HOME, [JSMITH, MBROWN]),
]


def envelope(mail_from: str, rcpts: Sequence[str]) -> Envelope:
    return Envelope(mail_from, tuple(rcpts), b"", client_ip="203.0.113.9",
                    client_trusted=False, received_at=AT)


@pytest.mark.parametrize(("mail_from", "rcpts"), PAIRS)
@pytest.mark.parametrize("earlier", [0, 1, 5])
def test_counting_beforehand_decides_exactly_as_counting_during(
        tmp_path: Path, mail_from: str, rcpts: list[str], earlier: int) -> None:
    w = world(tmp_path)
    env = envelope(mail_from, rcpts)
    sender, recipients = w.directory.party(mail_from), [w.directory.party(r) for r in rcpts]
    inspection = Inspection(from_header=mail_from)
    asked = CountingHistory(earlier)
    during = w.policy.decide(env, sender, recipients, inspection, asked)
    queries = w.policy.contact_queries(env, sender, recipients, inspection)
    assert set(asked.asked) <= queries  # every count the engine asked was named beforehand
    counted = CountedHistory(dict.fromkeys(queries, earlier))
    assert w.policy.decide(env, sender, recipients, inspection, counted) == during


def test_the_shipped_policy_names_the_p6_window_for_a_staff_student_pair(
        tmp_path: Path) -> None:
    w = world(tmp_path)
    env = envelope(ALEX_HOME, [JSMITH])
    inspection = Inspection(from_header=ALEX_HOME)
    queries = w.policy.contact_queries(env, w.directory.party(ALEX_HOME),
                                       [w.directory.party(JSMITH)], inspection)
    assert queries and {(s, t) for s, t, _ in queries} == {("482913", "T1")}
    assert all(since < AT for _, _, since in queries)
    nobody = w.policy.contact_queries(env, w.directory.party(ROBIN),
                                      [w.directory.party(JSMITH)], inspection)
    assert nobody == frozenset()
    # Staff writing to a student's District account: P6's other conditions do not hold, so
    # no count is read for it (most staff-student mail costs no thread hop).
    to_district = w.policy.contact_queries(envelope(JSMITH, [ALEX]), w.directory.party(JSMITH),
                                           [w.directory.party(ALEX)],
                                           Inspection(from_header=JSMITH))
    assert to_district == frozenset()


@pytest.mark.parametrize("spelling", ["p.a.t.kim2010@gmail.com", "pat.kim2010@googlemail.com",
                                      "PatKim2010+tutor@gmail.com"])
def test_p1_holds_every_spelling_gmail_delivers_to_a_students_inbox(
        tmp_path: Path, spelling: str) -> None:
    w = world(tmp_path, people=PEOPLE + "patkim2010@gmail.com,student,700200,Pat Kim,,\n")
    verdict = w.decide(JSMITH, spelling).verdicts[0]
    assert str(verdict.action) == "hold" and "P1" in verdict.rules


# --- P15: staff mail moving a student to a private channel ----------------------------------

@pytest.mark.parametrize(("label", "sender", "rcpt", "kwargs", "action", "rules"), [
    ("Reply-To personal", JSMITH, ALEX, {"reply_to": JANE_HOME}, "hold", ["P15"]),
    ("From header of someone else outside", JSMITH, ALEX, {"from_header": "x@mail.example"},
     "relay", []),
    ("Reply-To any outside address", JSMITH, ALEX, {"reply_to": "Jane <j@mail.example>"},
     "hold", ["P15"]),
    ("From header personal", JSMITH, ALEX, {"from_header": f"Jane <{JANE_HOME}>"},
     "hold", ["P15"]),
    ("invitation", JSMITH, SAM, {"findings": [finding("lexicon:private_channel")]},
     "hold", ["P15"]),
    ("invitation to a personal address: P1 too", JSMITH, ALEX_HOME,
     {"findings": [finding("lexicon:private_channel")]}, "hold", ["P1", "P15"]),
    ("Reply-To District", JSMITH, ALEX, {"reply_to": MBROWN}, "relay", []),
    ("to a colleague", JSMITH, MBROWN, {"reply_to": JANE_HOME}, "relay", []),
    ("to a parent", JSMITH, ROBIN, {"findings": [finding("lexicon:private_channel")]},
     "relay", []),
    ("lifted by P3", MBROWN, SAM, {"reply_to": MARK_HOME}, "relay", ["P3"]),
])
def test_p15_private_channel(w: World, label: str, sender: str, rcpt: str, kwargs: dict,
                             action: str, rules: list[str]) -> None:
    assert _outcome(w, sender, rcpt, **kwargs) == (action, rules)


# --- P7 "not to anyone": records about another student to a student's District account -------

@pytest.mark.parametrize(("label", "rcpt", "findings", "action", "rules"), [
    ("own records", ALEX, [finding("student_number", "482913"),
                           finding("record_category", "482913")], "relay", []),
    ("another student's", ALEX, [OTHER_CHILD], "hold", ["P7"]),
    ("own and another's", ALEX, [RECORD, OTHER_CHILD], "hold", ["P7"]),
    ("a format number not in the directory", ALEX, [finding("student_number_format")],
     "hold", ["P7"]),
    ("an SSN naming nobody may be the student's own", ALEX, [finding("ssn")], "relay", []),
    ("unlisted student: every record is someone's", UNLISTED_STUDENT, [finding("ssn")],
     "hold", ["P7"]),
    ("a roster", SAM, [finding("roster", "482913", "517204", distinct=2)], "hold", ["P7"]),
])
def test_p7_records_about_another_student(w: World, label: str, rcpt: str, findings: list,
                                          action: str, rules: list[str]) -> None:
    assert _outcome(w, JSMITH, rcpt, findings=findings) == (action, rules)


# --- P6 without a supervisor -----------------------------------------------------------------

NO_SUPERVISOR = PEOPLE.replace(f"T1,Jane Smith,principal@{STAFF_DOMAIN},", "T1,Jane Smith,,")


def test_p6_without_supervisor_notifies_the_reviewers(tmp_path: Path) -> None:
    w = world(tmp_path, people=NO_SUPERVISOR,
              quarantine="{url: 'sqlite:///q.db', reviewers: [r1@x.example, r2@x.example]}")
    decision = w.decide(ALEX_HOME, JSMITH, history=CountingHistory(2))
    assert decision.verdicts[0].rules == ["P5", "P6"]
    notes = [(n.kind, n.to, n.rule) for n in decision.notifications]
    assert notes == [("reviewers", "r1@x.example", "P6"), ("reviewers", "r2@x.example", "P6")]
    body = decision.notifications[0].body
    assert "No supervisor is listed" in body and "Jane Smith" in body


def test_p6_without_supervisor_or_reviewers_is_logged(tmp_path: Path) -> None:
    w = world(tmp_path, people=NO_SUPERVISOR)
    with capture_logs() as logs:
        decision = w.decide(ALEX_HOME, JSMITH, history=CountingHistory(2))
    assert decision.notifications == ()
    assert [(e["event"], e["rule"], e["staff_id"], e["notified"]) for e in logs
            if e["event"] == "supervisor_missing"] == [("supervisor_missing", "P6", "T1",
                                                        "nobody")]
    assert "482913" not in str(logs) and "Alex" not in str(logs)


def test_p6_with_supervisor_does_not_tell_the_reviewers(tmp_path: Path) -> None:
    w = world(tmp_path, quarantine="{url: 'sqlite:///q.db', reviewers: [r1@x.example]}")
    decision = w.decide(ALEX_HOME, JSMITH, history=CountingHistory(2))
    assert [(n.kind, n.to) for n in decision.notifications] == [
        ("supervisor", f"principal@{STAFF_DOMAIN}")]
