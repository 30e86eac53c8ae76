"""Directory: roles and accounts from the CSV and the District domains; bad rows skipped."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.addresses import ascii_domain, normalize_address
from gateway.config import load_settings
from gateway.directory import Directory, load_directory
from gateway.model import Role
from gateway.yamlsrc import SourceErrors
from tests.factories import PEOPLE, STAFF_DOMAIN, STUDENT_DOMAIN, write_district_config


def _directory(tmp_path: Path, **kwargs: str) -> Directory:
    return load_directory(load_settings(write_district_config(tmp_path, **kwargs)))


@pytest.fixture
def d(tmp_path: Path) -> Directory:
    return _directory(tmp_path)


PARTIES = [
    (f"jsmith@{STAFF_DOMAIN}", Role.STAFF, True, "T1"),
    ("jane.home@gmail.example", Role.STAFF, False, "T1"),
    (f"alex@{STUDENT_DOMAIN}", Role.STUDENT, True, "482913"),
    ("alexj@gmail.example", Role.STUDENT, False, "482913"),
    ("robin@parents.example", Role.PARENT, False, "P1"),
    (f"newhire@{STAFF_DOMAIN}", Role.STAFF, True, None),
    (f"newkid@{STUDENT_DOMAIN}", Role.STUDENT, True, None),
    ("someone@example.com", Role.EXTERNAL, False, None),
    ("", Role.EXTERNAL, False, None),
    # normalisation: case, angle brackets, quoting, IDN
    (f"<JSmith@{STAFF_DOMAIN.upper()}>", Role.STAFF, True, "T1"),
    (f'"jsmith"@{STAFF_DOMAIN}', Role.STAFF, True, "T1"),
    ("AlexJ@Gmail.Example", Role.STUDENT, False, "482913"),
    ("not an address", Role.EXTERNAL, False, None),
    # routing forms never count as District accounts; a +tag and a root dot still match
    (f'"victim@gmail.example"@{STAFF_DOMAIN}', Role.EXTERNAL, False, None),
    (f"victim%gmail.example@{STAFF_DOMAIN}", Role.EXTERNAL, False, None),
    (f"gmail.example!victim@{STAFF_DOMAIN}", Role.EXTERNAL, False, None),
    ("alexj+school@gmail.example", Role.STUDENT, False, "482913"),
    ("alexj@gmail.example.", Role.STUDENT, False, "482913"),
]


@pytest.mark.parametrize(("address", "role", "district", "person"), PARTIES)
def test_party(d: Directory, address: str, role: Role, district: bool,
               person: str | None) -> None:
    party = d.party(address)
    assert (party.role, party.district_account, party.person_id) == (role, district, person)


def test_staff_supervisor_and_parent_children(d: Directory) -> None:
    assert d.party(f"jsmith@{STAFF_DOMAIN}").supervisor == f"principal@{STAFF_DOMAIN}"
    # the personal row has no supervisor column: found through the person
    assert d.party("jane.home@gmail.example").supervisor == f"principal@{STAFF_DOMAIN}"
    assert d.party("robin@parents.example").children == frozenset({"482913"})


def test_lookups(d: Directory) -> None:
    assert d.district_address("482913") == f"alex@{STUDENT_DOMAIN}"
    assert d.district_address("P1") is None
    assert dict(d.students()) == {"482913": "Alex Jones", "517204": "Sam Lee"}
    assert d.has_relationship("T2", "517204")
    assert not d.has_relationship("T1", "517204")
    assert not d.has_relationship(None, "517204")
    assert d.problems == []


def test_idn_domains_match_either_spelling(tmp_path: Path) -> None:
    people = PEOPLE + "lehrer@bücher.example,parent,P9,Lehrer,,482913\n"
    d = _directory(tmp_path, people=people)
    assert d.party("lehrer@xn--bcher-kva.example").person_id == "P9"
    assert d.party("LEHRER@BÜCHER.example").person_id == "P9"
    assert normalize_address("x@xn--bcher-kva.example") == "x@bücher.example"


def test_a_look_alike_of_a_district_domain_is_another_domain(tmp_path: Path) -> None:
    """UTS #46 non-transitional, as current MTAs: `ß` is not `ss`."""
    assert ascii_domain("straße.example") == "xn--strae-oqa.example"
    assert ascii_domain("straße.example") != ascii_domain("strasse.example")
    assert ascii_domain("ＳＴＡＦＦ.example") == "staff.example"  # width and case still fold
    assert ascii_domain("Bücher.Example.") == "xn--bcher-kva.example"
    assert ascii_domain("no_idna.example") == "no_idna.example"
    d = _directory(tmp_path)
    look_alike = STUDENT_DOMAIN.replace("stu", "stu\u200d", 1)  # IDNA 2003 dropped the joiner
    assert d.party(f"alex@{look_alike}").role is Role.EXTERNAL
    assert d.party(f"alex@{STUDENT_DOMAIN}").role is Role.STUDENT


PROVIDERS = PEOPLE + (
    "patkim2010@gmail.com,student,700200,Pat Kim,,\n"
    "robin.lee@yahoo.example,student,700201,Robin Lee,,\n"
)


