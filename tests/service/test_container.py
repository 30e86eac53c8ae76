"""The container entrypoint's decision: the sample district, or the district's own files."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.service.container import config_argument, is_serving, refusal
from tests.factories import REPO

SAMPLES = REPO / "config"


def _config(folder: Path, *, people: bytes | None = None, domain: str | None = None) -> Path:
    for name in ("relationships.csv", "policies.yaml"):
        (folder / name).write_bytes((SAMPLES / name).read_bytes())
    sample_people = (SAMPLES / "people.csv").read_bytes()
    (folder / "people.csv").write_bytes(people if people is not None else sample_people)
    text = (SAMPLES / "gateway.docker.yaml").read_text()
    if domain:
        text = text.replace("staff.district230.example", domain)
    (folder / "gateway.yaml").write_text(text)
    return folder / "gateway.yaml"


def _env(**extra: str) -> dict[str, str]:
    return {"GATEWAY_SAMPLES": str(SAMPLES), **extra}


def test_the_seeded_samples_are_refused(tmp_path: Path) -> None:
    message = refusal(["serve", "--config", str(_config(tmp_path))], _env())
    assert message is not None
    assert "people.csv is the shipped sample" in message
    assert "relationships.csv is the shipped sample" in message
    assert "staff_domains are the sample's" in message
    assert "GATEWAY_DEMO=1" in message


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_a_demo_is_allowed(tmp_path: Path, value: str) -> None:
    assert refusal(["serve", f"--config={_config(tmp_path)}"], _env(GATEWAY_DEMO=value)) is None


def test_demo_zero_is_not_a_demo(tmp_path: Path) -> None:
    assert refusal(["serve", f"--config={_config(tmp_path)}"], _env(GATEWAY_DEMO="0"))


def test_own_directory_with_sample_domains_is_still_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, people=b"address,role,person_id,name,supervisor,students\n")
    message = refusal(["serve", "--config", str(config)], _env())
    assert message is not None and "people.csv" not in message.split("\n")[1]
    assert "staff_domains" in message


def test_the_districts_own_files_go_ahead(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    config = _config(tmp_path / "etc", domain="staff.realdistrict.org",
                     people=b"address,role,person_id,name,supervisor,students\n"
                            b"a.teacher@staff.realdistrict.org,staff,S1,A Teacher,,\n")
    (tmp_path / "etc" / "relationships.csv").write_text(
        "staff_id,student_id,relationship,reported_to,reported_on\n")
    assert refusal(["serve", "--config", str(config)], _env()) is None


def test_only_serving_is_checked_and_a_broken_config_is_left_to_the_daemon(
        tmp_path: Path) -> None:
    config = str(_config(tmp_path))
    assert refusal(["quarantine", "list", "--config", config], _env()) is None
    assert refusal(["serve", "--check-config", "--config", config], _env()) is None
    broken = tmp_path / "broken.yaml"
    broken.write_text("listen: [\n")
    assert refusal(["serve", "--config", str(broken)], _env()) is None


def test_arguments() -> None:
    assert config_argument(["serve", "--config", "/x.yaml"]) == "/x.yaml"
    assert config_argument(["serve", "--config=/y.yaml"]) == "/y.yaml"
    assert config_argument(["serve"]) is None
    assert is_serving(["serve"]) and not is_serving([]) and not is_serving(["policy"])
