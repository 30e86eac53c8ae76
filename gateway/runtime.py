"""Everything the pure core needs, loaded together and swapped as one value on reload.

A Runtime is immutable: SIGHUP builds a new one and replaces the reference only if every file
loaded cleanly, so a broken policy or directory never half-applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.config import Settings
from gateway.directory import PartyLookup, load_directory
from gateway.inspect import build_inspector
from gateway.model import (
    ContactHistory,
    ContactPlan,
    Decision,
    Envelope,
    Inspection,
    Party,
)
from gateway.policy.loader import load_policy
from gateway.yamlsrc import SourceError


class Inspector(Protocol):
    """`inspect` is the contract. `gateway.inspect.Inspector` also splits it into `begin`
    (the walk, told its venue) and `finish` (the detectors), which lets the dispatcher read a
    small message on the event loop and send it to a thread when a file needs one; an
    inspector without them (a test double) is called as it is."""

    def inspect(self, raw: bytes) -> Inspection: ...


class Policy(Protocol):
    """`gateway.policy.engine.Policy`: names the contact counts it may need, then decides."""

    def contact_plan(self, envelope: Envelope, sender: Party, recipients: Sequence[Party],
                     inspection: Inspection) -> ContactPlan: ...

    def decide(self, envelope: Envelope, sender: Party, recipients: Sequence[Party],
               inspection: Inspection, history: ContactHistory) -> Decision: ...


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    directory: PartyLookup
    inspector: Inspector
    policy: Policy
    warnings: tuple[SourceError, ...] = field(default=())  # e.g. skipped directory rows


def load_runtime(settings: Settings) -> Runtime:
    """Load directory, inspection and policy for `settings`; raise SourceErrors on any error."""
    directory = load_directory(settings)
    policy = load_policy(settings, directory)
    inspector = build_inspector(settings, directory, policy.lexicons)
    return Runtime(settings, directory, inspector, policy, tuple(directory.problems))
