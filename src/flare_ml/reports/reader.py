"""Read radiology reports into the data contract's imaging columns (issue 14).

:class:`ReportReader` runs a medspaCy pipeline on a blank English spaCy model (nothing is
downloaded): a sentence splitter (punctuation, semicolons and line breaks), a TargetMatcher
with this project's rules (:mod:`flare_ml.reports.rules`: new lesions, an increase in their
number, progressive lysis, sclerosis of known lesions, diffuse marrow involvement, response
statements, baseline cues), a Sectionizer (FINDINGS, IMPRESSION, COMPARISON,
HISTORY/INDICATION, TECHNIQUE) and medspaCy's ConText (negation, hedges, historical/known,
family) -- each a faster equivalent of medspaCy's component, with the same output
(``docs/reports.md``, "Speed"; ConText's own modifier and graph classes do the work). The
conventions below then turn the matched spans into one
:class:`~flare_ml.reports.findings.ReportFindings` per report, each value with its
:class:`~flare_ml.reports.findings.Evidence`. Conventions (also in ``docs/reports.md``):
**count** -- digits and number words ("two new", "3 new", "a single new" = 1); a list of
sites counts each site ("new sclerotic lesions in T7, T9 and the left iliac bone" = 3; a
level range T7-T9 = 3; "mets x3" = 3); "several", "multiple", "a few" = 2 (at least two:
more when more sites are listed); "numerous", "innumerable",
"countless", "diffuse", "many", "extensive", "a large number of" = 10; a bare plural = 2 (or
its number of sites, if more); "an increase in the number of lesions" = 1; hedged new
lesions are counted and set ``findings_uncertain`` (a hedge after the lesions, on their
cause -- "new sclerotic foci, likely flare" -- is not a hedge on the lesions); known,
unchanged, stable or previously described lesions are not new; statements in the
COMPARISON, HISTORY and TECHNIQUE sections are not this exam's findings; the counts of a
section are summed and the report's count is the largest section count (FINDINGS and
IMPRESSION describe the same lesions twice); a baseline (staging) exam has nothing new.
**morphology** -- ``blastic`` (sclerotic, osteoblastic, osteosclerotic, dense), ``lytic``
(osteolytic, destructive, lucent), ``mixed`` (mixed, or new lesions of both kinds),
``none`` without a new bone lesion, ``unknown`` when new bone lesions are stated without a
morphology (a bone scan's "new focus of increased uptake" with no CT correlate).
**progressive_lysis** -- growing lytic destruction of a lesion; **known_lesion_sclerosis**
-- new or increased sclerosis, a sclerotic rim, or healing of lesions (tracer uptake is
never sclerosis); **new_extraosseous_lesion** -- a new lesion in an organ or nodes;
**extraosseous_response** -- only when stated (a RECIST category or unambiguous words); a
statement naming an organ or qualified as outside bone ("stable disease outside the
skeleton") wins over an overall one ("progression of disease" = PD), a statement about
bone only is not read; the IMPRESSION wins over FINDINGS; ``baseline`` when the report says it is a
baseline or staging exam (or that there is no prior study); **baseline_marrow_involvement**
-- diffuse marrow uptake or infiltration, or a superscan. :func:`read_reports` validates
a report table and streams it through :meth:`ReportReader.read_many` in chunks.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np
import pandas as pd

import flare_ml.data.contract as c
from flare_ml.data._parse import MAX_EXAMPLES, MISSING_LABEL, parse_date, plural
from flare_ml.errors import ContractError, Violation
from flare_ml.reports import rules as r
from flare_ml.reports.findings import (
    EVIDENCE,
    FINDINGS_UNCERTAIN,
    IMAGING_FINDINGS,
    MODALITIES,
    MODALITY,
    TEXT,
    Evidence,
    ReportFindings,
)

#: reports read per chunk by :func:`read_reports` (memory stays flat in the table size)
CHUNK_SIZE: Final = 2048
_KNOWN_WORDS: Final = frozenset(
    {"known", "previously", "existing", "pre-existing", "preexisting", "treated"}
)
_SPLITTERS: Final = frozenset({",", "and", "&", "plus", "well", "/", "or", ";", "including"})
_NUMBER = re.compile(r"^\d{1,3}$")
_LEVEL_NUM = re.compile(r"^([ctls])(\d{1,2})$", re.IGNORECASE)
_SUBWORDS = re.compile(r"[-/]")
_RESPONSE_CODES: Final = ("CR", "PR", "SD", "PD", "NE")
_RESPONSE_PATTERNS: Final = tuple((code, re.compile(rf"\b{code}\b")) for code in _RESPONSE_CODES)
_TIMES = re.compile(r"^[x×](\d{1,2})$")
#: words that make a response statement one about the disease outside bone
_ORGAN_RESPONSE_WORDS: Final = (
    r.ORGAN_WORDS
    | r.NODE_WORDS
    | {"extraosseous", "extra-osseous", "visceral", "non-osseous", "nonosseous", "soft", "target"}
)
#: "several", "multiple", "a few": at least two (more when more sites are listed)
_AT_LEAST_TWO: Final = -2


class _Sentence(NamedTuple):
    """A sentence's token range."""

    start: int
    end: int


@dataclass
class _Item:
    """One counted new-lesion statement."""

    section: str | None
    sent_start: int
    count: int
    anaphoric: bool
    restating: bool


_SENT_ENDS: Final = frozenset({".", "!", "?", ";"})
_STARTS: Final = np.array([-1, 1], dtype=np.int64).astype(np.uint64)  # spaCy's SENT_START
#: ``doc.user_data`` key of the sentence starts (token indices) set by :func:`_sentences`
_SENT_STARTS: Final = "flare_ml.sentence_starts"
#: ``doc.user_data`` key of the token texts and their lower case, set by :func:`_sentences`
_WORDS: Final = "flare_ml.words"
#: ``doc.user_data`` key of the ConText attributes the targets got: (start, end) -> values
_CONTEXT: Final = "flare_ml.context"
#: ``doc.user_data`` key of the target spans set as ``doc.ents`` by the target matcher
_TARGETS: Final = "flare_ml.targets"
_CONTEXT_ATTRIBUTES: Final = ("is_negated", "is_uncertain", "is_historical", "is_family")


def _sentences(doc: Any) -> Any:
    """Sentence boundaries after . ! ? ; and at line breaks (a spaCy component).

    A token starts a sentence after ``. ! ? ;`` or a line break (a space token with a
    newline), at a line break, or at a numbered item within a line ("1) ... 2) ...": one or two
    digits before ")", not after "x"); every other token does not (all set at once).
    """
    from spacy.attrs import ORTH, SENT_START

    strings = doc.vocab.strings  # the token texts without a Token object each
    texts = [strings[orth] for orth in doc.to_array(ORTH).tolist()]
    n = len(texts)
    if not n:
        return doc
    breaks = [t.isspace() and "\n" in t for t in texts]
    starts = [True]
    for i in range(1, n):
        prev = texts[i - 1]
        starts.append(
            prev in _SENT_ENDS
            or breaks[i - 1]
            or breaks[i]
            or (
                texts[i].isdigit()
                and len(texts[i]) <= 2
                and i + 1 < n
                and texts[i + 1] == ")"
                and prev != "x"
            )
        )
    doc.from_array([SENT_START], _STARTS[np.asarray(starts, dtype=np.intp)].reshape(-1, 1))
    doc.user_data[_SENT_STARTS] = [i for i, start in enumerate(starts) if start]
    doc.user_data[_WORDS] = texts, [t.lower() for t in texts]
    return doc


def _targets(doc: Any) -> Sequence[Any]:
    """The doc's targets (``doc.ents``; the target matcher's own spans when it set them)."""
    targets = doc.user_data.get(_TARGETS)
    return doc.ents if targets is None else targets


