"""Fuzz the file loaders: they may raise `SourceErrors` and nothing else.

    .venv/bin/python bench/fuzz_config.py --examples 2000      # per target
    .venv/bin/python bench/fuzz_config.py --seconds 300 --target policy

Targets: `parse_yaml` on arbitrary text; `load_settings` and `load_policy` on the shipped
config/policies with random subtrees replaced by values of the wrong type (Hypothesis
strategies, so a failure is shrunk to a small document); `load_directory` on mutated CSV bytes
(binary, NUL, non-UTF-8, huge fields). Not run by the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.config import load_settings  # noqa: E402
from gateway.directory import load_directory  # noqa: E402
from gateway.policy.loader import load_policy  # noqa: E402
from gateway.yamlsrc import SourceErrors, parse_yaml  # noqa: E402

CONFIG = yaml.safe_load((ROOT / "config/gateway.yaml").read_text())
POLICY = yaml.safe_load((ROOT / "config/policies.yaml").read_text())
PEOPLE = (ROOT / "config/people.csv").read_bytes()
RELATIONSHIPS = (ROOT / "config/relationships.csv").read_bytes()
WORK = Path(tempfile.mkdtemp(prefix="fuzz_config_"))

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["", "25M", "9" * 400, "1e400", "²", "::", "[::1]:99999", "0:0",
                     "sqlite:///", "sqlite:////", "postgresql://", "a\x00b", "\\b\\d{6}\\b",
                     "a{99999999999}", "(" * 400, "[", "{x}", "{", "}", "{subject!r}",
                     "{0}", "{a.b}", "{a[0]}", "relay", "hold", "annotate", "reject",
                     "student_record", "ssn", "lexicon:", "any", "all", "not", "3", "-1",
                     ".inf", "127.0.0.1/99", "::1/200", "x" * 5000]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(scalars.filter(
        lambda v: v is None or isinstance(v, str | int | bool)), st.text(max_size=10)), inner,
        max_size=4)), max_leaves=12)


def paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += paths(v, (*prefix, i))
    return out


def replaced(data: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[path[0]] = replaced(copy[path[0]], path[1:], value)
    return copy


def mutated(base: Any) -> st.SearchStrategy[Any]:
    """`base` with 1-3 subtrees (or new keys) replaced by arbitrary values."""
    spots = paths(base)

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        doc = base
        for _ in range(draw(st.integers(1, 3))):
            where = draw(st.sampled_from(spots))
            if draw(st.booleans()):
                where = (*where[:-1], draw(st.text(max_size=12))) if where else where
            with contextlib.suppress(KeyError, IndexError, TypeError):
                doc = replaced(doc, where, draw(values))
        return doc
    return build()


def dump(doc: Any) -> str:
    try:
        return yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return "{}"


def check(func: Any, *args: Any) -> None:
    try:
        func(*args)
    except SourceErrors as exc:
        for e in exc.errors:
            str(e)  # errors must print
    except RecursionError:
        raise AssertionError("RecursionError") from None


def t_yaml(text: str) -> None:
    check(parse_yaml, text, "f.yaml")


def reset() -> None:
    """The shipped files, so each target mutates only its own."""
    (WORK / "gateway.yaml").write_text(dump(CONFIG))
    (WORK / "policies.yaml").write_text(dump(POLICY))
    (WORK / "people.csv").write_bytes(PEOPLE)
    (WORK / "relationships.csv").write_bytes(RELATIONSHIPS)


def t_config(doc: Any) -> None:
    reset()
    path = WORK / "gateway.yaml"
    path.write_text(dump(doc))
    check(load_settings, path)


def t_policy(doc: Any) -> None:
    reset()
    (WORK / "policies.yaml").write_text(dump(doc))
    config = load_settings(WORK / "gateway.yaml")
    directory = load_directory(config)
    check(load_policy, config, directory)


def t_directory(data: bytes) -> None:
    reset()
    (WORK / "people.csv").write_bytes(data)
    (WORK / "relationships.csv").write_bytes(data[::-1])
    check(load_directory, load_settings(WORK / "gateway.yaml"))


csv_bytes = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda pos, junk: PEOPLE[:pos] + junk + PEOPLE[pos:],
              st.integers(0, len(PEOPLE)),
              st.sampled_from([b"\x00", b"\xff\xfe", b'"', b"\r", b"\n\n", b",,,,,,,,,,",
                               b"\xe9", b"\"" + b"a" * 200_000, b"\x00" * 3, b"\ufeff",
                               b"@", b";", b"xn--", b"@xn--zz", b"@[1.2.3.4]", b"\xc0\x80"])),
    st.text(max_size=200).map(lambda t: b"address,role,person_id,name,supervisor,students\n"
                              + t.encode("utf-8", "surrogatepass")),
)
TARGETS = {
    "yaml": (t_yaml, st.one_of(st.text(max_size=200), values.map(dump).map(
        lambda t: t.replace("'", "&a ").replace("- ", "- *a ")))),
    "config": (t_config, mutated(CONFIG)),
    "policy": (t_policy, mutated(POLICY)),
    "directory": (t_directory, csv_bytes),
}


def _runner(func: Any, count: list[int], deadline: float) -> Any:
    def one(x: Any) -> None:
        count[0] += 1
        if time.monotonic() < deadline:
            func(x)
    return one


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="per target")
    parser.add_argument("--seconds", type=float, default=600.0, help="overall bound")
    parser.add_argument("--target", choices=sorted(TARGETS), action="append")
    args = parser.parse_args()
    failed = 0
    deadline = time.monotonic() + args.seconds
    for name in args.target or sorted(TARGETS):
        func, strategy = TARGETS[name]
        count = [0]
        one = _runner(func, count, deadline)

        test = settings(max_examples=args.examples, deadline=None, database=None,
                        phases=[Phase.generate, Phase.shrink],
                        suppress_health_check=list(HealthCheck))(
            given(strategy)(one))
        start = time.monotonic()
        try:
            test()
            print(f"{name}: {count[0]} examples, ok ({time.monotonic() - start:.0f}s)")
        except Exception:
            failed += 1
            report = "\n".join(line[:300] for line in traceback.format_exc(limit=8).splitlines())
            print(f"{name}: FAILED after {count[0]} examples\n{report[-6000:]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
