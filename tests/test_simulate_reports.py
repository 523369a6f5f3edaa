"""The simulator's radiology reports (issue 14, item 4) and the round-trip agreement.

``simulate_reports`` writes one report per imaging row from its own generator and records
what each text states under the reading conventions; ``round_trip_agreement`` compares
findings read back with the table and counts the differences a documented convention loss
explains. One 60-patient cohort (module fixture) serves every test.
"""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
from typer.testing import CliRunner

from flare_ml.cli import app
from flare_ml.data import contract as c
from flare_ml.reports.findings import IMAGING_FINDINGS, MODALITIES, MODALITY, TEXT
from flare_ml.simulate import simulate_cohort
from flare_ml.simulate.reports import (
    REPORT_COLUMNS,
    reports_path,
    round_trip_agreement,
    simulate_reports,
)

SEED = 3


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(60, seed=SEED)


@pytest.fixture(scope="module")
def simulated(cohort):
    return simulate_reports(cohort.timepoints, seed=SEED)


def imaging(timepoints: pd.DataFrame) -> pd.DataFrame:
    return timepoints[timepoints[c.ROW_TYPE] == "imaging"].reset_index(drop=True)


def digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy()).hexdigest()


# --- the report table ----------------------------------------------------------------------
def test_one_report_per_imaging_row_in_the_report_columns(cohort, simulated) -> None:
    reports, img = simulated.reports, imaging(cohort.timepoints)
    assert (
        tuple(reports.columns)
        == REPORT_COLUMNS
        == (c.PATIENT_ID, c.ASSESSMENT_DATE, MODALITY, TEXT)
    )
    assert len(reports) == len(img)
    keys = reports[[c.PATIENT_ID, c.ASSESSMENT_DATE]]
    pd.testing.assert_frame_equal(
        keys.reset_index(drop=True),
        img[[c.PATIENT_ID, c.ASSESSMENT_DATE]]
        .astype({c.PATIENT_ID: object})
        .reset_index(drop=True),
        check_dtype=False,
    )
    assert set(reports[MODALITY]) <= set(MODALITIES)
    assert reports[TEXT].str.len().min() > 20


def test_reports_leave_the_cohort_unchanged_and_repeat_with_the_seed(cohort, simulated) -> None:
    before = digest(cohort.timepoints)
    again = simulate_cohort(60, seed=SEED)
    assert digest(again.timepoints) == before  # the cohort draws nothing for the reports
    simulate_reports(again.timepoints, seed=SEED)
    assert digest(again.timepoints) == before  # nor does writing them change the table
    repeat = simulate_reports(cohort.timepoints, seed=SEED).reports
    pd.testing.assert_frame_equal(repeat, simulated.reports)
    other = simulate_reports(cohort.timepoints, seed=SEED + 1).reports
    assert (other[TEXT] != simulated.reports[TEXT]).mean() > 0.5


def test_bone_scan_share_is_a_parameter_and_bone_scans_state_no_morphology(cohort) -> None:
    img = imaging(cohort.timepoints)
    follow_up = (img[c.EXTRAOSSEOUS_RESPONSE] != "baseline").to_numpy()
    none = simulate_reports(cohort.timepoints, seed=SEED, bone_scan_share=0.0)
    assert not (none.reports[MODALITY] == "bone_scan").any()
    every = simulate_reports(cohort.timepoints, seed=SEED, bone_scan_share=1.0)
    scan = (every.reports[MODALITY] == "bone_scan").to_numpy()
    assert (scan == follow_up).all()  # baselines stay CT or PET-CT
    share = simulate_reports(cohort.timepoints, seed=SEED, bone_scan_share=0.3)
    observed = (share.reports[MODALITY] == "bone_scan").to_numpy()[follow_up].mean()
    assert 0.2 < observed < 0.4
    stated = every.stated[scan]
    lesions = stated[c.NEW_BONE_LESIONS] > 0
    assert lesions.any()
    assert (stated.loc[lesions, c.NEW_LESION_MORPHOLOGY] == "unknown").all()
    texts = every.reports.loc[scan, TEXT].str.lower()
    for word in ("sclerotic", "blastic", "lytic"):
        assert not texts.str.contains(word).any(), word
    with pytest.raises(ValueError, match="bone_scan_share"):
        simulate_reports(cohort.timepoints, bone_scan_share=1.5)


