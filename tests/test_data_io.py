"""Tests of table IO (CSV, gzipped CSV, Parquet), atomic writes and the ``validate`` verb."""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import make_valid_table
from flare_ml.cli import app
from flare_ml.data import (
    ContractError,
    load_timepoints,
    read_table,
    table_format,
    validate_timepoints,
    write_table,
)
from flare_ml.data import contract as c

FORMATS = ["t.csv", "t.csv.gz", "t.parquet"]

# --- read_table / write_table ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("a.CSV", "csv"),
        ("a.csv.gz", "csv.gz"),
        ("x/a.parquet", "parquet"),
        ("a.pq", "parquet"),
    ],
)
def test_table_format(name: str, fmt: str) -> None:
    assert table_format(name) == fmt


@pytest.mark.parametrize("name", ["a.xlsx", "a.json", "a", "a.gz", "a.csv.bz2"])
def test_unknown_extension_is_a_contract_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("patient_id\nP1\n")
    with pytest.raises(ContractError, match="unknown file extension"):
        read_table(path)
    with pytest.raises(ContractError, match=r"\.parquet"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / f"out-{name}")
    assert not (tmp_path / f"out-{name}").exists()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="does not exist") as info:
        read_table(tmp_path / "nope.csv")
    assert "nope.csv" in str(info.value)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.csv", b""),
        ("bad.parquet", b"this is not parquet"),
        ("bad.csv.gz", b"not gzip at all"),
        ("bad.csv", b"\xff\xfe\x00\x00binary\x00"),
    ],
)
def test_unreadable_files_are_contract_errors(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ContractError) as info:
        read_table(path)
    assert name in str(info.value)
    assert "Traceback" not in str(info.value)


def test_folder_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(ContractError, match="folder"):
        read_table(tmp_path / "d.csv")


def test_csv_contract_columns_are_read_as_written(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "patient_id,new_lesion_morphology,outcome,alp_u_l,extra_score,extra_text\n"
        "007,None,,120,0.5,NA\n"
        "NA,none,flare,NA,NA,x\n"
    )
    table = read_table(path)
    assert table[c.PATIENT_ID].tolist() == ["007", "NA"]  # zeros kept, NA is an id here
    assert table[c.NEW_LESION_MORPHOLOGY].tolist() == ["None", "none"]  # not missing
    assert table[c.OUTCOME].isna().tolist() == [True, False]
    assert table[c.ALP_U_L].tolist() == ["120", "NA"]  # validation decides
    assert table["extra_score"].dtype == "float64"  # extras: pandas inference
    assert table["extra_score"].isna().tolist() == [False, True]
    assert table["extra_text"].isna().tolist() == [True, False]


@pytest.mark.parametrize("name", FORMATS)
def test_write_then_read_roundtrip(tmp_path: Path, name: str) -> None:
    validated = make_valid_table(3, validated=True)
    path = write_table(validated, tmp_path / "sub" / "dir" / name)  # parents created
    assert path.exists()
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    pd.testing.assert_frame_equal(load_timepoints(path), validated)
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temporary left


def test_csv_gz_is_gzip(tmp_path: Path) -> None:
    path = write_table(pd.DataFrame({"a": [1, 2]}), tmp_path / "t.csv.gz")
    with gzip.open(path, "rt") as handle:
        assert handle.read().splitlines() == ["a", "1", "2"]


