"""Experiments: config validation, every kind end to end on tiny cohorts, reproducibility.

Each experiment runs in a temporary folder with a temporary SQLite MLflow store; the tiny
configs (tens of patients, one tuning candidate, few trees, few bootstrap resamples) keep
the whole module well under a minute.
"""

from __future__ import annotations

import ast
import math
import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from flare_ml.bundle import FlareModelBundle
from flare_ml.cases import (
    CASES,
    breast_cdk46_timeline,
    breast_endocrine_timeline,
    breast_osteoblastic_progression_timeline,
)
from flare_ml.cli import app
from flare_ml.data import validate_timepoints
from flare_ml.errors import ConfigError
from flare_ml.experiments import (
    cohort_label,
    load_experiment,
    run_experiment,
    site_with_overrides,
)
from flare_ml.experiments.config import KINDS, CohortSpec, resolve_train_config
from flare_ml.experiments.context import Context
from flare_ml.experiments.kinds import REGISTRY
from flare_ml.experiments.render import RENDERERS
from flare_ml.experiments.render.document import TITLES
from flare_ml.explain import SIGNALS
from flare_ml.training import make_model

TINY_TRAINING = {
    "model": {"n_jobs": 1, "n_candidates": 1, "inner_folds": 2, "n_estimators_max": 30}
}

TINY_ROBUSTNESS = {
    "kind": "robustness",
    "experiment_name": "flare-ml-test-robustness",
    "seed": 3,
    "description": "Two conditions on tiny cohorts (test).",
    "bootstrap_resamples": 40,
    "training": TINY_TRAINING,
    "params": {
        "train": {"site": "default", "patients": 120, "seed": 1},
        "external": {"site": "default", "patients": 100, "seed": 4},
        "conditions": [
            {"name": "reference", "group": "reference"},
            {
                "name": "ALP missing 60%",
                "group": "ALP missing",
                "train": {"labs": {"missing_fraction": 0.6}},
                "external": {"labs": {"missing_fraction": 0.6}},
            },
        ],
    },
}

#: the other kinds, each as small as it can be while still training real models
TINY_OTHERS = {
    "headline": {
        "params": {
            "train": {"site": "default", "patients": 150, "seed": 1},
            "external": [{"site": "community", "patients": 100, "seed": 2}],
        },
        "training": {"model": {**TINY_TRAINING["model"], "outer_folds": 2}},
    },
    "ablations": {
        "params": {
            "train": {"site": "default", "patients": 120, "seed": 1},
            "external": {"site": "community", "patients": 100, "seed": 2},
            "signals": ["ALP course", "clinical course"],
        },
    },
    "learning_curve": {
        "params": {
            "sizes": [60, 120],
            "replicates": 2,
            "external": {"site": "community", "patients": 100, "seed": 2},
        },
    },
    "literature_cases": {
        "params": {
            "train": {"site": "default", "patients": 150, "seed": 1},
            "cases": ["nsclc_seed_case", "breast_osteoblastic_progression"],
        },
        "training": {"model": {**TINY_TRAINING["model"], "outer_folds": 2}},
    },
}


