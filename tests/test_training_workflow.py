"""End to end on small simulated cohorts: train, track, register, report, evaluate, score.

One training run (module fixture) with a small config in a temporary folder and a
temporary SQLite MLflow store; the tests inspect what it produced.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from flare_ml.cli import app
from flare_ml.simulate import simulate_cohort, write_cohort
from flare_ml.train_config import load_train_config

SMALL = {
    "experiment_name": "flare-ml-test",
    "seed": 5,
    "data": {
        "train": {"site": "default", "patients": 300, "seed": 1},
        "external": [{"site": "community", "patients": 200, "seed": 2}],
    },
    "model": {"outer_folds": 2, "inner_folds": 2, "n_candidates": 2, "n_estimators_max": 60},
    "evaluation": {"bootstrap_resamples": 30},
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    cfg = dict(SMALL)
    cfg["tracking"] = {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}"}
    cfg["output_dir"] = str(root / "out")
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    old = os.environ.pop("MLFLOW_TRACKING_URI", None)
    # MLflow puts a new experiment's artifacts under ./mlruns of the working directory, as
    # `make demo` does in the project folder; here that is the temporary folder, so the
    # tests leave nothing behind in the checkout
    cwd = Path.cwd()
    os.chdir(root)
    try:
        runner = CliRunner()
        # the second run is `flare-ml demo` (what `make demo` runs): the same cohorts and
        # training, plus the simulated cohort files and the alias champion
        first = runner.invoke(app, ["train", "--config", str(path), "--alias", "staging"])
        second = runner.invoke(app, ["demo", "--config", str(path)])
        yield {
            "root": root,
            "config": path,
            "runs": (first, second),
            "uri": cfg["tracking"]["tracking_uri"],
        }
    finally:
        os.chdir(cwd)
        if old is not None:
            os.environ["MLFLOW_TRACKING_URI"] = old


def test_train_command_succeeds_and_prints_the_headline(workspace):
    first, second = workspace["runs"]
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "xgboost" in first.output and "oracle" in first.output
    assert "SYNTHETIC" in first.output


def test_each_training_registers_a_new_version(workspace):
    client = mlflow.MlflowClient(tracking_uri=workspace["uri"])
    versions = client.search_model_versions("name='flare-classifier'")
    assert sorted(int(v.version) for v in versions) == [1, 2]


def test_train_alias_demo_champion_and_the_config_digest_of_the_bundle(workspace):
    """`train --alias` and the demo's `champion` point at their versions; tags name the digest."""
    from flare_ml.bundle import FlareModelBundle
    from flare_ml.tracking import config_digest

    first, second = workspace["runs"]
    assert "models:/flare-classifier@staging" in first.output
    assert "models:/flare-classifier@champion" in second.output
    client = mlflow.MlflowClient(tracking_uri=workspace["uri"])
    staging = client.get_model_version_by_alias("flare-classifier", "staging")
    champion = client.get_model_version_by_alias("flare-classifier", "champion")
    assert (str(staging.version), str(champion.version)) == ("1", "2")
    bundle = FlareModelBundle.load(workspace["root"] / "out" / "model")
    digest = config_digest(load_train_config(workspace["config"]))
    assert bundle.metadata["config_digest"] == digest
    assert champion.tags["flare_ml.config_digest"] == digest
    assert (
        champion.tags["flare_ml.training_cohort"] == "simulated site default (300 patients, seed 1)"
    )
    assert "simulated" in champion.description


def test_parent_run_has_the_headline_with_intervals(workspace):
    mlflow.set_tracking_uri(workspace["uri"])
    runs = mlflow.search_runs(experiment_names=["flare-ml-test"], output_format="list")
    parent = next(r for r in runs if r.data.tags.get("mlflow.parentRunId") is None)
    metrics = parent.data.metrics
    for name in ("model_auroc", "best_rule_auroc", "model_calibration_slope", "model_brier"):
        low, estimate, high = (
            metrics[f"external_community_{name}{suffix}"] for suffix in ("_ci_low", "", "_ci_high")
        )
        assert low <= estimate <= high, name
    assert 0.5 < metrics["external_community_model_auroc"] <= 1.0
    assert parent.data.tags["flare_ml.external_community_best_rule"] in {
        "seed_criteria",
        "pcwg3_window",
        "alp_only",
    }