def _words_of(doc: Any) -> tuple[list[str], list[str]]:
    """The doc's token texts and their lower case (spaCy's ``LOWER``: ``str.lower``)."""
    words = doc.user_data.get(_WORDS)
    if words is None:
        texts = [t.text for t in doc]
        words = texts, [t.lower() for t in texts]
    return words


def _sentence_starts(doc: Any) -> list[int]:
    """The token indices where the doc's sentences start (from :func:`_sentences`)."""
    starts = doc.user_data.get(_SENT_STARTS)
    if starts is None:
        starts = np.flatnonzero(doc.to_array(["SENT_START"]).ravel() == 1).tolist()
        if len(doc) and (not starts or starts[0] != 0):
            starts.insert(0, 0)
    return starts


def _words(token: dict[str, Any]) -> frozenset[str] | None:
    """The lower-case words a token pattern accepts (``LOWER``/``ORTH``), or None (any)."""
    for attr in ("LOWER", "ORTH"):
        if attr in token:
            value = token[attr]
            words = value["IN"] if isinstance(value, dict) else [value]
            return frozenset(w.lower() for w in words)
    return None


def _optional(token: dict[str, Any]) -> bool:
    op = str(token.get("OP", ""))
    return op in ("?", "*") or op.startswith("{0") or op.startswith("{,")


def _start_words(pattern: list[dict[str, Any]]) -> frozenset[str] | None:
    """The words a match of a pattern can start with (None: any word)."""
    out: set[str] = set()
    for token in pattern:
        words = _words(token)
        if words is None:
            return None
        out |= words
        if not _optional(token):
            break
    return frozenset(out)


