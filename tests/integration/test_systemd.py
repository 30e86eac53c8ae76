"""The systemd unit, sysusers and tmpfiles: verified by systemd's own tools where present."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import SmtpSettings, load_settings
from tests.factories import REPO
from tests.harness import seconds, unit_directives, unit_values

UNIT = REPO / "systemd" / "gateway.service"
SYSTEMD = REPO / "systemd"


def _verifiable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an executable that exists on this machine."""
    text = UNIT.read_text().replace("/usr/bin/gateway", sys.executable)
    copy = tmp_path / "gateway.service"
    copy.write_text(text)
    return copy


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    result = subprocess.run(["systemd-analyze", "verify", str(_verifiable_copy(tmp_path))],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "gateway.service" not in result.stderr, result.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_exposure_score_stays_low(tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager",
         str(_verifiable_copy(tmp_path))], capture_output=True, text=True, timeout=60)
    if "--offline" in result.stderr:
        pytest.skip("systemd-analyze security --offline needs systemd >= 252")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0


REQUIRED = {
    ("Service", "Type"): "notify",
    ("Service", "NotifyAccess"): "main",
    ("Service", "ExecStart"): "/usr/bin/gateway serve --config /etc/gateway/gateway.yaml",
    ("Service", "User"): "gateway",
    ("Service", "StateDirectory"): "gateway",
    ("Service", "StateDirectoryMode"): "0700",
    ("Service", "ConfigurationDirectory"): "gateway",
    ("Service", "AmbientCapabilities"): "CAP_NET_BIND_SERVICE",
    ("Service", "CapabilityBoundingSet"): "CAP_NET_BIND_SERVICE",
    ("Service", "NoNewPrivileges"): "yes",
    ("Service", "ProtectSystem"): "strict",
    ("Service", "ProtectHome"): "yes",
    ("Service", "PrivateTmp"): "yes",
    ("Service", "PrivateDevices"): "yes",
    ("Service", "ProtectKernelTunables"): "yes",
    ("Service", "ProtectKernelModules"): "yes",
    ("Service", "ProtectKernelLogs"): "yes",
    ("Service", "ProtectControlGroups"): "yes",
    ("Service", "RestrictAddressFamilies"): "AF_INET AF_INET6 AF_UNIX",
    ("Service", "RestrictNamespaces"): "yes",
    ("Service", "LockPersonality"): "yes",
    ("Service", "MemoryDenyWriteExecute"): "yes",
    ("Service", "RestrictRealtime"): "yes",
    ("Service", "RestrictSUIDSGID"): "yes",
    ("Service", "SystemCallArchitectures"): "native",
    ("Service", "UMask"): "0077",
    ("Service", "Restart"): "on-failure",
    ("Install", "WantedBy"): "multi-user.target",
}


@pytest.mark.parametrize(("where", "value"), REQUIRED.items(), ids=lambda x: str(x))
def test_unit_directive(where: tuple[str, str], value: str) -> None:
    assert value in unit_values(UNIT, *where)


def test_syscall_filter_allows_system_service_set() -> None:
    assert unit_values(UNIT, "Service", "SystemCallFilter")[0] == "@system-service"


def test_stop_timeout_exceeds_the_drain_timeout() -> None:
    (stop,) = unit_values(UNIT, "Service", "TimeoutStopSec")
    example = load_settings(SYSTEMD / "gateway.yaml")
    assert seconds(stop) > max(SmtpSettings().drain_timeout, example.smtp.drain_timeout)


def test_watchdog_is_set() -> None:
    (watchdog,) = unit_values(UNIT, "Service", "WatchdogSec")
    assert seconds(watchdog) >= 10  # pings every half; a busy machine must not trip it


def test_venv_drop_in_resets_then_sets_exec_start_and_reload() -> None:
    directives = unit_directives(SYSTEMD / "gateway-venv.conf")
    assert directives == [
        ("Service", "ExecStart", ""),
        ("Service", "ExecStart",
         "/opt/gateway/bin/gateway serve --config /etc/gateway/gateway.yaml"),
        ("Service", "ExecReload", ""),
        *[("Service", "ExecReload", line.replace("/usr/bin/", "/opt/gateway/bin/"))
          for line in unit_values(UNIT, "Service", "ExecReload")],
    ]


def test_reload_checks_the_configuration_before_signalling() -> None:
    assert unit_values(UNIT, "Service", "ExecReload") == [
        "/usr/bin/gateway serve --check-config --config /etc/gateway/gateway.yaml",
        "/bin/kill -HUP $MAINPID",
    ]


