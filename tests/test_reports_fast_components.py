"""The reader's fast components give what medspaCy's and spaCy's own components give.

``flare_ml.reports.reader`` replaces medspaCy's TargetMatcher, Sectionizer and ConText
and spaCy's ``Matcher`` with faster equivalents (``docs/reports.md``, "Speed"). These tests
compare them with the originals: every target rule's matches on random word sequences
(hypothesis), and the targets (span, label, rule), sections and ConText attributes of the
whole pipeline on the hand-annotated corpus and on simulated reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from flare_ml.reports import rules as r
from flare_ml.reports.reader import _TokenPattern, _Tokens, build_pipeline

CORPUS = Path(__file__).parent / "data" / "reports" / "corpus.yaml"


def _rule_words() -> list[str]:
    words: set[str] = set()
    for rule in r.target_rules():
        for token in rule.pattern:
            for attr in ("LOWER", "ORTH"):
                value = token.get(attr)
                if isinstance(value, dict):
                    words |= set(value["IN"])
                elif isinstance(value, str):
                    words.add(value)
    return sorted(words)


#: the rules' own words, in both cases, with numbers, punctuation and other words
WORDS = [
    *_rule_words(),
    *[w.upper() for w in _rule_words()[:40]],
    *["3", "two", "2.5", "x3", ".", ",", "-", "(", ")", ":", ";", "?", "liver", "the", "T7"],
]


@pytest.fixture(scope="module")
def rule_matchers() -> list[tuple[Any, _TokenPattern]]:
    import spacy
    from spacy.matcher import Matcher

    nlp = spacy.blank("en")
    out = []
    for rule in r.target_rules():
        matcher = Matcher(nlp.vocab)
        matcher.add("rule", [rule.pattern])
        out.append((matcher, _TokenPattern(rule.pattern)))
    return out


@settings(max_examples=150, deadline=None)
@given(words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=14))
def test_token_patterns_match_what_spacy_matches(rule_matchers, words: list[str]) -> None:
    from spacy.tokens import Doc

    matcher, _ = rule_matchers[0]
    doc = Doc(matcher.vocab, words=words)
    tokens = _Tokens(doc)
    for matcher, pattern in rule_matchers:
        assert pattern.spans(tokens) == {(s, e) for _, s, e in matcher(doc)}, words


def test_token_patterns_refuse_what_they_do_not_implement() -> None:
    for pattern in ([{"LOWER": "a", "OP": "!"}], [{"POS": "NOUN"}], [{"LOWER": "a", "ORTH": "a"}]):
        with pytest.raises(ValueError, match="unsupported"):
            _TokenPattern(pattern)


def _reference() -> Any:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("flare_sentences")
    nlp.add_pipe("medspacy_target_matcher").add(r.target_rules())
    nlp.add_pipe("medspacy_sectionizer", config={"rules": None}).add(r.section_rules())
    nlp.add_pipe("medspacy_context", config={"rules": None}).add(r.context_rules())
    return nlp


def _seen(doc: Any) -> tuple[list[Any], list[Any]]:
    ents = [
        (
            e.start,
            e.end,
            e.label_,
            e._.target_rule.literal,
            e._.is_negated,
            e._.is_uncertain,
            e._.is_historical,
            e._.is_family,
            [(m.category, m.modifier_span, m.scope_span) for m in e._.modifiers],
        )
        for e in doc.ents
    ]
    sections = [(s.category, s.title_start, s.body_start, s.body_end) for s in doc._.sections]
    return ents, sections


@pytest.fixture(scope="module")
def texts() -> list[str]:
    from flare_ml.simulate import simulate_cohort
    from flare_ml.simulate.reports import simulate_reports

    corpus = [entry["text"] for entry in yaml.safe_load(CORPUS.read_text(encoding="utf-8"))]
    cohort = simulate_cohort(60, seed=3)
    simulated = simulate_reports(cohort.timepoints, seed=3).reports["text"].tolist()
    # equal spans of two rules, where spaCy's order decides which rule medspaCy keeps
    ties = ["New 9 mm nodule in the liver.", "Now sclerotic, more sclerotic than before."]
    return corpus + simulated + ties


def test_pipeline_agrees_with_medspacy_components(texts: list[str]) -> None:
    import medspacy  # noqa: F401

    fast, reference = build_pipeline(), _reference()
    differ = [t for t in texts if _seen(fast(t)) != _seen(reference(t))]
    assert not differ, differ[:3]
    assert len(texts) > 300


def test_ties_keep_the_rule_medspacy_keeps() -> None:
    import medspacy  # noqa: F401

    doc = build_pipeline()("New 9 mm nodule.")
    (ent,) = doc.ents
    (ref,) = _reference()("New 9 mm nodule.").ents
    assert (ent.start, ent.end) == (0, 4)
    assert ent._.target_rule.literal == ref._.target_rule.literal
