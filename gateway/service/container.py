"""The container image's entrypoint: never filter real mail with the shipped sample district.

Why: the image seeds /etc/gateway with the sample configuration so that `docker run` works at
all, but a container started without the district's own files mounted would then enforce the
policy with a fictional directory: every real student, parent and staff member unknown, the
sample domains in place, and nothing in the log but an ordinary start. So `serve` first looks
at what the configuration names; if it is the sample district (the directory CSVs byte for
byte as shipped, or the sample's staff domains), it refuses with exit status 78 (EX_CONFIG)
and says how to fix it, unless `GATEWAY_DEMO=1` says this is a demonstration. Every other
command, and a configuration that does not load (the daemon then reports it properly), is
handed to `gateway` unchanged; the process is replaced (exec), so signals reach the daemon.

    ENTRYPOINT ["python", "-m", "gateway.service.container"]   (arguments as for `gateway`)
    GATEWAY_DEMO=1             allow the sample district (a demonstration, no real mail)
    GATEWAY_SAMPLES=/usr/share/gateway/config   where the image keeps the samples to compare
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from gateway.config import Settings, load_settings
from gateway.yamlsrc import SourceErrors

DEMO = "GATEWAY_DEMO"
SAMPLES = "GATEWAY_SAMPLES"
DEFAULT_SAMPLES = "/usr/share/gateway/config"
SAMPLE_CONFIG = "gateway.docker.yaml"
EX_CONFIG = 78


def config_argument(argv: list[str]) -> str | None:
    """`--config PATH` or `--config=PATH` from a `serve` command line."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def is_serving(argv: list[str]) -> bool:
    return bool(argv) and argv[0] == "serve" and "--check-config" not in argv


def sample_signs(settings: Settings, samples: Path) -> list[str]:
    """Why `settings` is the sample district (empty when it is not)."""
    signs = []
    for path in (settings.directory.people, settings.directory.relationships):
        sample = samples / path.name
        if path.is_file() and sample.is_file() and path.read_bytes() == sample.read_bytes():
            signs.append(f"{path} is the shipped sample {path.name}")
    sample_config = samples / SAMPLE_CONFIG
    if sample_config.is_file():
        try:
            shipped = load_settings(sample_config).district.staff_domains
        except SourceErrors:
            shipped = ()
        if shipped and set(settings.district.staff_domains) & set(shipped):
            signs.append("district.staff_domains are the sample's ("
                         + ", ".join(sorted(set(settings.district.staff_domains) & set(shipped)))
                         + ")")
    return signs


def is_demo(environ: dict[str, str]) -> bool:
    return environ.get(DEMO, "").strip().lower() in ("1", "true", "yes")


def refusal(argv: list[str], environ: dict[str, str]) -> str | None:
    """The message to refuse with, or None to go ahead."""
    if not is_serving(argv) or is_demo(environ):
        return None
    try:
        settings = load_settings(config_argument(argv))
    except SourceErrors:
        return None  # the daemon itself reports every problem, FILE:LINE:COLUMN
    signs = sample_signs(settings, Path(environ.get(SAMPLES, DEFAULT_SAMPLES)))
    if not signs:
        return None
    return ("gateway: refusing to filter mail for the sample district:\n"
            + "".join(f"  - {sign}\n" for sign in signs)
            + "Mount the district's own configuration at /etc/gateway (gateway.yaml, "
              "policies.yaml, people.csv, relationships.csv; see docs/operations.md, "
              "Container),\nor set GATEWAY_DEMO=1 for a demonstration that handles no real "
              "mail.\n")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    message = refusal(args, dict(os.environ))
    if message is not None:
        sys.stderr.write(message)
        return EX_CONFIG
    if is_serving(args) and is_demo(dict(os.environ)):
        sys.stderr.write(f"gateway: {DEMO} is set: the sample district is allowed; "
                         "this instance is a demonstration\n")
    os.execvp("gateway", ["gateway", *args])
    return 127  # not reached: execvp replaces the process or raises


if __name__ == "__main__":
    sys.exit(main())
