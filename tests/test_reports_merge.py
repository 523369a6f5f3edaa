"""Filling a timepoint table's imaging columns from report findings (flare_ml.reports.merge).

The findings frames here are built by hand from a simulated cohort's own imaging values
(a perfect reader), so the merge rules are tested apart from the reading.
"""

from __future__ import annotations

import pandas as pd
import pytest

from flare_ml.data import contract as c
from flare_ml.data import validate_timepoints
from flare_ml.errors import ContractError
from flare_ml.reports.findings import FINDINGS_UNCERTAIN, IMAGING_FINDINGS
from flare_ml.reports.merge import merge_findings
from flare_ml.simulate import simulate_cohort


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return simulate_cohort(8, seed=3).timepoints


def findings_of(table: pd.DataFrame) -> pd.DataFrame:
    """What a perfect reader returns for the imaging rows' reports."""
    imaging = table[table[c.ROW_TYPE] == "imaging"]
    out = pd.DataFrame(
        {
            c.PATIENT_ID: imaging[c.PATIENT_ID].astype(str).to_numpy(),
            c.ASSESSMENT_DATE: imaging[c.ASSESSMENT_DATE].dt.strftime("%Y-%m-%d").to_numpy(),
        }
    )
    for name in IMAGING_FINDINGS:
        values = imaging[name].astype(object).to_numpy()
        if name in c.BOOL_COLUMNS:
            values = [bool(v) if pd.notna(v) else False for v in values]
        elif name == c.NEW_BONE_LESIONS:
            values = [int(v) for v in values]
        else:
            values = [str(v) for v in values]
        out[name] = values
    out[FINDINGS_UNCERTAIN] = False
    out["text"] = "report text"
    return out


