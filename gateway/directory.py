"""Who is who: the people and relationships CSV files plus the District domains.

The policy is about roles (staff, student, parent, outsider) and accounts (District or
personal), so every address is classified here once. A bad CSV row must not take the daemon
down: it is reported as `file:line: reason` in `problems`, skipped, and the rest loads.
Only an unreadable file or a missing header is fatal (SourceErrors), because then nothing in
the file can be trusted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gateway.addresses import (
    ascii_domain,
    domain_of,
    mailbox_key,
    normalize_address,
    routes_elsewhere,
)
from gateway.config import Settings
from gateway.model import Party, Role
from gateway.yamlsrc import SourceError, SourceErrors

PEOPLE_COLUMNS = ("address", "role", "person_id", "name", "supervisor", "students")
# Optional: the school(s) or building(s) a person belongs to, `;`-separated. It scopes what a
# reviewer sees in the review console (a principal sees the held mail of their school).
SCHOOL_COLUMN = "school"
RELATIONSHIP_COLUMNS = ("staff_id", "student_id", "relationship", "reported_to", "reported_on")
_ROLES = {"staff": Role.STAFF, "student": Role.STUDENT, "parent": Role.PARENT}


class PartyLookup(Protocol):
    """What the core asks of a directory: who an address is (`Directory` below, or a test
    double)."""

    def party(self, address: str) -> Party: ...


@dataclass(frozen=True, slots=True)
class _Row:
    address: str
    role: Role
    person_id: str
    name: str
    supervisor: str | None
    children: frozenset[str]
    schools: frozenset[str] = frozenset()


@dataclass(slots=True)
class Directory:
    """Address and person lookups; immutable once loaded (a reload builds a new one)."""

    staff_domains: frozenset[str]
    student_domains: frozenset[str]
    dotless_domains: frozenset[str] = frozenset()
    domain_aliases: dict[str, str] = field(default_factory=dict)
    rows: dict[str, _Row] = field(default_factory=dict)
    mailboxes: dict[str, _Row] = field(default_factory=dict)  # by `mailbox_key`
    relationships: frozenset[tuple[str, str]] = frozenset()
    problems: list[SourceError] = field(default_factory=list)
    by_person: dict[str, list[_Row]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # person id → first row's line

    def index(self) -> None:
        """Person → rows, and each row under its mailbox's one spelling, so per-recipient
        lookups stay O(1) in a district of thousands."""
        self.by_person = {}
        self.mailboxes = {}
        for row in self.rows.values():
            self.by_person.setdefault(row.person_id, []).append(row)
            self.mailboxes.setdefault(self.mailbox(row.address), row)  # the first row wins

    def mailbox(self, address: str) -> str:
        return mailbox_key(address, self.dotless_domains, self.domain_aliases)

    # -- classification ---------------------------------------------------------------
    def is_district(self, address: str) -> bool:
        domain = domain_of(normalize_address(address))
        return domain in self.staff_domains or domain in self.student_domains

    def party(self, address: str) -> Party:
        """Classify an address; never raises."""
        norm = normalize_address(address)
        if routes_elsewhere(norm):
            return Party(norm, Role.EXTERNAL, False)
        domain = domain_of(norm)
        district = domain in self.staff_domains or domain in self.student_domains
        row = self.rows.get(norm) or self.mailboxes.get(self.mailbox(norm))
        if row is not None:
            return Party(norm, row.role, district, row.person_id, row.name or None,
                         self.supervisor_of(row.person_id) if row.role is Role.STAFF else None,
                         row.children, self.schools_of(row.person_id))
        if domain in self.staff_domains:
            return Party(norm, Role.STAFF, True)
        if domain in self.student_domains:
            return Party(norm, Role.STUDENT, True)
        return Party(norm, Role.EXTERNAL, False)

    # -- person lookups ---------------------------------------------------------------
    def addresses_of(self, person_id: str) -> list[str]:
        return [r.address for r in self.by_person.get(person_id, ())]

    def district_address(self, person_id: str) -> str | None:
        """The person's District account, used to tell staff where to reply (P5)."""
        for address in self.addresses_of(person_id):
            if self.is_district(address):
                return address
        return None

    def name_of(self, person_id: str) -> str | None:
        return next((r.name for r in self.by_person.get(person_id, ()) if r.name), None)

    def supervisor_of(self, staff_id: str) -> str | None:
        """The principal or designee named on any of the staff member's rows."""
        return next((r.supervisor for r in self.by_person.get(staff_id, ()) if r.supervisor),
                    None)

    def staff_without_supervisor(self) -> list[str]:
        """Person ids of staff with no supervisor on any of their rows, in file order."""
        staff = {r.person_id for r in self.rows.values() if r.role is Role.STAFF}
        return sorted((pid for pid in staff if not self.supervisor_of(pid)),
                      key=lambda pid: self.lines.get(pid, 0))

    def schools_of(self, person_id: str) -> frozenset[str]:
        """Every school named on any of the person's rows."""
        return frozenset().union(*(r.schools for r in self.by_person.get(person_id, ())))

    def students(self) -> Iterator[tuple[str, str]]:
        """(person_id, full name) once per student, for the name and number detectors."""
        seen: set[str] = set()
        for row in self.rows.values():
            if row.role is Role.STUDENT and row.person_id not in seen:
                seen.add(row.person_id)
                yield row.person_id, row.name

    def has_relationship(self, staff_id: str | None, student_id: str | None) -> bool:
        """A reported personal relationship (item 3) between this employee and student."""
        if not staff_id or not student_id:
            return False
        return (staff_id, student_id) in self.relationships


