"""The layout's rules, checked on the code: imports point one way, down the layers, and the
pure core does no I/O of its own.

Every import counts, at module level or inside a function, so a cycle cannot hide in a function
body. Layers are listed top to bottom; a module may import from its own layer's package and
from any layer below, never from one above. Packages sharing a layer are independent: neither
imports the other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gateway"

LAYERS: list[tuple[str, ...]] = [
    ("cli",),                   # every command
    ("service", "review"),      # the daemon and its parts | the web review console
    ("actions", "dispatch"),    # carry a decision out | where a message is decided
    ("pipeline",),              # Envelope -> Decision
    ("runtime",),               # what the core needs, loaded and swapped as one
    ("policy",),                # rules, pure
    ("inspect",),               # the inspector: walk + detectors
    ("detectors",),
    ("extract",),               # one extractor per format
    ("logprivacy",),
    ("directory", "quarantine", "smtp", "pdfhelper", "mime", "auth"),
    ("addresses", "config", "metrics"),
    ("yamlsrc",),
    ("model",),
]

# The pure core: no sockets, processes, threads, databases or event loop of its own.
PURE = ("model", "addresses", "yamlsrc", "config", "mime", "extract", "detectors", "policy",
        "pipeline")
IO_MODULES = ("asyncio", "socket", "subprocess", "selectors", "sqlite3", "multiprocessing",
              "aiosmtpd", "aiosmtplib", "psycopg")
IO_PACKAGES = ("smtp", "quarantine", "service", "dispatch", "actions", "pdfhelper", "cli",
               "auth")
# (module, import) the pure core may have all the same, and why.
ALLOWED = {
    # The PDF helper's error types (the package's __init__ is a docstring): no process code.
    ("gateway.extract.pdf", "gateway.pdfhelper"): "error types",
    ("gateway.extract.pdf", "gateway.pdfhelper.errors"): "error types",
    # The default `smtp.hostname` is this machine's name, read once when settings load.
    ("gateway.config", "socket"): "socket.getfqdn",
}


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        yield ".".join(("gateway", *parts)).removesuffix(".__init__"), path


def imports(path: Path, name: str) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # `from gateway import extract` imports a package
                yield node.lineno, f"{base}.{alias.name}"


def top(module: str) -> str | None:
    """`gateway.smtp.server` -> `smtp`; None for a module outside the gateway."""
    bits = module.split(".")
    return bits[1] if bits[0] == "gateway" and len(bits) > 1 else None


def layer_of(package: str) -> int | None:
    return next((i for i, names in enumerate(LAYERS) if package in names), None)


def test_every_package_and_module_has_a_layer() -> None:
    placed = {name for names in LAYERS for name in names}
    found = {top(name) for name, _ in modules()} - {None, "__main__"}
    assert found <= placed, f"not in LAYERS (add them where they belong): {found - placed}"
    assert placed <= found, f"in LAYERS but not in gateway/: {placed - found}"


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for name, path in modules():
        here = top(name)
        if here in (None, "__main__"):
            continue
        for line, target in imports(path, name):
            there = top(target)
            if there is None or there == here or layer_of(there) is None:
                continue
            mine, theirs = layer_of(here), layer_of(there)
            assert mine is not None and theirs is not None
            if theirs < mine:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {here} imports "
                             f"{there}, a layer above it")
            elif theirs == mine:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {here} imports "
                             f"{there}; packages of one layer must stay independent")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_no_two_packages_import_each_other() -> None:
    edges: set[tuple[str, str]] = set()
    for name, path in modules():
        here = top(name)
        for _line, target in imports(path, name):
            there = top(target)
            if here and there and here != there:
                edges.add((here, there))
    cycles = sorted(f"{a} <-> {b}" for a, b in edges if (b, a) in edges and a < b)
    assert not cycles, cycles


@pytest.mark.parametrize("package", PURE)
def test_the_pure_core_does_no_io_of_its_own(package: str) -> None:
    wrong = []
    for name, path in modules():
        if top(name) != package:
            continue
        for line, target in imports(path, name):
            if (name, target) in ALLOWED:
                continue
            if target.split(".")[0] in IO_MODULES or top(target) in IO_PACKAGES:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports {target}")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_the_checks_see_a_wrong_import(tmp_path: Path) -> None:
    """The walker finds imports inside functions and resolves relative ones."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ..service import daemon\n    import asyncio\n")
    found = list(imports(module, "gateway.policy.m"))
    assert (2, "gateway.service") in found and (2, "gateway.service.daemon") in found
    assert (3, "asyncio") in found