def test_parent_run_has_nested_runs_per_scorer(workspace):
    mlflow.set_tracking_uri(workspace["uri"])
    runs = mlflow.search_runs(experiment_names=["flare-ml-test"], output_format="list")
    parents = [r for r in runs if r.data.tags.get("mlflow.parentRunId") is None]
    assert len(parents) == 2
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    names = {r.data.tags["mlflow.runName"] for r in children}
    assert names == {"xgboost", "seed_criteria", "pcwg3_window", "alp_only", "oracle"}
    xgb_run = next(r for r in children if r.data.tags["mlflow.runName"] == "xgboost")
    metrics = xgb_run.data.metrics
    assert 0.5 < metrics["oof_auroc"] <= 1.0
    assert metrics["oof_auroc_ci_low"] <= metrics["oof_auroc"] <= metrics["oof_auroc_ci_high"]
    assert "external_community_calibration_slope" in metrics
    assert parent.data.params["model.outer_folds"] == str(SMALL["model"]["outer_folds"])
    assert parent.data.tags["flare_ml.data"] == "synthetic"


def test_artifacts_hold_plots_report_config_and_no_training_rows(workspace):
    mlflow.set_tracking_uri(workspace["uri"])
    runs = mlflow.search_runs(experiment_names=["flare-ml-test"], output_format="list")
    parent = next(r for r in runs if r.data.tags.get("mlflow.parentRunId") is None)
    local = Path(mlflow.artifacts.download_artifacts(run_id=parent.info.run_id))
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    for expected in (
        "config/resolved_config.yaml",
        "data/fingerprints.json",
        "report/report.html",
        "report/model_card.md",
    ):
        assert expected in files
    assert any(f.startswith("plots/") and f.endswith("_roc.png") for f in files)
    assert any(f.startswith("plots/shap_beeswarm") for f in files)
    # no patient identifier of the training cohort appears in any text artifact
    train = simulate_cohort(500, site="default", seed=1).timepoints
    ids = set(train["patient_id"].astype(str))
    for path in local.rglob("*"):
        if path.is_file() and path.suffix in {".json", ".yaml", ".md", ".html", ".csv", ".txt"}:
            text = path.read_text(errors="ignore")
            leaked = [i for i in list(ids)[:200] if i in text]
            assert not leaked, (path, leaked[:3])


def test_report_is_self_contained_and_honest(workspace):
    out = workspace["root"] / "out"
    html = (out / "report.html").read_text()
    assert "Synthetic data" in html and "not for clinical use" in html
    assert 'src="http' not in html and "<link" not in html
    assert html.count("data:image/png;base64,") >= 10
    card = (out / "model_card.md").read_text()
    for heading in (
        "## Intended use",
        "## Data",
        "## Predictors",
        "## Outcome",
        "## Missing data",
        "## Performance",
        "## Calibration",
        "## Subgroups",
        "## Limitations",
    ):
        assert heading in card
    assert "synthetic" in card.lower()
    headline = pd.read_csv(out / "headline.csv")
    assert headline["cohort"].str.contains("simulated site").all()