def _run_exec_reload(config: Path, main_pid: int) -> list[subprocess.CompletedProcess[str]]:
    """The unit's ExecReload= lines run as systemd runs them: in order, stopping at the first
    that fails (which fails `systemctl reload`)."""
    done = []
    for line in unit_values(UNIT, "Service", "ExecReload"):
        argv = (line.replace("/usr/bin/gateway", f"{sys.executable} -m gateway")
                .replace("/etc/gateway/gateway.yaml", str(config))
                .replace("$MAINPID", str(main_pid)).split())
        done.append(subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120))
        if done[-1].returncode != 0:
            break
    return done


def _hup_catcher() -> subprocess.Popen[str]:
    """A stand-in for the daemon's main process that reports the SIGHUP it gets."""
    code = ("import signal, sys; signal.signal(signal.SIGHUP, lambda *_: (print('HUP'), "
            "sys.exit(0))); print('ready', flush=True); signal.pause()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def test_reload_of_a_broken_file_fails_before_the_daemon_is_signalled(tmp_path: Path) -> None:
    for name in ("people.csv", "relationships.csv", "policies.yaml"):
        shutil.copy(REPO / "config" / name, tmp_path / name)
    config = tmp_path / "gateway.yaml"
    config.write_text((REPO / "config" / "gateway.yaml").read_text()
                      .replace("smtp:", "smtp:\n  max_sessions: many\n", 1))
    main = _hup_catcher()
    try:
        done = _run_exec_reload(config, main.pid)
        assert len(done) == 1 and done[0].returncode != 0
        assert re.search(r"gateway\.yaml:\d+:\d+", done[0].stderr), done[0].stderr
        assert main.poll() is None  # never signalled
        config.write_text((REPO / "config" / "gateway.yaml").read_text())
        done = _run_exec_reload(config, main.pid)
        assert [d.returncode for d in done] == [0, 0]
        assert main.wait(timeout=60) == 0 and main.stdout is not None
        assert main.stdout.read() == "HUP\n"
    finally:
        main.kill()
        main.wait()


def test_example_config_matches_the_unit() -> None:
    settings = load_settings(SYSTEMD / "gateway.yaml")
    assert settings.quarantine.path == Path("/var/lib/gateway/quarantine.db")
    assert settings.log.format == "json"
    assert settings.metrics_listen is not None
    assert settings.metrics_listen.host == "127.0.0.1"


needs_root_tools = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("systemd-sysusers")
    or not shutil.which("systemd-tmpfiles"),
    reason="needs root and systemd-sysusers/systemd-tmpfiles")


@needs_root_tools
def test_sysusers_and_tmpfiles_create_the_account_and_private_folders(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(SYSTEMD / "gateway.sysusers")],
                   check=True, capture_output=True, timeout=60)
    passwd = (tmp_path / "etc" / "passwd").read_text()
    entry = next(line for line in passwd.splitlines() if line.startswith("gateway:"))
    _, _, uid, gid, _, home, shell = entry.split(":")
    assert home == "/var/lib/gateway" and shell.endswith("nologin")
    subprocess.run(["systemd-tmpfiles", "--create", f"--root={tmp_path}",
                    str(SYSTEMD / "gateway.tmpfiles")], check=True, capture_output=True,
                   timeout=60)
    state = (tmp_path / "var" / "lib" / "gateway").stat()
    assert (state.st_mode & 0o777, state.st_uid, state.st_gid) == (0o700, int(uid), int(gid))
    conf = (tmp_path / "etc" / "gateway").stat()
    assert (conf.st_mode & 0o777, conf.st_uid, conf.st_gid) == (0o750, 0, int(gid))


REVIEW_UNIT = REPO / "systemd" / "gateway-review.service"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_the_review_console_unit_verifies_and_is_sandboxed(tmp_path: Path) -> None:
    copy = tmp_path / "gateway-review.service"
    copy.write_text(REVIEW_UNIT.read_text().replace("/usr/bin/gateway", sys.executable))
    result = subprocess.run(["systemd-analyze", "verify", str(copy)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "gateway-review.service" not in result.stderr, result.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(copy)],
        capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security.stdout)
    if match is None and "--offline" in security.stderr:
        pytest.skip("systemd-analyze security --offline needs systemd >= 252")
    assert match and float(match.group(1)) <= 2.0, security.stdout + security.stderr


def test_the_review_console_unit_runs_the_console_as_the_service_account() -> None:
    assert unit_values(REVIEW_UNIT, "Service", "ExecStart") == [
        "/usr/bin/gateway review --config /etc/gateway/gateway.yaml"]
    assert unit_values(REVIEW_UNIT, "Service", "User") == ["gateway"]
    assert unit_values(REVIEW_UNIT, "Service", "CapabilityBoundingSet") == [""]
