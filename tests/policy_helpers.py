"""Factories for the policy/directory tests: a small district in tmp_path and plain values."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.config import Settings, load_settings
from gateway.directory import Directory, load_directory
from gateway.model import (
    Attachment,
    ContactHistory,
    Decision,
    Envelope,
    Finding,
    Inspection,
    NoHistory,
)
from gateway.policy.engine import Policy
from gateway.policy.loader import load_policy

REPO = Path(__file__).resolve().parent.parent
SHIPPED_POLICY = REPO / "config" / "policies.yaml"
STAFF = "staff.d230.example"
STUDENTS = "students.d230.example"

PEOPLE = f"""address,role,person_id,name,supervisor,students
jsmith@{STAFF},staff,T1,Jane Smith,principal@{STAFF},
jane.home@gmail.example,staff,T1,Jane Smith,,
mbrown@{STAFF},staff,T2,Mark Brown,principal@{STAFF},
mark.brown@home.example,staff,T2,Mark Brown,,
principal@{STAFF},staff,T0,Pat Principal,,
alex@{STUDENTS},student,482913,Alex Jones,,
alexj@gmail.example,student,482913,Alex Jones,,
sam@{STUDENTS},student,517204,Sam Lee,,
sam.lee@yahoo.example,student,517204,Sam Lee,,
robin@parents.example,parent,P1,Robin Jones,,482913
"""
RELATIONSHIPS = f"""staff_id,student_id,relationship,reported_to,reported_on
T2,517204,uncle,principal@{STAFF},2026-08-20
"""


def write_config(tmp_path: Path, *, policy: str | None = None, people: str = PEOPLE,
                 relationships: str = RELATIONSHIPS, extra: str = "",
                 quarantine: str = '{url: "sqlite:///var/q.db"}') -> Path:
    """A gateway.yaml plus directory files (and the shipped policy unless one is given)."""
    (tmp_path / "people.csv").write_text(people, encoding="utf-8")
    (tmp_path / "relationships.csv").write_text(relationships, encoding="utf-8")
    text = policy if policy is not None else SHIPPED_POLICY.read_text(encoding="utf-8")
    (tmp_path / "policies.yaml").write_text(text, encoding="utf-8")
    config = tmp_path / "gateway.yaml"
    config.write_text(f"""
listen: {{host: 127.0.0.1, port: 0}}
upstream: {{host: 127.0.0.1, port: 1}}
trusted_networks: [127.0.0.0/8]
district:
  staff_domains: [{STAFF}]
  student_domains: [{STUDENTS}]
directory: {{people: people.csv, relationships: relationships.csv}}
policies: policies.yaml
quarantine: {quarantine}
postmaster: postmaster@{STAFF}
{extra}
""", encoding="utf-8")
    return config


@dataclass
class World:
    settings: Settings
    directory: Directory
    policy: Policy

    def decide(self, mail_from: str, rcpts: str | Sequence[str], *,
               findings: Iterable[Finding] = (), attachments: Iterable[Attachment] = (),
               trusted: bool = True, from_header: str | None = None, complete: bool = True,
               history: ContactHistory | None = None) -> Decision:
        rcpt_list = (rcpts,) if isinstance(rcpts, str) else tuple(rcpts)
        envelope = Envelope(mail_from, rcpt_list, b"", client_ip="127.0.0.1" if trusted
                            else "203.0.113.9", client_trusted=trusted,
                            received_at=datetime(2026, 9, 1, tzinfo=UTC))
        inspection = Inspection(tuple(findings), tuple(attachments), "subject", None,
                                from_header or mail_from, False, complete)
        return self.policy.decide(envelope, self.directory.party(mail_from),
                                  [self.directory.party(r) for r in rcpt_list], inspection,
                                  history or NoHistory())


def world(tmp_path: Path, **kwargs: str) -> World:
    settings = load_settings(write_config(tmp_path, **kwargs))
    directory = load_directory(settings)
    return World(settings, directory, load_policy(settings, directory))


def finding(detector: str, *students: str, count: int = 1, distinct: int = 0,
            location: str = "body") -> Finding:
    return Finding(detector, count, location, distinct, frozenset(students))


class CountingHistory:
    """Reports a fixed number of earlier contacts and remembers what it was asked."""

    def __init__(self, earlier: int):
        self.earlier = earlier
        self.asked: list[tuple[str, str, datetime]] = []

    def count_contacts(self, student_id: str, staff_id: str, since: datetime) -> int:
        self.asked.append((student_id, staff_id, since))
        return self.earlier

    def record_contact(self, student_id: str, staff_id: str, at: datetime) -> None:
        raise AssertionError("the engine must not record contacts")