def test_report_opens_with_one_sentence_per_cohort_and_the_budget_verdicts(workspace):
    """The first screen: a sentence per cohort whose verdicts are the decision tables'."""
    from flare_ml.report import _THRESHOLD_PHRASES, SITE_CALIBRATED, TRANSPORTED

    out = workspace["root"] / "out"
    page = (out / "report.html").read_text()
    summary = page.split("<section id='summary'>", 1)[1].split("</section>", 1)[0]
    assert page.index("<section id='summary'>") < page.index("data:image/png")
    text = [re.sub(r"<[^>]+>", "", s) for s in re.findall(r"<li>(.*?)</li>", summary)]
    assert len(text) == 2  # the external cohort first, then training
    assert text[0].startswith("Community (external;")
    assert text[1].startswith("Training (training, out-of-fold;")
    assert all("AUROC" in s and "vs best rule" in s and "vs oracle" in s for s in text)
    severity = {"held": 0, "within sampling error": 1, "missed": 2}
    decisions = pd.read_csv(out / "decisions.csv")
    targets = pd.read_csv(out / "targets.csv")
    for (cohort, thresholds), rows in decisions.groupby(["cohort", "thresholds"], sort=False):
        worst = max(rows["status"].dropna(), key=severity.__getitem__)
        sentence = text[0] if cohort.startswith("external") else text[1]
        assert f"{_THRESHOLD_PHRASES[thresholds]}: {worst} (" in sentence
        if cohort.startswith("external"):
            missed = targets.set_index("cohort").loc[cohort, "targets missed"]
            name = {TRANSPORTED: "shipped thresholds", SITE_CALIBRATED: "recalibrated at the site"}
            assert (f"decision budget, {name[thresholds]}" in missed) == (worst == "missed")
    assert re.search(r"<th>target</th><th>goal</th><th>community</th>", summary)
    assert "Decisions against outcomes: community" in summary
    # details: external cohorts first, rules with ranking metrics only
    headline = pd.read_csv(out / "headline.csv")
    assert headline["cohort"].iloc[0].startswith("external")
    assert headline["cohort"].iloc[-1].startswith("training")
    probability_cells = ["Brier", "calibration slope", "ECE", "threshold"]
    rules = headline[headline["scorer"].isin(["seed_criteria", "pcwg3_window", "alp_only"])]
    assert len(rules) == 6 and rules[probability_cells].isna().all().all()
    assert headline[headline["scorer"] == "xgboost"][probability_cells].notna().all().all()
    # subgroups: every estimated row has intervals; small levels are flagged
    subgroups = pd.read_csv(out / "subgroups.csv")
    estimated = subgroups[subgroups["auroc"].notna()]
    for metric in ("auroc", "sensitivity", "specificity"):
        assert estimated[f"{metric}_ci_low"].notna().all(), metric
    from flare_ml.evaluation.subgroups import SMALL_N_CLASS, SMALL_N_ROWS

    fewest = subgroups[["n_flare", "n_progression"]].min(axis=1)
    small = (subgroups["n"] < SMALL_N_ROWS) | (fewest < SMALL_N_CLASS)
    assert (subgroups["small_n"] == small).all() and small.any()
    assert "<td>small n" in page
    # worked patients of the external cohort, drawn as timelines
    assert 'alt="external_community_timeline_flare_' in page


def test_coverage_is_reported_for_training_and_site_thresholds(workspace):
    """Per external cohort: shipped (transported) and site-recalibrated coverage."""
    from flare_ml.report import SITE_CALIBRATED, TRANSPORTED

    first, _ = workspace["runs"]
    assert "Conformal coverage (external)" in first.output
    coverage = pd.read_csv(workspace["root"] / "out" / "coverage.csv")
    assert sorted(coverage["thresholds"]) == sorted([TRANSPORTED, SITE_CALIBRATED])
    assert coverage["cohort"].str.startswith("external: simulated site community").all()
    # per-class targets are the error budget's: 1 - 0.10 for flare, 1 - 0.05 for progression
    assert coverage["target_flare"].eq(0.9).all()
    assert coverage["target_progression"].eq(0.95).all()
    for _, row in coverage.iterrows():
        within = all(
            abs(row[f"coverage_{k}"] - row[f"target_{k}"]) <= 0.02 for k in ("flare", "progression")
        )
        assert row["both classes within 0.02"] == ("yes" if within else "no")
    card = (workspace["root"] / "out" / "model_card.md").read_text()
    assert "flare-ml calibrate" in card and SITE_CALIBRATED in card
    mlflow.set_tracking_uri(workspace["uri"])
    runs = mlflow.search_runs(experiment_names=["flare-ml-test"], output_format="list")
    parent = next(r for r in runs if r.data.tags.get("mlflow.parentRunId") is None)
    site = coverage[coverage["thresholds"] == SITE_CALIBRATED].iloc[0]
    logged = parent.data.metrics["external_community_site_conformal_coverage_flare"]
    assert logged == pytest.approx(site["coverage_flare"], abs=5e-4)


