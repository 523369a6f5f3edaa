"""Tests of the lab adapter: ALP test names, unit conversion and the as-of join."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_valid_table
from flare_ml.data import (
    ContractError,
    attach_alp,
    extract_alp,
    is_canonical,
    read_lab_table,
    validate_timepoints,
    write_table,
)
from flare_ml.data import contract as c


def labs_frame(rows: list[tuple[str, str, str, object, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["patient_id", "sample_date", "test", "value", "unit"])


def one_patient() -> pd.DataFrame:
    """A validated one-patient table, assessments on days 0, 21, 56, 84+, 140."""
    return make_valid_table(1, seed=3, validated=True)


def day(table: pd.DataFrame, i: int, offset: int = 0) -> str:
    return (table[c.ASSESSMENT_DATE].iloc[i] + pd.Timedelta(days=offset)).strftime("%Y-%m-%d")


# --- extract_alp -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "test_name",
    ["alp", "ALP", " Alkaline Phosphatase ", "alkaline_phosphatase", "ALK_PHOS", "alk-phos"],
)
def test_alp_test_names(test_name: str) -> None:
    labs = labs_frame([("P1", "2024-01-01", test_name, 100, "U/L")])
    assert extract_alp(labs)[c.ALP_U_L].tolist() == [100.0]


@pytest.mark.parametrize(
    ("unit", "value", "expected"),
    [
        ("U/L", 100, 100.0),
        ("u/l", 100, 100.0),
        (" IU / L ", 100, 100.0),
        ("ukat/L", 2.0, 120.0),
        ("UKAT/L", 2.0, 120.0),
        ("\u00b5kat/L", 1.5, 90.0),  # micro sign
        ("\u03bckat/l", 1.5, 90.0),  # Greek mu
        ("µkat / L", "2.5", 150.0),
    ],
)
def test_alp_units_are_converted_to_u_per_l(unit: str, value: object, expected: float) -> None:
    labs = labs_frame([("P1", "2024-01-01", "alp", value, unit)])
    assert extract_alp(labs)[c.ALP_U_L].tolist() == pytest.approx([expected])


def test_other_tests_are_ignored_even_with_odd_units_and_values() -> None:
    labs = labs_frame(
        [
            ("P1", "2024-01-01", "crp", "positive", "mg/dL"),
            ("P1", "not a date", "psa", 3.0, "ng/mL"),
            ("P1", "2024-01-02", "alp", 80, "U/L"),
        ]
    )
    out = extract_alp(labs)
    assert out[c.ALP_U_L].tolist() == [80.0]
    assert list(out.columns) == [c.PATIENT_ID, "sample_date", c.ALP_U_L]
    assert str(out["sample_date"].dtype) == "datetime64[s]"


def test_unknown_unit_is_named_with_rows() -> None:
    labs = labs_frame(
        [
            ("P1", "2024-01-01", "alp", 1.2, "mmol/L"),
            ("P2", "2024-01-03", "ALP", 1.3, "mmol/L"),
            ("P3", "2024-01-04", "alp", 90, "U/L"),
            ("P4", "2024-01-05", "alp", 90, None),
        ]
    )
    with pytest.raises(ContractError) as info:
        extract_alp(labs, source="labs.csv")
    error = info.value
    violation = next(v for v in error.violations if v.rule == "unknown_unit")
    assert violation.column == "unit"
    assert violation.count == 3
    assert ("P1", "2024-01-01") in violation.rows and ("P4", "2024-01-05") in violation.rows
    text = str(error)
    assert "'mmol/L'" in text and "<missing>" in text and "labs.csv" in text
    assert "(patient_id, sample_date)" in text


def test_bad_alp_values_dates_and_ranges() -> None:
    labs = labs_frame(
        [
            ("P1", "2024-01-01", "alp", "12O", "U/L"),
            ("P2", "03/01/2024", "alp", 100, "U/L"),
            ("P3", "2024-01-04", "alp", 100, "ukat/L"),  # 6000 U/L
            ("", "2024-01-05", "alp", 100, "U/L"),
        ]
    )
    with pytest.raises(ContractError) as info:
        extract_alp(labs)
    found = {(v.column, v.rule) for v in info.value.violations}
    assert found == {
        ("value", "not_a_number"),
        ("sample_date", "unparseable_date"),
        ("value", "alp_out_of_range"),
        ("patient_id", "missing_value"),
    }
    assert "6000" in str(info.value)


def test_empty_values_are_dropped_and_same_day_samples_averaged() -> None:
    labs = labs_frame(
        [
            ("P1", "2024-01-01", "alp", 100, "U/L"),
            ("P1", "2024-01-01 14:30", "alp", 2.0, "ukat/L"),
            ("P1", "2024-01-02", "alp", None, "U/L"),
            ("P1", "2024-01-03", "alp", "", "furlongs"),  # no value: unit not needed
        ]
    )
    out = extract_alp(labs)
    assert out[c.ALP_U_L].tolist() == [110.0]


def test_missing_lab_columns() -> None:
    labs = labs_frame([("P1", "2024-01-01", "alp", 1, "U/L")]).drop(columns=["unit"])
    with pytest.raises(ContractError) as info:
        extract_alp(labs)
    assert info.value.violations[0].column == "unit"
    assert "missing_column" == info.value.violations[0].rule
    assert "unit" in str(info.value)


def test_read_lab_table(tmp_path: Path) -> None:
    path = tmp_path / "labs.csv"
    path.write_text(
        " Patient_ID ,Sample_Date,Test,Value,Unit,comment\n"
        "007,2024-01-01, ALP ,2.0,ukat/L,x\n"
        "007,2024-01-02,CRP,<5,mg/L,\n"
    )
    labs = read_lab_table(path)
    assert labs["patient_id"].tolist() == ["007", "007"]
    assert labs["test"].tolist() == ["ALP", "CRP"]
    assert "comment" in labs.columns
    assert extract_alp(labs)[c.ALP_U_L].tolist() == [120.0]

    path.write_text("patient_id,date,test,value,unit\nP1,2024-01-01,ALP,1,U/L\n")
    with pytest.raises(ContractError, match="sample_date") as info:
        read_lab_table(path)
    assert str(path) in str(info.value)


# --- attach_alp ------------------------------------------------------------------------------


def test_attach_alp_takes_latest_sample_within_window() -> None:
    table = one_patient()
    pid = table[c.PATIENT_ID].iloc[0]
    labs = labs_frame(
        [
            (pid, day(table, 0), "alp", 100, "U/L"),  # same day as the baseline: used
            (pid, day(table, 0, 1), "alp", 999, "U/L"),  # after the baseline: not for it
            (pid, day(table, 1, -5), "alp", 120, "U/L"),
            (pid, day(table, 1, -2), "alp", 130, "U/L"),  # latest before row 1
            (pid, day(table, 2, -30), "alp", 140, "U/L"),  # exactly 30 days: used
            (pid, day(table, 3, -31), "alp", 150, "U/L"),  # 31 days: too old
            ("OTHER", day(table, 4), "alp", 160, "U/L"),  # another patient
        ]
    )
    out = attach_alp(table, labs)
    assert out[c.ALP_U_L].tolist()[:3] == [100.0, 130.0, 140.0]
    assert np.isnan(out[c.ALP_U_L].iloc[3])
    assert np.isnan(out[c.ALP_U_L].iloc[4])
    assert is_canonical(out)
    pd.testing.assert_frame_equal(out.drop(columns=c.ALP_U_L), table.drop(columns=c.ALP_U_L))


def test_attach_alp_replaces_existing_values() -> None:
    table = one_patient()
    assert table[c.ALP_U_L].notna().any()
    pid = table[c.PATIENT_ID].iloc[0]
    labs = labs_frame([(pid, day(table, 2), "alp", 77, "IU/L")])
    out = attach_alp(table, labs, window_days=0)
    assert out[c.ALP_U_L].notna().sum() == 1  # the lab table is the only source
    assert out[c.ALP_U_L].iloc[2] == 77.0


def test_attach_alp_validates_a_raw_table_first() -> None:
    raw = make_valid_table(2).sample(frac=1.0, random_state=1)
    labs = labs_frame([(raw[c.PATIENT_ID].iloc[0], "2030-01-01", "alp", 90, "U/L")])
    out = attach_alp(raw, labs)
    pd.testing.assert_frame_equal(
        out.drop(columns=c.ALP_U_L), validate_timepoints(raw).drop(columns=c.ALP_U_L)
    )
    bad = raw.astype(object)
    bad.iloc[0, bad.columns.get_loc(c.CANCER_TYPE)] = "lung"
    with pytest.raises(ContractError, match="cancer_type"):
        attach_alp(bad, labs)


def test_attach_alp_rejects_a_negative_window() -> None:
    with pytest.raises(ValueError, match="window_days"):
        attach_alp(one_patient(), labs_frame([]), window_days=-1)


def test_attach_alp_with_no_alp_rows() -> None:
    table = one_patient()
    labs = labs_frame([("P1", "2024-01-01", "crp", 3, "mg/L")])
    assert attach_alp(table, labs)[c.ALP_U_L].isna().all()


def test_attach_alp_roundtrip_through_files(tmp_path: Path) -> None:
    table = make_valid_table(3, validated=True)
    rows = [
        (pid, (d - pd.Timedelta(days=3)).strftime("%Y-%m-%d"), "alp", 1.5, "ukat/L")
        for pid, d in zip(table[c.PATIENT_ID], table[c.ASSESSMENT_DATE], strict=True)
    ]
    path = write_table(labs_frame(rows), tmp_path / "labs.parquet")
    out = attach_alp(table, read_lab_table(path), window_days=3)
    assert out[c.ALP_U_L].tolist() == [90.0] * len(table)


def reference_alp(table: pd.DataFrame, labs: pd.DataFrame, window: int) -> list[float]:
    """Brute force: for each assessment, the latest sample in [date - window, date]."""
    samples = extract_alp(labs)
    out = []
    for pid, when in zip(table[c.PATIENT_ID], table[c.ASSESSMENT_DATE], strict=True):
        mine = samples[samples[c.PATIENT_ID] == pid]
        ok = mine[
            (mine["sample_date"] <= when)
            & (mine["sample_date"] >= when - pd.Timedelta(days=window))
        ]
        out.append(float(ok[c.ALP_U_L].iloc[-1]) if len(ok) else np.nan)
    return out


@settings(max_examples=40, deadline=None)
@given(
    n_patients=st.integers(1, 4),
    seed=st.integers(0, 10_000),
    samples=st.lists(
        st.tuples(
            st.integers(0, 3),  # patient
            st.integers(-40, 200),  # day after treatment start
            st.floats(20, 3000),
            st.sampled_from(["U/L", "IU/L", "ukat/L", "µkat/L"]),
        ),
        max_size=30,
    ),
    window=st.integers(0, 60),
)
def test_attach_alp_matches_a_brute_force_reference(
    n_patients: int, seed: int, samples: list[tuple[int, int, float, str]], window: int
) -> None:
    table = make_valid_table(n_patients, seed, validated=True)
    starts = table.groupby(c.PATIENT_ID)[c.TREATMENT_START_DATE].first()
    rows = []
    for patient, offset, value, unit in samples:
        pid = starts.index[patient % len(starts)]
        when = starts.iloc[patient % len(starts)] + pd.Timedelta(days=offset)
        scaled = value / 60 if "kat" in unit else value
        rows.append((pid, when.strftime("%Y-%m-%d"), "ALP", scaled, unit))
    labs = labs_frame(rows)
    out = attach_alp(table, labs, window_days=window)
    expected = reference_alp(table, labs, window)
    np.testing.assert_allclose(out[c.ALP_U_L].to_numpy(), expected, equal_nan=True)