def _groups(patterns: list[list[dict[str, Any]]]) -> list[list[int]]:
    """Patterns joined when their start words meet (only they can match the same span)."""
    starts = [_start_words(p) for p in patterns]
    parent = list(range(len(patterns)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(patterns)):
        for j in range(i):
            si, sj = starts[i], starts[j]
            if si is None or sj is None or si & sj:
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(patterns)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


# --- token patterns, matched in Python ------------------------------------------------
_LOWER_IN, _ORTH_IN, _PUNCT, _NOT_PUNCT, _LIKE_NUM, _ANY = range(6)
_BOUNDED_OP = re.compile(r"^\{(\d*),(\d*)\}$|^\{(\d+)\}$")


def _quantity(op: str | None) -> tuple[int, int | None]:
    """The least and most tokens a pattern token takes (spaCy's ``OP``; None: no limit).

    >>> [_quantity(op) for op in (None, "?", "*", "+", "{0,6}", "{2}", "{1,}", "{,3}")]
    [(1, 1), (0, 1), (0, None), (1, None), (0, 6), (2, 2), (1, None), (0, 3)]
    """
    if op is None:
        return 1, 1
    fixed = {"?": (0, 1), "*": (0, None), "+": (1, None)}
    if op in fixed:
        return fixed[op]
    m = _BOUNDED_OP.match(op)
    if m is None:
        raise ValueError(f"unsupported token pattern operator {op!r}")
    if m.group(3) is not None:
        return int(m.group(3)), int(m.group(3))
    return int(m.group(1) or 0), int(m.group(2)) if m.group(2) else None


def _test(token: dict[str, Any]) -> tuple[int, Any]:
    """A token pattern's test as (kind, value): word sets, punctuation, numbers, any."""
    attrs = {k: v for k, v in token.items() if k != "OP"}
    if not attrs:
        return _ANY, None
    if len(attrs) != 1:
        raise ValueError(f"unsupported token pattern (one attribute only): {token}")
    ((attr, value),) = attrs.items()
    if attr in ("LOWER", "ORTH"):
        if isinstance(value, dict):
            if set(value) != {"IN"}:
                raise ValueError(f"unsupported token pattern: {token}")
            words = frozenset(value["IN"])
        elif isinstance(value, str):
            words = frozenset([value])
        else:
            raise ValueError(f"unsupported token pattern: {token}")
        return (_LOWER_IN if attr == "LOWER" else _ORTH_IN), words
    if attr == "IS_PUNCT" and isinstance(value, bool):
        return (_PUNCT if value else _NOT_PUNCT), None
    if attr == "LIKE_NUM" and value is True:
        return _LIKE_NUM, None
    raise ValueError(f"unsupported token pattern: {token}")


class _Tokens:
    """One doc's words and lexical attributes for :class:`_TokenPattern` (read lazily)."""

    __slots__ = ("_num", "_punct", "_where", "_where_orth", "doc", "lows", "n", "texts")

    def __init__(self, doc: Any) -> None:
        self.doc = doc
        self.texts, self.lows = _words_of(doc)
        self.n = len(self.lows)
        self._punct: list[bool] | None = None
        self._num: list[bool] | None = None
        self._where: dict[str, list[int]] | None = None
        self._where_orth: dict[str, list[int]] | None = None

    @property
    def punct(self) -> list[bool]:
        if self._punct is None:
            from spacy.attrs import IS_PUNCT

            self._punct = [bool(v) for v in self.doc.to_array(IS_PUNCT).tolist()]
        return self._punct

    @property
    def num(self) -> list[bool]:
        if self._num is None:
            from spacy.attrs import LIKE_NUM

            self._num = [bool(v) for v in self.doc.to_array(LIKE_NUM).tolist()]
        return self._num

    def where(self, kind: int, words: frozenset[str]) -> list[int]:
        """The positions of the tokens whose lower case (or text) is one of ``words``."""
        if kind == _LOWER_IN:
            if self._where is None:
                self._where = {}
                for i, w in enumerate(self.lows):
                    self._where.setdefault(w, []).append(i)
            index = self._where
        else:
            if self._where_orth is None:
                self._where_orth = {}
                for i, w in enumerate(self.texts):
                    self._where_orth.setdefault(w, []).append(i)
            index = self._where_orth
        if len(words) < len(index):
            return [i for w in words if w in index for i in index[w]]
        return [i for w, at in index.items() if w in words for i in at]

    def test(self, kind: int, value: Any, i: int) -> bool:
        if kind == _LOWER_IN:
            return self.lows[i] in value
        if kind == _ORTH_IN:
            return self.texts[i] in value
        if kind == _NOT_PUNCT:
            return not self.punct[i]
        if kind == _PUNCT:
            return self.punct[i]
        if kind == _LIKE_NUM:
            return self.num[i]
        return True


class _TokenPattern:
    """A spaCy token pattern matched in Python: the spans spaCy's ``Matcher`` returns.

    Every (start, end) whose tokens match the pattern (any length of each quantified
    token; no empty span), as a set; checked against spaCy's ``Matcher`` on the corpus,
    simulated reports and random word sequences.

    Supported: one attribute per token (``LOWER``/``ORTH`` as a word or ``{"IN": [...]}``,
    ``IS_PUNCT``, ``LIKE_NUM: True``, or none: any token) with ``OP`` ``?``, ``*``, ``+``,
    ``{n}``, ``{n,m}``, ``{n,}``, ``{,m}``; anything else raises ``ValueError``.

    >>> from spacy.lang.en import English
    >>> doc = English().make_doc("new sclerotic and lytic lesions")
    >>> p = _TokenPattern([{"LOWER": "new"}, {"LOWER": {"IN": ["sclerotic", "and", "lytic"]},
    ...                    "OP": "{0,6}"}, {"LOWER": {"IN": ["lesion", "lesions"]}}])
    >>> sorted(p.spans(_Tokens(doc)))
    [(0, 5)]
    """

    def __init__(self, pattern: list[dict[str, Any]]) -> None:
        self.elements = [(*_test(token), *_quantity(token.get("OP"))) for token in pattern]
        # a match starts on a token of one of the elements up to the first required one
        self.first: list[tuple[int, Any]] = []
        for kind, value, least, _most in self.elements:
            self.first.append((kind, value))
            if least:
                break
        else:
            self.first = [(_ANY, None)]

    def starts(self, tokens: _Tokens) -> list[int]:
        """Where a match can start (sorted)."""
        out: set[int] = set()
        for kind, value in self.first:
            if kind in (_LOWER_IN, _ORTH_IN):
                out.update(tokens.where(kind, value))
            else:
                out.update(i for i in range(tokens.n) if tokens.test(kind, value, i))
        return sorted(out)

    def spans(self, tokens: _Tokens, starts: Iterable[int] | None = None) -> set[tuple[int, int]]:
        """Every (start, end) of a match in the doc (starting at ``starts`` if given)."""
        n = tokens.n
        # (start, where the next pattern token goes) for every way of matching so far
        states = {(start, start) for start in (self.starts(tokens) if starts is None else starts)}
        for kind, value, least, most in self.elements:
            if not states:
                return set()
            if kind == _LOWER_IN or kind == _ORTH_IN:
                column: list[Any] = tokens.lows if kind == _LOWER_IN else tokens.texts
            elif kind != _ANY:
                column = tokens.num if kind == _LIKE_NUM else tokens.punct
                value = kind != _NOT_PUNCT  # the value the column must have
            if least == 1 and most == 1:  # one token: the common case
                if kind == _LOWER_IN or kind == _ORTH_IN:
                    states = {(s, j + 1) for s, j in states if j < n and column[j] in value}
                elif kind == _ANY:
                    states = {(s, j + 1) for s, j in states if j < n}
                else:
                    states = {(s, j + 1) for s, j in states if j < n and column[j] == value}
                continue
            nxt: set[tuple[int, int]] = set()
            for s, j in states:
                limit = n - j if most is None or most > n - j else most
                run = 0
                if kind == _ANY:
                    run = limit
                elif kind == _LOWER_IN or kind == _ORTH_IN:
                    while run < limit and column[j + run] in value:
                        run += 1
                else:
                    while run < limit and column[j + run] == value:
                        run += 1
                if run >= least:
                    nxt.update((s, e) for e in range(j + least, j + run + 1))
            states = nxt
        return {(s, e) for s, e in states if e > s}


class _TargetMatcher:
    """medspaCy's TargetMatcher for this project's rules, faster (a spaCy component).

    The same matches as medspaCy's TargetMatcher with :func:`flare_ml.reports.rules.
    target_rules`, for a fraction of the time. A spaCy ``Matcher`` call costs about 25
    microseconds before it tests a pattern (two ``Token`` objects per word), and a bounded
    repeat (``{0,6}``) reaches the same match by many paths; here (1) a report runs only the
    patterns whose required words (the tokens that must match at least once) all occur in
    it, found with one look-up per word that also gives where each pattern can start; (2)
    each pattern is matched in Python (:class:`_TokenPattern`: the set of spans spaCy's
    ``Matcher`` returns); (3) medspaCy's pruning (``prune_overlapping_matches``: the longest
    wins, the first of equal ones) depends on the order of matches only among equal spans,
    so the matches are sorted by span, and where several rules match the same span their
    order is spaCy's (:meth:`_tie_order`). Spans get medspaCy's rule keys (``CATEGORY_i``)
    and ``span._.target_rule`` and are set as ``doc.ents`` at once. The spaCy matchers
    (word sets as lexeme flags, :func:`flare_ml.reports.rules.word_set_flags`; grouped so
    that patterns of different groups cannot start on the same word) order the ties and
    are the fallback should a tie's rules ever differ from spaCy's.
    """

    #: matchers per pattern combination, and tie orders, kept (each cache cleared when full)
    CACHE: Final = 1024  # a matcher is about 20 KB: at most about 20 MB

    def __init__(self, nlp: Any) -> None:
        rules = r.target_rules()
        flags, flagged = r.word_set_flags(rules)
        for flag, (attr, words) in flags.items():
            if attr == "LOWER":
                nlp.vocab.add_flag(lambda s, w=words: s.lower() in w, flag_id=flag)
            else:
                nlp.vocab.add_flag(lambda s, w=words: s in w, flag_id=flag)
        self.vocab = nlp.vocab
        self.rules = rules
        self.keys = [f"{rule.category}_{i}" for i, rule in enumerate(rules)]
        self.by_key = {
            nlp.vocab.strings.add(k): rule for k, rule in zip(self.keys, rules, strict=True)
        }
        self.patterns = [rule.pattern for rule in flagged]
        originals = [rule.pattern for rule in rules]
        # each required word set is a bit; word -> the bits it satisfies
        bits: dict[frozenset[str], int] = {}
        self.required: list[int] = []
        for pattern in originals:
            mask = 0
            for token in pattern:
                words = _words(token)
                if words is not None and not _optional(token):
                    mask |= 1 << bits.setdefault(words, len(bits))
            self.required.append(mask)
        self.word_bits: dict[str, int] = {}
        for words, bit in bits.items():
            for w in words:
                self.word_bits[w] = self.word_bits.get(w, 0) | 1 << bit
        self.groups = _groups(originals)
        self.matchers: dict[tuple[int, ...], Any] = {}
        self.compiled = [_TokenPattern(pattern) for pattern in originals]
        self.key_ids = [nlp.vocab.strings.add(k) for k in self.keys]
        self.index_of = {key: i for i, key in enumerate(self.key_ids)}
        self.ties: dict[tuple[Any, ...], list[int]] = {}
        self.labels = {
            key: nlp.vocab.strings.add(rule.category) for key, rule in self.by_key.items()
        }
        # word -> the patterns a match can start on it (first tokens that are word sets);
        # the other patterns look for their starts in each doc
        starters: dict[str, list[int]] = {}
        self.scanned: set[int] = set()
        for i, pattern in enumerate(self.compiled):
            if all(kind == _LOWER_IN for kind, _ in pattern.first):
                for word in frozenset().union(*(words for _, words in pattern.first)):
                    starters.setdefault(word, []).append(i)
            else:
                self.scanned.add(i)
        self.lookup = {
            w: (self.word_bits.get(w, 0), tuple(starters.get(w, ())))
            for w in self.word_bits.keys() | starters.keys()
        }

    def _matcher(self, indices: tuple[int, ...]) -> Any:
        matcher = self.matchers.get(indices)
        if matcher is None:
            from spacy.matcher import Matcher

            if len(self.matchers) >= self.CACHE:
                self.matchers.clear()
            matcher = Matcher(self.vocab, validate=False)
            for i in indices:
                matcher.add(self.keys[i], [self.patterns[i]])
            self.matchers[indices] = matcher
        return matcher

    def _spacy_matches(self, doc: Any, present: int) -> list[tuple[int, int, int]]:
        """The matches of spaCy's ``Matcher`` (the present patterns, group by group)."""
        required = self.required
        matches: list[tuple[int, int, int]] = []
        for group in self.groups:
            indices = tuple(i for i in group if required[i] & present == required[i])
            if indices:
                matches += self._matcher(indices)(doc)
        return matches

    def _tie_order(
        self, doc: Any, tokens: _Tokens, span: tuple[int, int], rules: tuple[int, ...]
    ) -> list[int] | None:
        """The rules matching one span in spaCy's ``Matcher`` order.

        medspaCy keeps the first of equal spans in that order.
        spaCy's order of the matches of a set of patterns is its order for all patterns
        restricted to them, and the order of equal spans depends only on the span's words
        and the word after it (spaCy ends a match with optional tokens at the next word),
        so the ``Matcher`` of just these rules runs on just these words (cached by them).
        """
        start, end = span
        stop = min(end + 1, tokens.n)
        key = (rules, tuple(tokens.texts[start:stop]), end == tokens.n)
        order = self.ties.get(key)
        if order is None:
            indices = tuple(sorted(rules))
            order = [
                self.index_of[k]
                for k, s, e in self._matcher(indices)(doc[start:stop])
                if s == 0 and e == end - start
            ]
            if sorted(order) != sorted(rules):
                return None
            if len(self.ties) >= self.CACHE:
                self.ties.clear()
            self.ties[key] = order
        return order

    def _matches(self, doc: Any) -> list[tuple[int, int, int]]:
        """The matches of the present patterns, by :class:`_TokenPattern`.

        Sorted by span; equal spans of several rules in spaCy's order (which decides).
        """
        tokens = _Tokens(doc)
        # one look-up per word: the required words it is, the patterns that start on it
        lookup = self.lookup
        present = 0
        starts: dict[int, list[int]] = {}
        for position, word in enumerate(tokens.lows):
            hit = lookup.get(word)
            if hit is not None:
                present |= hit[0]
                for i in hit[1]:
                    starts.setdefault(i, []).append(position)
        required = self.required
        rules_at: dict[tuple[int, int], list[int]] = {}
        for i in sorted(starts.keys() | self.scanned):
            if required[i] & present == required[i]:
                for span in self.compiled[i].spans(tokens, starts.get(i)):
                    rules_at.setdefault(span, []).append(i)
        for span, rules in rules_at.items():
            if len(rules) > 1:
                order = self._tie_order(doc, tokens, span, tuple(rules))
                if order is None:  # never seen: spaCy decides the whole doc
                    return self._spacy_matches(doc, present)
                rules_at[span] = order
        keys = self.key_ids
        return [(keys[i], s, e) for s, e in sorted(rules_at) for i in rules_at[s, e]]

    def __call__(self, doc: Any) -> Any:
        from medspacy.common.util import prune_overlapping_matches
        from spacy.tokens import Span

        matches = self._matches(doc)
        if len(matches) > 1:
            matches = prune_overlapping_matches(matches)
        spans = []
        for key, start, end in matches:
            rule = self.by_key[key]
            span = Span(doc, start, end, label=self.labels[key])
            span._.target_rule = rule
            spans.append(span)
        doc.set_ents(spans, default="outside")  # as the doc.ents setter does
        doc.user_data[_TARGETS] = spans  # the same spans, without doc.ents making new ones
        return doc


class _Sections:
    """medspaCy's Sectionizer for this project's header rules, faster (a spaCy component).

    The rules of :func:`flare_ml.reports.rules.section_rules` are header words followed
    by a colon, so a header is found by looking back from each colon (instead of trying
    every rule at every token); overlapping headers are pruned as medspaCy does
    (``prune_overlapping_matches``), and ``doc._.sections`` and each token's
    ``token._.section`` are set as medspaCy's Sectionizer sets them (no parent sections,
    no length limit, sentence boundaries unchanged).
    """

    def __init__(self, nlp: Any) -> None:
        self.rules = r.section_rules()
        self.headers: dict[tuple[str, ...], int] = {}
        for i, rule in enumerate(self.rules):
            *words, colon = rule.pattern
            if colon != {"ORTH": ":"} or any(set(w) != {"LOWER"} for w in words):
                raise ValueError(f"a section rule must be header words and ':': {rule}")
            self.headers[tuple(w["LOWER"] for w in words)] = i
        if len(self.headers) != len(self.rules):
            raise ValueError("two section rules have the same header")
        self.longest = max(len(words) for words in self.headers)

    def __call__(self, doc: Any) -> Any:
        from medspacy.common.util import prune_overlapping_matches
        from medspacy.section_detection import Section
        from spacy.attrs import IDX

        texts, lows = _words_of(doc)
        matches: list[tuple[int, int, int]] = []
        for j in [j for j, t in enumerate(texts) if t == ":"]:
            before = lows[max(0, j - self.longest) : j]
            for k in range(1, len(before) + 1):
                rule = self.headers.get(tuple(before[-k:]))
                if rule is not None:
                    matches.append((rule, j - k, j + 1))
        if len(matches) > 1:
            matches = prune_overlapping_matches(matches)
        n = len(doc)
        if not matches:
            doc._.sections = [Section(None, 0, 0, 0, n)]
            return doc
        sections = []
        if matches[0][1] != 0:
            sections.append(Section(None, 0, 0, 0, matches[0][1]))
        for i, (rule_index, start, end) in enumerate(matches):
            rule = self.rules[rule_index]
            body_end = matches[i + 1][1] if i + 1 < len(matches) else n
            sections.append(Section(rule.category, start, end, end, body_end, None, rule))
        doc._.sections = sections
        user_data = doc.user_data  # token._.section, as Underscore stores it
        offsets = doc.to_array(IDX).tolist()
        for section in sections:
            start, end = section.section_span
            for idx in offsets[start:end]:
                user_data[("._.", "section", idx, None)] = section
        return doc


class _Context:
    """medspaCy's ConText for this project's rules, faster (a spaCy component).

    The modifiers, scopes and target attributes of medspaCy's ConText component with
    :func:`flare_ml.reports.rules.context_rules`, computed with medspaCy's own
    ``ConTextModifier`` and ``ConTextGraph`` (scope limits, ``modifies``, the span
    attributes ``is_negated``, ``is_uncertain``, ``is_historical``, ``is_family`` and
    ``modifiers``); what changed is the work around them. (1) The rules are phrases, so
    one ``PhraseMatcher`` finds them all (medspaCy also runs a ``Matcher`` for the one
    token rule "no"; its matches are put first, in medspaCy's order); (2) the matches are
    pruned as medspaCy prunes them, then only the modifiers in sentences that hold a
    target are kept: a modifier's scope lies within its sentence (no rule sets
    ``max_scope``; no rule spans a sentence boundary), so a modifier in another sentence
    can neither modify a target nor limit the scope of a modifier of another sentence
    (``doc._.context_graph`` holds the kept modifiers); (3) each scope comes from the
    sentence starts computed once (``Token.sent`` walks the tokens per modifier); (4) the
    graph's pairwise steps run sentence by sentence (the same edges, in the same order);
    (5) a report without targets is not matched at all.
    """

    def __init__(self, nlp: Any) -> None:
        from medspacy.context import ConText
        from spacy.matcher import PhraseMatcher

        # medspaCy's component, for its rules (as it stores them) and attribute mapping
        self.context = ConText(nlp, name="medspacy_context", rules=None)
        self.context.add(r.context_rules())
        if self.context.max_scope is not None or self.context.prune_on_target_overlap:
            raise ValueError("the fast ConText assumes medspaCy's default scope and pruning")
        self.phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.by_key: dict[int, Any] = {}
        self.first: set[int] = set()
        for rule in self.context.rules:
            key = nlp.vocab.strings.add(rule._rule_id)
            if rule.max_scope is not None:
                raise ValueError(f"the fast ConText assumes no max_scope: {rule}")
            if rule.pattern is None:
                words = rule.literal.lower()
            elif (
                isinstance(rule.pattern, list)
                and len(rule.pattern) == 1
                and set(rule.pattern[0]) == {"LOWER"}
                and isinstance(rule.pattern[0]["LOWER"], str)
            ):
                # a one-word token pattern: the same matches as the phrase (LOWER)
                words = rule.pattern[0]["LOWER"]
                self.first.add(key)
            else:
                raise ValueError(f"the fast ConText takes phrases and one-word patterns: {rule}")
            self.phrases.add(rule._rule_id, [nlp.make_doc(words)])
            self.by_key[key] = rule
        self.mapping = self.context.context_attributes_mapping

    def __call__(self, doc: Any) -> Any:
        from medspacy.common.util import prune_overlapping_matches
        from medspacy.context import ConTextGraph, ConTextModifier

        targets = _targets(doc)
        graph = ConTextGraph(prune_on_modifier_overlap=False)
        graph.targets = targets
        if targets:
            matches = self.phrases(doc)
            if self.first:
                first = self.first
                matches = [m for m in matches if m[0] in first] + [
                    m for m in matches if m[0] not in first
                ]
            if matches:
                matches = prune_overlapping_matches(matches)
            starts = _sentence_starts(doc)
            n = len(doc)
            # the sentences each target lies in
            spread = [
                (bisect_right(starts, t.start) - 1, bisect_right(starts, t.end - 1) - 1)
                for t in targets
            ]
            held = {k for first, last in spread for k in range(first, last + 1)}
            by_key = self.by_key
            modifiers = []
            by_sentence: dict[int, list[Any]] = {}
            for key, start, end in matches:
                k = bisect_right(starts, start) - 1
                if k not in held:
                    continue
                rule = by_key[key]
                direction = rule.direction.lower()
                sent_start = starts[k]
                sent_end = starts[k + 1] if k + 1 < len(starts) else n
                if direction == "forward":
                    scope = (end, sent_end)
                elif direction == "backward":
                    scope = (sent_start, start)
                else:  # bidirectional, terminate, pseudo: the sentence (as medspaCy)
                    scope = (sent_start, sent_end)
                modifier = ConTextModifier(rule, start, end, doc, *scope)
                modifiers.append(modifier)
                by_sentence.setdefault(k, []).append(modifier)
            graph.modifiers = modifiers
            # medspaCy's graph sentence by sentence: across sentences a modifier limits no
            # scope and modifies no target, and the modifiers come in order of their start,
            # so the edges (modifier by modifier, each one's targets in order) are the same
            for k, in_sentence in by_sentence.items():
                part = ConTextGraph(prune_on_modifier_overlap=False)
                part.modifiers = in_sentence
                part.targets = [t for t, (a, b) in zip(targets, spread, strict=True) if a <= k <= b]
                part.update_scopes()
                part.apply_modifiers()
                graph.edges += part.edges
            attributes: dict[tuple[int, int], dict[str, Any]] = {}
            if graph.edges:
                for target, modifier in graph.edges:
                    target._.modifiers += (modifier,)
                if self.mapping:
                    self.context.set_context_attributes(graph.edges)
                    # the same values, for the reader without a span extension lookup each
                    for target, modifier in graph.edges:
                        if modifier.category in self.mapping:
                            attributes.setdefault((target.start, target.end), {}).update(
                                self.mapping[modifier.category]
                            )
            doc.user_data[_CONTEXT] = attributes
        doc._.context_graph = graph
        return doc


def build_pipeline() -> Any:
    """The spaCy pipeline: blank English, sentences, target rules, Sectionizer, ConText.

    Returns
    -------
    spacy.language.Language
        The pipeline (built from rules only; nothing downloaded).

    Examples
    --------
    >>> nlp = build_pipeline()
    >>> nlp.pipe_names
    ['flare_sentences', 'flare_target_matcher', 'flare_sections', 'flare_context']

    The fast target matcher, sections and ConText agree with medspaCy's own components:

    >>> import spacy
    >>> ref = spacy.blank("en")
    >>> _ = ref.add_pipe("flare_sentences")
    >>> ref.add_pipe("medspacy_target_matcher").add(r.target_rules())
    >>> ref.add_pipe("medspacy_sectionizer", config={"rules": None}).add(r.section_rules())
    >>> ref.add_pipe("medspacy_context", config={"rules": None}).add(r.context_rules())
    >>> text = ("FINDINGS: Increase in size and number of lytic lesions; the T9 lesion is "
    ...         "new. No new lytic lesion. Lytic lesion in L2 has enlarged, not seen "
    ...         "previously. IMPRESSION: PD. Possible new focus in the 6th rib, but no "
    ...         "sclerosis. Comparison: none")
    >>> def seen(doc):
    ...     return ([(e.start, e.end, e.label_, e._.is_negated, e._.is_uncertain,
    ...               e._.is_historical, [(m.category, m.modifier_span, m.scope_span)
    ...                                   for m in e._.modifiers]) for e in doc.ents],
    ...             [(s.category, s.body_start, s.body_end) for s in doc._.sections])
    >>> seen(nlp(text)) == seen(ref(text))
    True

    """
    import medspacy  # noqa: F401  (registers the medspaCy factories and extensions)
    import spacy
    from spacy.language import Language

    if "flare_sentences" not in Language.factories:
        Language.component("flare_sentences")(_sentences)
    if "flare_target_matcher" not in Language.factories:
        Language.factory("flare_target_matcher")(lambda nlp, name: _TargetMatcher(nlp))
    if "flare_sections" not in Language.factories:
        Language.factory("flare_sections")(lambda nlp, name: _Sections(nlp))
    if "flare_context" not in Language.factories:
        Language.factory("flare_context")(lambda nlp, name: _Context(nlp))
    nlp = spacy.blank("en")
    nlp.add_pipe("flare_sentences")
    nlp.add_pipe("flare_target_matcher")
    nlp.add_pipe("flare_sections")
    nlp.add_pipe("flare_context")
    return nlp


def _outside_bone(words: Sequence[str]) -> bool:
    """True when "outside"/"beyond" is followed within three words by bone.

    >>> _outside_bone(["stable", "disease", "outside", "of", "the", "bones", "."])
    True
    >>> _outside_bone(["outside", "the", "liver", ",", "bone"])
    False
    """
    for i, w in enumerate(words):
        if w in r.OUTSIDE_WORDS and any(x in r.OUTSIDE_BONE for x in words[i + 1 : i + 4]):
            return True
    return False


def _subwords(words: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for w in words:
        out.add(w)
        if "-" in w or "/" in w:
            out.update(p for p in _SUBWORDS.split(w) if p)
    return out


def _morphology(words: set[str]) -> str | None:
    blastic = bool(words & r.BLASTIC)
    lytic = bool(words & r.LYTIC)
    if "mixed" in words or (blastic and lytic):
        return "mixed"
    if blastic:
        return "blastic"
    if lytic:
        return "lytic"
    return None


def _combine_morphology(values: Sequence[str | None]) -> str:
    kinds = {v for v in values if v is not None}
    if not values:
        return "none"
    if "mixed" in kinds or {"blastic", "lytic"} <= kinds:
        return "mixed"
    if kinds:
        return kinds.pop()
    return "unknown"


def _segments(words: Sequence[str]) -> list[list[str]]:
    """Split a phrase into its list items (at commas, "and", "or", ...)."""
    segments: list[list[str]] = [[]]
    for w in words:
        if w in _SPLITTERS:
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append(w)
    return [s for s in segments if s]


def _levels(words: list[str], seen: set[str]) -> int:
    """New vertebral levels in a segment (a range "t7-t9" or "t7-9" counts each level)."""
    n = 0
    i = 0
    while i < len(words):
        m = _LEVEL_NUM.match(words[i])
        if m:
            if i + 2 < len(words) and words[i + 1] in ("-", "to", "through"):
                m2 = _LEVEL_NUM.match(words[i + 2])
                hi = None
                if m2 and m2.group(1) == m.group(1):
                    hi = int(m2.group(2))
                elif _NUMBER.match(words[i + 2]):
                    hi = int(words[i + 2])
                if hi is not None and 0 < hi - int(m.group(2)) < 12:
                    n += hi - int(m.group(2)) + 1
                    i += 3
                    continue
            if words[i] not in seen:
                seen.add(words[i])
                n += 1
        i += 1
    return n


def _sites(words: Sequence[str]) -> tuple[int, int]:
    """Bone sites and organ sites named in a phrase (one per list item)."""
    bone = organ = 0
    seen: set[str] = set()
    for seg in _segments(words):
        words = set(seg)
        is_node = bool(words & r.NODE_WORDS)
        organ_words = words & r.ORGAN_WORDS
        if organ_words or is_node:
            organ += 1
            continue
        levels = _levels(seg, seen)
        if levels or seen & set(seg):
            bone += levels
        elif words & r.BONE_SITE_WORDS:
            bone += 1
        elif any(r.ORDINAL_RE.match(w) for w in seg):
            bone += 1
    return bone, organ


def _explicit_count(words: Sequence[str]) -> int | None:
    """A number or quantifier among the words before and in a lesion phrase."""
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if _NUMBER.match(w) and nxt not in r.SIZE_UNITS and not nxt.startswith(("cm", "mm")):
            prev = words[i - 1] if i else ""
            if prev in ("-", "to", "through"):
                continue
            return int(w)
        if w in r.NUMBER_WORDS:
            return r.NUMBER_WORDS[w]
        if w == "large" and nxt == "number":
            return 10
    ws = set(words)
    if ws & r.MANY:
        return 10
    if ws & r.SOME or ("number" in ws and "of" in ws):
        return _AT_LEAST_TWO
    return None


def _times(clause: Sequence[str]) -> int | None:
    """A count written after the lesions: "new sclerotic mets x3"."""
    words = clause[:3]
    for i, w in enumerate(words):
        m = _TIMES.match(w)
        if m:
            return int(m.group(1))
        if w in ("x", "×") and i + 1 < len(words) and _NUMBER.match(words[i + 1]):
            return int(words[i + 1])
    return None


def _adjectives(words: Sequence[str], start: int, sent_start: int) -> int:
    """Where the modifier words right before a span start ("two sclerotic lesions")."""
    while (
        start > sent_start
        and words[start - 1] in r.MODIFIERS
        and words[start - 1] not in (",", "and", "or")
    ):
        start -= 1
    return start


def _mentions_known(words: Sequence[str]) -> bool:
    """Whether a phrase calls the lesion known ("in the known L2 lesion").

    A negated word does not count ("not previously seen").
    """
    for i, w in enumerate(words):
        if w in _KNOWN_WORDS and not {"not", "no", "never"} & set(words[max(0, i - 2) : i]):
            return True
    return False


class ReportReader:
    """Reads radiology reports into the contract's imaging findings.

    The pipeline is built once (:func:`build_pipeline`); :meth:`read` reads one report,
    :meth:`read_many` streams many through ``nlp.pipe``. The conventions are in the
    module docstring and ``docs/reports.md``.

    Examples
    --------
    >>> reader = ReportReader()
    >>> f = reader.read("IMPRESSION: Two new sclerotic lesions in T7 and T9. No new lytic "
    ...                 "lesion. Partial response of the liver metastases.")
    >>> f.new_bone_lesions, f.new_lesion_morphology, f.extraosseous_response
    (2, 'blastic', 'PR')
    >>> reader.read("No new lytic or blastic lesions.").new_bone_lesions
    0

    """

    def __init__(self) -> None:
        self.nlp = build_pipeline()

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled as "build a new reader" (a Spark worker gets its own pipeline)
        return (ReportReader, ())

    def read(self, text: str, modality: str | None = None) -> ReportFindings:
        """Read one report.

        Parameters
        ----------
        text : str
            The report.
        modality : str, optional
            One of :data:`~flare_ml.reports.findings.MODALITIES`. Accepted for the API;
            the values come from the text alone (a bone scan's new focus without a CT
            correlate states no density word, so its morphology is ``unknown`` anyway).

        Returns
        -------
        ReportFindings

        """
        return self._findings(self.nlp(text), modality, text)

    def read_many(
        self,
        texts: Iterable[str],
        modalities: Iterable[str | None] | None = None,
        batch_size: int = 256,
    ) -> Iterator[ReportFindings]:
        """Read many reports, streaming (``nlp.pipe``), in input order.

        Parameters
        ----------
        texts : iterable of str
            The reports (any iterable; read lazily).
        modalities : iterable of str or None, optional
            One per text.
        batch_size : int
            spaCy's batch size.

        Yields
        ------
        ReportFindings

        Examples
        --------
        >>> reader = ReportReader()
        >>> [f.new_bone_lesions for f in reader.read_many(["New lytic lesion in L2.",
        ...                                                 "Stable sclerotic lesions."])]
        [1, 0]

        """
        # each text goes with its doc (a doc's text is its input: no join of the tokens)
        if modalities is None:
            pairs: Iterator[tuple[str, tuple[str, str | None]]] = ((t, (t, None)) for t in texts)
        else:
            pairs = ((t, (t, m)) for t, m in zip(texts, modalities, strict=True))
        for doc, (text, mod) in self.nlp.pipe(pairs, batch_size=batch_size, as_tuples=True):
            yield self._findings(doc, mod, text)

    # --- conventions ----------------------------------------------------------------
    def _findings(self, doc: Any, modality: str | None, text: str | None = None) -> ReportFindings:
        sections = [(s.category, s.body_start, s.body_end) for s in doc._.sections]

        def section_of(i: int) -> str | None:
            for category, _start, end in sections:
                if i < end:
                    return category
            return None

        ents = list(_targets(doc))
        # each target's ConText (negated, uncertain, historical, family), read once
        recorded = doc.user_data.get(_CONTEXT)
        context: dict[int, tuple[Any, ...]] = {}
        for ent in ents:
            if recorded is None:
                values = tuple(getattr(ent._, name) for name in _CONTEXT_ATTRIBUTES)
            else:
                got = recorded.get((ent.start, ent.end), {})
                values = tuple(got.get(name, False) for name in _CONTEXT_ATTRIBUTES)
            context[ent.start] = values
        evidence: list[Evidence] = []
        lows = _words_of(doc)[1] if ents else []  # the words, sliced below
        # Span.sent walks the tokens each time; the same spans from the boundaries once
        bounds = _sentence_starts(doc) if ents else []
        sents: dict[int, _Sentence] = {}

        def sent_of(ent: Any) -> _Sentence:
            # the sentence of the span's first token, as Span.sent (token indices only)
            sent = sents.get(ent.start)
            if sent is None:
                k = bisect_right(bounds, ent.start) - 1
                sent = sents[ent.start] = _Sentence(
                    bounds[k] if k >= 0 else 0, bounds[k + 1] if k + 1 < len(bounds) else len(doc)
                )
            return sent

        if text is None:
            text = doc.text  # a span's text is this slice (Span.text joins its tokens)
        sent_texts: dict[int, str] = {}

        def note(ent: Any, field: str, value: Any, section: str | None, **ctx: bool) -> None:
            sent = sent_of(ent)
            sent_text = sent_texts.get(sent.start)
            if sent_text is None:
                span = doc[sent.start : sent.end]
                sent_text = sent_texts[sent.start] = text[span.start_char : span.end_char].strip()
            ent_negated, ent_uncertain, ent_historical, _family = context[ent.start]
            evidence.append(
                Evidence(
                    field,
                    value,
                    ent.start_char,
                    ent.end_char,
                    text[ent.start_char : ent.end_char],
                    sent_text,
                    section,
                    ctx["negated"] if "negated" in ctx else ent_negated,
                    ctx["uncertain"] if "uncertain" in ctx else ent_uncertain,
                    ctx["historical"] if "historical" in ctx else ent_historical,
                )
            )

        baseline = False
        for ent in ents:
            if ent.label_ != r.BASELINE or context[ent.start][0]:
                continue
            section = section_of(ent.start)
            if section == "comparison":
                continue
            sent = sent_of(ent)
            before = set(lows[max(sent.start, ent.start - 3) : ent.start])
            ent_text = text[ent.start_char : ent.end_char]
            if before & r.BASELINE_BLOCKERS and not ent_text.lower().startswith("no"):
                continue
            baseline = True
            note(ent, c.EXTRAOSSEOUS_RESPONSE, "baseline", section)

        items: list[_Item] = []
        morphologies: list[str | None] = []
        uncertain = False
        extraosseous = False
        lysis = sclerosis = marrow = False
        responses: list[tuple[int, int, int, str, Any, str | None]] = []
        starts = [e.start for e in ents]
        for k, ent in enumerate(ents):
            label = ent.label_
            section = section_of(ent.start)
            negated, ent_uncertain, historical, family = context[ent.start]
            if label == r.BASELINE or section in r.IGNORED_SECTIONS or family:
                continue
            sent = sent_of(ent)
            next_start = next((s for s in starts[k + 1 :] if s > ent.end - 1), sent.end)
            clause = lows[ent.end : min(sent.end, next_start)]
            if label in (r.NEW_LESION, r.LESION_INCREASE):
                ent_words = lows[ent.start : ent.end]
                look_words = lows[max(sent.start, ent.start - 4) : ent.start]
                span_words = _subwords(ent_words)
                # "sclerotic lesions in T7 and T9 are new", "destructive new lesion"
                span_words |= _subwords(lows[_adjectives(lows, ent.start, sent.start) : ent.start])
                clause_words = _subwords(clause)
                known_clause = _mentions_known(clause) or bool(span_words & {"known"})
                if historical or (known_clause and label == r.NEW_LESION):
                    if not negated and (span_words | clause_words) & r.BLASTIC and known_clause:
                        sclerosis = True
                        note(ent, c.KNOWN_LESION_SCLEROSIS, True, section, historical=True)
                    else:
                        note(ent, c.NEW_BONE_LESIONS, 0, section, historical=True)
                    continue
                if negated:
                    note(ent, c.NEW_BONE_LESIONS, 0, section)
                    continue
                hedged = bool(ent_uncertain) or bool(
                    (span_words | set(look_words[-2:])) & r.HEDGE_WORDS
                )
                bone_sites, organ_sites = _sites(ent_words + clause)
                span_organ = bool(span_words & r.ORGAN_WORDS) or bool(span_words & r.NODE_WORDS)
                span_bone = bool(span_words & r.BONE_WORDS)
                morph = _morphology(span_words | clause_words)
                if morph is None and (
                    set(look_words) & (r.RESTATEMENT | {"is", "are", "as"})
                    or label == r.LESION_INCREASE
                ):
                    # "the T5 sclerotic focus is a new metastasis": the words before
                    morph = _morphology(_subwords(lows[sent.start : ent.start]))
                is_extra = span_organ or organ_sites > 0
                is_bone = span_bone or bone_sites > 0 or morph is not None or not is_extra
                if span_organ and not span_bone and morph is None:
                    is_bone = False
                if is_extra:
                    extraosseous = True
                    uncertain = uncertain or hedged
                    note(ent, c.NEW_EXTRAOSSEOUS_LESION, True, section, uncertain=hedged)
                if not is_bone:
                    continue
                if label == r.LESION_INCREASE:
                    count = 1
                else:
                    count = self._count(ent_words, look_words, clause, bone_sites, is_extra)
                uncertain = uncertain or hedged
                morphologies.append(morph)
                anaphoric = bool(look_words) and look_words[-1] in r.ANAPHORA
                restating = bool(set(look_words) & r.RESTATEMENT)
                items.append(_Item(section, sent.start, count, anaphoric, restating))
                note(ent, c.NEW_BONE_LESIONS, count, section, uncertain=hedged)
                note(ent, c.NEW_LESION_MORPHOLOGY, morph or "unknown", section, uncertain=hedged)
            elif label == r.LYSIS:
                if not negated:
                    lysis = True
                note(ent, c.PROGRESSIVE_LYSIS, not negated, section)
            elif label == r.SCLEROSIS:
                if any(i.sent_start == sent.start for i in items) and not _mentions_known(
                    lows[sent.start : ent.end]
                ):
                    # "new sclerotic foci, likely healing response": the new lesions' cause
                    note(ent, c.KNOWN_LESION_SCLEROSIS, False, section)
                    continue
                if not negated:
                    sclerosis = True
                note(ent, c.KNOWN_LESION_SCLEROSIS, not negated, section)
            elif label == r.MARROW:
                if not negated:
                    marrow = True
                note(ent, c.BASELINE_MARROW_INVOLVEMENT, not negated, section)
            elif label == r.RESPONSE and not negated:
                code = self._response_code(text[ent.start_char : ent.end_char])
                if code is None:
                    continue
                prev_end = max(
                    (e.end for e in ents[:k] if e.label_ == r.RESPONSE and e.end <= ent.start),
                    default=sent.start,
                )
                nxt = next((e.start for e in ents[k + 1 :] if e.label_ == r.RESPONSE), sent.end)
                window = lows[max(sent.start, prev_end) : min(sent.end, nxt)]
                around = _subwords(window)
                organ = bool(around & _ORGAN_RESPONSE_WORDS)
                # "stable disease outside the skeleton": the disease outside bone (issue 14)
                outside = bool(around & r.OUTSIDE_WORDS) and _outside_bone(window)
                organ = organ or outside
                bone = not outside and bool(around & r.BONE_RESPONSE_WORDS)
                if bone and not organ:
                    note(ent, c.EXTRAOSSEOUS_RESPONSE, None, section)
                    continue
                rank = (2 if organ else 1, 1 if section in r.SUMMARY_SECTIONS else 0, ent.start)
                responses.append((*rank, code, ent, section))

        if baseline:
            count = 0
            morphology = "none"
            extraosseous = False
            uncertain = False
            response: str | None = "baseline"
        else:
            count = self._aggregate(items)
            morphology = _combine_morphology(morphologies) if count else "none"
            response = None
            if responses:
                best = max(responses, key=lambda x: x[:3])
                response = best[3]
                note(best[4], c.EXTRAOSSEOUS_RESPONSE, response, best[5])
        if not count:
            uncertain = uncertain and extraosseous
        del modality  # accepted for the API; the text decides (see read())
        return ReportFindings(
            new_bone_lesions=count,
            new_lesion_morphology=morphology,
            progressive_lysis=lysis,
            known_lesion_sclerosis=sclerosis,
            new_extraosseous_lesion=extraosseous,
            extraosseous_response=response,
            baseline_marrow_involvement=marrow,
            findings_uncertain=uncertain,
            evidence=tuple(evidence),
        )

    @staticmethod
    def _count(
        ent: Sequence[str],
        lookback: Sequence[str],
        clause: Sequence[str],
        bone_sites: int,
        mixed_sites: bool,
    ) -> int:
        head = next((w for w in reversed(ent) if w in r.HEADS), "")
        explicit = _explicit_count([*lookback, *ent])
        times = _times(clause)
        if mixed_sites:
            return max(1, bone_sites)
        if times is not None:
            return times
        if explicit == _AT_LEAST_TWO:
            return max(2, bone_sites)
        if explicit is not None:
            return explicit
        if head in r.PLURAL_HEADS:
            return max(2, bone_sites)
        if head in r.MASS_HEADS:
            return max(1, bone_sites)
        return 1

    @staticmethod
    def _aggregate(items: list[_Item]) -> int:
        by_section: dict[str | None, dict[int, list[_Item]]] = {}
        for item in items:
            by_section.setdefault(item.section, {}).setdefault(item.sent_start, []).append(item)
        best = 0
        for sentences in by_section.values():
            total = 0
            anaphoric = 0
            for sentence_items in sentences.values():
                s = 0
                for item in sentence_items:
                    s = max(s, item.count) if item.restating else s + item.count
                if all(i.anaphoric for i in sentence_items):
                    anaphoric = max(anaphoric, s)
                else:
                    total += s
            best = max(best, total, anaphoric)
        return best

    @staticmethod
    def _response_code(text: str) -> str | None:
        for code, pattern in _RESPONSE_PATTERNS:
            if pattern.search(text):
                return code
        low = text.lower()
        if "complete" in low or "resol" in low or "disappear" in low:
            return "CR"
        if "partial" in low:
            return "PR"
        if "evaluable" in low:
            return "NE"
        if "progress" in low or "enlarg" in low or "grow" in low or "increased" in low:
            return "PD"
        if "stable" in low or "unchanged" in low:
            return "SD"
        return None


# --- report tables --------------------------------------------------------------------
def _rows(frame: pd.DataFrame, mask: np.ndarray) -> tuple[tuple[str, str], ...]:
    idx = np.flatnonzero(mask)[:MAX_EXAMPLES]
    pids = frame[c.PATIENT_ID] if c.PATIENT_ID in frame else None
    dates = frame[c.ASSESSMENT_DATE] if c.ASSESSMENT_DATE in frame else None

    def show(series: pd.Series | None, i: int) -> str:
        if series is None:
            return MISSING_LABEL
        value = series.iloc[i]
        return MISSING_LABEL if pd.isna(value) else str(value)

    return tuple((show(pids, i), show(dates, i)) for i in idx)


def _violation(
    frame: pd.DataFrame, column: str, rule: str, mask: np.ndarray, message: str, hint: str
) -> Violation:
    return Violation(column, rule, _rows(frame, mask), int(mask.sum()), message, hint)


def check_reports(table: pd.DataFrame, *, source: str | None = None) -> pd.DataFrame:
    """Validate a report table; return it with parsed dates and normalised modality.

    Parameters
    ----------
    table : pandas.DataFrame
        ``patient_id``, ``assessment_date``, ``text``, optional ``modality``, any other
        columns (kept).
    source : str, optional
        Where the table came from, named in the error.

    Returns
    -------
    pandas.DataFrame
        A copy: ``assessment_date`` as dates, ``modality`` lower case (missing when
        empty).

    Raises
    ------
    ContractError
        Missing ``patient_id``/``assessment_date``/``text`` column, empty or non-text
        ``text``, missing or unparseable dates, a modality outside
        :data:`~flare_ml.reports.findings.MODALITIES`.

    Examples
    --------
    >>> import pandas as pd
    >>> try:
    ...     check_reports(pd.DataFrame({"patient_id": ["P1"], "assessment_date": ["x"]}))
    ... except ContractError as error:
    ...     print(sorted(v.rule for v in error.violations))
    ['missing_column', 'unparseable_date']

    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(table).__name__}")
    from flare_ml.data.parsing import normalise_column_names

    frame = normalise_column_names(table).copy()
    where = f" '{source}'" if source else ""
    violations: list[Violation] = []
    for column in (c.PATIENT_ID, c.ASSESSMENT_DATE, TEXT):
        if column not in frame:
            violations.append(
                Violation(
                    column,
                    "missing_column",
                    (),
                    0,
                    f"required column '{column}' is missing",
                    f"add a '{column}' column",
                )
            )
    if c.PATIENT_ID in frame:
        pid = frame[c.PATIENT_ID]
        missing = pid.isna().to_numpy() | (pid.astype(str).str.strip() == "").to_numpy()
        if missing.any():
            violations.append(
                _violation(
                    frame,
                    c.PATIENT_ID,
                    "missing_value",
                    missing,
                    "missing patient_id",
                    "give every report its patient",
                )
            )
    if c.ASSESSMENT_DATE in frame:
        values, bad, bad_values = parse_date(frame[c.ASSESSMENT_DATE])
        missing = pd.isna(values) & ~bad
        if bad.any():
            violations.append(
                _violation(
                    frame,
                    c.ASSESSMENT_DATE,
                    "unparseable_date",
                    bad,
                    f"dates that are not ISO 8601 (YYYY-MM-DD): {bad_values[:MAX_EXAMPLES]}",
                    "write dates as YYYY-MM-DD",
                )
            )
        if missing.any():
            violations.append(
                _violation(
                    frame,
                    c.ASSESSMENT_DATE,
                    "missing_value",
                    missing,
                    "missing assessment_date",
                    "date every report",
                )
            )
        if not violations:
            frame[c.ASSESSMENT_DATE] = values
    if TEXT in frame:
        text = frame[TEXT]
        not_text = np.fromiter((not isinstance(v, str) for v in text), bool, len(text))
        not_text &= ~pd.isna(text).to_numpy()
        empty = (
            np.fromiter((not (isinstance(v, str) and v.strip()) for v in text), bool, len(text))
            & ~not_text
        )
        if not_text.any():
            violations.append(
                _violation(
                    frame,
                    TEXT,
                    "not_text",
                    not_text,
                    "report text that is not text",
                    "give each report its text as a string",
                )
            )
        if empty.any():
            violations.append(
                _violation(
                    frame,
                    TEXT,
                    "empty_text",
                    empty,
                    "empty report text",
                    "drop the row or give the report's text",
                )
            )
    if MODALITY in frame:
        mod = frame[MODALITY]
        low = mod.astype("string").str.strip().str.lower()
        low = low.mask(low == "")
        bad = (~low.isna() & ~low.isin(MODALITIES)).to_numpy(dtype=bool, na_value=False)
        if bad.any():
            shown = sorted({str(v) for v in mod[bad]})[:MAX_EXAMPLES]
            violations.append(
                _violation(
                    frame,
                    MODALITY,
                    "unknown_category",
                    bad,
                    f"unknown modality {shown}",
                    f"use one of {list(MODALITIES)} or leave empty",
                )
            )
        frame[MODALITY] = low.astype(object).where(~low.isna(), None)
    if violations:
        raise ContractError(
            f"the report table{where} breaks the data contract "
            f"({plural(len(violations), 'problem')}):",
            violations,
        )
    return frame


def read_reports(
    table: pd.DataFrame,
    reader: ReportReader | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
    source: str | None = None,
) -> pd.DataFrame:
    """Read a report table into one findings row per report, in input order.

    Parameters
    ----------
    table : pandas.DataFrame
        ``patient_id``, ``assessment_date``, ``text``, optional ``modality``; other
        columns are kept unchanged.
    reader : ReportReader, optional
        A reader to reuse (built once otherwise).
    chunk_size : int
        Reports per chunk through :meth:`ReportReader.read_many`.
    source : str, optional
        Where the table came from, for the error message.

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``assessment_date``, ``modality`` (if given), the imaging columns
        (:data:`~flare_ml.reports.findings.IMAGING_FINDINGS`), ``findings_uncertain``,
        ``evidence`` (JSON), then the other input columns.

    Raises
    ------
    ContractError
        See :func:`check_reports`.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"patient_id": ["P1"], "assessment_date": ["2024-03-01"],
    ...                       "text": ["Numerous new blastic lesions in the spine."]})
    >>> row = read_reports(table).iloc[0]
    >>> int(row["new_bone_lesions"]), row["new_lesion_morphology"]
    (10, 'blastic')

    """
    frame = check_reports(table, source=source)
    reader = reader or ReportReader()
    texts = frame[TEXT].tolist()
    mods = frame[MODALITY].tolist() if MODALITY in frame else None
    rows: dict[str, list[Any]] = {
        name: [] for name in (*IMAGING_FINDINGS, FINDINGS_UNCERTAIN, EVIDENCE)
    }
    for lo in range(0, len(texts), chunk_size):
        chunk_mods = mods[lo : lo + chunk_size] if mods is not None else None
        for f in reader.read_many(texts[lo : lo + chunk_size], chunk_mods):
            for name, value in f.to_row().items():
                rows[name].append(value)
    out = pd.DataFrame(index=frame.index)
    out[c.PATIENT_ID] = frame[c.PATIENT_ID]
    out[c.ASSESSMENT_DATE] = frame[c.ASSESSMENT_DATE]
    if MODALITY in frame:
        out[MODALITY] = frame[MODALITY]
    for name in IMAGING_FINDINGS:
        values = rows[name]
        if name == c.NEW_BONE_LESIONS:
            out[name] = np.asarray(values, dtype=np.int64)
        elif name in (c.EXTRAOSSEOUS_RESPONSE, c.NEW_LESION_MORPHOLOGY):
            out[name] = pd.Series(values, index=frame.index, dtype=object)
        else:
            out[name] = np.asarray(values, dtype=bool)
    out[FINDINGS_UNCERTAIN] = np.asarray(rows[FINDINGS_UNCERTAIN], dtype=bool)
    out[EVIDENCE] = rows[EVIDENCE]
    for column in frame.columns:
        if column not in out and column != TEXT:
            out[column] = frame[column]
    out[TEXT] = frame[TEXT]
    return out


def evidence_of(row: pd.Series) -> list[dict[str, Any]]:
    """The evidence of one output row of :func:`read_reports`, as dicts.

    Examples
    --------
    >>> import pandas as pd
    >>> evidence_of(pd.Series({"evidence": "[]"}))
    []

    """
    return list(json.loads(row[EVIDENCE]))


__all__ = [
    "CHUNK_SIZE",
    "ReportReader",
    "build_pipeline",
    "check_reports",
    "evidence_of",
    "read_reports",
]
