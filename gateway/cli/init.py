"""`gateway init DIR`: write the sample configuration and the systemd files for a new install.

The files come from the installed package (a wheel carries them in `gateway/samples/`) or, run
from a checkout, from its `config/` and `systemd/` folders. DIR gets what `/etc/gateway` holds
(gateway.yaml, policies.yaml, people.csv, relationships.csv) and DIR/systemd/ the unit files to
install by hand. Existing files are left alone unless --force: they may be the district's own.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

CONFIG_FILES = ("policies.yaml", "people.csv", "relationships.csv")
SYSTEMD_FILES = ("gateway.service", "gateway-venv.conf", "gateway.sysusers", "gateway.tmpfiles",
                 "gateway-review.service")
# The directory CSVs will hold student data once filled in, the config a database password:
# readable by the owner and the service's group only.
FILE_MODE = 0o640
DIR_MODE = 0o750


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("init", help="write a sample configuration for a new install")
    parser.add_argument("directory", metavar="DIR", type=Path,
                        help="where to write gateway.yaml and its files (e.g. /etc/gateway)")
    parser.add_argument("--quickstart", action="store_true",
                        help="the quick-start gateway.yaml (127.0.0.1:10025, relaying to a "
                             "local `gateway sink`) instead of the production one")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.set_defaults(func=run)


def samples() -> tuple[Traversable, Traversable]:
    """The (config, systemd) sample folders of this installation."""
    packaged = files("gateway") / "samples"
    if packaged.is_dir():
        return packaged / "config", packaged / "systemd"
    checkout = Path(__file__).resolve().parents[2]  # an editable install or a checkout
    return checkout / "config", checkout / "systemd"


def plan(directory: Path, *, quickstart: bool) -> list[tuple[Traversable, Path]]:
    """(source, destination) for every file init writes."""
    config, systemd = samples()
    main = (config if quickstart else systemd) / "gateway.yaml"
    return ([(main, directory / "gateway.yaml")]
            + [(config / name, directory / name) for name in CONFIG_FILES]
            + [(systemd / name, directory / "systemd" / name) for name in SYSTEMD_FILES])


def run(args: argparse.Namespace) -> int:
    try:
        steps = plan(args.directory, quickstart=args.quickstart)
    except OSError as exc:
        print(f"gateway: cannot find the sample files: {exc}", file=sys.stderr)
        return 2
    missing = [str(source) for source, _ in steps if not source.is_file()]
    if missing:
        print(f"gateway: this installation lacks its sample files: {', '.join(missing)}",
              file=sys.stderr)
        return 2
    existing = [str(target) for _, target in steps if target.exists()]
    if existing and not args.force:
        print("gateway: not overwriting (use --force): " + ", ".join(existing), file=sys.stderr)
        return 1
    try:
        for source, target in steps:
            target.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            write(target, source.read_bytes())
    except OSError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    print(f"gateway: wrote {len(steps)} files to {args.directory}")
    print(f"next: edit {args.directory / 'gateway.yaml'} (smtp.hostname, upstream, domains), "
          "fill in the directory CSVs, then\n"
          f"      gateway serve --check-config --config {args.directory / 'gateway.yaml'}")
    return 0


def write(target: Path, content: bytes) -> None:
    """Created with its final mode, so the file is never briefly world-readable."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    os.chmod(target, FILE_MODE)  # an overwritten file keeps its old mode otherwise
