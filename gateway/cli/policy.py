"""`gateway policy validate` and `gateway policy test`: check policy edits before a reload."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli import add_config_argument, log_to_stderr

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.policy.engine import Policy
    from gateway.yamlsrc import SourceError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("policy", help="validate the policy or run policy test cases")
    commands = parser.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    validate = commands.add_parser(
        "validate", help="check config, directory and policies; errors as FILE:LINE:COL")
    add_config_argument(validate)
    validate.set_defaults(func=run_validate)
    test = commands.add_parser("test", help="run YAML policy test cases")
    add_config_argument(test)
    test.add_argument("files", metavar="FILE", nargs="+", help="YAML case files")
    test.set_defaults(func=run_test)


def run_validate(args: argparse.Namespace) -> int:
    """Every error from every file at once, so one run shows all that needs fixing."""
    from gateway.config import load_settings
    from gateway.yamlsrc import SourceErrors

    try:
        settings = load_settings(args.config)
    except SourceErrors as exc:
        print(exc, file=sys.stderr)
        return 1
    log_to_stderr(settings)
    errors, policy = directory_and_policy_problems(settings)
    for error in errors:
        print(error, file=sys.stderr)
    if errors or policy is None:
        return 1
    for warning in supervisor_warnings(settings, policy):
        print(warning, file=sys.stderr)
    print(f"gateway: {policy.source}: {len(policy.rules)} rules, "
          f"{len(policy.lexicons)} lexicons; configuration {settings.source} is valid")
    return 0


def directory_and_policy_problems(settings: Settings) -> tuple[list[SourceError], Policy | None]:
    """Every problem in the directory CSVs (skipped rows included) and the policy file, and
    the policy when it loads; shared with `gateway serve --check-config`."""
    from gateway.directory import Directory, load_directory
    from gateway.policy.loader import load_policy
    from gateway.yamlsrc import SourceErrors

    errors: list[SourceError] = []
    try:
        directory = load_directory(settings)
        errors.extend(directory.problems)
    except SourceErrors as exc:
        errors.extend(exc.errors)
        directory = Directory(frozenset(), frozenset())
    try:
        return errors, load_policy(settings, directory)
    except SourceErrors as exc:
        return errors + exc.errors, None


def supervisor_warnings(settings: Settings, policy: Policy) -> list[str]:
    """`FILE:LINE:1: warning: …` for each staff member without a supervisor, when a rule
    notifies supervisors (P6): their notices go to the reviewers, or to nobody without any."""
    from gateway.directory import load_directory

    if not any("supervisor" in rule.notify for rule in policy.rules):
        return []
    directory = load_directory(settings)
    people = settings.directory.people
    where = ("go to the reviewers (quarantine.reviewers) instead" if policy.options.reviewers
             else "reach nobody: no quarantine.reviewers are configured either")
    rules = ", ".join(r.id for r in policy.rules if "supervisor" in r.notify)
    return [f"{people}:{directory.lines.get(pid, 1)}:1: warning: staff member {pid} has no "
            f"supervisor; {rules} notices about them {where}"
            for pid in directory.staff_without_supervisor()]


def run_test(args: argparse.Namespace) -> int:
    from gateway.cli.policy_tests import describe, load_cases, run_case
    from gateway.config import load_settings
    from gateway.runtime import load_runtime
    from gateway.yamlsrc import SourceErrors

    try:
        settings = load_settings(args.config)
        log_to_stderr(settings)
        runtime = load_runtime(settings)
        cases = [case for name in args.files for case in load_cases(Path(name))]
    except SourceErrors as exc:
        print(exc, file=sys.stderr)
        return 2
    results = [run_case(case, runtime) for case in cases]
    for line in describe(results):
        print(line)
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0