def test_texts_state_the_findings_in_varied_phrasing(simulated) -> None:
    text = simulated.reports[TEXT]
    lower = text.str.lower()
    for pattern in (
        r"\bno new\b",  # negations
        r"\b(?:possible|probable|equivocal|indeterminate) new\b",  # hedges
        r"\b(?:two|three|four|five|six)\b",  # count words
        r"\b(?:several|multiple|a few)\b",
        r"\w, \w[\w ]* and \w",  # site lists
        "findings:",
        "impression:",
        r"1\. .*2\. ",  # numbered, telegraphic impressions
    ):
        assert lower.str.contains(pattern).any(), pattern
    baseline = simulated.stated[c.EXTRAOSSEOUS_RESPONSE] == "baseline"
    assert lower[baseline].str.contains("baseline").all()
    assert (simulated.stated.loc[baseline, c.NEW_BONE_LESIONS] == 0).all()


def test_stated_values_follow_the_table_except_documented_losses(cohort, simulated) -> None:
    img, stated = imaging(cohort.timepoints), simulated.stated
    reports = simulated.reports
    scan = (reports[MODALITY] == "bone_scan").to_numpy()
    truth_n = img[c.NEW_BONE_LESIONS].to_numpy(dtype=float)
    stated_n = stated[c.NEW_BONE_LESIONS].to_numpy(dtype=float)
    differ = truth_n != stated_n
    # a count word: "several" (= 2) for 3 or more, "numerous" (= 10) for 10 or more
    assert (((stated_n == 2) & (truth_n >= 3)) | ((stated_n == 10) & (truth_n >= 10)))[differ].all()
    morph_differs = (
        stated[c.NEW_LESION_MORPHOLOGY].to_numpy()
        != img[c.NEW_LESION_MORPHOLOGY].astype(str).to_numpy()
    )
    assert scan[morph_differs].all()
    ct = ~scan
    response = img[c.EXTRAOSSEOUS_RESPONSE].astype(str).to_numpy()
    assert (stated[c.EXTRAOSSEOUS_RESPONSE].to_numpy()[ct] == response[ct]).all()
    for col in (c.PROGRESSIVE_LYSIS, c.KNOWN_LESION_SCLEROSIS, c.NEW_EXTRAOSSEOUS_LESION):
        known = img[col].notna().to_numpy() & ct
        assert (
            stated[col].to_numpy()[known] == img[col].to_numpy(dtype=bool, na_value=False)[known]
        ).all()