def write(folder: Path, name: str, config: dict) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def error_of(folder: Path, config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_experiment(write(folder, "bad", config))
    return str(info.value)


# --- validation ------------------------------------------------------------------------


def test_unknown_top_level_key_is_named(tmp_path):
    message = error_of(tmp_path, {**TINY_ROBUSTNESS, "sead": 4})
    assert "sead: unknown key" in message
    assert "bad.yaml" in message


def test_unknown_params_key_is_named(tmp_path):
    params = {**TINY_ROBUSTNESS["params"], "trian": {}}
    assert "params.trian: unknown key" in error_of(tmp_path, {**TINY_ROBUSTNESS, "params": params})


def test_unknown_key_in_a_condition_is_named(tmp_path):
    params = dict(TINY_ROBUSTNESS["params"])
    params["conditions"] = [{"name": "x", "extrnal": {}}]
    message = error_of(tmp_path, {**TINY_ROBUSTNESS, "params": params})
    assert "params.conditions.0.extrnal: unknown key" in message


def test_unknown_or_invalid_training_override_is_named(tmp_path):
    bad = {**TINY_ROBUSTNESS, "training": {"model": {"n_job": 1}}}
    assert "training.model.n_job: unknown key" in error_of(tmp_path, bad)
    bad = {**TINY_ROBUSTNESS, "training": {"model": {"outer_folds": 1}}}
    assert "training.model.outer_folds" in error_of(tmp_path, bad)


def test_bad_site_override_is_named_with_its_cohort(tmp_path):
    params = dict(TINY_ROBUSTNESS["params"])
    params["train"] = {**params["train"], "overrides": {"labs": {"missing_fraktion": 0.2}}}
    message = error_of(tmp_path, {**TINY_ROBUSTNESS, "params": params})
    assert "params.train" in message and "labs.missing_fraktion: unknown key" in message
    params["train"]["overrides"] = {"labs": {"missing_fraction": 1.5}}
    message = error_of(tmp_path, {**TINY_ROBUSTNESS, "params": params})
    assert "labs.missing_fraction" in message and "less than or equal to 1" in message


def test_unknown_kind_site_and_signal_are_named(tmp_path):
    assert "kind:" in error_of(tmp_path, {**TINY_ROBUSTNESS, "kind": "sweep"})
    params = {**TINY_ROBUSTNESS["params"], "external": {"site": "mars", "patients": 50}}
    assert "unknown site 'mars'" in error_of(tmp_path, {**TINY_ROBUSTNESS, "params": params})
    ablation = {**TINY_ROBUSTNESS, "kind": "ablations", "params": {"signals": ["ALP"]}}
    assert "params.signals" in error_of(tmp_path, ablation)


def test_site_with_overrides_merges_blocks_and_replaces_distributions():
    profile = site_with_overrides("default", {"schedule": {"scan_interval_days": 84}})
    assert profile.schedule.scan_interval_days == 84
    assert profile.schedule.lab_interval_days == 21  # the rest of the block is kept
    mix = {"nsclc": 0.85, "breast": 0.05, "prostate": 0.05, "other": 0.05}
    assert site_with_overrides("default", {"case_mix": {"values": mix}}).case_mix.values == mix
    with pytest.raises(ConfigError, match="sum to 1"):
        site_with_overrides("default", {"case_mix": {"values": {"nsclc": 0.5}}})


def test_cohort_label_names_site_size_seed_and_overrides():
    spec = CohortSpec(
        site="nordic", patients=300, seed=7, overrides={"label_noise": {"value": 0.1}}
    )
    assert (
        cohort_label(spec) == "simulated site nordic (300 patients, seed 7; label_noise.value=0.1)"
    )


def test_cli_reports_a_bad_config_with_status_2(tmp_path):
    path = write(tmp_path, "bad", {**TINY_ROBUSTNESS, "sead": 4})
    result = CliRunner().invoke(app, ["experiment", "run", str(path)])
    assert result.exit_code == 2
    assert "sead: unknown key" in result.output


# --- the breast timelines --------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [breast_endocrine_timeline, breast_cdk46_timeline, breast_osteoblastic_progression_timeline],
)
def test_breast_timelines_match_the_study_summary(build):
    timeline = build()
    validate_timepoints(timeline)
    index = timeline[timeline["new_bone_lesions"].fillna(0) > 0]
    assert index["outcome"].tolist() == ["flare", "progression"]
    days = (index["assessment_date"] - index["treatment_start_date"]).dt.days.tolist()
    assert math.isclose(days[0] / 30.44, 1.73, abs_tol=0.02)
    assert math.isclose((days[1] - days[0]) / 30.44, 14.27, abs_tol=0.02)
    baseline_alp = timeline["alp_u_l"].iloc[0]
    assert (index["alp_u_l"] - baseline_alp).tolist() == [-20.0, 33.0]
    assert index["new_lesion_morphology"].iloc[0] == "blastic"
    assert set(index["extraosseous_response"].iloc[:1]) <= {"PR", "SD"}
    assert str(timeline["cancer_type"].iloc[0]) == "breast"
    assert build in CASES.values()


# --- end to end ------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def _mlflow_artifacts_outside_the_checkout(tmp_path_factory):
    """Run in a temporary folder: MLflow puts a new experiment's artifacts in ./mlruns."""
    cwd = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(cwd)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("experiments")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    path = write(folder, "tiny_robustness", TINY_ROBUSTNESS)
    runner = CliRunner()
    first = runner.invoke(app, ["experiment", "run", str(path), "--tracking-uri", uri])
    assert first.exit_code == 0, first.output
    results = folder / "results" / "tiny_robustness.md"
    text = results.read_text()
    second = runner.invoke(app, ["experiment", "run", str(path), "--tracking-uri", uri])
    assert second.exit_code == 0, second.output
    return {"folder": folder, "uri": uri, "results": results, "first": text}


@pytest.mark.slow
def test_tiny_experiment_writes_a_table_naming_its_cohorts(tiny_run):
    text = tiny_run["first"]
    assert "| group | condition | XGBoost |" in text
    assert "| ALP missing | ALP missing 60% |" in text
    assert "simulated site default (120 patients, seed 1; labs.missing_fraction=0.6)" in text
    assert "config digest | `sha256:" in text
    assert "flare-ml experiment run" in text and "tiny_robustness.yaml" in text
    assert "Synthetic cohorts, not for clinical use" in text


