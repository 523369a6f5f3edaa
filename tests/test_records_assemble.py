"""The records core: mapping tables, lines of therapy, scans, labs and the drop report.

Constructed events test each rule of :func:`flare_ml.records.assemble.assemble_timepoints`;
a simulated cohort's events (no file format in between) test the round trip, which the OMOP
and FHIR adapters' tests repeat through their formats.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flare_ml.data import contract as c
from flare_ml.errors import ContractError
from flare_ml.records.assemble import AssemblyConfig, assemble_timepoints
from flare_ml.records.events import ClinicalEvents
from flare_ml.records.mappings import (
    cancer_type_of,
    cancer_types_table,
    ingredient_role,
    representative_condition,
    representative_drugs,
    therapy_classes_table,
)
from flare_ml.reports import ReportReader
from flare_ml.simulate import simulate_cohort
from flare_ml.simulate.records import cohort_events, record_round_trip

CT_BASELINE = "Staging CT. Sclerotic bone metastases in the spine. No marrow infiltration."
CT_FLARE = "Two new sclerotic lesions in T7 and T9. Partial response of the lung primary."
CT_STABLE = "No new bone lesions. Stable disease."


@pytest.fixture(scope="module")
def reader() -> ReportReader:
    return ReportReader()


def _events(drugs, reports, *, conditions=None, labs=None, status=None, persons=("P1",)):
    conditions = conditions or [("P1", "2023-12-01", "ICD10CM", "C34.90")]
    return ClinicalEvents.from_frames(
        persons=pd.DataFrame({"patient_id": list(persons)}),
        conditions=pd.DataFrame(
            conditions, columns=["patient_id", "condition_date", "vocabulary", "code"]
        ),
        drugs=pd.DataFrame(drugs, columns=["patient_id", "start_date", "ingredient"]),
        reports=pd.DataFrame(
            reports, columns=["patient_id", "assessment_date", "modality", "text"]
        ),
        labs=None
        if labs is None
        else pd.DataFrame(labs, columns=["patient_id", "sample_date", "test", "value", "unit"]),
        disease_status=None
        if status is None
        else pd.DataFrame(status, columns=["patient_id", "status_date", "status"]),
        source="test records",
    )


# --- mapping tables --------------------------------------------------------------------


def test_every_mapping_row_has_a_source_and_a_known_value():
    therapy = therapy_classes_table()
    cancer = cancer_types_table()
    assert (therapy["source"].str.len() > 10).all() and (cancer["source"].str.len() > 10).all()
    assert therapy["ingredient"].is_unique
    assert set(therapy["role"]) == {"anchor", "partner", "background"}
    # every contract class but 'other' has an ingredient, so the writers can write it
    for therapy_class in set(c.THERAPY_CLASSES) - {"other"}:
        assert representative_drugs(therapy_class), therapy_class
    for cancer_type in c.CANCER_TYPES:
        for vocabulary, code in representative_condition(cancer_type).items():
            assert cancer_type_of(vocabulary, code) == cancer_type


@pytest.mark.parametrize(
    ("vocabulary", "code", "expected"),
    [
        ("ICD10CM", "C61", "prostate"),
        ("icd10cm", "c50.911", "breast"),
        ("ICD10CM", "C79.51", "secondary"),  # bone metastasis: not a primary
        ("ICD10CM", "C25.0", "other"),
        ("ICD10CM", "E11.9", None),  # diabetes
        ("SNOMED", "2548370090", None),  # SNOMED ids are matched whole, never as prefixes
        ("LOINC", "C34", None),
    ],
)
def test_cancer_type_of(vocabulary, code, expected):
    assert cancer_type_of(vocabulary, code) == expected


def test_ingredients_match_by_name_before_code():
    assert ingredient_role("PALBOCICLIB") == ("cdk46_endocrine", "anchor")
    assert ingredient_role("unlisted brand name", "1601374") == ("cdk46_endocrine", "anchor")
    assert ingredient_role("unlisted brand name", "999999999") is None


# --- lines of therapy ------------------------------------------------------------------


def test_lines_follow_class_changes_not_refills(reader):
    drugs = [
        ("P1", "2024-01-01", "palbociclib"),
        ("P1", "2024-01-03", "Letrozole"),
        ("P1", "2024-02-01", "letrozole"),  # a refill: same line
        ("P1", "2024-02-01", "denosumab"),  # background: never a line
        ("P1", "2024-06-01", "fulvestrant"),  # a new ingredient of another class: line 2
    ]
    conditions = [("P1", "2023-12-01", "ICD10CM", "C50.9")]
    reports = [
        ("P1", "2023-12-20", "ct", CT_BASELINE),
        ("P1", "2024-03-01", "ct", CT_STABLE),
        ("P1", "2024-05-20", "ct", CT_FLARE),  # line 1's last scan, line 2's baseline
        ("P1", "2024-08-01", "ct", CT_STABLE),
    ]
    result = assemble_timepoints(_events(drugs, reports, conditions=conditions), reader=reader)
    table = result.timepoints
    lines = table.drop_duplicates("patient_id").set_index("patient_id")
    assert lines["therapy_class"].to_dict() == {"P1": "cdk46_endocrine", "P1-L2": "endocrine"}
    assert lines["treatment_start_date"].astype(str).to_dict() == {
        "P1": "2024-01-01",
        "P1-L2": "2024-06-01",
    }
    line1 = table[table["patient_id"] == "P1"]
    assert line1["new_bone_lesions"].tolist() == [0, 0, 2]
    line2 = table[table["patient_id"] == "P1-L2"]
    # the progression scan is line 2's baseline, dated at its start, nothing new
    assert line2["assessment_date"].astype(str).tolist() == ["2024-06-01", "2024-08-01"]
    assert line2["extraosseous_response"].tolist() == ["baseline", "SD"]
    assert line2["new_bone_lesions"].tolist() == [0, 0]
    assert result.counts["lines of therapy"] == 2


def test_a_new_drug_of_the_same_class_keeps_the_line(reader):
    drugs = [("P1", "2024-01-01", "erlotinib"), ("P1", "2024-05-01", "osimertinib")]
    reports = [("P1", "2024-01-01", "ct", CT_BASELINE), ("P1", "2024-07-01", "ct", CT_STABLE)]
    table = assemble_timepoints(_events(drugs, reports), reader=reader).timepoints
    assert set(table["patient_id"]) == {"P1"}


# --- what is dropped, and said ---------------------------------------------------------


def test_drops_are_reported_with_reasons_and_ids(reader):
    persons = ("P1", "P2", "P3", "P4")
    conditions = [
        ("P1", "2023-12-01", "ICD10CM", "C34.90"),
        ("P2", "2023-12-01", "ICD10CM", "C79.51"),  # only a metastasis code
        ("P3", "2023-12-01", "ICD10CM", "C50.9"),
        ("P3", "2023-12-01", "ICD10CM", "C61"),  # two primaries
        ("P4", "2023-12-01", "ICD10CM", "C61"),
    ]
    drugs = [
        ("P1", "2024-01-01", "osimertinib"),
        ("P1", "2024-01-01", "paracetamol"),
        ("P2", "2024-01-01", "osimertinib"),
        ("P3", "2024-01-01", "enzalutamide"),
        ("P4", "2024-01-01", "leuprolide"),  # background only: no line
    ]
    reports = [
        ("P1", "2024-01-01", "ct", CT_BASELINE),
        ("P1", "2024-03-01", "ct", "   "),
        ("P1", None, "ct", CT_STABLE),
        ("P1", "2023-06-01", "ct", CT_STABLE),  # long before the line
    ]
    labs = [
        ("P1", "2024-02-01", "ALP", 120, "U/L"),
        ("P1", "2024-02-15", "ALP", 2.0, "mmol/L"),
        ("P1", "2024-02-20", "sodium", 140, "mmol/L"),  # another test: not ALP, ignored
    ]
    events = _events(drugs, reports, conditions=conditions, labs=labs, persons=persons)
    result = assemble_timepoints(events, reader=reader)
    said = "\n".join(result.summary())
    assert "1 patients without a mapped cancer diagnosis (e.g. P2)" in said
    assert "1 patients with two different primary cancers (ambiguous) (e.g. P3)" in said
    assert "1 patients without a mapped anticancer drug (e.g. P4)" in said
    assert "ingredients outside therapy_classes.csv" in said and "paracetamol" in said
    assert "1 reports without a date" in said and "1 reports without text" in said
    assert "1 reports outside every line of therapy" in said
    assert "1 ALP results in units the lab adapter does not know" in said
    table = result.timepoints
    assert set(table["patient_id"]) == {"P1"}
    assert table.loc[table["row_type"] == "lab", "alp_u_l"].tolist() == [120.0]


def test_nobody_left_is_an_error_naming_why(reader):
    events = _events([("P1", "2024-01-01", "paracetamol")], [("P1", "2024-01-01", "ct", "x")])
    with pytest.raises(ContractError, match="patients without a mapped anticancer drug"):
        assemble_timepoints(events, reader=reader)


def test_disease_status_fills_only_an_unstated_response(reader):
    drugs = [("P1", "2024-01-01", "osimertinib")]
    reports = [
        ("P1", "2024-01-01", "ct", CT_BASELINE),
        ("P1", "2024-03-01", "ct", "No new bone lesions."),  # states no response
        ("P1", "2024-05-01", "ct", "No new bone lesions."),
        ("P1", "2024-07-01", "ct", CT_STABLE),  # states SD
    ]
    status = [
        ("P1", "2024-03-03", "worsened"),
        ("P1", "2024-07-01", "worsened"),  # the report's own statement wins
    ]
    result = assemble_timepoints(_events(drugs, reports, status=status), reader=reader)
    responses = result.timepoints["extraosseous_response"].tolist()
    assert responses == ["baseline", "PD", "NE", "SD"]
    assert result.counts["responses taken from disease status (no report stated one)"] == 1
    assert result.counts["responses set to NE (nothing stated one)"] == 1


def test_a_blood_draw_next_to_a_scan_is_not_a_lab_visit(reader):
    drugs = [("P1", "2024-01-01", "osimertinib")]
    reports = [("P1", "2024-01-01", "ct", CT_BASELINE), ("P1", "2024-03-01", "ct", CT_STABLE)]
    labs = [
        ("P1", "2024-02-27", "ALP", 150, "U/L"),  # the scan's blood draw
        ("P1", "2024-02-01", "alkaline phosphatase", 2.0, "ukat/L"),  # a lab visit
    ]
    table = assemble_timepoints(_events(drugs, reports, labs=labs), reader=reader).timepoints
    assert table["row_type"].tolist() == ["imaging", "lab", "imaging"]
    assert table["alp_u_l"].tolist()[1:] == [120.0, 150.0]
    wider = AssemblyConfig(scan_draw_days=1)
    table = assemble_timepoints(
        _events(drugs, reports, labs=labs), reader=reader, config=wider
    ).timepoints
    assert table["row_type"].tolist() == ["imaging", "lab", "lab", "imaging"]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.randoms(use_true_random=False))
def test_input_order_does_not_change_the_table(reader, rnd):
    drugs = [
        ("P1", "2024-01-01", "osimertinib"),
        ("P1", "2024-07-01", "docetaxel"),
        ("P2", "2024-02-01", "enzalutamide"),
    ]
    conditions = [
        ("P1", "2023-12-01", "ICD10CM", "C34.90"),
        ("P2", "2024-01-01", "SNOMED", "399068003"),
    ]
    reports = [
        ("P1", "2024-01-01", "ct", CT_BASELINE),
        ("P1", "2024-04-01", "ct", CT_FLARE),
        ("P1", "2024-06-20", "bone_scan", "New focus of uptake in the left 6th rib."),
        ("P1", "2024-09-01", "ct", CT_STABLE),
        ("P2", "2024-01-20", "ct", CT_BASELINE),
        ("P2", "2024-05-01", "ct", CT_FLARE),
    ]
    labs = [("P1", "2024-02-10", "ALP", 90, "U/L"), ("P2", "2024-03-01", "ALP", 300, "U/L")]
    expected = assemble_timepoints(
        _events(drugs, reports, conditions=conditions, labs=labs, persons=("P1", "P2")),
        reader=reader,
    ).timepoints
    for rows in (drugs, conditions, reports, labs):
        rnd.shuffle(rows)
    got = assemble_timepoints(
        _events(drugs, reports, conditions=conditions, labs=labs, persons=("P2", "P1")),
        reader=reader,
    ).timepoints
    pd.testing.assert_frame_equal(got, expected)


# --- the round trip through events (the formats' tests repeat it through files) --------


@pytest.fixture(scope="module")
def simulated():
    cohort = simulate_cohort(40, seed=5)
    return cohort, cohort_events(cohort)


def test_simulated_events_round_trip_without_unexplained_loss(simulated, reader):
    cohort, events = simulated
    result = assemble_timepoints(events, reader=reader)
    agreement = record_round_trip(cohort, result.timepoints)
    assert agreement["unexplained"].eq(0).all(), agreement
    exact = ["treatment_start_date", "cancer_type", "therapy_class", "alp_u_l", "new_bone_lesions"]
    assert agreement.loc[exact, "agreement"].eq(1.0).all(), agreement
    # the losses are the documented ones: sld_mm and deterioration are not in records
    assert agreement.loc["sld_mm", "explained"] > 0
    assert not result.timepoints["sld_mm"].notna().any()


def test_the_round_trip_sees_a_shifted_scan(simulated, reader):
    cohort, events = simulated
    shifted = events.reports.copy()
    row = shifted.index[5]
    shifted.loc[row, "assessment_date"] += pd.Timedelta(days=3)
    broken = ClinicalEvents(
        events.persons,
        events.conditions,
        events.drugs,
        events.labs,
        shifted,
        events.disease_status,
        source="shifted",
    )
    agreement = record_round_trip(cohort, assemble_timepoints(broken, reader=reader).timepoints)
    assert agreement.loc["imaging rows", "unexplained"] == 1