def test_same_seed_and_config_give_identical_metrics(workspace):
    """The two CLI trainings of the workspace (same seed, same config) log the same numbers."""
    client = mlflow.MlflowClient(tracking_uri=workspace["uri"])
    experiment = client.get_experiment_by_name("flare-ml-test")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    by_name: dict[str, list] = {}
    for run in runs:
        by_name.setdefault(run.data.tags.get("mlflow.runName", ""), []).append(run.data.metrics)
    assert {name: len(found) for name, found in by_name.items() if name == "xgboost"} == {
        "xgboost": 2
    }
    for name, (first, second) in by_name.items():
        assert first, f"run {name!r} logged no metrics"
        assert first == second, name


def test_evaluate_and_score_commands_use_the_registered_model(workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", workspace["uri"])
    cohort = simulate_cohort(150, site="nordic", seed=9)
    paths = write_cohort(cohort, tmp_path / "nordic.parquet")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            "models:/flare-classifier/latest",
            "--data",
            str(paths["timepoints"]),
            "--resamples",
            "50",
            "--out",
            str(tmp_path / "eval"),
        ],
    )
    assert result.exit_code == 0, result.output
    page = (tmp_path / "eval" / "report.html").read_text()
    summary = page.split("<section id='summary'>", 1)[1].split("</section>", 1)[0]
    text = html.unescape(re.sub(r"<[^>]+>", "", summary))
    assert summary.count("<li>") == 1 and "with the model's thresholds: " in text
    assert "Decisions against outcomes" in summary and "_timeline_" in page
    assert (tmp_path / "eval" / "evaluation.md").read_text().count("vs best rule") == 1
    assert "conformal coverage" in result.output
    coverage = pd.read_csv(tmp_path / "eval" / "coverage.csv")
    assert coverage["thresholds"].tolist() == [
        "model's thresholds",
        "recalibrated on the site (cross-fitted)",
    ]
    assert coverage["coverage_flare"].between(0, 1).all()
    assert "## Conformal coverage" in (tmp_path / "eval" / "evaluation.md").read_text()
    evaluated = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    for col in ("p_flare", "decision", "prediction_set", "reasons", "outcome"):
        assert col in evaluated.columns
    assert set(evaluated["decision"]) <= {"flare", "progression", "uncertain"}
    assert evaluated["reasons"].str.contains("toward").all()
    unlabelled = cohort.timepoints.drop(columns=["outcome"])
    unlabelled.to_csv(tmp_path / "new.csv", index=False)
    result = runner.invoke(
        app,
        [
            "score",
            "--model",
            "models:/flare-classifier/latest",
            "--input",
            str(tmp_path / "new.csv"),
            "--output",
            str(tmp_path / "pred.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred.columns[:3]) == ["patient_id", "assessment_date", "p_flare"]
    assert len(pred) == int(cohort.timepoints["outcome"].notna().sum())
    assert pred["p_flare"].between(0, 1).all()


def test_bad_config_key_exits_2_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"model": {"outer_fold": 3}}))
    result = CliRunner().invoke(app, ["train", "--config", str(bad)])
    assert result.exit_code == 2
    assert "model.outer_fold: unknown key" in result.output
    assert "Traceback" not in result.output


def test_missing_model_exits_2(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    cohort = simulate_cohort(30, seed=1)
    paths = write_cohort(cohort, tmp_path / "c.csv")
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--model",
            "models:/flare-classifier/latest",
            "--input",
            str(paths["timepoints"]),
            "--output",
            str(tmp_path / "p.csv"),
        ],
    )
    assert result.exit_code == 2
    assert "cannot load model" in result.output
    assert not (tmp_path / "p.csv").exists()


def test_shipped_default_config_validates():
    cfg = load_train_config()
    assert cfg.data.train.patients >= 2000
    assert cfg.evaluation.bootstrap_resamples >= 1000
    assert len(cfg.data.external) >= 1
