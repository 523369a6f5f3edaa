"""Inputs that forgive or explain: unknown and misspelt columns, delimiters, dates, order.

The files here are the ones a new user brings: a column renamed by hand (``alp_ul``), an
extra column, an optional column left out, a semicolon or tab export, day-first dates, a
decimal comma, an export with its own column names, and a file whose patients' rows are
interleaved. Each gets either read correctly or refused with a message that says what to
do, and ``flare-ml validate`` and ``flare-ml score`` accept and refuse the same files.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flare_ml.cli import app
from flare_ml.data import (
    ReadOptions,
    column_report,
    contract,
    load_timepoints,
    read_table,
    read_timepoints,
    summarize_cohort,
    validate_timepoints,
    write_table,
)
from flare_ml.errors import ContractError
from flare_ml.serving.batch import score_file
from flare_ml.serving.schema import score_wire
from flare_ml.simulate import simulate_cohort
from serving_helpers import bundle_copy, small_bundle

runner = CliRunner()


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    """A small validated cohort, sorted by patient and date."""
    return validate_timepoints(simulate_cohort(12, seed=4).timepoints)


@pytest.fixture(scope="module")
def text_cohort(cohort: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The cohort as a CSV shows it: every value as text, empty for missing."""
    path = write_table(cohort, tmp_path_factory.mktemp("text") / "cohort.csv")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundle_copy(tmp_path_factory.mktemp("model") / "bundle")


def _write(frame: pd.DataFrame, path: Path, sep: str = ",") -> Path:
    frame.to_csv(path, sep=sep, index=False)
    return path


def _validate(path: Path, *options: str) -> object:
    return runner.invoke(app, ["validate", str(path), *options])


def _score(model: Path, path: Path, out: Path, *options: str) -> object:
    return runner.invoke(
        app,
        ["score", "--model", str(model), "--input", str(path), "--output", str(out),
         "--no-reasons", *options],
    )  # fmt: skip


# --- unknown and misspelt columns ----------------------------------------------------------
def test_misspelt_optional_column_is_an_error_with_a_suggestion(text_cohort, model_dir, tmp_path):
    path = _write(text_cohort.rename(columns={"alp_u_l": "alp_ul"}), tmp_path / "typo.csv")
    result = _validate(path)
    assert result.exit_code == 2, result.output
    assert "'alp_ul'" in result.output and "did you mean 'alp_u_l'?" in result.output

    out = tmp_path / "scores.csv"
    result = _score(model_dir, path, out)
    assert result.exit_code == 2, result.output
    assert "did you mean 'alp_u_l'?" in result.output
    assert not out.exists()

    with pytest.raises(ContractError) as error:
        validate_timepoints(pd.read_csv(path, dtype=str, keep_default_na=False))
    assert [(v.column, v.rule) for v in error.value.violations] == [("alp_ul", "misspelt_column")]


def test_misspelt_column_is_refused_by_the_served_model(cohort):
    mlflow = pytest.importorskip("mlflow")
    from flare_ml.serving.pyfunc_model import FlareClassifierModel

    rows = cohort.rename(columns={"alp_u_l": "alp_ul"})
    with pytest.raises(ContractError, match="did you mean 'alp_u_l'"):
        score_wire(small_bundle(), rows, with_reasons=False)
    model = FlareClassifierModel()
    model.bundle = small_bundle()
    with pytest.raises(mlflow.exceptions.MlflowException) as error:
        model.predict(None, rows, params={"with_reasons": False})
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "did you mean 'alp_u_l'" in error.value.message


def test_misspelt_required_column_is_reported_once_as_the_misspelling(text_cohort):
    raw = text_cohort.rename(columns={"cancer_type": "Cancer Type"})
    with pytest.raises(ContractError) as error:
        validate_timepoints(raw)
    rules = [(v.column, v.rule) for v in error.value.violations]
    assert ("Cancer Type", "misspelt_column") in rules
    assert ("cancer_type", "missing_column") not in rules


