"""Word lists that ship inside installed packages, for `lexicons:` in policies.yaml.

`packaged: [better-profanity]` in a lexicon adds the English profanity, slur and insult list
that the better-profanity package keeps (about 900 words, MIT licensed) to the district's own
terms. The list is read from the package's data file, not through its API: importing the
package builds its censoring tables, which the gateway does not need. A list the district does
not want is simply not named; words it does not want are listed under `except:`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path


class WordListError(Exception):
    """The named list's package is not installed or its data file cannot be read."""


def _package_file(package: str, name: str) -> Path:
    spec = importlib.util.find_spec(package)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise WordListError(f"the Python package '{package}' is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / name


def _better_profanity() -> tuple[str, ...]:
    path = _package_file("better_profanity", "profanity_wordlist.txt")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WordListError(f"cannot read {path.name} of better-profanity: "
                            f"{exc.strerror or exc}") from None
    return tuple(dict.fromkeys(w.strip().lower() for w in text.splitlines() if w.strip()))


PACKAGED: dict[str, Callable[[], tuple[str, ...]]] = {"better-profanity": _better_profanity}


def packaged_words(name: str) -> tuple[str, ...]:
    """The words of a packaged list; KeyError for an unknown name, WordListError if the
    package is missing."""
    return PACKAGED[name]()
