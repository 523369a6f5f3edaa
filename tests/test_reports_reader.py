"""The report reader: dangerous errors, the conventions, and the report-table API.

Each dangerous extraction a clinician would object to (a negated lytic lesion read as new,
a known or stable lesion read as new, "no new" not negated, a hedged cause read as a
hedged lesion, bone-scan uptake in known lesions read as sclerosis) has its own test here;
the corpus scores are in ``tests/test_reports_corpus.py``.
"""

from __future__ import annotations

import itertools
import json
import pickle

import pandas as pd
import pytest

from flare_ml.errors import ContractError
from flare_ml.reports import IMAGING_FINDINGS, ReportFindings, ReportReader, read_reports


@pytest.fixture(scope="module")
def reader() -> ReportReader:
    return ReportReader()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_medspacy_default_no_rule_swallows_no_new() -> None:
    # the pitfall itself: medspaCy's default ConText rule for "no" takes "new" into the
    # modifier, so the finding "new lytic lesions" overlaps it and is not negated
    import medspacy  # noqa: F401
    import spacy
    from medspacy.target_matcher import TargetRule

    nlp = spacy.blank("en")
    nlp.add_pipe("medspacy_pyrush")
    nlp.add_pipe("medspacy_target_matcher").add([TargetRule("new lytic lesions", "NEW")])
    nlp.add_pipe("medspacy_context")
    (ent,) = nlp("No new lytic lesions.").ents
    assert not ent._.is_negated


@pytest.mark.parametrize(
    "text",
    [
        "No new lytic lesions.",
        "no new lytic lesion",
        "There is no new lytic lesion in the spine.",
        "No evidence of new lytic lesions.",
        "New lytic lesions are not seen.",
        "New lytic lesions are not identified.",
        "Without new lytic lesions.",
        "Negative for new lytic lesions.",
        "No definite new lytic lesion.",
        "FINDINGS: No new lytic or blastic lesions. IMPRESSION: No new osseous lesions.",
    ],
)
def test_negated_lytic_lesion_is_not_new(reader: ReportReader, text: str) -> None:
    f = reader.read(text)
    assert (f.new_bone_lesions, f.new_lesion_morphology) == (0, "none")
    assert any(e.negated for e in f.evidence)


@pytest.mark.parametrize(
    "text",
    [
        "The known lytic lesion in L2 is stable.",
        "Previously described sclerotic lesions in T7 and T9, unchanged.",
        "Sclerotic lesions in T7 and T9 are unchanged.",
        "Again seen sclerotic lesion in T7.",
        "Stable sclerotic metastases.",
        "Persistent lytic lesion in the right iliac bone.",
        "Pre-existing lytic lesion of the left femur, no change.",
        "COMPARISON: CT 01/2024, which showed new lytic lesions in L3 and L4.\n"
        "FINDINGS: The L3 and L4 lesions are unchanged.",
        "HISTORY: New lytic lesions in L3 on the prior CT.\nFINDINGS: Unchanged.",
    ],
)
def test_known_or_stable_lesion_is_not_new(reader: ReportReader, text: str) -> None:
    assert reader.read(text).new_bone_lesions == 0


@pytest.mark.parametrize(
    "text",
    [
        "IMP: 1) new lytic met R 5th rib 2) stable sclerotic lesions.",
        "(1) New lytic lesion in T4 (2) unchanged sclerotic lesions in the pelvis.",
        "New lytic lesion in T4; the known sclerotic lesions are stable.",
        "New lytic lesion in T4. Known sclerotic lesions stable.",
    ],
)
def test_stable_in_the_next_item_does_not_make_a_new_lesion_known(
    reader: ReportReader, text: str
) -> None:
    assert reader.read(text).new_bone_lesions == 1


def test_no_new_is_negated_with_our_rules(reader: ReportReader) -> None:
    negated = reader.read("No new lesions.")
    stated = reader.read("New lesions.")
    assert negated.new_bone_lesions == 0
    assert stated.new_bone_lesions == 2


