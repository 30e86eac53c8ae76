"""Fuzz `annotate()` with the hostile messages of fuzz_inspect: it must always return bytes.

    .venv/bin/python bench/fuzz_annotate.py --examples 3000 --seconds 300

The executor calls annotate() while relaying (gateway/actions/execute.py); an exception there
would fail the whole delivery. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz_inspect as fi

from gateway.actions.annotate import annotate
from gateway.model import Annotation

ANNOTATIONS = (
    (Annotation(headers=(("X-Policy", "P5"),), subject_tag="[EXTERNAL]",
                notice="This message came from outside the District."),),
    (Annotation(notice="Avis: élève — ünïcödé notice"), Annotation(subject_tag="[ÉTUDIANT]")),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    corpus = fi.seeds()
    deadline = time.monotonic() + args.seconds
    failures: dict[str, int] = {}
    done = 0
    while done < args.examples and time.monotonic() < deadline:
        seed = rng.randrange(1 << 31)
        label, raw = fi.example(seed, corpus)
        if len(raw) > 2_000_000:
            continue  # the structure matters here, not the size
        for wanted in ANNOTATIONS:
            for body_notice in (True, False):
                try:
                    out = annotate(raw, wanted, body_notice=body_notice)
                    assert isinstance(out, bytes)
                except Exception as exc:
                    key = f"{type(exc).__name__}: {str(exc)[:80]}"
                    if key not in failures:
                        print(f"FINDING seed {seed} ({label}): {key}\n"
                              f"{traceback.format_exc(limit=4)[-800:]}", flush=True)
                    failures[key] = failures.get(key, 0) + 1
        done += 1
    print(f"{done} examples, {len(failures)} distinct failures")
    for key, count in failures.items():
        print(f"  {count:5d}  {key}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
