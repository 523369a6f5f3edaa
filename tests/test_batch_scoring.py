"""Batch scoring in chunks of whole patients: same answers as the whole file, atomic output.

The small session model scores a synthetic cohort written as Parquet, CSV and gzipped
CSV; chunk sizes of a few rows split nearly every patient across reads, so the carry-over
of the last patient is exercised on every chunk boundary.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flare_ml.cli import app
from flare_ml.data import contract as c
from flare_ml.data import load_timepoints, write_table
from flare_ml.errors import ContractError
from flare_ml.serving.batch import CSV_FLOAT_FORMAT, iter_patient_chunks, score_file
from serving_helpers import bundle_copy, scoring_cohort, small_bundle


def _read_output(path) -> pd.DataFrame:
    if str(path).endswith((".parquet", ".pq")):
        out = pd.read_parquet(path)
        out.attrs["p_flare_format"] = None  # full float64
    else:
        out = pd.read_csv(
            path,
            dtype={"patient_id": str, "decision": str, "prediction_set": str, "reasons": str},
            keep_default_na=False,
        )
        out.attrs["p_flare_format"] = CSV_FLOAT_FORMAT  # CSV: 6 significant digits
    out["assessment_date"] = pd.to_datetime(out["assessment_date"]).dt.strftime("%Y-%m-%d")
    return out


def _expected(path, with_reasons: bool = True) -> pd.DataFrame:
    out = small_bundle().predict(load_timepoints(path), with_reasons=with_reasons)
    out["assessment_date"] = out["assessment_date"].dt.strftime("%Y-%m-%d")
    return out


def _assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert got["patient_id"].tolist() == expected["patient_id"].tolist()
    assert got["assessment_date"].tolist() == expected["assessment_date"].tolist()
    want = expected["p_flare"].to_numpy()
    if got.attrs.get("p_flare_format"):  # CSV: exactly the written rounding of each value
        want = np.array([float(got.attrs["p_flare_format"] % v) for v in want])
    np.testing.assert_array_equal(got["p_flare"].to_numpy(), want)
    for col in ("decision", "prediction_set", "reasons"):
        assert got[col].tolist() == expected[col].tolist(), col


@pytest.fixture(scope="module")
def cohort_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    table = scoring_cohort()
    return {
        fmt: write_table(table, folder / f"cohort.{fmt}") for fmt in ("parquet", "csv", "csv.gz")
    }


@pytest.mark.parametrize("fmt", ["parquet", "csv", "csv.gz"])
@pytest.mark.parametrize("chunk_rows", [41, 500, 10**7])
def test_chunked_equals_whole_file(cohort_files, tmp_path, fmt, chunk_rows):
    source = cohort_files[fmt]
    out = tmp_path / ("scores.parquet" if chunk_rows % 2 else "scores.csv")
    summary = score_file(small_bundle(), source, out, chunk_rows=chunk_rows)
    expected = _expected(source)
    _assert_same(_read_output(out), expected)
    assert summary.index_rows == len(expected)
    assert summary.rows == len(scoring_cohort())
    assert summary.patients == scoring_cohort()["patient_id"].nunique()
    assert sum(summary.decisions.values()) == len(expected)
    if chunk_rows == 10**7:
        assert summary.chunks == 1
    else:
        assert summary.chunks > 1
    # no temporary file left: the output and its metadata file only
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name, out.name + ".json"]


def test_without_reasons_and_gzip_output(cohort_files, tmp_path):
    out = tmp_path / "scores.csv.gz"
    score_file(small_bundle(), cohort_files["parquet"], out, chunk_rows=300, with_reasons=False)
    got = _read_output(out)
    _assert_same(got, _expected(cohort_files["parquet"], with_reasons=False))
    assert set(got["reasons"]) == {""}


def test_one_row_chunks(tmp_path):
    table = scoring_cohort(15, seed=9)
    source = write_table(table, tmp_path / "small.csv")
    summary = score_file(small_bundle(), source, tmp_path / "o.parquet", chunk_rows=1)
    _assert_same(_read_output(tmp_path / "o.parquet"), _expected(source))
    assert summary.chunks == table["patient_id"].nunique()


def test_chunks_hold_whole_patients_and_bounded_rows():
    table = scoring_cohort()
    pieces = [table.iloc[i : i + 37] for i in range(0, len(table), 37)]
    chunks = list(iter_patient_chunks(iter(pieces)))
    largest = int(table.groupby("patient_id").size().max())
    seen: set[str] = set()
    for chunk in chunks:
        ids = set(chunk["patient_id"])
        assert not ids & seen  # a patient lives in exactly one chunk
        seen |= ids
        assert len(chunk) <= 37 + largest
    assert seen == set(table["patient_id"])
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), table)


def test_grouped_but_unsorted_input_is_scored(tmp_path):
    table = scoring_cohort()
    order = table["patient_id"].drop_duplicates().sample(frac=1.0, random_state=3)
    rank = {pid: i for i, pid in enumerate(order)}
    shuffled = table.sample(frac=1.0, random_state=4)  # dates out of order within patients
    shuffled = shuffled.assign(_r=shuffled["patient_id"].map(rank)).sort_values("_r", kind="stable")
    source = write_table(shuffled.drop(columns="_r"), tmp_path / "grouped.parquet")
    out = tmp_path / "scores.parquet"
    score_file(small_bundle(), source, out, chunk_rows=20)
    got = _read_output(out).sort_values(["patient_id", "assessment_date"], ignore_index=True)
    _assert_same(got, _expected(source))


@pytest.mark.parametrize("chunk_rows", [5, 10**6])
def test_patient_reappearing_is_refused_and_nothing_written(tmp_path, chunk_rows):
    table = scoring_cohort(60, seed=8)
    first = table["patient_id"].iloc[0]
    moved = table[table["patient_id"] == first].iloc[-1:]
    broken = pd.concat([table.drop(index=moved.index), moved], ignore_index=True)
    source = write_table(broken, tmp_path / "unsorted.csv")
    out = tmp_path / "scores.parquet"
    with pytest.raises(ContractError) as info:
        score_file(small_bundle(), source, out, chunk_rows=chunk_rows)
    message = str(info.value)
    assert f"patient '{first}'" in message
    assert "sort the table by patient_id, assessment_date" in message
    assert info.value.violations[0].rule == "not_grouped_by_patient"
    assert [p.name for p in tmp_path.iterdir()] == ["unsorted.csv"]


def test_bad_row_in_a_late_chunk_leaves_old_output_untouched(tmp_path):
    table = scoring_cohort().copy()
    last = table["patient_id"].iloc[-1]
    table["cancer_type"] = table["cancer_type"].astype(str)
    table.loc[table["patient_id"] == last, "cancer_type"] = "lung"
    source = write_table(table, tmp_path / "bad.parquet")
    out = tmp_path / "scores.csv"
    out.write_text("previous results\n")
    with pytest.raises(ContractError, match="unknown category 'lung'") as info:
        score_file(small_bundle(), source, out, chunk_rows=50)
    assert info.value.violations[0].column == "cancer_type"
    assert out.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.parquet", "scores.csv"]


def test_file_without_index_rows_gives_empty_output(tmp_path):
    table = scoring_cohort()
    index_patients = table.loc[table["new_bone_lesions"].fillna(0) > 0, "patient_id"].unique()
    quiet = table[~table["patient_id"].isin(index_patients)]
    source = write_table(quiet, tmp_path / "quiet.parquet")
    for name in ("scores.parquet", "scores.csv"):
        summary = score_file(small_bundle(), source, tmp_path / name)
        got = _read_output(tmp_path / name)
        assert summary.index_rows == 0
        assert list(got.columns) == [
            "patient_id",
            "assessment_date",
            "p_flare",
            "decision",
            "prediction_set",
            "reasons",
        ]
        assert len(got) == 0


def test_empty_and_unreadable_inputs(tmp_path):
    header = tmp_path / "empty.csv"
    header.write_text(",".join(c.REQUIRED_COLUMNS) + "\n")
    with pytest.raises(ContractError, match="no rows"):
        score_file(small_bundle(), header, tmp_path / "out.csv")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    with pytest.raises(ContractError, match="cannot read table"):
        score_file(small_bundle(), garbage, tmp_path / "out.csv")
    with pytest.raises(ContractError, match="unknown file extension"):
        score_file(small_bundle(), header, tmp_path / "out.xlsx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv", "garbage.parquet"]


def test_progress_reports_rows(cohort_files, tmp_path):
    calls = []
    score_file(
        small_bundle(),
        cohort_files["csv"],
        tmp_path / "o.csv",
        chunk_rows=1000,
        progress=lambda *a: calls.append(a),
    )
    total = len(scoring_cohort())
    assert calls[-1] == ("scoring", total, total)
    assert [done for _, done, _ in calls] == sorted(done for _, done, _ in calls)


def test_cli_score(cohort_files, tmp_path):
    bundle_dir = bundle_copy(tmp_path / "bundle")
    out = tmp_path / "scores.parquet"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "score",
            "--model", str(bundle_dir),
            "--input", str(cohort_files["csv"]),
            "--output", str(out),
            "--no-reasons",
            "--chunk-rows", "100",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "index rows" in result.output
    _assert_same(_read_output(out), _expected(cohort_files["csv"], with_reasons=False))

    bad = tmp_path / "bad.csv"
    text = cohort_files["csv"].read_text().replace(",nsclc,", ",lung,")
    bad.write_text(text)
    result = runner.invoke(
        app, ["score", "--model", str(bundle_dir), "--input", str(bad), "--output",
              str(tmp_path / "bad_scores.csv")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "unknown category 'lung'" in result.output
    assert not (tmp_path / "bad_scores.csv").exists()


def test_metadata_records_the_model_and_the_decision_policy(cohort_files, tmp_path):
    import json

    import pyarrow.parquet as pq

    bundle = small_bundle()
    out = tmp_path / "scores.parquet"
    summary = score_file(
        bundle,
        cohort_files["csv"],
        out,
        with_reasons=False,
        metadata={"uri": "models:/x/3", "version": "3"},
    )
    info = json.loads(summary.metadata.read_text())
    assert summary.metadata == tmp_path / "scores.parquet.json"
    assert info["model"]["digest"] == bundle.digest() and info["model"]["version"] == "3"
    policy = info["decision_policy"]
    assert policy["max_progression_called_flare"] == bundle.budget.max_progression_called_flare
    assert policy["flare_when_p_flare_at_least"] == bundle.threshold
    assert policy["budget_source"] == "the model's"
    # the decision thresholds describe the decision column written
    scores = pd.read_parquet(out)
    flare = scores["p_flare"] >= policy["flare_when_p_flare_at_least"]
    prog = scores["p_flare"] <= policy["progression_when_p_flare_at_most"]
    assert (scores["decision"] == "flare").eq(flare).all()
    assert (scores["decision"] == "progression").eq(prog).all()
    embedded = json.loads(pq.read_schema(out).metadata[b"flare_ml"])
    assert embedded["model"] == info["model"]
    # no patient id of the input appears in the metadata
    text = summary.metadata.read_text()
    assert not [i for i in scoring_cohort()["patient_id"].unique()[:50] if f'"{i}"' in text]


def test_decisions_against_recorded_outcomes(cohort_files, tmp_path):
    out = tmp_path / "scores.csv"
    summary = score_file(
        small_bundle(), cohort_files["parquet"], out, chunk_rows=300, with_reasons=False
    )
    predictions = _read_output(out)
    truth = scoring_cohort()
    truth = truth[truth["outcome"].notna()][["patient_id", "assessment_date", "outcome"]]
    truth["assessment_date"] = pd.to_datetime(truth["assessment_date"]).dt.strftime("%Y-%m-%d")
    joined = predictions.merge(truth, on=["patient_id", "assessment_date"])
    expected = pd.crosstab(joined["decision"], joined["outcome"])
    table = summary.decision_table()
    assert table is not None and table.n == len(joined)
    for decision in expected.index:
        for outcome in expected.columns:
            assert table.counts.loc[decision, outcome] == expected.loc[decision, outcome]
    # without outcomes in the input there is no table
    unlabelled = tmp_path / "unlabelled.parquet"
    write_table(scoring_cohort().drop(columns=["outcome"]), unlabelled)
    bare = score_file(small_bundle(), unlabelled, tmp_path / "bare.csv", with_reasons=False)
    assert bare.decision_table() is None


def test_a_tighter_budget_calls_fewer_flares_and_is_recorded(cohort_files, tmp_path):
    import json

    base = score_file(
        small_bundle(), cohort_files["parquet"], tmp_path / "a.csv", with_reasons=False
    )
    strict = score_file(
        small_bundle(),
        cohort_files["parquet"],
        tmp_path / "b.csv",
        with_reasons=False,
        max_progression_called_flare=0.01,
    )
    assert strict.budget.max_progression_called_flare == 0.01
    assert strict.budget.max_flare_called_progression == base.budget.max_flare_called_progression
    assert strict.decisions.get("flare", 0) < base.decisions.get("flare", 0)
    a, b = _read_output(tmp_path / "a.csv"), _read_output(tmp_path / "b.csv")
    np.testing.assert_array_equal(a["p_flare"], b["p_flare"])  # same P(flare)
    # every flare decision under the tighter budget is a flare decision under the default
    assert set(b.index[b["decision"] == "flare"]) <= set(a.index[a["decision"] == "flare"])
    meta = json.loads(strict.metadata.read_text())
    assert meta["decision_policy"]["max_progression_called_flare"] == 0.01
    assert meta["decision_policy"]["budget_source"] == "tightened at scoring time"
    # the same model, whatever the budget asked at scoring time
    assert meta["model"]["digest"] == json.loads(base.metadata.read_text())["model"]["digest"]


def test_budget_option_of_the_cli(cohort_files, tmp_path):
    model = bundle_copy(tmp_path / "model")
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--model",
            str(model),
            "--input",
            str(cohort_files["csv"]),
            "--output",
            str(out),
            "--no-reasons",
            "--max-progression-called-flare",
            "0.02",
        ],
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "at most 2% of true progressions" in text
    assert "Decisions against the outcomes recorded in the input" in text
    assert (tmp_path / "scores.csv.json").exists()


def test_scoring_without_alp_says_so(tmp_path):
    source = tmp_path / "no_alp.csv"
    write_table(scoring_cohort().drop(columns=["alp_u_l"]), source)
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--model",
            str(bundle_copy(tmp_path / "model")),
            "--input",
            str(source),
            "--output",
            str(tmp_path / "scores.csv"),
            "--no-reasons",
        ],
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "optional column 'alp_u_l' is absent" in text and "attach_alp" in text
    # a file with ALP gets no such notice
    summary = score_file(small_bundle(), _write(tmp_path), tmp_path / "s2.csv", with_reasons=False)
    assert not [n for n in summary.notices if "alp_u_l" in n]


def _write(folder):
    return write_table(scoring_cohort(), folder / "with_alp.csv")


def test_score_joins_a_lab_table_like_validate(tmp_path):
    from flare_ml.data import attach_alp
    from flare_ml.simulate import simulate_cohort

    cohort = simulate_cohort(150, site="nordic", seed=41)
    source = write_table(cohort.timepoints.drop(columns=["alp_u_l"]), tmp_path / "no_alp.csv")
    labs = write_table(cohort.labs, tmp_path / "labs.csv")
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--model",
            str(bundle_copy(tmp_path / "model")),
            "--input",
            str(source),
            "--output",
            str(out),
            "--labs",
            str(labs),
            "--window-days",
            "30",
            "--chunk-rows",
            "300",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "alp_u_l' is absent" not in " ".join(result.output.split())
    joined = attach_alp(load_timepoints(source), cohort.labs, window_days=30)
    expected = small_bundle().predict(joined)
    expected["assessment_date"] = expected["assessment_date"].dt.strftime("%Y-%m-%d")
    _assert_same(_read_output(out), expected)
    # an unusable lab table is refused before anything is written
    bad = cohort.labs.copy()
    bad["unit"] = "mmol/L"
    bad_path = write_table(bad, tmp_path / "bad_labs.csv")
    refused = CliRunner().invoke(
        app,
        [
            "score",
            "--model",
            str(bundle_copy(tmp_path / "model2")),
            "--input",
            str(source),
            "--output",
            str(tmp_path / "never.csv"),
            "--labs",
            str(bad_path),
        ],
    )
    assert refused.exit_code == 2
    assert "mmol/L" in refused.output and not (tmp_path / "never.csv").exists()
