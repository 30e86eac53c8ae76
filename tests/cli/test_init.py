"""`gateway init DIR` and `gateway --version`, as a real subprocess."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from gateway.config import load_settings

REPO = Path(__file__).resolve().parents[2]


def gateway(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_init_writes_a_configuration_that_checks_clean(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "gateway"
    result = gateway("init", str(target), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert written == ["gateway.yaml", "people.csv", "policies.yaml", "relationships.csv",
                       "systemd/gateway-review.service", "systemd/gateway-venv.conf",
                       "systemd/gateway.service", "systemd/gateway.sysusers",
                       "systemd/gateway.tmpfiles"]
    production = REPO / "systemd" / "gateway.yaml"
    assert (target / "gateway.yaml").read_bytes() == production.read_bytes()
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o640 for p in target.rglob("*") if p.is_file())
    assert load_settings(target / "gateway.yaml").smtp.hostname
    check = gateway("serve", "--check-config", "--config", str(target / "gateway.yaml"),
                    cwd=tmp_path)
    assert check.returncode == 0, check.stderr


def test_init_never_overwrites_the_districts_files_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("the district's own\n")
    refused = gateway("init", str(tmp_path), cwd=tmp_path)
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert (tmp_path / "people.csv").read_text() == "the district's own\n"
    assert not (tmp_path / "gateway.yaml").exists()  # all or nothing
    forced = gateway("init", "--quickstart", "--force", str(tmp_path), cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    quickstart = REPO / "config" / "gateway.yaml"
    assert (tmp_path / "gateway.yaml").read_bytes() == quickstart.read_bytes()
    assert stat.S_IMODE((tmp_path / "people.csv").stat().st_mode) == 0o640


def test_version_names_the_release_and_the_engines(tmp_path: Path) -> None:
    result = gateway("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith("gateway 0.") and "patterns=" in line and "event_loop=" in line
    assert "pdf=" in line and "Python 3." in line
