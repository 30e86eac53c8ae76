"""`gateway policy validate` in-process, and `serve --check-config` agreeing with it: every
problem in every file, one FILE:LINE:COLUMN line each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.cli import main
from tests.factories import REPO, STAFF_DOMAIN, write_district_config


def test_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "validate", "--config", str(write_district_config(tmp_path))]) == 0
    assert "valid" in capsys.readouterr().out


def test_validate_reports_every_file(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    policy = (REPO / "config" / "policies.yaml").read_text()
    policy = policy.replace("    action: hold\n\n  # P2", "    action: hodl\n\n  # P2")
    line = policy.splitlines().index("    action: hodl") + 1
    people = "address,role,person_id,name,supervisor,students\nx@y.example,boss,T1,X,,\n"
    config = write_district_config(tmp_path, policy=policy, people=people)
    assert main(["policy", "validate", "--config", str(config)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert any(e.endswith(f"policies.yaml:{line}:13: unknown action 'hodl' "
                          "(did you mean 'hold'?)") for e in err)
    assert any("people.csv:2:1: row skipped: the role column must be" in e for e in err)
    # Nothing else on stderr: each line is one error, FILE:LINE:COLUMN: message.
    assert err and all(re.match(r"^\S+:\d+:\d+: ", e) for e in err), err


def test_check_config_fails_on_skipped_directory_rows_as_validate_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The daemon starts without a broken row; a check before a start or reload fails on it
    (like `policy validate`), so a CI gate on either command sees the same verdict."""
    people = (f"address,role,person_id,name,supervisor,students\n"
              f"jsmith@{STAFF_DOMAIN},staff,T1,Jo Smith,,\nx@y.example,boss,T2,X,,\n")
    relationships = "staff_id,student_id,relationship,reported_to,reported_on\n"
    config = write_district_config(tmp_path, people=people, relationships=relationships)
    assert main(["serve", "--check-config", "--config", str(config)]) == 1
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert "valid" not in captured.out
    assert len(err) == 1 and "people.csv:3:1: row skipped: the role column must be" in err[0]
    assert all(re.match(r"^\S+:\d+:\d+: ", e) for e in err), err
    assert main(["policy", "validate", "--config", str(config)]) == 1
    # With a policy error as well, both commands name both problems, nothing else.
    policy = (REPO / "config" / "policies.yaml").read_text().replace(
        "    action: hold\n\n  # P2", "    action: hodl\n\n  # P2")
    config = write_district_config(tmp_path, policy=policy, people=people,
                                   relationships=relationships)
    capsys.readouterr()
    for argv in (["serve", "--check-config"], ["policy", "validate"]):
        assert main([*argv, "--config", str(config)]) == 1
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 2 and "row skipped" in err[0] and "unknown action 'hodl'" in err[1]


def test_validate_warns_about_staff_without_a_supervisor(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Valid (exit 0), but P6 notices about them would go to the reviewers, or nowhere."""
    assert main(["policy", "validate", "--config", str(write_district_config(tmp_path))]) == 0
    err = capsys.readouterr().err.splitlines()
    # The sample directory's principal (line 6) has no supervisor; Jane Smith's personal row
    # has none either, but her District row does.
    assert [e for e in err if "warning" in e] == [
        f"{tmp_path / 'people.csv'}:6:1: warning: staff member T0 has no supervisor; P6 "
        "notices about them reach nobody: no quarantine.reviewers are configured either"]
    config = write_district_config(
        tmp_path, quarantine="{url: 'sqlite:///q.db', reviewers: [r@x.example]}")
    assert main(["policy", "validate", "--config", str(config)]) == 0
    assert "go to the reviewers (quarantine.reviewers) instead" in capsys.readouterr().err