@pytest.mark.parametrize("name", FORMATS)
def test_failed_write_leaves_old_file_and_no_temporary(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / name
    old = pd.DataFrame({"a": [1, 2, 3]})
    write_table(old, target)
    before = target.read_bytes()

    def broken(self: pd.DataFrame, path: str, *args: object, **kwargs: object) -> None:
        Path(path).write_bytes(b"half a tab")  # something is written, then it fails
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    with pytest.raises(ContractError, match="disk full"):
        write_table(pd.DataFrame({"a": [9]}), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_failed_first_write_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def broken(self: pd.DataFrame, path: str, *args: object, **kwargs: object) -> None:
        Path(path).write_bytes(b"half")
        raise ValueError("cannot convert")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    with pytest.raises(ContractError):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "new.parquet")
    assert list(tmp_path.iterdir()) == []


def test_load_timepoints_names_the_file_in_errors(tmp_path: Path) -> None:
    table = make_valid_table(2)
    table.loc[1, c.CANCER_TYPE] = "lung"
    path = write_table(table, tmp_path / "cohort.csv")
    with pytest.raises(ContractError) as info:
        load_timepoints(path)
    assert str(path) in str(info.value)
    assert "cancer_type" in str(info.value)


# --- property: a valid table survives shuffling and a round trip through every format ---------


@settings(max_examples=25, deadline=None)
@given(
    n_patients=st.integers(1, 5),
    seed=st.integers(0, 2**31 - 1),
    order=st.randoms(use_true_random=False),
    name=st.sampled_from(FORMATS),
    validated_first=st.booleans(),
)
def test_roundtrip_through_files_keeps_the_validated_content(
    n_patients: int, seed: int, order: object, name: str, validated_first: bool
) -> None:
    table = make_valid_table(n_patients, seed)
    expected = validate_timepoints(table)
    rows = list(range(len(table)))
    order.shuffle(rows)  # type: ignore[attr-defined]
    shuffled = (expected if validated_first else table).iloc[rows]
    with tempfile.TemporaryDirectory() as folder:
        path = write_table(shuffled, Path(folder) / name)
        loaded = load_timepoints(path)
    pd.testing.assert_frame_equal(loaded, expected)


# --- the validate command ---------------------------------------------------------------------

runner = CliRunner()


def test_cli_validate_prints_the_summary(tmp_path: Path) -> None:
    path = write_table(make_valid_table(3), tmp_path / "cohort.parquet")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid timepoint table" in result.output
    assert "index rows" in result.output and "patients" in result.output
    assert "outcome flare" in result.output


def test_cli_validate_reports_violations_with_exit_2(tmp_path: Path) -> None:
    table = make_valid_table(3)
    table[c.CANCER_TYPE] = table[c.CANCER_TYPE].astype(object)
    table.loc[2, c.CANCER_TYPE] = "lung"
    table.loc[4, c.ALP_U_L] = 99999.0
    path = write_table(table, tmp_path / "cohort.csv")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "cancer_type" in result.output and "unknown category 'lung'" in result.output
    assert "alp_u_l" in result.output
    assert "P000001" in result.output


def test_cli_validate_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert "Traceback" not in result.output


def test_cli_validate_with_labs(tmp_path: Path) -> None:
    table = make_valid_table(2)
    path = write_table(table, tmp_path / "cohort.csv")
    first = table.iloc[0]
    labs = pd.DataFrame(
        {
            "patient_id": [first[c.PATIENT_ID]],
            "sample_date": [first[c.ASSESSMENT_DATE] - pd.Timedelta(days=2)],
            "test": ["ALP"],
            "value": [2.0],
            "unit": ["µkat/L"],
        }
    )
    labs_path = write_table(labs, tmp_path / "labs.csv")
    result = runner.invoke(app, ["validate", str(path), "--labs", str(labs_path)])
    assert result.exit_code == 0, result.output
    assert "missing alp_u_l" in result.output  # only one assessment has a sample

    labs["unit"] = ["mmol/L"]
    write_table(labs, labs_path)
    result = runner.invoke(
        app, ["validate", str(path), "--labs", str(labs_path), "--window-days", "10"]
    )
    assert result.exit_code == 2
    assert "mmol/L" in result.output and "Traceback" not in result.output


def test_cli_validate_rejects_a_negative_window(tmp_path: Path) -> None:
    path = write_table(make_valid_table(1), tmp_path / "cohort.csv")
    result = runner.invoke(app, ["validate", str(path), "--labs", str(path), "--window-days", "-1"])
    assert result.exit_code == 2  # usage error from typer


def test_write_table_keeps_the_mode_of_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "t.csv"
    write_table(pd.DataFrame({"a": [1]}), target)
    os.chmod(target, 0o640)
    write_table(pd.DataFrame({"a": [2]}), target)
    assert target.stat().st_mode & 0o777 == 0o640
