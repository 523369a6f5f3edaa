"""The report reader on the hand-annotated corpus: precision, recall, exact match per field.

``tests/data/reports/corpus.yaml`` holds report snippets written and annotated by hand
(conventions: ``docs/reports.md``). The corpus is read once; the table of per-field
precision, recall and exact match is printed (``pytest -s`` shows it) and each must reach
0.95. Definitions (also in ``docs/reports.md``): for ``new_bone_lesions`` a positive is a
nonzero count and a true positive a nonzero count where a nonzero count is expected; for
the booleans a positive is True; for the categorical fields (morphology, response) a
positive is any value other than ``none``/empty and a true positive is the expected value
exactly (micro average over the values); exact match is the share of reports whose value
equals the expected value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flare_ml.reports import ReportReader

CORPUS = Path(__file__).parent / "data" / "reports" / "corpus.yaml"
#: corpus key -> (ReportFindings attribute, the "negative" value)
FIELDS: dict[str, tuple[str, Any]] = {
    "n": ("new_bone_lesions", 0),
    "morph": ("new_lesion_morphology", "none"),
    "lysis": ("progressive_lysis", False),
    "scl": ("known_lesion_sclerosis", False),
    "extra": ("new_extraosseous_lesion", False),
    "resp": ("extraosseous_response", None),
    "marrow": ("baseline_marrow_involvement", False),
    "unc": ("findings_uncertain", False),
}
TARGET = 0.95


@pytest.fixture(scope="module")
def corpus() -> list[dict[str, Any]]:
    entries = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    reader = ReportReader()
    found = reader.read_many([e["text"] for e in entries], [e.get("modality") for e in entries])
    for entry, findings in zip(entries, found, strict=True):
        entry["found"] = findings
    return entries


def _scores(entries: list[dict[str, Any]], key: str) -> dict[str, float]:
    attribute, negative = FIELDS[key]
    tp = predicted = expected = exact = 0
    for entry in entries:
        want = entry["expect"][key]
        got = getattr(entry["found"], attribute)
        exact += got == want
        if key == "n":
            predicted += got != 0
            expected += want != 0
            tp += got != 0 and want != 0
        else:
            predicted += got != negative
            expected += want != negative
            tp += want != negative and got == want
    return {
        "precision": tp / predicted if predicted else 1.0,
        "recall": tp / expected if expected else 1.0,
        "exact": exact / len(entries),
        "positives": expected,
    }


def _misses(entries: list[dict[str, Any]], key: str) -> list[str]:
    attribute, _ = FIELDS[key]
    return [
        f"{e['id']}: expected {e['expect'][key]!r}, got {getattr(e['found'], attribute)!r}"
        for e in entries
        if getattr(e["found"], attribute) != e["expect"][key]
    ]


def test_corpus_is_large_and_complete(corpus: list[dict[str, Any]]) -> None:
    assert len(corpus) >= 150
    assert len({e["id"] for e in corpus}) == len(corpus)
    for entry in corpus:
        assert set(entry["expect"]) == set(FIELDS), entry["id"]


def _table(entries: list[dict[str, Any]], title: str) -> str:
    lines = [
        f"{title} ({len(entries)} reports)",
        f"{'field':30s} {'precision':>9s} {'recall':>7s} {'exact':>6s} {'pos':>4s}",
    ]
    for key, (attribute, _) in FIELDS.items():
        s = _scores(entries, key)
        lines.append(
            f"{attribute:30s} {s['precision']:9.3f} {s['recall']:7.3f} "
            f"{s['exact']:6.3f} {s['positives']:4d}"
        )
    return "\n".join(lines)


def test_per_field_scores(corpus: list[dict[str, Any]]) -> None:
    second = [e for e in corpus if e.get("split") == "second"]
    print("\n" + _table(corpus, "report reader, hand-annotated corpus"))
    print(_table(second, "of which the second batch (first-run scores: docs/reports.md)"))
    failing = []
    for key, (attribute, _) in FIELDS.items():
        s = _scores(corpus, key)
        if min(s["precision"], s["recall"], s["exact"]) < TARGET:
            failing.append(f"{attribute}: " + "; ".join(_misses(corpus, key)))
    assert not failing, "\n".join(failing)