@pytest.mark.parametrize(("spelling", "found"), [
    ("patkim2010@gmail.com", True),
    ("p.a.t.kim2010@gmail.com", True),             # Gmail ignores dots
    ("Pat.Kim2010+school@GMAIL.com", True),        # and plus tags, and case
    ("pat.kim2010@googlemail.com", True),          # the same mailboxes
    ("robin.lee+x@yahoo.example", True),           # a plus tag, at any provider
    ("robinlee@yahoo.example", False),             # elsewhere the dots are the address
    ("patkim2010@gmail.example", False),
])
def test_a_providers_spellings_of_one_inbox_find_its_row(tmp_path: Path, spelling: str,
                                                        found: bool) -> None:
    d = _directory(tmp_path, people=PROVIDERS)
    party = d.party(spelling)
    assert (party.person_id is not None) is found, spelling
    if found:
        assert party.role is Role.STUDENT


def test_which_providers_ignore_dots_is_configurable(tmp_path: Path) -> None:
    settings = load_settings(write_district_config(tmp_path, people=PROVIDERS))
    plain = replace(settings, directory=replace(settings.directory, dotless_domains=(),
                                                domain_aliases=()))
    d = load_directory(plain)
    assert d.party("p.a.t.kim2010@gmail.com").person_id is None
    assert d.party("patkim2010+x@gmail.com").person_id == "700200"  # tags still drop
    assert d.party("patkim2010@googlemail.com").person_id is None
    mine = replace(settings, directory=replace(settings.directory,
                                               dotless_domains=("yahoo.example",)))
    assert load_directory(mine).party("robinlee@yahoo.example").person_id == "700201"


def test_bad_rows_are_reported_and_skipped(tmp_path: Path) -> None:
    people = PEOPLE + (
        "broken-address,staff,T9,X,,\n"                    # line 12
        "ok@example.org,Kim Park,student,700123,,\n"       # line 13: shifted, name as role
        "ok2@example.org,staff,,X,,\n"                     # line 14
        f"jsmith@{STAFF_DOMAIN},staff,T1,Dup,,\n"                 # line 15
        "fine@example.org,parent,P7,Fine,,999999\n"        # line 16: unknown child, kept
    )
    relationships = ("staff_id,student_id,relationship,reported_to,reported_on\n"
                     "T2,517204,uncle,p,2026-01-01\n"
                     ",517204,x,p,2026-01-01\n"
                     "T2,000000,x,p,2026-01-01\n")
    d = _directory(tmp_path, people=people, relationships=relationships)
    found = sorted((Path(p.file).name, p.line, p.column) for p in d.problems)
    assert found == [("people.csv", 12, 1), ("people.csv", 13, 1), ("people.csv", 14, 1),
                     ("people.csv", 15, 1), ("people.csv", 16, 1),
                     ("relationships.csv", 3, 1), ("relationships.csv", 4, 1)]
    assert d.party("ok@example.org").role is Role.EXTERNAL
    assert d.party(f"jsmith@{STAFF_DOMAIN}").name == "Jane Smith"
    assert d.party("fine@example.org").role is Role.PARENT
    assert d.has_relationship("T2", "517204")
    text = " ".join(str(p) for p in d.problems)
    assert "999999" not in text and "000000" not in text  # no student numbers in messages
    assert "Kim" not in text and "700123" not in text  # nor a shifted row's cells


def test_missing_file_and_missing_column(tmp_path: Path) -> None:
    settings = load_settings(write_district_config(tmp_path,
                                                   people="address,role,name\nx@y,staff,X\n"))
    (tmp_path / "relationships.csv").unlink()
    with pytest.raises(SourceErrors) as info:
        load_directory(settings)
    messages = sorted(str(e).split("/")[-1] for e in info.value.errors)
    assert messages == ["people.csv:1:1: missing column(s): person_id, supervisor, students",
                        "relationships.csv:1:1: cannot read file: No such file or directory"]


def test_directory_csv_parse_error_is_a_source_error(tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_bytes(b"address,role,person_id,name,supervisor,students\n"
                       b'a@b.example,staff,T1,"'  # an unclosed quote runs past the limit
                       + b"x" * (csv.field_size_limit() + 1) + b"\n")
    path = tmp_path / "gateway.yaml"
    path.write_text("directory: {people: people.csv}\n")
    with pytest.raises(SourceErrors) as info:
        load_directory(load_settings(path))
    assert info.value.errors[0].message.startswith("cannot parse CSV: field larger than")


def test_the_optional_school_column_scopes_people(tmp_path: Path) -> None:
    people = (f"address,role,person_id,name,supervisor,students,school\n"
              f"jsmith@{STAFF_DOMAIN},staff,T1,Jane Smith,,,Lincoln Elementary; Roosevelt\n"
              f"jane.home@gmail.example,staff,T1,Jane Smith,,,\n"
              f"alex@{STUDENT_DOMAIN},student,482913,Alex Jones,,,Lincoln Elementary\n"
              f"robin@parents.example,parent,P1,Robin Jones,,482913,\n")
    d = _directory(tmp_path, people=people, relationships="staff_id,student_id,relationship,"
                   "reported_to,reported_on\n")
    assert d.problems == []
    assert d.party(f"jsmith@{STAFF_DOMAIN}").schools == {"Lincoln Elementary", "Roosevelt"}
    # a personal row without a school is the same person, in the same schools
    assert d.party("jane.home@gmail.example").schools == {"Lincoln Elementary", "Roosevelt"}
    assert d.party(f"alex@{STUDENT_DOMAIN}").schools == {"Lincoln Elementary"}
    assert d.party("robin@parents.example").schools == frozenset()
    assert d.party("stranger@example.org").schools == frozenset()


def test_a_people_file_without_the_school_column_still_loads(d: Directory) -> None:
    assert d.party(f"jsmith@{STAFF_DOMAIN}").schools == frozenset()
    assert d.problems == []
