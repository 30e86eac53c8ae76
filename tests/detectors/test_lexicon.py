"""Lexicon terms: whole words and phrases, in any case."""

from __future__ import annotations

from gateway.detectors.patterns import lexicon_patterns
from tests.corpus.detection_corpus import shipped_lexicons
from tests.factories import AVAILABLE_ENGINES, findings_in, make_inspector


def test_lexicon_whole_words_phrases_any_case(engine_inspector):
    assert findings_in(engine_inspector, "You IDIOT.")["lexicon:harassment"].count == 1
    assert findings_in(engine_inspector, "shut\n  up now")["lexicon:harassment"].count == 1
    assert "lexicon:harassment" not in findings_in(engine_inspector, "an idiotic plan; shutup")


def test_a_long_list_is_one_trie_pattern_that_finds_each_term_on_every_engine():
    terms = ["ass", "asshole", "shut up", "kill yourself", "sh!t", "f.u.c.k", "masterbat*"]
    assert len(lexicon_patterns(terms)) == 7
    assert len(lexicon_patterns(terms, combined=True)) == 2  # one trie, "masterbat*" apart
    for engine in AVAILABLE_ENGINES:
        inspector = make_inspector(engine=engine, lexicons={"x": terms})
        found = findings_in(inspector, "You asshole; SHUT\n up, ass. sh!t f.u.c.k masterbat* "
                                       "class assess")["lexicon:x"]
        assert (found.count, found.distinct) == (6, 6), engine


def test_the_shipped_harassment_list_holds_insults_not_school_words():
    inspector = make_inspector(lexicons=shipped_lexicons())
    for text in ("you are a fucking idiot", "what a dumbass", "I will end you"):
        assert "lexicon:harassment" in findings_in(inspector, text), text
    for text in ("magna cum laude", "Moby-Dick", "sexual reproduction", "the Nazi regime",
                 "we killed it at the meet", "find the slope", "Wang and Pollock"):
        assert "lexicon:harassment" not in findings_in(inspector, text), text
