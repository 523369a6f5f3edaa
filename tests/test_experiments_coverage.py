"""The ``coverage`` experiment kind: config validation, its pieces, and a tiny end-to-end run.

Whether site calibration beats the transported thresholds on a shifted site is a
statistical statement that would be flaky on the tiny cohorts a test can afford, so the
pieces' logic is tested instead: the labelled-patient split keeps patients whole, the
coverage dictionary agrees with the library functions it stands for, the domain
classifier sees shift where there is some and none where there is none.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from flare_ml.cli import app
from flare_ml.errors import ConfigError
from flare_ml.experiments import load_experiment
from flare_ml.experiments.config import CoverageParams
from flare_ml.experiments.kinds.coverage import (
    calibration_rows,
    domain_shift,
    effective_sample_size,
    labelled_patient_draws,
    site_coverage,
    within_share,
)
from flare_ml.site_calibration import site_coverage_estimate
from flare_ml.uncertainty import ClassConditionalConformal, coverage_report

TINY_COVERAGE = {
    "kind": "coverage",
    "experiment_name": "flare-ml-test-coverage",
    "seed": 7,
    "description": "Tiny cohorts (test).",
    "bootstrap_resamples": 0,
    "training": {
        "model": {
            "n_jobs": 1,
            "n_candidates": 1,
            "inner_folds": 2,
            "n_estimators_max": 30,
            "outer_folds": 2,
            # one fixed candidate that can split on a few dozen rows, so that the tiny
            # model's P(flare) is not constant and its prediction sets are not all "both"
            "search_space": {
                "max_depth": [3],
                "learning_rate": [0.1],
                "min_child_weight": [1],
                "subsample": [1.0],
                "colsample_bytree": [1.0],
                "reg_lambda": [1.0],
            },
        }
    },
    "params": {
        "train": {"site": "default", "patients": 150, "seed": 1},
        "sites": ["default", "community"],
        "patients": 150,
        "replicates": 2,
        "first_seed": 31,
        "folds": 2,
        "domain_folds": 2,
        "labelled": {
            "sites": ["community"],
            "sizes": [5, 30],
            "pool_patients": 200,
            "draws": 3,
            "first_seed": 41,
        },
    },
}


def write(folder: Path, name: str, config: dict) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def with_params(**changes: object) -> dict:
    return {**TINY_COVERAGE, "params": {**TINY_COVERAGE["params"], **changes}}


def error_of(folder: Path, config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_experiment(write(folder, "bad", config))
    return str(info.value)


# --- validation ------------------------------------------------------------------------


def test_defaults_are_embedded(tmp_path):
    minimal = {"kind": "coverage", "experiment_name": "x", "seed": 1}
    params = load_experiment(write(tmp_path, "minimal", minimal)).params
    assert isinstance(params, CoverageParams)
    assert params.sites == ["default", "community", "nordic", "thoracic"]
    assert (params.patients, params.replicates, params.folds) == (2000, 5, 5)
    assert params.labelled.sites == ["community", "nordic"]
    assert params.labelled.sizes == [100, 250, 500, 1000]


def test_shipped_experiment_file_is_valid_and_never_reuses_the_training_seed():
    params = load_experiment("experiments/coverage.yaml").params
    seeds = [spec.seed for _, _, spec in params.replicate_cohorts()]
    seeds += [spec.seed for _, _, spec in params.labelled_cohorts()]
    assert params.train.seed not in seeds
    assert len(set(seeds)) == len(seeds) == 4 * 5 + 2 * 5


def test_misspelt_keys_are_named(tmp_path):
    message = error_of(tmp_path, with_params(replicats=3))
    assert "params.replicats: unknown key" in message and "bad.yaml" in message
    labelled = {**TINY_COVERAGE["params"]["labelled"], "draw": 3}
    message = error_of(tmp_path, with_params(labelled=labelled))
    assert "params.labelled.draw: unknown key" in message


def test_unknown_site_and_bad_sizes_are_named(tmp_path):
    message = error_of(tmp_path, with_params(sites=["default", "mars"]))
    assert "params.sites" in message and "mars" in message
    labelled = {**TINY_COVERAGE["params"]["labelled"], "sizes": [30, 5]}
    assert "params.labelled.sizes" in error_of(tmp_path, with_params(labelled=labelled))


def test_a_replicate_reusing_the_training_seed_is_refused(tmp_path):
    message = error_of(tmp_path, with_params(first_seed=0))  # default replicate 2 = seed 1
    assert "seeds [1]" in message and "more than one cohort" in message


def test_replicate_seeds_are_distinct_per_site_and_replicate():
    params = CoverageParams(sites=["default", "nordic"], replicates=3, first_seed=10)
    got = [(site, r, spec.seed, spec.patients) for site, r, spec in params.replicate_cohorts()]
    assert got == [
        ("default", 0, 10, 2000),
        ("default", 1, 11, 2000),
        ("default", 2, 12, 2000),
        ("nordic", 0, 13, 2000),
        ("nordic", 1, 14, 2000),
        ("nordic", 2, 15, 2000),
    ]


# --- pieces ----------------------------------------------------------------------------


def test_labelled_split_never_puts_a_patient_on_both_sides():
    rng = np.random.default_rng(3)
    ids = np.repeat(np.array([f"P{i}" for i in range(60)]), rng.integers(1, 4, size=60))
    rng.shuffle(ids)
    order = rng.permutation(np.unique(ids))
    previous = np.zeros(len(ids), dtype=bool)
    for n in (1, 7, 30, 59):
        calib = calibration_rows(ids, order, n)
        assert set(ids[calib]).isdisjoint(ids[~calib])
        assert set(ids[calib]) == set(order[:n])
        assert (previous <= calib).all()  # nested: a larger n keeps the smaller n's patients
        previous = calib


def test_labelled_draws_count_patients_and_report_classes_below_the_minimum():
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(300), 2).astype(str)  # two index rows per patient
    p = rng.uniform(size=600)
    y = (rng.uniform(size=600) < p).astype(int)
    draws = labelled_patient_draws(p, y, ids, [3, 150], 4, 0.9, np.random.default_rng(1))
    assert [d["n"] for d in draws] == [3.0, 150.0] * 4
    for d in draws:
        assert d["calibration_rows"] == 2 * d["n"]
        assert d["calibration_rows"] + d["evaluation_rows"] == 600
    small = [d for d in draws if d["n"] == 3]
    # 6 calibration rows: fewer than 9 of each class, so both classes are in every set
    assert all(d["short_flare"] == 1.0 and d["short_progression"] == 1.0 for d in small)
    assert all(d["coverage_flare"] == 1.0 and d["uncertain_fraction"] == 1.0 for d in small)
    large = [d for d in draws if d["n"] == 150]
    assert all(d["short_flare"] == 0.0 for d in large)
    assert all(d["coverage_flare"] < 1.0 for d in large)


def test_site_coverage_matches_the_library_and_scores_the_true_outcome():
    rng = np.random.default_rng(5)
    n = 1500
    ids = (np.arange(n) // 2).astype(str)
    p = rng.uniform(size=n)
    true_y = (rng.uniform(size=n) < p).astype(int)
    flipped = rng.uniform(size=n) < 0.1
    y = np.where(flipped, 1 - true_y, true_y)
    conformal = ClassConditionalConformal(0.9).fit(rng.uniform(size=500), rng.integers(0, 2, 500))
    out = site_coverage(conformal, p, y, true_y, ids, n_folds=4, seed=2)
    transported = coverage_report(conformal.predict_sets(p), y)
    assert out["transported.recorded.coverage_flare"] == transported["coverage_flare"]
    assert out["transported.uncertain_fraction"] == transported["uncertain_fraction"]
    site = site_coverage_estimate(p, y, ids, 0.9, n_folds=4, seed=2)
    for key in ("coverage", "coverage_flare", "coverage_progression"):
        assert out[f"site.recorded.{key}"] == site[key]
    assert out["site.uncertain_fraction"] == site["uncertain_fraction"]
    truth = coverage_report(conformal.predict_sets(p), true_y)
    assert out["transported.true.coverage_progression"] == truth["coverage_progression"]
    assert out["transported.true.coverage_flare"] != out["transported.recorded.coverage_flare"]
    assert out["label_flip_share"] == pytest.approx(flipped.mean())
    assert (out["index_rows"], out["flares"]) == (n, y.sum())


def test_domain_shift_sees_shift_only_where_there_is_some():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(400, 4)), rng.normal(size=(400, 4))
    ids = np.arange(400)
    same = domain_shift(a, b, ids, ids, coverage=0.9, n_folds=3, seed=0)
    assert abs(same.auroc - 0.5) < 0.1
    assert same.trivial_share == 0.0 and same.floor_share < 0.05
    assert same.n_reference == 400
    b_shifted = b + np.array([4.0, 0, 0, 0])
    apart = domain_shift(a, b_shifted, ids, ids, coverage=0.9, n_folds=3, seed=0)
    assert apart.auroc > 0.99
    assert apart.trivial_share > 0.9 and apart.floor_share > 0.5


def test_effective_sample_size_and_within_share():
    assert effective_sample_size(np.full(7, 0.3)) == pytest.approx(7.0)
    assert effective_sample_size(np.array([1.0, 1.0, 0.0, 0.0])) == pytest.approx(2.0)
    assert effective_sample_size(np.array([3.0, 1.0])) == pytest.approx(1.6)
    assert within_share(0.9, 0.02, [0.88, 0.9195, 0.921, float("nan")]) == 0.5
    assert within_share(0.9, 0.02, [0.9, 0.9], [0.85, 0.91]) == 0.5


# --- end to end ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_coverage(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coverage")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    write(folder, "tiny_coverage", TINY_COVERAGE)
    runner = CliRunner()
    cwd = os.getcwd()
    os.chdir(folder)  # the results file names the experiment file relative to here
    try:
        args = ["experiment", "run", "tiny_coverage.yaml", "--tracking-uri", uri]
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
        text = (folder / "results" / "tiny_coverage.md").read_text()
        second = runner.invoke(app, args)
        assert second.exit_code == 0, second.output
    finally:
        os.chdir(cwd)
    return {"folder": folder, "uri": uri, "first": text}


@pytest.mark.slow
def test_tiny_coverage_writes_every_table_naming_simulated_cohorts(tiny_coverage):
    text = tiny_coverage["first"]
    for title in (
        "## Per-class coverage against the recorded outcome: transported vs site-calibrated",
        "## Per-class coverage against the true (noise-free) outcome, and label noise",
        "## Domain separability: why covariate-shift weighting is not used",
        "## How many labelled site patients: calibrating on n patients",
        "## Findings (computed from the tables above)",
    ):
        assert title in text
    assert "| simulated site default (2 x 150 patients, seeds 31-32) |" in text
    assert "| simulated site community (2 x 150 patients, seeds 33-34) |" in text
    assert "| simulated site community (2 x 200 patients, seeds 41-42) | 30 |" in text
    # every table's notes say the cohorts are simulated and name the training cohort
    assert text.count("All cohorts are SIMULATED") == 4
    assert text.count("simulated site default (150 patients, seed 1), ") == 4
    assert "| 3% | " in text and "| 5% | " in text  # label noise of default and community
    assert "flare-ml experiment run tiny_coverage.yaml" in text
    assert str(tiny_coverage["folder"]) not in text  # no absolute path


@pytest.mark.slow
def test_tiny_coverage_reports_classes_always_in_the_set(tiny_coverage):
    # five labelled patients hold fewer than 9 cases of each class: every set holds both
    rows = [
        line
        for line in tiny_coverage["first"].splitlines()
        if line.startswith("| simulated site community (2 x 200 patients") and "| 5 |" in line
    ]
    assert len(rows) == 1
    assert "| 1.000 ± 0.000 | 1.000 ± 0.000 |" in rows[0]
    assert rows[0].endswith("| 6 of 6 |")


@pytest.mark.slow
def test_tiny_coverage_rerun_is_byte_identical(tiny_coverage):
    again = (tiny_coverage["folder"] / "results" / "tiny_coverage.md").read_text()
    assert again == tiny_coverage["first"]


@pytest.mark.slow
def test_tiny_coverage_logs_a_run_per_site_and_per_size(tiny_coverage):
    client = mlflow.MlflowClient(tracking_uri=tiny_coverage["uri"])
    experiment = client.get_experiment_by_name("flare-ml-test-coverage")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 2
    names = {r.info.run_name for r in children}
    assert names == {
        "site default",
        "site community",
        "labelled community n=5",
        "labelled community n=30",
    }
    site = next(r for r in children if r.info.run_name == "site community")
    assert 0.0 <= site.data.metrics["site.recorded.coverage_flare.mean"] <= 1.0
    assert "domain.auroc.mean" in site.data.metrics
    assert parents[0].data.params["kind"] == "coverage"


def test_a_pool_too_small_for_the_sizes_is_refused_before_training(tmp_path):
    labelled = {**TINY_COVERAGE["params"]["labelled"], "pool_patients": 40, "sizes": [5, 60]}
    path = write(tmp_path, "small_pool", with_params(labelled=labelled))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = CliRunner().invoke(app, ["experiment", "run", str(path), "--tracking-uri", uri])
    assert result.exit_code == 2
    assert "params.labelled.sizes" in result.output
    assert "raise params.labelled.pool_patients" in " ".join(result.output.split())
    assert not (tmp_path / "results").exists()