@pytest.mark.parametrize(
    ("text", "count", "uncertain"),
    [
        ("New sclerotic foci, likely flare.", 2, False),
        ("New sclerotic lesions in the ribs, probably reflecting flare.", 2, False),
        ("Two new lytic lesions, possibly metastases.", 2, False),
        ("Possible new sclerotic foci.", 2, True),
        ("Likely new sclerotic lesion in T7.", 1, True),
        ("Equivocal new focus of uptake in the left 6th rib.", 1, True),
        ("New lytic lesion in the left iliac wing cannot be excluded.", 1, True),
        ("Sclerotic foci which may represent new metastases.", 2, True),
    ],
)
def test_hedged_cause_is_not_a_hedged_lesion(
    reader: ReportReader, text: str, count: int, uncertain: bool
) -> None:
    f = reader.read(text)
    assert (f.new_bone_lesions, f.findings_uncertain) == (count, uncertain)


@pytest.mark.parametrize(
    "text",
    [
        "Increased uptake in the known lesions, consistent with flare.",
        "Increased tracer uptake in the known lesions of the spine and pelvis.",
        "Increasing intensity of the known foci of uptake in T8 and L1.",
    ],
)
def test_bone_scan_uptake_in_known_lesions_is_not_sclerosis(
    reader: ReportReader, text: str
) -> None:
    f = reader.read(text, modality="bone_scan")
    assert not f.known_lesion_sclerosis
    assert f.new_bone_lesions == 0


def test_sclerosis_of_known_lesions_is_read(reader: ReportReader) -> None:
    assert reader.read("Increased sclerosis of the known lytic L2 lesion.").known_lesion_sclerosis
    assert reader.read("The lytic lesions have developed a sclerotic rim.").known_lesion_sclerosis
    assert not reader.read("No increased sclerosis of the lytic lesions.").known_lesion_sclerosis


@pytest.mark.parametrize(
    ("text", "count", "morphology"),
    [
        ("Two new sclerotic lesions.", 2, "blastic"),
        ("3 new lytic lesions.", 3, "lytic"),
        ("A single new osteolytic lesion in L4.", 1, "lytic"),
        ("New sclerotic lesions in T7, T9 and the left iliac bone.", 3, "blastic"),
        ("Several new osteoblastic foci.", 2, "blastic"),
        ("Multiple new lesions in T3, T5, T8 and the sacrum.", 4, "unknown"),
        ("A few new dense lesions.", 2, "blastic"),
        ("Numerous new blastic lesions.", 10, "blastic"),
        ("Innumerable new lytic lesions.", 10, "lytic"),
        ("A large number of new sclerotic lesions.", 10, "blastic"),
        ("New blastic mets.", 2, "blastic"),
        ("Increase in the number of sclerotic lesions.", 1, "blastic"),
        ("New mixed lytic-sclerotic lesion in the pelvis.", 1, "mixed"),
        ("New lytic lesion in T4. New sclerotic lesion in T9.", 2, "mixed"),
        ("New focus of increased uptake in the right 5th rib.", 1, "unknown"),
        ("New sclerotic lesions in T7-T9.", 3, "blastic"),
        ("Destructive new lesion in C2.", 1, "lytic"),
    ],
)
def test_counting_and_morphology_conventions(
    reader: ReportReader, text: str, count: int, morphology: str
) -> None:
    f = reader.read(text)
    assert (f.new_bone_lesions, f.new_lesion_morphology) == (count, morphology)


def test_findings_and_impression_are_not_counted_twice(reader: ReportReader) -> None:
    f = reader.read(
        "FINDINGS: New sclerotic lesions in T7 and T9.\n"
        "IMPRESSION: Two new sclerotic bone metastases."
    )
    assert f.new_bone_lesions == 2


def test_baseline_exam_has_nothing_new(reader: ReportReader) -> None:
    f = reader.read("Baseline staging CT. Multiple new-appearing sclerotic lesions in the spine.")
    assert (f.new_bone_lesions, f.extraosseous_response) == (0, "baseline")
    follow_up = reader.read("Compared with the baseline scan, two new sclerotic lesions.")
    assert (follow_up.new_bone_lesions, follow_up.extraosseous_response) == (2, None)


