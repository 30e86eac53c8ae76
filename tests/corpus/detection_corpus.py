"""Labelled detection corpus by class: each way the detectors have leaked or cried wolf, and
negative controls of ordinary school mail.

Every case is a whole message built in code (real MIME, CSV, XLSX, DOCX). `expected` is the
exact set of detectors that must fire; `counts` asks for at least that many hits of a detector
(a pasted table of 25 SSNs is found only when all 25 are). Classes:

- `leak`: student-record data or harassment that must be found;
- `false-alarm`: text that looks like it but is not, which must stay silent;
- `control`: ordinary school mail, which must stay silent.

The inspector is built the way `gateway serve` builds it, with the shipped policy's term lists
(`shipped_lexicons`). `bench/detection.py` prints the per-class precision/recall table;
tests/detectors/test_detection_corpus.py asserts it.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root
from tests.corpus import inspection_corpus
from tests.factories import OCTET, SHIPPED_POLICY, crlf, docx, make_settings, message, xlsx

LEAK, FALSE_ALARM, CONTROL = "leak", "false-alarm", "control"


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[], bytes]
    expected: frozenset[str]
    counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseClass:
    name: str
    kind: str
    cases: tuple[Case, ...]


def _case(case_id: str, build: Callable[[], bytes], *expected: str,
          counts: Mapping[str, int] | None = None) -> Case:
    return Case(case_id, build, frozenset(expected), dict(counts or {}))


def _body(text: str, **kw: object) -> Callable[[], bytes]:
    return lambda: message(text, **kw)  # type: ignore[arg-type]


def _smtp(text: str, **kw: object) -> Callable[[], bytes]:
    """As the message travels over SMTP: every line end CRLF."""
    return lambda: crlf(message(text, **kw))  # type: ignore[arg-type]


def _attached(name: str, data: bytes, declared: str = OCTET,
              text: str = "See the attached file.") -> Callable[[], bytes]:
    return lambda: message(text, attachments=[(name, data, declared)])


# --- data the cases share -------------------------------------------------------------------

STAFF = ("Pat Doe", "Chris Roe", "Jordan Poe", "Taylor Moe", "Casey Loe")
SSNS = tuple(f"524-61-{3400 + i}" for i in range(25))


def _pasted_table(sep: str = ",") -> str:
    rows = [sep.join(("Name", "SSN", "DOB"))]
    rows += [sep.join((f"{STAFF[i % 5]} {i}", SSNS[i], f"0{1 + i % 9}/1{i % 9}/198{i % 10}"))
             for i in range(25)]
    return "Here is the list for payroll:\n\n" + "\n".join(rows) + "\n\nThanks,\nPat"


def _wide_table() -> str:
    head = "\t".join(["Name", *(f"Field {c}" for c in range(12)), "SSN"])
    rows = ["\t".join([f"{STAFF[i % 5]} {i}", *(f"value number {c} of row" for c in range(12)),
                       SSNS[i]]) for i in range(10)]
    return "Pasted from the sheet:\n" + head + "\n" + "\n".join(rows)


def _xlsx_formatted(header: str) -> bytes:
    """A leading-zero SSN stored as the number 62956288 with Excel's SSN format."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Employee", header])
    sheet.append(["Pat Doe", 62956288])
    sheet["B2"].number_format = "000-00-0000"
    sheet.append(["Chris Roe", 524613378])
    sheet["B3"].number_format = "000\\-00\\-0000"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


SPLIT_HTML = ("<table><tr><th>Employee</th><th colspan=3>SSN</th></tr>"
              "<tr><td>Pat Doe</td><td>524</td><td>61</td><td>3378</td></tr></table>")
SPLIT_ROWS = [["Employee", "SSN area", "SSN group", "SSN serial"],
              ["Pat Doe", "524", "61", "3378"]]

# --- the classes ----------------------------------------------------------------------------