# --- the round trip ------------------------------------------------------------------------
def hand_built() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A table of four scans and findings with one loss of each kind and one real error."""
    key = {
        c.PATIENT_ID: ["P1", "P1", "P1", "P2"],
        c.ASSESSMENT_DATE: pd.to_datetime(["2024-01-01", "2024-03-01", "2024-05-01", "2024-02-01"]),
    }
    truth = pd.DataFrame(
        {
            **key,
            c.ROW_TYPE: "imaging",
            c.EXTRAOSSEOUS_RESPONSE: ["baseline", "PR", "SD", "PD"],
            c.NEW_EXTRAOSSEOUS_LESION: [False, False, None, True],
            c.NEW_BONE_LESIONS: [0, 12, 3, 2],
            c.NEW_LESION_MORPHOLOGY: ["none", "blastic", "lytic", "blastic"],
            c.PROGRESSIVE_LYSIS: [False, False, True, False],
            c.KNOWN_LESION_SCLEROSIS: [False, True, False, False],
            c.BASELINE_MARROW_INVOLVEMENT: [True, True, True, False],
        }
    )
    found = pd.DataFrame(
        {
            **key,
            MODALITY: ["ct", "ct", "bone_scan", "ct"],
            c.EXTRAOSSEOUS_RESPONSE: ["baseline", "PR", None, "PD"],
            c.NEW_EXTRAOSSEOUS_LESION: [False, False, False, True],
            c.NEW_BONE_LESIONS: [0, 10, 3, 1],  # numerous = 10; P2 a reader error
            c.NEW_LESION_MORPHOLOGY: ["none", "blastic", "unknown", "lytic"],  # P2 an error
            c.PROGRESSIVE_LYSIS: [False, False, False, False],
            c.KNOWN_LESION_SCLEROSIS: [False, True, False, False],
            c.BASELINE_MARROW_INVOLVEMENT: [True, False, False, False],
        }
    )
    return truth, found


def test_round_trip_agreement_on_hand_built_frames() -> None:
    truth, found = hand_built()
    # a lab row is never compared
    lab = truth.iloc[[0]].assign(
        **{c.ROW_TYPE: "lab", c.ASSESSMENT_DATE: pd.Timestamp("2024-01-15")}
    )
    table = round_trip_agreement(pd.concat([truth, lab], ignore_index=True), found)
    assert list(table.index) == list(IMAGING_FINDINGS)
    assert (table["rows"] == 4).all()
    row = table.loc[c.NEW_BONE_LESIONS]
    assert (row["agreement"], row["differences"], row["explained"], row["unexplained"]) == (
        0.5,
        2,
        1,
        1,
    )
    assert row["rows_without_loss"] == 3 and row["agreement_without_loss"] == pytest.approx(2 / 3)
    row = table.loc[c.NEW_LESION_MORPHOLOGY]  # bone scan -> unknown explained; P2 not
    assert (row["differences"], row["explained"], row["unexplained"]) == (2, 1, 1)
    row = table.loc[c.EXTRAOSSEOUS_RESPONSE]  # a bone scan states no response
    assert (row["agreement"], row["explained"], row["agreement_without_loss"]) == (0.75, 1, 1.0)
    row = table.loc[c.NEW_EXTRAOSSEOUS_LESION]  # empty in the table, read as False
    assert (row["differences"], row["explained"], row["rows_without_loss"]) == (1, 1, 3)
    row = table.loc[c.PROGRESSIVE_LYSIS]  # a bone scan cannot see lysis
    assert (row["differences"], row["explained"], row["unexplained"]) == (1, 1, 0)
    row = table.loc[c.BASELINE_MARROW_INVOLVEMENT]  # stated on the baseline report only
    assert (row["differences"], row["explained"], row["agreement_without_loss"]) == (2, 2, 1.0)
    assert table.loc[c.KNOWN_LESION_SCLEROSIS, "agreement"] == 1.0


def test_round_trip_agreement_uses_the_writers_record_when_given() -> None:
    truth, found = hand_built()
    stated = found.copy()
    stated.loc[3, c.NEW_BONE_LESIONS] = 2  # the text said two: the reader's 1 is an error
    stated.loc[3, c.NEW_LESION_MORPHOLOGY] = "blastic"
    stated.loc[1, c.NEW_BONE_LESIONS] = 12  # the text said 12: reading 10 is an error
    table = round_trip_agreement(truth, found, stated=stated)
    row = table.loc[c.NEW_BONE_LESIONS]
    assert (row["explained"], row["unexplained"]) == (0, 2)
    assert row["agreement_without_loss"] == 0.5


def test_perfect_findings_agree_everywhere(cohort, simulated) -> None:
    table = round_trip_agreement(cohort.timepoints, simulated.stated, stated=simulated.stated)
    assert (table["unexplained"] == 0).all()
    assert (table["agreement_without_loss"] == 1.0).all()
    assert (table["explained"] == table["differences"]).all()
    # the losses exist: bone scans and empty flags make some
    assert table.loc[c.NEW_LESION_MORPHOLOGY, "explained"] > 0


# --- the command ---------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_cli_simulate_reports_writes_the_table_beside_the_cohort(tmp_path, ext) -> None:
    out = tmp_path / f"cohort.{ext}"
    result = CliRunner().invoke(
        app,
        ["simulate", "--out", str(out), "--patients", "8", "--seed", "4", "--reports"],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    path = reports_path(out)
    assert path.name == f"cohort.reports.{ext}" and path.exists()
    assert str(path) in result.output.replace("\n", "")
    read = pd.read_csv(path) if ext == "csv" else pd.read_parquet(path)
    assert list(read.columns) == list(REPORT_COLUMNS)
    cohort = pd.read_csv(out) if ext == "csv" else pd.read_parquet(out)
    assert len(read) == int((cohort[c.ROW_TYPE] == "imaging").sum())
    # without --reports: no report table
    plain = tmp_path / f"plain.{ext}"
    result = CliRunner().invoke(app, ["simulate", "--out", str(plain), "--patients", "8"])
    assert result.exit_code == 0 and not reports_path(plain).exists()


# --- simulate -> reports -> read_reports -> agreement -----------------------------------------
@pytest.fixture(scope="module")
def round_trip(cohort, simulated) -> pd.DataFrame:
    from flare_ml.reports import read_reports

    findings = read_reports(simulated.reports)
    assert len(findings) == len(simulated.reports)
    table = round_trip_agreement(cohort.timepoints, findings, stated=simulated.stated)
    shown = table.to_string(float_format=lambda x: f"{x:.3f}")
    print(f"\nround trip, 60 simulated patients (seed {SEED}):\n{shown}")
    return table


@pytest.mark.parametrize("field", IMAGING_FINDINGS)
def test_round_trip(round_trip, simulated, field) -> None:
    """The reader reproduces the simulated imaging columns except where a convention loses.

    simulate -> reports -> ``read_reports`` -> agreement: on the rows whose report states
    the table's value (no documented loss), every field's agreement is at least 0.95; the
    differences on the other rows are the losses the writer recorded (bone scan ->
    ``unknown``, "several" = 2, "numerous" = 10, a flag the table leaves empty, marrow
    involvement stated at baseline only).
    """
    row = round_trip.loc[field]
    assert row["rows"] == len(simulated.reports)
    assert row["rows_without_loss"] > 0.5 * row["rows"]
    assert row["agreement_without_loss"] >= 0.95, round_trip.to_string()