@pytest.mark.parametrize(
    ("text", "response"),
    [
        ("Partial response of the liver metastases.", "PR"),
        ("PR liver.", "PR"),
        ("Stable disease.", "SD"),
        ("Progression of the hepatic metastases.", "PD"),
        ("Complete response of nodal disease.", "CR"),
        ("PD due to new osseous metastases; partial response of the liver metastases.", "PR"),
        ("Progressive disease due to new bone lesions.", None),
        ("New sclerotic lesions in T7 and T9.", None),
    ],
)
def test_extraosseous_response_only_when_stated(
    reader: ReportReader, text: str, response: str | None
) -> None:
    assert reader.read(text).extraosseous_response == response


def test_extraosseous_lesions_and_marrow(reader: ReportReader) -> None:
    f = reader.read("New hepatic metastases. Diffuse marrow infiltration. No new bone lesions.")
    assert f.new_extraosseous_lesion and f.baseline_marrow_involvement
    assert f.new_bone_lesions == 0
    assert not reader.read("No new pulmonary nodules.").new_extraosseous_lesion


def test_evidence_points_into_the_text(reader: ReportReader) -> None:
    text = "FINDINGS: Two new sclerotic lesions in T7 and T9. No new lytic lesion."
    f = reader.read(text)
    assert f.evidence
    for e in f.evidence:
        assert text[e.start : e.end] == e.text
        assert e.text in e.sentence
    counted = [e for e in f.evidence if e.field == "new_bone_lesions" and e.value]
    assert counted[0].section == "findings"
    assert any(e.negated for e in f.evidence)


def test_read_many_streams_in_order(reader: ReportReader) -> None:
    texts = itertools.cycle(["New lytic lesion.", "No new lesions.", "Three new sclerotic foci."])
    first = list(itertools.islice(reader.read_many(texts, batch_size=4), 6))  # endless input
    assert [f.new_bone_lesions for f in first] == [1, 0, 3, 1, 0, 3]
    assert all(isinstance(f, ReportFindings) for f in first)
    with_modality = list(reader.read_many(["New focus of uptake."], ["bone_scan"]))
    assert with_modality[0].new_lesion_morphology == "unknown"


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": ["P2", "P1", "P1"],
            "assessment_date": ["2024-05-01", "2024-03-01", "2024-01-01"],
            "modality": ["CT", "bone_scan", ""],
            "text": [
                "Two new sclerotic lesions. PR liver.",
                "Possible new focus of uptake in the left 6th rib.",
                "No new lesions.",
            ],
            "site": ["a", "b", "c"],
        }
    )


def test_read_reports_rows_columns_and_order(reader: ReportReader) -> None:
    out = read_reports(_table(), reader=reader, chunk_size=2)
    assert list(out["patient_id"]) == ["P2", "P1", "P1"]  # input order, not sorted
    assert list(out.columns[:3]) == ["patient_id", "assessment_date", "modality"]
    for name in (*IMAGING_FINDINGS, "findings_uncertain", "evidence", "site", "text"):
        assert name in out.columns
    assert list(out["site"]) == ["a", "b", "c"]
    assert list(out["modality"]) == ["ct", "bone_scan", None]
    assert pd.api.types.is_datetime64_any_dtype(out["assessment_date"])
    assert out["new_bone_lesions"].dtype.kind == "i"
    assert list(out["new_bone_lesions"]) == [2, 1, 0]
    assert list(out["new_lesion_morphology"]) == ["blastic", "unknown", "none"]
    assert out["extraosseous_response"].iloc[0] == "PR"
    assert pd.isna(out["extraosseous_response"].iloc[1])
    assert list(out["findings_uncertain"]) == [False, True, False]
    assert json.loads(out["evidence"].iloc[0])[0]["field"] == "new_bone_lesions"


def test_read_reports_chunks_agree_with_one_by_one(reader: ReportReader) -> None:
    table = pd.concat([_table()] * 3, ignore_index=True)
    chunked = read_reports(table, reader=reader, chunk_size=2)
    pairs = zip(table["text"], table["modality"], strict=True)
    single = [reader.read(t, m or None) for t, m in pairs]
    assert list(chunked["evidence"]) == [f.to_row()["evidence"] for f in single]


