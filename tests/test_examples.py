"""The shipped example input: valid, one flare and one progression course, scored end to end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from flare_ml.cli import app
from flare_ml.data import load_timepoints
from flare_ml.features import index_outcomes
from serving_helpers import bundle_copy

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "two_patients.csv"


def test_example_is_a_valid_table_with_one_flare_and_one_progression_course():
    table = load_timepoints(EXAMPLE)
    outcomes = index_outcomes(table)
    assert table["patient_id"].nunique() == 2
    assert sorted(outcomes.tolist()) == [0, 1]  # one progression, one flare index row
    assert CliRunner().invoke(app, ["validate", str(EXAMPLE)]).exit_code == 0


def test_example_scores_as_the_readme_says(tmp_path):
    model = bundle_copy(tmp_path / "model")
    out = tmp_path / "scores.csv"
    result = CliRunner().invoke(
        app, ["score", "--model", str(model), "--input", str(EXAMPLE), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out)
    assert scores["patient_id"].tolist() == ["EX-FLARE-1", "EX-PROG-1"]
    assert set(scores["decision"]) <= {"flare", "progression", "uncertain"}
    assert scores["reasons"].str.len().gt(0).all()
    assert (tmp_path / "scores.csv.json").exists()
    # the outcomes the file records are shown against the decisions
    assert "Decisions against the outcomes recorded in the input" in " ".join(result.output.split())
