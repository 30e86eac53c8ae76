"""Run `gateway serve` with inspection switched off: the cost of the SMTP shell alone.

Why: the full figures mix two costs, the SMTP hop (aiosmtpd in, aiosmtplib out, directory and
policy) and content inspection. Replacing only the inspector with one that finds nothing shows
how much of a message's time is the hop, comparable to the bare-relay and amavisd "checks off"
reference figures. Bench use only; never deploy this.
Usage: python bench/serve_null.py --config FILE
"""

from __future__ import annotations

import sys

from gateway import runtime
from gateway.cli import main as cli_main
from gateway.model import Inspection


class NullInspector:
    """Finds nothing and parses nothing."""

    engine = "none"  # the daemon reports its inspector's engine (build info metric)

    def inspect(self, raw: bytes) -> Inspection:
        return Inspection()


def build_inspector(*_args: object, **_kwargs: object) -> NullInspector:
    return NullInspector()


def main() -> int:
    runtime.build_inspector = build_inspector  # type: ignore[assignment]
    return cli_main(["serve", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