def test_unknown_extra_column_is_reported_by_name_and_scoring_goes_on(
    text_cohort, model_dir, tmp_path
):
    path = _write(text_cohort.assign(site_note="x", alp_old="1"), tmp_path / "extra.csv")
    result = _validate(path)
    assert result.exit_code == 0, result.output
    assert "'site_note': not a contract column, ignored" in result.output
    # close to a contract column the file has: a notice with the closest name, no error
    assert "'alp_old': not a contract column, ignored" in result.output

    out = tmp_path / "scores.csv"
    result = _score(model_dir, path, out)
    assert result.exit_code == 0, result.output
    assert "'site_note': not a contract column, ignored" in result.output
    summary = score_file(small_bundle(), path, tmp_path / "s2.csv", with_reasons=False)
    assert summary.ignored_columns == ["site_note", "alp_old"]
    plain = score_file(
        small_bundle(), _write(text_cohort, tmp_path / "plain.csv"), tmp_path / "s3.csv",
        with_reasons=False,
    )  # fmt: skip
    assert plain.ignored_columns == []
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(tmp_path / "s3.csv"))


def test_absent_optional_column_is_reported_as_absent(text_cohort, tmp_path):
    path = _write(text_cohort.drop(columns=["alp_u_l", "sld_mm"]), tmp_path / "absent.csv")
    result = _validate(path)
    assert result.exit_code == 0, result.output
    assert re.search(r"column alp_u_l\s+│\s+absent", result.output), result.output
    assert re.search(r"column sld_mm\s+│\s+absent", result.output), result.output
    assert "missing alp_u_l" not in result.output
    loaded = read_timepoints(path)
    assert {"alp_u_l", "sld_mm"} <= set(loaded.columns.absent)
    summary = summarize_cohort(loaded.table, columns=loaded.columns)
    assert "alp_u_l" in summary.absent_columns and "row_type" not in summary.absent_columns
    # the complete file has no absent column other than those it really lacks
    assert (
        "alp_u_l" not in read_timepoints(_write(text_cohort, tmp_path / "all.csv")).columns.absent
    )


@given(
    name=st.sampled_from(contract.CONTRACT_COLUMNS),
    edit=st.sampled_from(["drop_underscore", "plural", "upper_spaces"]),
)
def test_any_close_misspelling_of_an_absent_column_is_refused(name, edit):
    if "_" not in name:  # a change of case alone is no misspelling: names match in any case
        edit = "plural"
    typo = {
        "drop_underscore": name.replace("_", "", 1),
        "plural": name + "s",
        "upper_spaces": name.replace("_", " ").title(),
    }[edit]
    columns = [typo if col == name else col for col in contract.CONTRACT_COLUMNS]
    report = column_report(columns)
    assert [(u.name, u.suggestion) for u in report.misspelt] == [(typo, name)]
    # the same name beside the real column is only a notice
    assert column_report([*contract.CONTRACT_COLUMNS, typo]).misspelt == ()


# --- delimiters, dates, decimal marks, mappings ---------------------------------------------
@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sep=st.sampled_from([";", "\t"]), gz=st.booleans())
def test_semicolon_and_tab_files_read_like_the_comma_file(text_cohort, tmp_path, sep, gz):
    suffix = ".csv.gz" if gz else ".csv"
    comma = tmp_path / f"comma{suffix}"
    other = tmp_path / f"other{suffix}"
    text_cohort.to_csv(comma, index=False)
    text_cohort.to_csv(other, sep=sep, index=False)
    expected = load_timepoints(comma)
    pd.testing.assert_frame_equal(load_timepoints(other), expected)
    pd.testing.assert_frame_equal(load_timepoints(other, sep=sep), expected)
    if not gz:
        result = _validate(other)
        assert result.exit_code == 0, result.output


def test_semicolon_file_scores_like_the_comma_file(text_cohort, tmp_path):
    comma = _write(text_cohort, tmp_path / "comma.csv")
    semi = _write(text_cohort, tmp_path / "semi.csv", sep=";")
    score_file(small_bundle(), comma, tmp_path / "a.csv", with_reasons=False, chunk_rows=17)
    score_file(small_bundle(), semi, tmp_path / "b.csv", with_reasons=False, chunk_rows=17)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))