@pytest.mark.parametrize(
    ("change", "column", "rule"),
    [
        (lambda t: t.drop(columns="text"), "text", "missing_column"),
        (lambda t: t.drop(columns="patient_id"), "patient_id", "missing_column"),
        (lambda t: t.drop(columns="assessment_date"), "assessment_date", "missing_column"),
        (lambda t: t.assign(text=["", "x", "y"]), "text", "empty_text"),
        (lambda t: t.assign(text=["  ", "x", None]), "text", "empty_text"),
        (lambda t: t.assign(text=[1.5, "x", "y"]), "text", "not_text"),
        (
            lambda t: t.assign(assessment_date=["03/01/2024", "2024-03-01", "x"]),
            "assessment_date",
            "unparseable_date",
        ),
        (lambda t: t.assign(modality=["ct", "ultrasound", ""]), "modality", "unknown_category"),
    ],
)
def test_read_reports_refuses_bad_tables(reader: ReportReader, change, column, rule) -> None:
    with pytest.raises(ContractError) as caught:
        read_reports(change(_table()), reader=reader)
    found = {(v.column, v.rule) for v in caught.value.violations}
    assert (column, rule) in found
    violation = next(v for v in caught.value.violations if v.rule == rule)
    if rule != "missing_column":
        assert violation.count >= 1 and violation.rows


def test_reader_pickles_as_a_new_reader(reader: ReportReader) -> None:
    copy = pickle.loads(pickle.dumps(reader))
    assert copy is not reader
    text = "Two new sclerotic lesions in T7 and T9. Possible new focus in L2."
    assert copy.read(text) == reader.read(text)


def test_unassessable_is_not_stated(reader: ReportReader) -> None:
    assert reader.read("Limited study. New lesions cannot be assessed.").new_bone_lesions == 0


@pytest.mark.parametrize(
    ("text", "response"),
    [
        # a response qualified as outside bone is the extraosseous response (issue 14)
        ("Stable disease outside the skeleton (RECIST SD).", "SD"),
        ("Partial response outside bone. No new osseous lesions.", "PR"),
        ("Complete response of the disease outside of the bones.", "CR"),
        (
            "Overall progressive disease because of the new bone metastases; "
            "partial response outside of the bones.",
            "PR",
        ),
        # bare progression statements are PD
        ("IMPRESSION: Progression of disease.", "PD"),
        ("1. Disease progression. 2. New hepatic metastases.", "PD"),
        ("Progression of the disease.", "PD"),
        # progression of bone only is not extraosseous PD
        ("Progression of osseous metastases with two new lytic lesions in L3 and L4.", None),
        ("Bone progression, with new foci of uptake in the sternum.", None),
        ("Disease progression in the skeleton: new sclerotic lesion in T5.", None),
        ("Progression of the known osseous disease in the lumbar spine.", None),
        ("Progressive disease on the basis of three new blastic lesions in the pelvis.", None),
        ("Overall: progressive disease due to the new bone lesions. Extraosseous: SD.", "SD"),
        # NE only as "response NE" or "(NE)" (the simulator's phrasings), not a bare "NE"
        ("Extraosseous response NE.", "NE"),
        ("Response of the extraosseous disease cannot be assessed (NE).", "NE"),
        ("Lesion in the NE quadrant of the liver.", None),
    ],
)
def test_response_outside_bone_and_bare_progression(
    reader: ReportReader, text: str, response: str | None
) -> None:
    assert reader.read(text).extraosseous_response == response


@pytest.mark.parametrize(
    ("text", "new"),
    [
        # the simulator writes nodal stations; the reader missed "subcarinal" until the
        # records round trip of issue 15 showed it
        ("New enlarged subcarinal lymph node (24 mm short axis), likely metastatic.", True),
        ("New right paratracheal lymph node, suspicious for metastasis.", True),
        ("No new subcarinal or paratracheal lymph nodes.", False),
    ],
)
def test_new_nodes_at_named_nodal_stations(reader: ReportReader, text: str, new: bool) -> None:
    assert reader.read(text).new_extraosseous_lesion is new