CLASSES: tuple[CaseClass, ...] = (
    CaseClass("ssn-keyword-variants", LEAK, (
        _case("social-is", _body("For the benefits form: his social is 524-61-3378."), "ssn"),
        _case("s-s-n", _body("S S N: 524-61-3378"), "ssn"),
        _case("s.s.n.", _body("S.S.N. 524 61 3378 (new aide)"), "ssn"),
        _case("ss-no", _body("SS No. 524-61-3378"), "ssn"),
        _case("social-hash", _body("Social # 524-61-3378"), "ssn"),
        _case("taxpayer", _body("Taxpayer identification number: 524-61-3378"), "ssn"),
        _case("spanish", _body("Su número de seguro social es 524-61-3378."), "ssn"),
        _case("subject-keyword", _body("Here it is: 524-61-3378", subject="SSN for Pat"), "ssn"),
        _case("subject-raw", _body("It is 524613378.", subject="Social security number"),
              "ssn"),
    )),
    CaseClass("hidden-characters", LEAK, (
        _case("zero-width", _body("SSN: 524\u200b-61-\u200b3378"), "ssn"),
        _case("zero-width-raw", _body("SSN 5246\u200c13378"), "ssn"),
        _case("soft-hyphen", _body("SSN 524\u00ad-61\u00ad-3378"), "ssn"),
        _case("nb-hyphen", _body("SSN 524\u201161\u20113378"), "ssn"),
        _case("en-dash", _body("SSN 524\u201361\u20133378"), "ssn"),
        _case("mixed-separators", _body("SSN 524-61 3378"), "ssn"),
        _case("mixed-dot", _body("SSN 524.61-3378"), "ssn"),
        _case("word-joiner", _body("Social security 524\u2060-61-3378"), "ssn"),
        _case("student-number-zw", _body("Please update the file for 48\u200b2913 today."),
              "student_number"),
        _case("student-number-shy", _body("Please update the file for 482\u00ad913 today."),
              "student_number"),
    )),
    CaseClass("student-number-separated", LEAK, (
        _case("dash", _body("Please update the file for 482-913 today."), "student_number"),
        _case("space", _body("Can you pull the records of 482 913 before Friday?"),
              "student_number"),
        _case("dot", _body("Transfer request for 517.204 is approved."), "student_number"),
        _case("line-end", _smtp("Please pull the file for\n482 913 today."),
              "student_number"),
    )),
    CaseClass("xlsx-number-format", LEAK, (
        _case("ssn-column", lambda: message("list", attachments=[
            ("staff.xlsx", _xlsx_formatted("SSN"), OCTET)]), "ssn", counts={"ssn": 2}),
        _case("social-column", lambda: message("list", attachments=[
            ("staff.xlsx", _xlsx_formatted("Social Security"), OCTET)]), "ssn",
            counts={"ssn": 2}),
    )),
    CaseClass("ssn-split-cells", LEAK, (
        _case("html", _body("see below", html=SPLIT_HTML), "ssn"),
        _case("csv", _attached("staff.csv", "\n".join(",".join(r) for r in SPLIT_ROWS).encode(),
                               "text/csv"), "ssn"),
        _case("xlsx", _attached("staff.xlsx", xlsx(SPLIT_ROWS)), "ssn"),
        _case("docx", _attached("staff.docx", docx(["Payroll"], [
            ["Employee", "SSN", "", ""], ["Pat Doe", "524", "61", "3378"]])), "ssn"),
    )),
    CaseClass("ssn-html-attribute", LEAK, (
        _case("value", _body("form", html="<label>SSN</label> <input name=a "
                                          "value='524-61-3378'>"), "ssn"),
        _case("alt", _body("image", html='<p>Card:</p><img src="c.png" '
                                         'alt="Social security 524-61-3378">'), "ssn"),
        _case("title", _body("hover", html='<span title="SSN: 524-61-3378">details</span>'),
              "ssn"),
    )),
    CaseClass("ssn-column-table", LEAK, (
        _case("pasted-csv", _body(_pasted_table()), "ssn", counts={"ssn": 25}),
        _case("pasted-tsv", _smtp(_pasted_table("\t")), "ssn", counts={"ssn": 25}),
        _case("pasted-wide", _body(_wide_table()), "ssn", counts={"ssn": 10}),
        _case("attached-wide", _attached("wide.csv", _wide_table().split("\n", 1)[1]
                                         .replace("\t", ",").encode(), "text/csv"),
              "ssn", counts={"ssn": 10}),
    )),
    CaseClass("name-line-break", LEAK, (
        _case("crlf", _smtp("The counselor asked about Alex\nJones: he was suspended on "
                            "Monday."), "student_name", "record_category"),
        _case("crlf-last-first", _smtp("Final grades are in for Lee,\nSam and the "
                                       "transcript is ready."),
              "student_name", "record_category"),
        _case("two-spaces", _body("Sam  Lee has an IEP meeting on Tuesday."),
              "student_name", "record_category"),
        _case("tab", _body("Maria\tGarcia was absent all week."),
              "student_name", "record_category"),
        _case("crlf-indented", _smtp("The counselor asked about Alex\n   Jones: he was "
                                     "suspended on Monday."), "student_name", "record_category"),
        _case("crlf-tab", _smtp("Final grades are in for Sam\n\tLee, see the transcript."),
              "student_name", "record_category"),
        _case("lf-indented", _body("Can you send the IEP for Maria\n        Garcia?"),
              "student_name", "record_category"),
    )),
    CaseClass("harassment", LEAK, (
        _case("profanity", _body("Honestly you are a fucking idiot, fix the schedule."),
              "lexicon:harassment"),
        _case("insult", _body("Stop acting like a dumbass in my class."), "lexicon:harassment"),
        _case("slur", _body("Tell that retard to sit down."), "lexicon:harassment"),
        _case("bitch", _body("The new vendor rep is a total bitch."), "lexicon:harassment"),
        _case("threat", _body("If you do that again I will kill you."), "lexicon:harassment"),
        _case("threat-2", _body("You'd better watch your back after practice."),
              "lexicon:harassment"),
        _case("shut-up", _body("Shut up and do the worksheet, you moron."),
              "lexicon:harassment"),
    )),
    CaseClass("ssn-lookalike-ids", FALSE_ALARM, (
        _case("employee-id", _body("Your employee ID is 524613378. HR never asks for your "
                                   "SSN by email.")),
        _case("invoice-never-send", _body("Invoice 524613378 is attached. Reminder: never send "
                                          "your SSN or bank details by email.")),
        _case("ssid-column", _attached("state.csv", b"Name,SSID,Grade\nPat Doe 1,524613378,9\n"
                                       b"Pat Doe 2,524613379,10\n", "text/csv")),
        _case("ssid-text", _body("The state student ID (SSID) 524613378 was reissued.")),
        _case("ssn-and-employee-ids", _attached("hr.csv", b"Name,Employee ID,SSN on file\n"
                                                b"Pat Doe,524613378,yes\n"
                                                b"Chris Roe,524613379,no\n", "text/csv")),
    )),
    CaseClass("record-vocabulary-mentions", FALSE_ALARM, (
        _case("band-concert", _body("Grades 6-8 band concert featuring a solo by Alex Jones, "
                                    "Thursday at 7 pm in the gym.")),
        _case("worksheet-header", _body("Name: Sam Lee Grade: 9\nWorksheet 4: fractions")),
        _case("science-fair", _body("Science fair results: first place in grades 9-10 went to "
                                    "Maria Garcia for her solar oven.")),
        _case("event-attendance", _body("Thank you for the great attendance at the science "
                                        "fair, and congratulations to Wei Chen!")),
        _case("grade-level", _body("Noah Kim, grade 10, won the regional spelling bee.")),
        _case("grade-colon", _body("Emma Brown (Grade: K) painted the mural in the lobby.")),
    )),
    CaseClass("number-lookalikes", FALSE_ALARM, (
        _case("lot-number", _body("Lot number 600777 of the art supplies was recalled.")),
        _case("asset-id", _body("Chromebook asset ID 612345 needs a new screen.")),
        _case("asset-tag", _body("Student Chromebook asset tag 612346 is in the library.")),
        _case("chromebook-id", _body("Please return Chromebook 612347 (asset ID) to room 12.")),
        _case("batch", _body("Batch no. 600778 of the lunch trays is fine.")),
    )),
    CaseClass("separated-number-lookalikes", FALSE_ALARM, (
        _case("phone", _body("Questions? Call the office at 555-482-9130.")),
        _case("phone-spaces", _body("Questions? Call the office at 555 482 913.")),
        _case("date", _body("The ledger entry is dated 48.29.13, see page 2.")),
        _case("lot", _body("Lot 482-913 of the glue sticks was recalled.")),
        _case("grouped-amount", _body("The grant is 1 482 913 euros over three years.")),
    )),
    CaseClass("birthday-not-dob", FALSE_ALARM, (
        _case("party", _body("Alex Jones's birthday party is on 05/20/2024 at the park.")),
        _case("cupcakes", _body("We'll celebrate Sam Lee's birthday with cupcakes on "
                                "05/24/2024 in class.")),
    )),
    CaseClass("school-mail", CONTROL, (
        _case("meet", _body("Our relay team killed it at the meet on Saturday!")),
        _case("stars", _body("Shoot for the stars on the final exam, everyone.")),
        _case("biology", _body("Today: sexual and asexual reproduction, then the frog "
                               "dissection. Bring goggles.")),
        _case("history", _body("Unit 5 covers the Nazi regime, the Holocaust and slavery in "
                               "the American South; the war killed millions.")),
        _case("literature", _body("We are reading Moby-Dick; the whale hunt scenes are "
                                  "graphic, so read chapter 61 at home.")),
        _case("sports", _body("We beat Lincoln 3-1, the defense was a beast, the crowd went "
                              "crazy. Damn fine game.")),
        _case("chemistry", _body("Do not inhale the fumes; hydrochloric acid can burn skin. "
                                 "Lab 7 is due on 10/14/2025.")),
        _case("logistics", _body("Bus 14 leaves at 7:45. Field trip forms are due 03/01/2025. "
                                 "Questions? Call 555-867-5309.")),
        _case("health-class", _body("Health class will discuss drugs, alcohol and sex "
                                    "education next week; the opt-out form is attached.")),
        _case("pe", _body("Dodgeball is back: hit hard, dodge fast, and nobody gets hurt.")),
        _case("staff", _body("Staff meeting moved to room 204. The copier is dead again, "
                             "sorry!")),
        _case("cells", _body("Mitosis: the cell's nucleus divides; cancer cells divide out of "
                             "control. Quiz Friday.")),
    )),
    # Written after the lists were tuned on the class above: a check that the tuning holds.
    CaseClass("school-mail-unseen", CONTROL, (
        _case("english", _body("For Friday read Of Mice and Men; Lennie accidentally kills the "
                               "puppy and Curley's wife. Essay prompts attached.")),
        _case("macbeth", _body("Act 2 of Macbeth: the murder of Duncan, the blood on Lady "
                               "Macbeth's hands, and the drunken porter scene.")),
        _case("civics", _body("Debate topic: should the drinking age be lowered? Bring two "
                              "sources; no Wikipedia.")),
        _case("ap-bio", _body("Lab 12: fetal pig dissection. Identify the kidneys, bladder, "
                              "testes or ovaries, and the umbilical cord.")),
        _case("health", _body("Puberty unit letter: we cover menstruation, hormones, body "
                              "odor and consent. Parents may preview the slides.")),
        _case("music", _body("Sectionals: trumpets work on the slurs in bar 40, clarinets on "
                             "the fingering for the high B.")),
        _case("art", _body("Museum trip: the Renaissance wing has nude sculptures; please "
                           "prepare the sixth graders.")),
        _case("athletics", _body("Wrestlers weigh in at 6 am. The coach says we crushed "
                                 "Westfield and the JV squad played their butts off.")),
        _case("swim", _body("Swim meet results: Maria took first in the 100 breaststroke and "
                            "the relay smashed the pool record.")),
        _case("cafeteria", _body("Menu: pork loin, mashed potatoes, and a hot dog bar on "
                                 "Friday. The rum cake is alcohol-free.")),
        _case("counselor", _body("Reminder: the suicide prevention assembly is Tuesday; "
                                 "counselors will be available all day.")),
        _case("nurse", _body("Lice check Monday. If your child has diarrhea or is vomiting, "
                             "keep them home for 24 hours.")),
        _case("facilities", _body("The boys' urinal on the 2nd floor is clogged again; a "
                                  "plumber comes Thursday.")),
        _case("it", _body("The filter blocks adult content under CIPA; teachers can request "
                          "a site review through the help desk.")),
        _case("history-2", _body("Primary sources on Jim Crow laws, lynching and the civil "
                                 "rights movement; some language is offensive.")),
        _case("chemistry-2", _body("Titration lab: do not suck liquid into the pipette by "
                                   "mouth. Use the bulb.")),
        _case("physics", _body("Newton's third law: the rocket's thrust pushes the exhaust "
                               "down and the rocket up.")),
        _case("theatre", _body("Auditions for the spring revue are Monday; bring a song and "
                               "a one-minute monologue.")),
        _case("math", _body("Find the slope of each line, then graph the inequality. Show "
                            "your work.")),
        _case("pe", _body("Fitness test: push-ups, sit-ups and the mile. Sneakers required, "
                          "no flip-flops.")),
        _case("parent-note", _body("Sorry for the late reply, it was a hell of a week. The "
                                   "permission slip is signed.")),
        _case("colleague", _body("That pep rally was insane, the kids went nuts. Coffee in "
                                 "the lounge after 3?")),
        _case("science-fair", _body("Projects on the effects of caffeine, sugar and energy "
                                    "drinks on heart rate are welcome.")),
        _case("vet-club", _body("Vet science club: we watch a cow give birth at the dairy "
                                "farm; bring boots.")),
        _case("library", _body("Banned Books Week display: The Color Purple, Beloved and "
                               "The Catcher in the Rye.")),
    )),
)


def legacy_classes() -> tuple[CaseClass, ...]:
    """The original per-form corpus, as two more classes (record forms, controls)."""
    # Without the case of the tests' own short term list: this corpus uses the shipped lists.
    pos = tuple(Case(c.id, c.build, c.expected) for c in inspection_corpus.CASES
                if c.positive and c.id != "lexicon")
    neg = tuple(Case(c.id, c.build, c.expected) for c in inspection_corpus.CASES
                if not c.positive)
    return (CaseClass("record-forms", LEAK, pos), CaseClass("form-controls", CONTROL, neg))


def all_classes() -> tuple[CaseClass, ...]:
    return CLASSES + legacy_classes()


def shipped_lexicons() -> dict[str, tuple[str, ...]]:
    """The term lists of the shipped config/policies.yaml, as `gateway serve` loads them."""
    from gateway.policy.loader import parse_policy  # noqa: PLC0415

    policy = parse_policy(SHIPPED_POLICY, make_settings(), object())
    return {name: tuple(terms) for name, terms in policy.lexicons.items()}