def test_header_that_cannot_be_split_names_the_delimiter_once(text_cohort, model_dir, tmp_path):
    path = _write(text_cohort, tmp_path / "pipe.csv", sep="|")
    header = path.read_text().splitlines()[0]
    with pytest.raises(ContractError) as error:
        load_timepoints(path)
    assert [v.rule for v in error.value.violations] == ["unsplit_header"]
    message = str(error.value)
    assert "'|'" in message and "--sep" in message
    assert header not in message and len(message) < 700
    result = _validate(path)
    assert result.exit_code == 2 and "--sep" in result.output
    assert result.output.count("required column is missing") == 0
    assert _validate(path, "--sep", "|").exit_code == 0
    # scoring: the same explanation, and the same file read with --sep
    out = tmp_path / "scores.csv"
    result = _score(model_dir, path, out)
    assert result.exit_code == 2 and "--sep" in result.output and not out.exists()
    result = _score(model_dir, path, out, "--sep", "|")
    assert result.exit_code == 0, result.output


def _dated(text_cohort: pd.DataFrame, fmt: str) -> pd.DataFrame:
    out = text_cohort.copy()
    for col in contract.DATE_COLUMNS:
        out[col] = pd.to_datetime(out[col]).dt.strftime(fmt)
    return out


def test_date_format_and_dayfirst_read_day_first_dates(text_cohort, tmp_path):
    raw = _dated(text_cohort, "%d/%m/%Y")
    raw.loc[0, "assessment_date"] = "03/10/2021"
    raw.loc[raw["patient_id"] == raw.loc[0, "patient_id"], "treatment_start_date"] = "01/02/2021"
    path = _write(raw, tmp_path / "dayfirst.csv")
    result = _validate(path)
    assert result.exit_code == 2 and "date cannot be parsed" in result.output
    for options in (["--date-format", "%d/%m/%Y"], ["--dayfirst"]):
        result = _validate(path, *options)
        assert result.exit_code == 0, (options, result.output)
    table = load_timepoints(path, date_format="%d/%m/%Y")
    first = table[table["patient_id"] == raw.loc[0, "patient_id"]]
    assert pd.Timestamp("2021-10-03") in set(first["assessment_date"])
    assert pd.Timestamp("2021-03-10") not in set(first["assessment_date"])
    pd.testing.assert_frame_equal(table, load_timepoints(path, dayfirst=True))
    # everything else equals the ISO file's table
    iso = raw.copy()
    for col in contract.DATE_COLUMNS:
        iso[col] = pd.to_datetime(iso[col], format="%d/%m/%Y").dt.strftime("%Y-%m-%d")
    pd.testing.assert_frame_equal(table, load_timepoints(_write(iso, tmp_path / "iso.csv")))


def test_a_date_that_does_not_fit_the_format_is_still_refused(text_cohort, tmp_path):
    raw = _dated(text_cohort, "%d/%m/%Y")
    raw.loc[1, "assessment_date"] = "31/02/2021"
    path = _write(raw, tmp_path / "bad.csv")
    with pytest.raises(ContractError, match="31/02/2021"):
        load_timepoints(path, date_format="%d/%m/%Y")


def test_decimal_comma(text_cohort, tmp_path):
    raw = text_cohort.copy()
    raw.loc[0, "alp_u_l"] = "123,5"
    raw["sld_mm"] = raw["sld_mm"].str.replace(".", ",", regex=False)
    path = _write(raw, tmp_path / "decimal.csv", sep=";")
    result = _validate(path)
    assert result.exit_code == 2 and "not a number" in result.output
    assert _validate(path, "--decimal", ",").exit_code == 0
    table = load_timepoints(path, decimal=",")
    row = table[
        (table["patient_id"] == raw.loc[0, "patient_id"])
        & (table["assessment_date"] == pd.Timestamp(raw.loc[0, "assessment_date"]))
    ]
    assert row["alp_u_l"].tolist() == [123.5]
    expected = load_timepoints(_write(text_cohort.assign(alp_u_l=raw["alp_u_l"].str.replace(
        ",", ".")), tmp_path / "point.csv"))  # fmt: skip
    pd.testing.assert_frame_equal(table, expected)


