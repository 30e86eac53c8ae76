"""Dockerfile, .dockerignore and compose example, checked statically (no Docker engine here).

What can be run is run: the HEALTHCHECK command against a real HealthServer, and the
requirements extraction against pyproject.toml.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from gateway.config import Endpoint, load_settings
from gateway.service.health import HealthServer
from tests.factories import REPO
from tests.harness import Instruction, dockerfile, final_stage, free_port, seconds

INSTRUCTIONS = dockerfile(REPO / "Dockerfile")
ENTRYPOINT = ["python", "-m", "gateway.service.container"]
FINAL = final_stage(INSTRUCTIONS)
DOCKER_CONFIG = REPO / "config" / "gateway.docker.yaml"


def _only(keyword: str, stage: list[Instruction] = FINAL) -> Instruction:
    found = [ins for ins in stage if ins.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def test_base_image_is_python_311_slim() -> None:
    arg = next(ins for ins in INSTRUCTIONS if ins.keyword == "ARG")
    assert arg.args == "PYTHON_IMAGE=python:3.11-slim"
    assert {ins.args.split()[0] for ins in INSTRUCTIONS if ins.keyword == "FROM"} == {
        "${PYTHON_IMAGE}"}


def test_runs_as_non_root() -> None:
    user = _only("USER").args.split(":")[0]
    assert user not in ("root", "0")
    uid = re.search(r"useradd[^&]*--uid (\d+)", " ".join(i.args for i in FINAL))
    assert uid and uid.group(1) == user
    # nothing after USER runs as root again
    after = FINAL[FINAL.index(_only("USER")):]
    assert not [ins for ins in after if ins.keyword == "RUN"]


def test_entrypoint_and_cmd_are_exec_form() -> None:
    entry, cmd = _only("ENTRYPOINT").exec_form(), _only("CMD").exec_form()
    assert entry == ENTRYPOINT
    assert cmd == ["serve", "--config", "/etc/gateway/gateway.yaml"]


def test_the_entrypoint_compares_with_the_samples_the_image_copies() -> None:
    env = dict(a.split("=", 1) for ins in FINAL if ins.keyword == "ENV"
               for a in shlex.split(ins.args))
    copy = next(ins for ins in FINAL if ins.keyword == "COPY" and ins.args.startswith("config/"))
    assert env["GATEWAY_SAMPLES"] == shlex.split(copy.args)[1].rstrip("/")


def test_exposes_the_ports_the_docker_config_listens_on() -> None:
    settings = load_settings(DOCKER_CONFIG)
    assert settings.metrics_listen is not None
    exposed = set(_only("EXPOSE").args.split())
    assert exposed == {str(settings.listen.port), str(settings.metrics_listen.port)}
    assert settings.listen.port == 10025 and settings.metrics_listen.port == 9125


def test_volumes_hold_config_and_quarantine() -> None:
    volumes = _only("VOLUME").exec_form()
    assert volumes == ["/etc/gateway", "/var/lib/gateway"]
    settings = load_settings(DOCKER_CONFIG)
    assert settings.quarantine.path is not None
    assert settings.quarantine.path.parent == Path("/var/lib/gateway")


def healthcheck_code() -> str:
    healthcheck = _only("HEALTHCHECK").args
    options, _, command = healthcheck.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = Instruction("CMD", command).exec_form()
    assert argv is not None and argv[:2] == ["python", "-c"], "HEALTHCHECK must be exec form"
    assert "/healthz" in argv[2]
    return argv[2]


async def test_healthcheck_command_passes_against_a_live_server() -> None:
    async def ready() -> dict[str, bool]:
        return {"x": True}

    server = HealthServer(Endpoint("127.0.0.1", 0), ready)
    await server.start()
    try:
        code = healthcheck_code().replace(":9125/", f":{server.port}/")
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        port = server.port
    finally:
        await server.stop()
    code = healthcheck_code().replace(":9125/", f":{port}/")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code,
                                                stderr=asyncio.subprocess.DEVNULL)
    assert await asyncio.wait_for(proc.wait(), 60) != 0


async def test_healthcheck_command_fails_while_a_worker_is_stuck() -> None:
    """/healthz answers 503 when the liveness check says a worker's loop stopped."""
    async def ready() -> dict[str, bool]:
        return {"x": True}

    server = HealthServer(Endpoint("127.0.0.1", 0), ready,
                          liveness=lambda: (False, "worker 1: no heartbeat for 12.0 s\n"))
    await server.start()
    try:
        code = healthcheck_code().replace(":9125/", f":{server.port}/")
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code,
                                                    stderr=asyncio.subprocess.DEVNULL)
        assert await asyncio.wait_for(proc.wait(), 60) != 0
    finally:
        await server.stop()


