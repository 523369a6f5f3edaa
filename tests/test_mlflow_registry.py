"""The registered model says what it is: description, tags, alias; the parent run's headline.

The session model (``mlflow_store``, registered by :func:`flare_ml.serving.flavor.log_model`)
must carry a description naming its simulated training cohort and tags with the commit and
version; a training run logged by :func:`flare_ml.tracking.log_training_run` (the session's
small training, logged twice into a throw-away store, the second time with the alias
``champion``) must tag its version with the config digest, point the alias at it, load
through ``models:/flare-classifier@champion`` and put the headline metrics on the parent run.
The last tests check :func:`~flare_ml.serving.flavor.git_commit` outside a repository and the
session's check that no test leaves an MLflow store in the checkout.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

import flare_ml
from conftest import STRAY_STORES, store_state, stray_stores
from flare_ml.cli import app
from flare_ml.serving.flavor import REGISTERED_MODEL_DESCRIPTION, git_commit
from flare_ml.tracking import cohort_key, config_digest, log_training_run
from serving_helpers import (
    REGISTERED_NAME,
    TRAIN_PATIENTS,
    TRAIN_SEED,
    bundle_copy,
    scoring_cohort,
    small_bundle,
    small_training,
)

TRAINING_COHORT = f"simulated site default ({TRAIN_PATIENTS} patients, seed {TRAIN_SEED})"


def _expected_commit() -> str:
    """HEAD of the checkout that holds the imported package, or "unknown"."""
    package = Path(flare_ml.__file__).resolve().parent
    found = subprocess.run(
        ["git", "-C", str(package), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return found.stdout.strip() if found.returncode == 0 else "unknown"


def _latest_version(client: mlflow.MlflowClient) -> object:
    versions = client.search_model_versions(f"name='{REGISTERED_NAME}'")
    return max(versions, key=lambda v: int(v.version))


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The session training logged twice to a fresh store; the second run sets champion."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    result = small_training()
    cfg = result.config.model_copy(
        update={
            "experiment_name": "registry-tests",
            "tracking": result.config.tracking.model_copy(update={"tracking_uri": uri}),
        }
    )
    result = dataclasses.replace(result, config=cfg)
    bundle_dir = bundle_copy(root / "bundle")
    previous, saved_path, cwd = mlflow.get_tracking_uri(), list(sys.path), Path.cwd()
    os.chdir(root)  # a new experiment's artifacts go to ./mlruns: here, not the checkout
    try:
        first = log_training_run(result, bundle_dir, {}, {})
        second = log_training_run(result, bundle_dir, {}, {}, alias="champion")
    finally:
        os.chdir(cwd)
        mlflow.set_tracking_uri(previous)
        sys.path[:] = saved_path
    return {"root": root, "uri": uri, "result": result, "runs": (first, second)}


def test_session_version_describes_its_simulated_training_cohort(mlflow_store):
    client = mlflow.MlflowClient(tracking_uri=str(mlflow_store["uri"]))
    version = _latest_version(client)
    counts = small_bundle().metadata["training"]
    text = version.description
    assert TRAINING_COHORT in text
    assert "simulated data" in text and "not for clinical use" in text
    assert f"{counts['n_patients']} patients" in text
    assert f"with {counts['n_index_rows']} index rows, {counts['n_flare']} flares and " in text
    assert f"{counts['n_progression']} progressions as outcomes" in text
    assert f"decision = flare when P(flare) >= {small_bundle().threshold:.3f}" in text
    assert small_bundle().budget.describe() in text
    tags = version.tags
    assert tags["flare_ml.version"] == flare_ml.__version__
    assert tags["flare_ml.git_commit"] == _expected_commit()
    assert tags["flare_ml.training_cohort"] == TRAINING_COHORT
    assert tags["flare_ml.training_site"] == "default"
    assert tags["flare_ml.training_patients"] == str(counts["n_patients"])
    assert tags["flare_ml.training_index_rows"] == str(counts["n_index_rows"])
    assert tags["flare_ml.data"] == "synthetic"
    model = client.get_registered_model(REGISTERED_NAME)
    assert model.description == REGISTERED_MODEL_DESCRIPTION
    assert {k: model.tags.get(k) for k in tags} == tags


def test_training_run_tags_the_config_digest_and_states_the_error_budget(tracked):
    client = mlflow.MlflowClient(tracking_uri=str(tracked["uri"]))
    cfg = tracked["result"].config
    digest = config_digest(cfg)
    first, second = tracked["runs"]
    assert first["config_digest"] == second["config_digest"] == digest
    for run in (first, second):
        version = client.get_model_version(REGISTERED_NAME, run["registered_version"])
        assert version.tags["flare_ml.config_digest"] == digest
        assert version.run_id == run["run_id"]
        assert client.get_run(run["run_id"]).data.tags["flare_ml.config_digest"] == digest
        budget = cfg.decision_policy.budget()
        assert budget.describe() in version.description
        assert TRAINING_COHORT in version.description
    # another config, another digest
    other = cfg.model_copy(update={"seed": cfg.seed + 1})
    assert config_digest(other) != digest


def test_alias_champion_points_at_the_version_registered_with_it(tracked):
    client = mlflow.MlflowClient(tracking_uri=str(tracked["uri"]))
    first, second = tracked["runs"]
    assert (first["alias"], second["alias"]) == ("", "champion")
    assert int(second["registered_version"]) == int(first["registered_version"]) + 1
    champion = client.get_model_version_by_alias(REGISTERED_NAME, "champion")
    assert str(champion.version) == second["registered_version"]
    assert champion.run_id == second["run_id"]
    first_version = client.get_model_version(REGISTERED_NAME, first["registered_version"])
    assert not first_version.aliases


def test_score_loads_the_champion_alias(tracked, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(tracked["uri"]))
    monkeypatch.chdir(tmp_path)
    saved_path = list(sys.path)
    cohort = scoring_cohort().drop(columns=["outcome"])
    cohort.to_csv(tmp_path / "cohort.csv", index=False)
    try:
        result = CliRunner().invoke(
            app,
            [
                "score",
                "--model",
                f"models:/{REGISTERED_NAME}@champion",
                "--input",
                str(tmp_path / "cohort.csv"),
                "--output",
                str(tmp_path / "pred.csv"),
            ],
        )
    finally:
        sys.path[:] = saved_path
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(tmp_path / "pred.csv")
    expected = small_bundle().predict(scoring_cohort())
    assert len(scored) == len(expected)
    assert scored["p_flare"].to_numpy() == pytest.approx(expected["p_flare"].to_numpy(), abs=1e-6)


def test_parent_run_carries_the_headline_metrics(tracked):
    client = mlflow.MlflowClient(tracking_uri=str(tracked["uri"]))
    result = tracked["result"]
    run = client.get_run(tracked["runs"][1]["run_id"])
    metrics, tags = run.data.metrics, run.data.tags
    externals = [label for label in result.evaluations if label.startswith("external")]
    assert externals
    for label in externals:
        prefix = cohort_key(label)
        ev = result.evaluations[label]
        for name in (
            "model_auroc",
            "model_brier",
            "model_calibration_slope",
            "model_progression_called_flare",
            "best_rule_auroc",
            "oracle_auroc",
            "model_margin_over_best_rule",
            "model_gap_to_oracle",
            "conformal_coverage",
            "conformal_coverage_flare",
            "conformal_coverage_progression",
            "conformal_uncertain_fraction",
            "site_conformal_coverage",
        ):
            key = f"{prefix}_{name}"
            assert key in metrics, key
            assert math.isfinite(metrics[key]), key
        assert metrics[f"{prefix}_model_auroc"] == pytest.approx(ev.estimate("xgboost", "auroc"))
        best = max(result.rules, key=lambda rule: ev.estimate(rule, "auroc"))
        assert tags[f"flare_ml.{prefix}_best_rule"] == best
        assert metrics[f"{prefix}_best_rule_auroc"] == pytest.approx(ev.estimate(best, "auroc"))
        assert metrics[f"{prefix}_conformal_coverage"] == pytest.approx(
            result.coverage[label]["coverage"]
        )
        # no bootstrap in the session training: no interval is logged, none is invented
        assert f"{prefix}_model_auroc_ci_low" not in metrics


def test_git_commit_outside_a_repository_or_without_git_is_unknown(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "flare_ml"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    assert git_commit(package) == "unknown"
    # inside a repository whose files do not include the package (a venv in a checkout)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "README").write_text("x")
    subprocess.run([*git, "add", "README"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    assert git_commit(package) == "unknown"
    # once the package is tracked, its commit is HEAD
    subprocess.run([*git, "add", "site-packages"], check=True)
    subprocess.run([*git, "commit", "-qm", "package"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
    assert git_commit(package) == head.stdout.strip()
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    assert git_commit(package) == "unknown"


def test_stray_store_check_sees_created_and_changed_stores(tmp_path):
    paths = (tmp_path / "mlruns", tmp_path / "mlflow.db")
    before = {path: store_state(path) for path in paths}
    assert stray_stores(before, paths) == []
    (tmp_path / "mlruns" / "0").mkdir(parents=True)
    assert stray_stores(before, paths) == [tmp_path / "mlruns"]
    (tmp_path / "mlflow.db").write_bytes(b"x")
    before = {path: store_state(path) for path in paths}
    (tmp_path / "mlruns" / "1").mkdir()
    (tmp_path / "mlflow.db").write_bytes(b"xy")
    assert stray_stores(before, paths) == list(paths)
    # the session checks the checkout's root and tests/ folder
    root = Path(__file__).resolve().parents[1]
    assert root / "mlruns" in STRAY_STORES and root / "tests" / "mlflow.db" in STRAY_STORES
