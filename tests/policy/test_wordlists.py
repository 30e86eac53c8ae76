"""Packaged word lists: read from the package's data file, without importing the package."""

from __future__ import annotations

import sys

import pytest

from gateway.policy import wordlists


def test_better_profanity_words_are_read_lowercased_and_unique():
    words = wordlists.packaged_words("better-profanity")
    assert len(words) > 800 and len(set(words)) == len(words)
    assert "bitch" in words and all(w == w.lower() and w == w.strip() for w in words)


def test_reading_the_list_does_not_import_the_package(monkeypatch):
    monkeypatch.delitem(sys.modules, "better_profanity", raising=False)
    wordlists.packaged_words("better-profanity")
    assert "better_profanity" not in sys.modules


def test_an_unknown_list_is_a_key_error():
    with pytest.raises(KeyError):
        wordlists.packaged_words("nope")


def test_an_unreadable_data_file_is_a_word_list_error(monkeypatch, tmp_path):
    monkeypatch.setattr(wordlists, "_package_file", lambda *_: tmp_path / "missing.txt")
    with pytest.raises(wordlists.WordListError, match=r"cannot read missing\.txt"):
        wordlists.packaged_words("better-profanity")