def test_requirements_come_from_pyproject() -> None:
    run = next(ins.args for ins in INSTRUCTIONS
               if ins.keyword == "RUN" and "tomllib" in ins.args)
    command = run.split(">", 1)[0]
    argv = shlex.split(command)
    assert argv[:2] == ["python", "-c"]
    out = subprocess.run([sys.executable, "-c", argv[2]], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=60).stdout.split("\n")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert [line for line in out if line] == (project["dependencies"]
                                              + project["optional-dependencies"]["fast"])


def test_dependencies_are_installed_at_the_pinned_versions() -> None:
    run = next(ins.args for ins in INSTRUCTIONS
               if ins.keyword == "RUN" and "-r /tmp/requirements.txt" in ins.args)
    assert "-c constraints.txt" in run  # the same versions as `pip install -c constraints.txt`
    assert "constraints.txt" in _copy_sources()


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        candidates = [pattern, pattern.replace("**/", "")]
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatch(p, c) for p in prefixes for c in candidates):
            ignored = not negate
    return ignored


def _copy_sources() -> list[str]:
    sources = []
    for ins in INSTRUCTIONS:
        if ins.keyword == "COPY" and "--from=" not in ins.args:
            sources.extend(shlex.split(ins.args)[:-1])
    return sources


def test_dockerignore_excludes_local_state_but_not_copied_sources() -> None:
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for secret in (".git", ".venv", "var/quarantine.db", "gateway/__pycache__/x.pyc"):
        assert _ignored(secret, patterns), secret
    for source in _copy_sources():
        assert not _ignored(source.rstrip("/"), patterns), source


@pytest.mark.parametrize("source", _copy_sources())
def test_copied_sources_exist(source: str) -> None:
    assert (REPO / source).exists(), f"COPY {source}: not in the repository"


def test_compose_example() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.example.yml").read_text())
    gateway = compose["services"]["gateway"]
    assert gateway["init"] is True
    assert "25:10025" in gateway["ports"]
    assert not any(str(p).endswith(":9125") for p in gateway["ports"])  # metrics stay inside
    mounts = {v.split(":")[1] for v in gateway["volumes"]}
    assert mounts == {"/etc/gateway", "/var/lib/gateway"}
    drain = load_settings(DOCKER_CONFIG).smtp.drain_timeout
    assert seconds(gateway["stop_grace_period"]) > drain
    upstream = load_settings(DOCKER_CONFIG).upstream
    assert upstream.host in compose["services"]
    assert str(upstream.port) in compose["services"][upstream.host]["expose"]


def test_compose_example_filters_staff_submission_through_the_gateway() -> None:
    """Staff submit to the mail server (it authenticates them); every submission service it
    publishes hands the mail to the gateway, which relays it back to the unfiltered port 25.
    The gateway trusts the mail server's address, and not the compose subnet."""
    compose = yaml.safe_load((REPO / "docker-compose.example.yml").read_text())
    gateway_ip = compose["services"]["gateway"]["networks"]["mail"]["ipv4_address"]
    mailserver = compose["services"]["mailserver"]
    mailserver_ip = mailserver["networks"]["mail"]["ipv4_address"]
    published = {str(p).split(":")[-1] for p in mailserver["ports"]}
    assert "25" not in published  # the world reaches port 25 through the gateway only
    services = {"587": "submission", "465": "smtps"}  # docker-mailserver's service names
    mounts = {target: source for source, target in
              (v.removesuffix(":ro").split(":") for v in mailserver["volumes"]
               if v.endswith(":ro"))}
    overrides = (REPO / mounts["/tmp/docker-mailserver/postfix-master.cf"]).read_text()
    listen = load_settings(DOCKER_CONFIG).listen
    for port in published & set(services):
        assert (f"{services[port]}/inet/content_filter=gateway:[{gateway_ip}]:{listen.port}"
                in overrides.splitlines())
    assert "smtp/inet/content_filter" not in overrides  # port 25: the gateway's output
    patches = (REPO / mounts["/tmp/docker-mailserver/user-patches.sh"]).read_text()
    assert re.search(r"^gateway\s+unix\s+.*\ssmtp$", patches, re.MULTILINE)
    assert mailserver["environment"]["ENABLE_AMAVIS"] == "0"
    trusted = [str(n) for n in load_settings(DOCKER_CONFIG).trusted_networks]
    assert f"{mailserver_ip}/32" in trusted
    subnet = compose["networks"]["mail"]["ipam"]["config"][0]["subnet"]
    assert subnet not in trusted


