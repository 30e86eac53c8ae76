"""The wheel a deployment installs: exactly the declared dependencies, the fast engines where
wheels exist, and the sample files `gateway init` writes out, used from the installed wheel
(not the checkout)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
LINUX_WHEELS = ("sys_platform == \"linux\" and (platform_machine == \"x86_64\" "
                "or platform_machine == \"aarch64\")")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the source (pip builds in the tree it is given), with the
    installed setuptools and wheel: no network."""
    out = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "constraints.txt"):
        shutil.copy(REPO / name, source / name)
    for folder in ("gateway", "config", "systemd"):
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(out), str(source)],
                   check=True, timeout=300, cwd=source,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    [path] = out.glob("district_mail_gateway-*.whl")
    return path


def requirements(wheel: Path) -> dict[str, str]:
    """Requires-Dist by distribution name: the whole line."""
    with zipfile.ZipFile(wheel) as archive:
        [meta] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        headers = Parser().parsestr(archive.read(meta).decode())
    out = {}
    for line in headers.get_all("Requires-Dist") or []:
        name = line.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0]
        out.setdefault(name.strip().lower(), line) if "extra ==" not in line else None
    return out


def test_runtime_dependencies_are_what_the_code_imports(wheel: Path) -> None:
    runtime = requirements(wheel)
    assert "lxml" in runtime                # gateway/extract/docx.py parses DOCX XML with it
    assert "python-docx" not in runtime     # only the tests write DOCX files
    for fast in ("hyperscan", "google-re2", "uvloop", "pypdfium2"):
        assert runtime[fast].endswith(LINUX_WHEELS), runtime[fast]


def test_the_wheel_carries_the_samples_and_init_writes_them(wheel: Path,
                                                            tmp_path: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    for name in ("config/gateway.yaml", "config/policies.yaml", "config/people.csv",
                 "config/relationships.csv", "systemd/gateway.service",
                 "systemd/gateway.yaml"):
        assert f"gateway/samples/{name}" in names
    for name in ("templates/base.html", "templates/queue.html", "static/console.css"):
        assert f"gateway/review/{name}" in names  # the console's pages, not only its code
    # The unpacked wheel first on the path, run from elsewhere: the package's own files.
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    where = subprocess.run([sys.executable, "-c", "import gateway; print(gateway.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(tmp_path / "site"))
    result = subprocess.run([sys.executable, "-m", "gateway", "init", str(tmp_path / "etc")],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "etc" / "gateway.yaml").read_bytes() == \
        (REPO / "systemd" / "gateway.yaml").read_bytes()
    assert (tmp_path / "etc" / "systemd" / "gateway.service").is_file()


def test_constraints_pin_every_runtime_dependency_within_its_declared_range() -> None:
    """A dependency added to pyproject.toml without `make constraints` fails here, as does a
    pin outside the range the code is known to work with."""
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    linux = {"sys_platform": "linux", "platform_machine": "x86_64"}
    for text in declared:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(linux):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in constraints.txt: run `make constraints`"
        assert requirement.specifier.contains(pins[name]), (name, pins[name])