def test_column_mapping_file_renames_before_validation(text_cohort, model_dir, tmp_path):
    names = {"patient_id": "Patient", "alp_u_l": "ALP (U/L)", "assessment_date": "Scan date"}
    path = _write(text_cohort.rename(columns=names), tmp_path / "export.csv")
    mapping = tmp_path / "map.yaml"
    mapping.write_text("".join(f"{v}: {k}\n" for k, v in names.items()))
    result = _validate(path)
    assert result.exit_code == 2
    result = _validate(path, "--columns", str(mapping))
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(
        load_timepoints(path, columns=mapping),
        load_timepoints(_write(text_cohort, tmp_path / "plain.csv")),
    )
    out = tmp_path / "scores.csv"
    assert _score(model_dir, path, out, "--columns", str(mapping)).exit_code == 0
    assert len(pd.read_csv(out)) == int((text_cohort["outcome"] != "").sum())
    # a mapping onto a name outside the contract is refused with a suggestion
    bad = tmp_path / "bad.yaml"
    bad.write_text("ALP (U/L): alp_ul\n")
    result = _validate(path, "--columns", str(bad))
    assert result.exit_code == 2 and "did you mean 'alp_u_l'?" in result.output


def test_read_options_reject_nonsense():
    with pytest.raises(ContractError, match="one character"):
        ReadOptions(sep=";;")
    with pytest.raises(ContractError, match="one character"):
        ReadOptions(decimal="")
    assert ReadOptions(sep="tab").delimiter == "\t"


# --- validate and score accept the same files -----------------------------------------------
def _accepts_validate(path: Path) -> bool:
    result = _validate(path)
    assert result.exit_code in (0, 2), result.output
    return result.exit_code == 0


def _accepts_score(path: Path, out: Path) -> bool:
    try:
        score_file(small_bundle(), path, out, with_reasons=False, chunk_rows=7)
    except ContractError as error:
        assert error.violations[0].rule == "not_grouped_by_patient"
        return False
    return True


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1), grouped=st.booleans())
def test_validate_and_score_agree_on_row_order(text_cohort, tmp_path, seed, grouped):
    rng = np.random.default_rng(seed)
    if grouped:  # patients in a random order, rows within each patient shuffled
        patients = rng.permutation(text_cohort["patient_id"].unique().tolist())
        pieces = [
            text_cohort[text_cohort["patient_id"] == p].sample(frac=1.0, random_state=seed % 1000)
            for p in patients
        ]
        raw = pd.concat(pieces, ignore_index=True)
    else:
        raw = text_cohort.sample(frac=1.0, random_state=rng.integers(1 << 31))
    path = _write(raw, tmp_path / f"order_{seed}_{grouped}.csv")
    ids = raw["patient_id"].to_numpy()
    contiguous = (pd.Series(ids[np.r_[True, ids[1:] != ids[:-1]]]).duplicated().sum()) == 0
    by_validate = _accepts_validate(path)
    by_score = _accepts_score(path, tmp_path / "out.csv")
    assert by_validate == by_score == contiguous


def test_unsorted_file_gets_the_same_error_from_validate_and_score(
    text_cohort, model_dir, tmp_path
):
    first = text_cohort["patient_id"].iloc[0]
    mine = text_cohort[text_cohort["patient_id"] == first]
    raw = pd.concat([mine.iloc[:1], text_cohort[text_cohort["patient_id"] != first], mine.iloc[1:]])
    path = _write(raw, tmp_path / "interleaved.csv")
    validated = _validate(path)
    out = tmp_path / "scores.csv"
    scored = _score(model_dir, path, out)
    assert validated.exit_code == scored.exit_code == 2
    expected = f"patient '{first}' reappears at data row"
    assert expected in validated.output and expected in scored.output
    assert not out.exists()
    # training and evaluation read whole files and still accept it (sorted in memory)
    pd.testing.assert_frame_equal(load_timepoints(path), load_timepoints(_write(
        text_cohort, tmp_path / "sorted.csv")))  # fmt: skip


def test_read_table_detects_the_delimiter_of_a_lab_export(tmp_path):
    path = tmp_path / "labs.csv"
    path.write_text("patient_id\tsample_date\ttest\tvalue\tunit\nP1\t2024-01-01\tALP\t90\tU/L\n")
    assert read_table(path).columns.tolist() == [
        "patient_id",
        "sample_date",
        "test",
        "value",
        "unit",
    ]
