"""Lexicon terms: whole words and phrases, in any case."""

from __future__ import annotations

from tests.factories import findings_in


def test_lexicon_whole_words_phrases_any_case(engine_inspector):
    assert findings_in(engine_inspector, "You IDIOT.")["lexicon:harassment"].count == 1
    assert findings_in(engine_inspector, "shut\n  up now")["lexicon:harassment"].count == 1
    assert "lexicon:harassment" not in findings_in(engine_inspector, "an idiotic plan; shutup")