def blanked(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    imaging = out[c.ROW_TYPE] == "imaging"
    for name in IMAGING_FINDINGS:
        if name != c.BASELINE_MARROW_INVOLVEMENT:
            out[name] = out[name].astype(object).where(~imaging, None)
    return out.drop(columns=[c.BASELINE_MARROW_INVOLVEMENT])


def imaging_values(table: pd.DataFrame) -> pd.DataFrame:
    rows = table[table[c.ROW_TYPE] == "imaging"].sort_values([c.PATIENT_ID, c.ASSESSMENT_DATE])
    out = rows[[c.PATIENT_ID, c.ASSESSMENT_DATE, *IMAGING_FINDINGS]].astype(object)
    for name in c.BOOL_COLUMNS:
        if name in out:
            out[name] = out[name].map(lambda v: bool(v) if pd.notna(v) else False)
    out[c.NEW_BONE_LESIONS] = out[c.NEW_BONE_LESIONS].map(int)
    out[c.ASSESSMENT_DATE] = pd.to_datetime(out[c.ASSESSMENT_DATE])
    return out.reset_index(drop=True)


def test_blank_imaging_columns_are_filled_back(cohort):
    result = merge_findings(blanked(cohort), findings_of(cohort))
    n_imaging = int((cohort[c.ROW_TYPE] == "imaging").sum())
    assert result.reports == n_imaging
    assert result.rows_filled == n_imaging and result.rows_added == 0
    assert result.conflicts == [] and result.dropped == 0
    pd.testing.assert_frame_equal(imaging_values(result.table), imaging_values(cohort))
    # the lab rows keep their ALP and stay lab rows; the table is valid as written
    assert (result.table[c.ROW_TYPE] == "lab").sum() == (cohort[c.ROW_TYPE] == "lab").sum()
    validate_timepoints(result.table)
    assert any("text" in notice for notice in result.notices)  # the column not carried over


def test_report_without_a_row_becomes_an_imaging_row(cohort):
    imaging = cohort.index[cohort[c.ROW_TYPE] == "imaging"]
    removed = cohort.loc[imaging[[1, 4]]]
    table = blanked(cohort.drop(index=removed.index))
    result = merge_findings(table, findings_of(cohort))
    assert result.rows_added == 2
    pd.testing.assert_frame_equal(imaging_values(result.table), imaging_values(cohort))
    merged = result.table.set_index([c.PATIENT_ID, c.ASSESSMENT_DATE])
    for _, row in removed.iterrows():
        got = merged.loc[(row[c.PATIENT_ID], row[c.ASSESSMENT_DATE])]
        for name in (c.TREATMENT_START_DATE, c.CANCER_TYPE, c.THERAPY_CLASS):
            assert got[name] == row[name]
        assert got[c.ROW_TYPE] == "imaging"


def test_reports_of_unknown_patients_are_dropped_and_reported(cohort):
    findings = findings_of(cohort)
    stranger = findings.iloc[[0]].assign(patient_id="NOBODY-7")
    result = merge_findings(blanked(cohort), pd.concat([findings, stranger]))
    assert result.dropped == 1
    assert any("NOBODY-7" in notice and "dropped" in notice for notice in result.notices)
    assert "NOBODY-7" not in set(result.table[c.PATIENT_ID])


def _one_conflict(cohort):
    findings = findings_of(cohort)
    row = findings.index[findings[c.NEW_BONE_LESIONS] == 0][1]
    findings.loc[row, c.NEW_BONE_LESIONS] = 4
    findings.loc[row, c.NEW_LESION_MORPHOLOGY] = "lytic"
    return findings, findings.loc[row]


def test_a_conflict_names_the_row_and_the_columns(cohort):
    findings, changed = _one_conflict(cohort)
    with pytest.raises(ContractError) as error:
        merge_findings(cohort, findings)
    columns = {v.column for v in error.value.violations}
    assert columns == {c.NEW_BONE_LESIONS, c.NEW_LESION_MORPHOLOGY}
    key = (changed[c.PATIENT_ID], changed[c.ASSESSMENT_DATE])
    assert all(v.rows == (key,) and v.rule == "report_conflict" for v in error.value.violations)
    assert "--prefer reports" in str(error.value)


@pytest.mark.parametrize(
    ("prefer", "count", "morphology"), [("reports", 4, "lytic"), ("timepoints", 0, "none")]
)
def test_prefer_resolves_conflicts(cohort, prefer, count, morphology):
    findings, changed = _one_conflict(cohort)
    result = merge_findings(cohort, findings, prefer=prefer)
    assert len(result.conflicts) == 2
    row = result.table.set_index([c.PATIENT_ID, c.ASSESSMENT_DATE]).loc[
        (changed[c.PATIENT_ID], pd.Timestamp(changed[c.ASSESSMENT_DATE]))
    ]
    assert row[c.NEW_BONE_LESIONS] == count and row[c.NEW_LESION_MORPHOLOGY] == morphology
    assert any("disagreed" in notice for notice in result.notices)


def test_a_lab_row_with_a_report_becomes_an_imaging_row(cohort):
    lab = cohort[cohort[c.ROW_TYPE] == "lab"].iloc[0]
    extra = (
        findings_of(cohort)
        .iloc[[1]]
        .assign(
            patient_id=lab[c.PATIENT_ID],
            assessment_date=lab[c.ASSESSMENT_DATE].strftime("%Y-%m-%d"),
        )
    )
    result = merge_findings(cohort, pd.concat([findings_of(cohort), extra]))
    row = result.table.set_index([c.PATIENT_ID, c.ASSESSMENT_DATE]).loc[
        (lab[c.PATIENT_ID], lab[c.ASSESSMENT_DATE])
    ]
    assert row[c.ROW_TYPE] == "imaging" and row[c.ALP_U_L] == lab[c.ALP_U_L]
    assert any("lab row" in notice for notice in result.notices)


def test_missing_response_without_a_table_value_is_a_contract_error(cohort):
    findings = findings_of(cohort)
    findings.loc[2, c.EXTRAOSSEOUS_RESPONSE] = None
    with pytest.raises(ContractError) as error:
        merge_findings(blanked(cohort), findings)
    assert c.EXTRAOSSEOUS_RESPONSE in {v.column for v in error.value.violations}
    # the table's own value stands in when the report states none
    assert merge_findings(cohort, findings).conflicts == []


def test_unparseable_report_dates_name_the_rows(cohort):
    findings = findings_of(cohort)
    findings.loc[3, c.ASSESSMENT_DATE] = "03/04/2021"
    with pytest.raises(ContractError) as error:
        merge_findings(blanked(cohort), findings)
    (violation,) = error.value.violations
    assert violation.column == c.ASSESSMENT_DATE and violation.rule == "unparseable_date"
    assert violation.rows == ((findings.loc[3, c.PATIENT_ID], "03/04/2021"),)


def test_marrow_involvement_comes_from_the_earliest_report(cohort):
    findings = findings_of(cohort)
    marrow = cohort.groupby(c.PATIENT_ID)[c.BASELINE_MARROW_INVOLVEMENT].first()
    patient, other = marrow.index[marrow.eq(False).fillna(False)][:2]
    reports = findings.index[findings[c.PATIENT_ID] == patient]
    findings.loc[reports, c.BASELINE_MARROW_INVOLVEMENT] = False  # not restated later
    findings.loc[reports[0], c.BASELINE_MARROW_INVOLVEMENT] = True  # the staging scan
    follow_up = findings.index[findings[c.PATIENT_ID] == other][1]
    findings.loc[follow_up, c.BASELINE_MARROW_INVOLVEMENT] = True  # not the baseline
    result = merge_findings(blanked(cohort), findings)
    by_patient = result.table.groupby(c.PATIENT_ID)[c.BASELINE_MARROW_INVOLVEMENT].agg(set)
    assert by_patient[patient] == {True} and by_patient[other] == {False}
    # the table says False, the staging report says True: a conflict
    with pytest.raises(ContractError, match=c.BASELINE_MARROW_INVOLVEMENT):
        merge_findings(cohort, findings)
    resolved = merge_findings(cohort, findings, prefer="reports").table
    assert set(resolved.loc[resolved[c.PATIENT_ID] == patient, c.BASELINE_MARROW_INVOLVEMENT]) == {
        True
    }


def test_same_day_reports_with_different_responses_are_an_error(cohort):
    findings = findings_of(cohort)
    twin = findings.iloc[[2]].assign(extraosseous_response="PD")
    if findings.iloc[2][c.EXTRAOSSEOUS_RESPONSE] == "PD":
        twin = twin.assign(extraosseous_response="SD")
    with pytest.raises(ContractError, match="disagree"):
        merge_findings(blanked(cohort), pd.concat([findings, twin]))


def test_a_silent_bone_scan_gives_not_evaluable(cohort):
    findings = findings_of(cohort)
    findings["modality"] = "ct"
    scans = findings.index[[2, 5]]
    findings.loc[scans, "modality"] = "bone_scan"
    findings.loc[scans, c.EXTRAOSSEOUS_RESPONSE] = None
    result = merge_findings(blanked(cohort), findings)
    table = result.table.set_index([c.PATIENT_ID, c.ASSESSMENT_DATE])
    for i in scans:
        key = (findings.loc[i, c.PATIENT_ID], pd.Timestamp(findings.loc[i, c.ASSESSMENT_DATE]))
        assert table.loc[key, c.EXTRAOSSEOUS_RESPONSE] == "NE"
    assert any("bone-scan" in notice and "NE" in notice for notice in result.notices)
    # a silent CT is not: its row is named as breaking the contract
    findings.loc[scans, "modality"] = "ct"
    with pytest.raises(ContractError, match=c.EXTRAOSSEOUS_RESPONSE):
        merge_findings(blanked(cohort), findings)
    # the table's own response wins over NE
    assert merge_findings(cohort, findings.assign(modality="bone_scan")).conflicts == []


def test_a_reports_silence_is_no_conflict(cohort):
    import json

    findings = findings_of(cohort)
    findings["evidence"] = "[]"
    row = findings.index[findings[c.NEW_BONE_LESIONS] > 0][0]
    table = cohort.copy()
    key = (table[c.PATIENT_ID] == findings.loc[row, c.PATIENT_ID]) & (
        table[c.ASSESSMENT_DATE] == pd.Timestamp(findings.loc[row, c.ASSESSMENT_DATE])
    )
    table.loc[key, c.PROGRESSIVE_LYSIS] = True
    findings.loc[row, c.PROGRESSIVE_LYSIS] = False  # not mentioned: no evidence
    findings.loc[row, c.NEW_LESION_MORPHOLOGY] = "unknown"  # a bone scan cannot tell
    result = merge_findings(table, findings)
    assert result.conflicts == []
    kept = result.table.loc[key.to_numpy()]
    assert bool(kept[c.PROGRESSIVE_LYSIS].iloc[0]) is True
    assert kept[c.NEW_LESION_MORPHOLOGY].iloc[0] == table.loc[key, c.NEW_LESION_MORPHOLOGY].iloc[0]
    # stated absent ("no progressive lysis": negated evidence) does contradict the table
    negated = {"field": c.PROGRESSIVE_LYSIS, "value": False, "start": 0, "end": 5,
               "text": "lysis", "sentence": "", "negated": True}  # fmt: skip
    findings.loc[row, "evidence"] = json.dumps([negated])
    with pytest.raises(ContractError, match=c.PROGRESSIVE_LYSIS):
        merge_findings(table, findings)
