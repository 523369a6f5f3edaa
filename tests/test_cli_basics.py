"""CLI basics: version, -h, help texts at 80 columns, the default model, human summaries.

Help texts are rendered by typer in markdown mode at a terminal width of 80 columns (the
width a user's terminal or a CI log most often has), where a placeholder such as
``<id>`` could be eaten as an HTML tag and a long token cut off with an ellipsis. The
score summary is checked for a table of counts without raw Python dicts, and the CSV
output for the precision of ``p_flare``; loading a ``runs:/`` URI must not print MLflow's
artifact download progress.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import flare_ml
import flare_ml.workflows
from flare_ml.cli import DEFAULT_MODEL, app
from flare_ml.data import write_table
from flare_ml.serving.batch import ScoreSummary, score_file
from flare_ml.serving.flavor import load_bundle
from serving_helpers import REGISTERED_NAME, bundle_copy, scoring_cohort, small_bundle

#: every command, as the words typed after ``flare-ml``
COMMANDS = [
    [],
    ["simulate"],
    ["validate"],
    ["features"],
    ["train"],
    ["evaluate"],
    ["calibrate"],
    ["score"],
    ["findings"],
    ["demo"],
    ["experiment"],
    ["experiment", "run"],
]

#: commands that use a trained model
MODEL_COMMANDS = ["evaluate", "calibrate", "score"]


def _help(args: list[str], flag: str = "--help") -> str:
    result = CliRunner().invoke(app, [*args, flag], terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


def _flat(text: str) -> str:
    """Help text without the panel borders and line breaks (words joined by one space)."""
    return " ".join(text.replace("│", " ").split())


def test_version_prints_the_package_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"flare-ml {flare_ml.__version__}\n"


def test_version_in_a_fresh_process():
    env = {**os.environ, "PYTHONPATH": str(Path(flare_ml.__file__).parent.parent)}
    done = subprocess.run(
        [sys.executable, "-c", "from flare_ml.cli import app; app()", "--version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"flare-ml {flare_ml.__version__}"


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "app")
def test_dash_h_is_help_and_nothing_is_cut_off(args):
    text = _help(args, "-h")
    assert "Usage: flare-ml" in text
    assert text == _help(args, "--help")
    assert "…" not in text  # a word too long for its column is cut with an ellipsis
    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_model_help_keeps_placeholders_and_shows_the_default(command):
    text = _flat(_help([command]))
    assert "runs:/<id>/model" in text
    assert "runs://model" not in text
    assert f"[default: {DEFAULT_MODEL}]" in text


def test_calibrate_help_shows_the_whole_docstring():
    text = _flat(_help(["calibrate"]))
    assert "writes the new model folder (usable with --model anywhere)." in text
    assert "Share of true flares that may be decided progression, 0.005 to 0.3" in text


def test_score_help_documents_csv_precision():
    text = _flat(_help(["score"]))
    assert "CSV gives p_flare 6 significant digits" in text
    assert "Parquet keeps full float64 precision" in text


@pytest.mark.parametrize("command", ["calibrate", "score"])
def test_budget_range_is_still_checked(tmp_path, command):
    io = ["--data", str(tmp_path), "--out", str(tmp_path)]
    if command == "score":
        io = ["--input", str(tmp_path / "x.csv"), "--output", str(tmp_path / "y.csv")]
    result = CliRunner().invoke(app, [command, "--max-progression-called-flare", "0.4", *io])
    assert result.exit_code == 2
    assert "0.4 is not between 0.005 and 0.3" in _flat(result.output)


def test_score_chunk_rows_must_be_positive(tmp_path):
    result = CliRunner().invoke(
        app, ["score", "--input", "x.csv", "--output", "y.csv", "--chunk-rows", "0"]
    )
    assert result.exit_code == 2
    assert "0 is less than 1" in result.output


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_model_defaults_to_the_latest_registered_model(command, tmp_path, monkeypatch):
    seen: list[str] = []

    def stop(model, *args, **kwargs):
        seen.append(model)
        raise typer.Exit(0)

    monkeypatch.setattr(flare_ml.workflows, command, stop)
    data = write_table(scoring_cohort(5, seed=1), tmp_path / "cohort.csv")
    extra = {
        "evaluate": ["--data", str(data)],
        "calibrate": ["--data", str(data), "--out", str(tmp_path / "site")],
        "score": ["--input", str(data), "--output", str(tmp_path / "p.csv")],
    }[command]
    result = CliRunner().invoke(app, [command, *extra])
    assert result.exit_code == 0, result.output
    assert seen == [DEFAULT_MODEL] == ["models:/flare-classifier/latest"]


def _score(tmp_path: Path, patients: int, output: str, chunk_rows: int = 200_000) -> str:
    source = write_table(scoring_cohort(patients, seed=5), tmp_path / "cohort.parquet")
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--model", str(bundle_copy(tmp_path / "bundle")),
            "--input", str(source),
            "--output", str(tmp_path / output),
            "--no-reasons",
            "--chunk-rows", str(chunk_rows),
        ],
        terminal_width=80,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def test_score_summary_is_a_table_without_raw_dicts(tmp_path):
    text = _score(tmp_path, 12, "scores.parquet")
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert "{" not in text and "}" not in text and "'" not in text
    assert "1 chunk)" in text and "1 chunks" not in text
    assert f"wrote {len(scores)} predictions" in text
    cells = [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]
    rows = {row[0]: row[1:] for row in cells}
    assert rows["rows read"][0] == f"{len(scoring_cohort(12, seed=5)):,}"
    assert rows["patients"][0] == "12"
    assert rows["index rows scored"][0] == str(len(scores))
    counts = scores["decision"].value_counts()
    for decision in ("flare", "progression", "uncertain"):
        n = int(counts.get(decision, 0))
        assert rows[f"decision {decision}"] == [str(n), f"{n / len(scores):.1%}"]


def test_score_summary_plural_chunks(tmp_path):
    text = _score(tmp_path, 6, "scores.csv", chunk_rows=40)
    match = re.search(r"read in (\d+) chunks\)", text)
    assert match and int(match.group(1)) > 1


def test_summary_table_lists_every_decision_even_when_absent():
    summary = ScoreSummary(Path("s.csv"), rows=3, patients=1, index_rows=1, decisions={"flare": 1})
    table = summary.to_rich_table()
    items = list(table.columns[0].cells)
    shares = list(table.columns[2].cells)
    assert items[-3:] == ["decision flare", "decision progression", "decision uncertain"]
    assert shares[-3:] == ["100.0%", "0.0%", "0.0%"]


def test_csv_p_flare_has_six_significant_digits_parquet_full(tmp_path):
    source = write_table(scoring_cohort(30, seed=2), tmp_path / "cohort.parquet")
    score_file(small_bundle(), source, tmp_path / "s.csv", with_reasons=False)
    score_file(small_bundle(), source, tmp_path / "s.parquet", with_reasons=False)
    full = pd.read_parquet(tmp_path / "s.parquet")["p_flare"].to_numpy()
    raw = pd.read_csv(tmp_path / "s.csv", dtype={"p_flare": str})["p_flare"]
    assert raw.map(lambda v: len(v.lstrip("0.").replace(".", "").split("e")[0])).max() <= 6
    written = raw.astype(float).to_numpy()
    np.testing.assert_allclose(written, full, rtol=5e-6, atol=0)
    assert not np.array_equal(written, full)  # Parquet keeps more than CSV
    np.testing.assert_array_equal(written, [float(f"{v:.6g}") for v in full])


def test_loading_a_runs_uri_prints_no_download_progress(mlflow_store, capfd, monkeypatch):
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    client = mlflow.MlflowClient(tracking_uri=str(mlflow_store["uri"]))
    run_id = client.search_model_versions(f"name='{REGISTERED_NAME}'")[0].run_id
    saved_path, saved_uri = list(sys.path), mlflow.get_tracking_uri()
    try:
        bundle = load_bundle(f"runs:/{run_id}/model", tracking_uri=str(mlflow_store["uri"]))
    finally:  # loading prepends the model's code folder and sets the tracking store
        sys.path[:] = saved_path
        mlflow.set_tracking_uri(saved_uri)
    captured = capfd.readouterr()
    assert bundle.threshold == small_bundle().threshold
    assert "Downloading artifacts" not in captured.err + captured.out
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ  # environment restored


def test_a_missing_default_store_is_an_error_that_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    write_table(scoring_cohort(5, seed=3), tmp_path / "cohort.csv")
    result = CliRunner().invoke(app, ["score", "--input", "cohort.csv", "--output", "out.csv"])
    assert result.exit_code == 2
    assert "no tracking store" in result.output
    assert "Traceback" not in result.output
    # no empty mlflow.db created, no output written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.csv"]