@pytest.mark.slow
def test_rerun_reproduces_the_results_file_byte_for_byte(tiny_run):
    assert tiny_run["results"].read_text() == tiny_run["first"]


@pytest.mark.slow
def test_each_run_is_a_parent_run_with_a_nested_run_per_condition(tiny_run):
    client = mlflow.MlflowClient(tracking_uri=tiny_run["uri"])
    experiment = client.get_experiment_by_name("flare-ml-test-robustness")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 2 and len(children) == 4  # two runs x two conditions
    assert {r.info.run_name for r in children} == {"reference", "ALP missing 60%"}
    child = children[0]
    assert child.data.metrics["xgboost.auroc"] > 0.5
    assert "xgboost.auroc_ci_low" in child.data.metrics
    assert parents[0].data.params["kind"] == "robustness"
    assert parents[0].data.tags["flare_ml.config_digest"][:16] in tiny_run["first"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(TINY_OTHERS))
def test_every_kind_runs_end_to_end(kind, tiny_run):
    config = {
        "kind": kind,
        "experiment_name": f"flare-ml-test-{kind}",
        "seed": 5,
        "bootstrap_resamples": 30,
        "training": TINY_TRAINING,
        **TINY_OTHERS[kind],
    }
    path = write(tiny_run["folder"], f"tiny_{kind}", config)
    results = run_experiment(path, tracking_uri=tiny_run["uri"])
    text = results.read_text()
    assert results == tiny_run["folder"] / "results" / f"tiny_{kind}.md"
    assert text.count("\n|---") >= 2  # the header table and at least one results table
    assert "simulated site" in text


# --- layout ----------------------------------------------------------------------------

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "flare_ml" / "experiments"
#: modules that compute (numbers, evaluations, MLflow records) and never render or run
COMPUTATION = ("config", "outputs", "context", "readout", "registry", "kinds")
ABOVE_COMPUTATION = ("flare_ml.experiments.render", "flare_ml.experiments.runner")


def _modules() -> dict[str, ast.Module]:
    return {
        path.relative_to(PACKAGE).with_suffix("").as_posix(): ast.parse(path.read_text())
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _imported(tree: ast.Module) -> list[tuple[str, ast.AST]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, node))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
    return found


def test_every_kind_is_registered_rendered_and_titled():
    assert set(REGISTRY) == set(RENDERERS) == set(TITLES) == set(KINDS)


def test_experiment_modules_import_at_module_top_only():
    for name, tree in _modules().items():
        top = {id(node) for node in tree.body}
        late = [module for module, node in _imported(tree) if id(node) not in top]
        assert not late, f"{name} imports {late} inside a function"


def test_experiment_modules_import_siblings_not_the_package():
    for name, tree in _modules().items():
        if name == "__init__":
            continue
        roots = [m for m, _ in _imported(tree) if m == "flare_ml.experiments"]
        assert not roots, f"{name} imports the package __init__"


def test_computation_never_imports_rendering_or_the_runner():
    for name, tree in _modules().items():
        if name.split("/")[0] not in COMPUTATION:
            continue
        upward = [m for m, _ in _imported(tree) if m.startswith(ABOVE_COMPUTATION)]
        assert not upward, f"{name} (computation) imports {upward}"


def test_experiment_models_are_scored_through_the_bundle(tmp_path):
    config = load_experiment(write(tmp_path, "tiny", TINY_ROBUSTNESS))
    ctx = Context(config, resolve_train_config(config, str(tmp_path / "tiny.yaml")))
    cohort = ctx.cohort(CohortSpec(site="default", patients=80, seed=1)).prepared
    dropped = list(SIGNALS["ALP course"])
    bundle = ctx.fit(cohort, drop=dropped)
    assert isinstance(bundle, FlareModelBundle)
    assert not set(dropped) & set(bundle.feature_names)
    model = make_model(ctx.train_config).fit(
        cohort.features.drop(columns=dropped), cohort.y, groups=cohort.patient_ids
    )
    expected = model.predict_proba(cohort.features)[:, 1]
    assert np.allclose(ctx.scores(cohort, bundle)["xgboost"], expected, atol=1e-9)


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("learning_curve", {"sizes": [300, 100]}),
        ("coverage", {"labelled": {"sizes": [100, 100]}}),
    ],
)
def test_experiment_sizes_must_be_distinct_and_ascending(kind, params):
    from pydantic import ValidationError

    from flare_ml.experiments.config import load_params

    with pytest.raises(ValidationError, match="distinct and ascending"):
        load_params(kind, params)