# --- loading ---------------------------------------------------------------------------------

def load_directory(settings: Settings) -> Directory:
    """Build the Directory from settings; SourceErrors when a file cannot be used at all."""
    district = settings.district
    mailboxes = settings.directory
    directory = Directory(frozenset(ascii_domain(d) for d in district.staff_domains),
                          frozenset(ascii_domain(d) for d in district.student_domains),
                          frozenset(mailboxes.dotless_domains), dict(mailboxes.domain_aliases))
    errors: list[SourceError] = []
    if settings.directory.people is not None:
        try:
            _load_people(settings.directory.people, directory)
        except SourceErrors as exc:
            errors.extend(exc.errors)
    directory.index()
    if settings.directory.relationships is not None:
        try:
            _load_relationships(settings.directory.relationships, directory)
        except SourceErrors as exc:
            errors.extend(exc.errors)
    if errors:
        raise SourceErrors(errors)
    # Skipped rows are in `directory.problems`: the daemon logs them, and the validators
    # (`policy validate`, `serve --check-config`) print them as FILE:LINE:COLUMN errors.
    return directory


def _read_csv(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; SourceErrors if unreadable or the header lacks a column."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or a NUL in the path
        reason = (exc.strerror if isinstance(exc, OSError) else "not valid UTF-8"
                  if isinstance(exc, UnicodeDecodeError) else "bad file name")
        raise SourceErrors([SourceError(name, 1, 1, f"cannot read file: {reason}",
                                        "unreadable")]) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise SourceErrors([SourceError(name, 1, 1, f"cannot parse CSV: {exc}",
                                        "unreadable")]) from None
    missing = [c for c in columns if c not in header]
    if missing:
        raise SourceErrors([SourceError(name, 1, 1, "missing column(s): " + ", ".join(missing),
                                        "missing-column")])
    reader.fieldnames = header
    try:
        for row in reader:
            clean = {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)}
            if not any(clean.values()):
                continue
            yield reader.line_num, clean
    except csv.Error as exc:  # e.g. an unclosed quote swallowing the rest of the file
        raise SourceErrors([SourceError(name, reader.line_num, 1, f"cannot parse CSV: {exc}",
                                        "unreadable")]) from None


def _problem(directory: Directory, path: Path, line: int, message: str) -> None:
    directory.problems.append(SourceError(str(path), line, 1, message, "bad-row"))


def _load_people(path: Path, directory: Directory) -> None:
    parent_lines: dict[str, int] = {}
    for line, row in _read_csv(path, PEOPLE_COLUMNS):
        reason = _people_row_problem(row, directory)
        if reason:
            _problem(directory, path, line, reason)
            continue
        address = normalize_address(row["address"])
        role = _ROLES[row["role"].lower()]
        supervisor = normalize_address(row["supervisor"]) if row["supervisor"] else None
        children = frozenset(s.strip() for s in row["students"].split(";") if s.strip())
        if role is not Role.PARENT:
            children = frozenset()
        schools = frozenset(s.strip() for s in row.get(SCHOOL_COLUMN, "").split(";")
                            if s.strip())
        directory.rows[address] = _Row(address, role, row["person_id"], row["name"],
                                       supervisor, children, schools)
        directory.lines.setdefault(row["person_id"], line)
        if children:
            parent_lines[address] = line
    _check_children(path, directory, parent_lines)


def _people_row_problem(row: dict[str, str], directory: Directory) -> str | None:
    """Why a people row cannot be used (no personal data in the message), or None."""
    if not row["address"] or "@" not in row["address"]:
        return "row skipped: missing or malformed address"
    if row["role"].lower() not in _ROLES:
        # The cell's value is not echoed: in a shifted row it is often a student's name.
        return "row skipped: the role column must be staff, student or parent"
    if not row["person_id"]:
        return "row skipped: missing person_id"
    existing = directory.rows.get(normalize_address(row["address"]))
    if existing is not None:
        return "row skipped: address already listed on an earlier row"
    if row["supervisor"] and "@" not in row["supervisor"]:
        return "row skipped: supervisor must be an address"
    return None


def _check_children(path: Path, directory: Directory, parent_lines: dict[str, int]) -> None:
    """A parent row naming an unknown student is reported (kept: the student may come later)."""
    students = {r.person_id for r in directory.rows.values() if r.role is Role.STUDENT}
    for address, line in parent_lines.items():
        unknown = directory.rows[address].children - students
        if unknown:
            directory.problems.append(SourceError(
                str(path), line, 1, f"parent row lists {len(unknown)} student id(s) not in "
                "the people file (row kept)", "unknown-student"))


def _load_relationships(path: Path, directory: Directory) -> None:
    staff = {r.person_id for r in directory.rows.values() if r.role is Role.STAFF}
    students = {r.person_id for r in directory.rows.values() if r.role is Role.STUDENT}
    pairs: set[tuple[str, str]] = set()
    for line, row in _read_csv(path, RELATIONSHIP_COLUMNS):
        if not row["staff_id"] or not row["student_id"]:
            _problem(directory, path, line, "row skipped: staff_id and student_id are required")
        elif staff and row["staff_id"] not in staff:
            _problem(directory, path, line, "row skipped: staff_id is not a staff member "
                     "in the people file")
        elif students and row["student_id"] not in students:
            _problem(directory, path, line, "row skipped: student_id is not a student "
                     "in the people file")
        else:
            pairs.add((row["staff_id"], row["student_id"]))
    directory.relationships = frozenset(pairs)