def test_seeded_config_volume_passes_check_config() -> None:
    """The image seeds /etc/gateway from config/: that set must load as the daemon would."""
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--check-config", "--config",
         str(DOCKER_CONFIG)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    copied = re.search(r"for f in ([\w. ]+); do", _only("RUN", [
        ins for ins in FINAL if ins.keyword == "RUN" and "gateway.docker.yaml" in ins.args]).args)
    assert copied is not None
    settings = load_settings(DOCKER_CONFIG)
    referenced = {settings.policies, settings.directory.people, settings.directory.relationships}
    assert {p.name for p in referenced if p is not None} == set(copied.group(1).split())


# --- the entrypoint, run as the image runs it (python -m gateway.service.container) ----------

def _sample_volume(tmp_path: Path, smtp_port: int, metrics_port: int) -> Path:
    """What /etc/gateway holds when nothing is mounted: the seeded samples, with loopback
    addresses and a temporary quarantine instead of the container's."""
    for name in ("people.csv", "relationships.csv", "policies.yaml"):
        (tmp_path / name).write_bytes((REPO / "config" / name).read_bytes())
    text = (DOCKER_CONFIG.read_text()
            .replace("host: 0.0.0.0, port: 10025", f"host: 127.0.0.1, port: {smtp_port}")
            .replace('"0.0.0.0:9125"', f'"127.0.0.1:{metrics_port}"')
            .replace("sqlite:////var/lib/gateway/quarantine.db",
                     f"sqlite:///{tmp_path}/quarantine.db")
            .replace("host: mailserver", "host: 127.0.0.1")
            .replace("workers: 2 ", "workers: 1 "))
    config = tmp_path / "gateway.yaml"
    config.write_text(text)
    assert load_settings(config).listen.port == smtp_port
    return config


def _entrypoint_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_DEMO"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["GATEWAY_SAMPLES"] = str(REPO / "config")  # as the image's COPY config/ puts them
    env["PYTHONPATH"] = str(REPO)
    return {**env, **extra}


def test_entrypoint_refuses_the_sample_district(tmp_path: Path) -> None:
    config = _sample_volume(tmp_path, free_port(), free_port())
    result = subprocess.run(
        [sys.executable, *ENTRYPOINT[1:], "serve", "--config", str(config)],
        env=_entrypoint_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 78, result.stderr
    assert "sample district" in result.stderr and "GATEWAY_DEMO=1" in result.stderr
    assert "people.csv" in result.stderr and "staff.district230.example" in result.stderr
    assert not (tmp_path / "quarantine.db").exists()  # nothing was started


def test_entrypoint_passes_other_commands_through(tmp_path: Path) -> None:
    config = _sample_volume(tmp_path, free_port(), free_port())
    result = subprocess.run(
        [sys.executable, *ENTRYPOINT[1:], "serve", "--check-config", "--config", str(config)],
        env=_entrypoint_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout


async def test_entrypoint_serves_the_sample_district_as_a_demo(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = _sample_volume(tmp_path, smtp_port, free_port())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *ENTRYPOINT[1:], "serve", "--config", str(config),
        env=_entrypoint_env(GATEWAY_DEMO="1"), stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", smtp_port)
            except OSError:
                assert proc.returncode is None, "the demo did not start"
                await asyncio.sleep(0.1)
                continue
            assert (await reader.readline()).startswith(b"220")
            writer.close()
            break
        else:
            raise AssertionError("the demo never greeted")
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert b"demonstration" in err
