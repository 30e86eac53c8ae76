"""Build hook: the sample configuration and the systemd files go into the wheel.

They live at the top of the checkout (`config/`, `systemd/`), where the quick start, the tests
and the docs use them; a wheel installed on a server has no checkout, so the build copies them
to `gateway/samples/` inside the package, where `gateway init DIR` finds them. Everything
else about the build is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SAMPLE_FOLDERS = ("config", "systemd")


class BuildWithSamples(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install reads them from the checkout itself
        root = Path(__file__).resolve().parent
        for folder in SAMPLE_FOLDERS:
            source = root / folder
            if not source.is_dir():
                continue  # a partial source tree (a container build stage) ships none
            target = Path(self.build_lib) / "gateway" / "samples" / folder
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted(source.iterdir()):
                if path.is_file():
                    shutil.copyfile(path, target / path.name)


setup(cmdclass={"build_py": BuildWithSamples})
