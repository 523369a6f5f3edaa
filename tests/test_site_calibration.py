"""Recalibrating the conformal thresholds on a site: cross-fitted coverage, the new
bundle, its metadata, bad input and the ``flare-ml calibrate`` command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flare_ml.bundle import FlareModelBundle
from flare_ml.cli import app
from flare_ml.errors import ContractError, FlareMLError
from flare_ml.simulate import simulate_cohort, write_cohort
from flare_ml.site_calibration import calibrate_to_site, site_coverage_estimate
from flare_ml.training import fit_bundle
from flare_ml.uncertainty import (
    ClassConditionalConformal,
    _conformal_quantile,
    coverage_report,
    cross_fitted_sets,
    min_calibration_cases,
)


def _scores(n: int, seed: int, centre: float, spread: float, sd: float):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(int)
    p = np.clip(rng.normal(centre + spread * y, sd), 0, 1)
    return p, y


# -- conformal arithmetic ----------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(coverage=st.floats(0.5, 0.97))
def test_min_calibration_cases_is_the_smallest_finite_threshold(coverage):
    n = min_calibration_cases(coverage)
    scores = np.linspace(0, 1, n)
    assert np.isfinite(_conformal_quantile(scores, coverage))
    assert _conformal_quantile(scores[:-1], coverage) == float("inf")


@pytest.mark.parametrize("coverage", [0.8, 0.9])
def test_cross_fitted_sets_reach_the_target_on_exchangeable_cases(coverage):
    p, y = _scores(6000, seed=1, centre=0.35, spread=0.3, sd=0.2)
    groups = np.repeat(np.arange(3000), 2)  # two cases per patient
    report = coverage_report(cross_fitted_sets(p, y, groups, coverage), y)
    for key in ("coverage_flare", "coverage_progression"):
        assert abs(report[key] - coverage) <= 0.02, (key, report)


def test_site_thresholds_fix_coverage_that_transported_thresholds_miss():
    """Scores shifted at the site: training thresholds miss, site-calibrated ones do not."""
    p_train, y_train = _scores(4000, seed=2, centre=0.35, spread=0.3, sd=0.2)
    p_site, y_site = _scores(4000, seed=3, centre=0.45, spread=0.2, sd=0.25)
    transported = coverage_report(
        ClassConditionalConformal(0.9).fit(p_train, y_train).predict_sets(p_site), y_site
    )
    site = site_coverage_estimate(p_site, y_site, np.arange(4000), 0.9)
    assert max(abs(transported[k] - 0.9) for k in ("coverage_flare", "coverage_progression")) > 0.04
    for key in ("coverage_flare", "coverage_progression"):
        assert abs(site[key] - 0.9) <= 0.02, (key, site)


def test_a_patient_never_calibrates_their_own_set():
    """Each fold's sets equal a conformal fitted on the other patients only."""
    from flare_ml.model_selection import grouped_folds

    p, y = _scores(900, seed=4, centre=0.35, spread=0.3, sd=0.2)
    groups = np.repeat(np.arange(300), 3)
    sets = cross_fitted_sets(p, y, groups, 0.9, n_folds=3, seed=7)
    for fit_rows, held_out in grouped_folds(y, groups, 3, 7):
        assert set(groups[fit_rows]).isdisjoint(groups[held_out])
        own = ClassConditionalConformal(0.9).fit(p[fit_rows], y[fit_rows])
        np.testing.assert_array_equal(sets[held_out], own.predict_sets(p[held_out]))


# -- a real model recalibrated on a simulated site ------------------------------------------
@pytest.fixture(scope="module")
def bundle() -> FlareModelBundle:
    return fit_bundle(simulate_cohort(600, seed=3).timepoints, n_candidates=1, outer_folds=2)


@pytest.fixture(scope="module")
def site_table() -> pd.DataFrame:
    return simulate_cohort(800, site="community", seed=11).timepoints


def test_only_the_conformal_thresholds_and_the_decision_threshold_change(bundle, site_table):
    before = dict(bundle.conformal.thresholds_)
    site = calibrate_to_site(bundle, site_table, label="community test")
    assert bundle.conformal.thresholds_ == before  # the original model is untouched
    old, new = bundle.predict(site_table), site.bundle.predict(site_table)
    np.testing.assert_array_equal(old["p_flare"], new["p_flare"])
    assert (old["reasons"] == new["reasons"]).all()
    # the operating threshold follows the new decision (one policy), same budget
    assert site.bundle.threshold == site.bundle.conformal.flare_threshold()
    assert site.bundle.budget == bundle.budget
    features = bundle.features(site_table)
    y = (
        site_table.set_index(["patient_id", "assessment_date"])["outcome"]
        .reindex(features.index)
        .eq("flare")
        .to_numpy(dtype=int)
    )
    expected = ClassConditionalConformal(bundle.conformal.class_coverage).fit(
        bundle.proba_from_features(features), y
    )
    assert site.thresholds == expected.thresholds_
    assert site.n_calibration == {"flare": int(y.sum()), "progression": int((1 - y).sum())}


def test_decisions_follow_the_new_thresholds(bundle, site_table):
    site = calibrate_to_site(bundle, site_table)
    out = site.bundle.predict(site_table, with_reasons=False)
    t = site.thresholds
    has_flare = (1 - out["p_flare"]) <= t["flare"]
    has_prog = out["p_flare"] <= t["progression"]
    expected = np.where(
        has_flare & ~has_prog, "flare", np.where(has_prog & ~has_flare, "progression", "uncertain")
    )
    assert out["decision"].tolist() == expected.tolist()


def test_reports_transported_and_cross_fitted_coverage(bundle, site_table):
    site = calibrate_to_site(bundle, site_table, seed=3)
    features = bundle.features(site_table)
    p = bundle.proba_from_features(features)
    y = (
        site_table.set_index(["patient_id", "assessment_date"])["outcome"]
        .reindex(features.index)
        .eq("flare")
        .to_numpy(dtype=int)
    )
    assert site.transported == coverage_report(bundle.conformal.predict_sets(p), y)
    patients = features.index.get_level_values("patient_id").astype(str).to_numpy()
    coverage = bundle.conformal.class_coverage
    assert site.cross_fitted == site_coverage_estimate(p, y, patients, coverage, seed=3)
    summary = site.summary()
    assert list(summary.columns) == ["overall", "flare", "progression", "uncertain"]
    assert len(summary) == 2


def test_metadata_records_the_site_but_no_rows_and_survives_saving(bundle, site_table, tmp_path):
    site = calibrate_to_site(bundle, site_table, coverage=0.8, label="community test")
    meta = site.bundle.metadata
    assert meta["conformal_calibration"] == "site"
    assert meta["site_calibration"]["label"] == "community test"
    assert meta["site_calibration"]["n_calibration"] == site.n_calibration
    text = json.dumps(meta, default=str)
    ids = site_table["patient_id"].astype(str).unique()
    assert not [i for i in ids[:300] if f'"{i}"' in text]
    again = FlareModelBundle.load(site.bundle.save(tmp_path / "site"))
    assert again.conformal.class_coverage == {"flare": 0.8, "progression": 0.8}
    assert again.conformal.thresholds_ == site.thresholds


def test_too_few_cases_of_one_outcome_is_refused_naming_the_column(bundle, site_table):
    flare_patients = site_table.loc[site_table["outcome"] == "flare", "patient_id"].unique()
    few = site_table[~site_table["patient_id"].isin(flare_patients[3:])]
    with pytest.raises(FlareMLError, match=r"column 'outcome'.*too few.*flare.*at least 9"):
        calibrate_to_site(bundle, few)


def test_an_index_row_without_outcome_is_refused(bundle, site_table):
    broken = site_table.copy()
    broken.loc[broken["outcome"].notna().idxmax(), "outcome"] = None
    with pytest.raises(ContractError, match="outcome"):
        calibrate_to_site(bundle, broken)


# -- the command ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(bundle, site_table, tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrate")
    model = bundle.save(root / "model")
    site = write_cohort(simulate_cohort(800, site="community", seed=11), root / "site.parquet")
    return {"root": root, "model": model, "site": site["timepoints"]}


def _calibrate(files, out, *options: str, data=None):
    """``flare-ml calibrate`` of the module's model on the site table (or ``data``)."""
    data = files["site"] if data is None else data
    return CliRunner().invoke(
        app,
        [
            "calibrate",
            "--model",
            str(files["model"]),
            "--data",
            str(data),
            "--out",
            str(out),
            *options,
        ],
    )


def test_calibrate_command_writes_a_usable_model(files):
    out = files["root"] / "site-model"
    result = _calibrate(files, out)
    assert result.exit_code == 0, result.output
    assert "shipped (training thresholds)" in result.output
    assert "recalibrated on the site (cross-fitted)" in result.output
    assert FlareModelBundle.load(out).metadata["conformal_calibration"] == "site"
    scored = CliRunner().invoke(
        app,
        [
            "score",
            "--model",
            str(out),
            "--input",
            str(files["site"]),
            "--output",
            str(files["root"] / "scores.csv"),
            "--no-reasons",
        ],
    )
    assert scored.exit_code == 0, scored.output


def test_calibrate_registers_in_mlflow_when_asked(files, tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    result = _calibrate(files, tmp_path / "m", "--register", "flare-classifier-community")
    assert result.exit_code == 0, result.output
    client = mlflow.MlflowClient(tracking_uri=uri)
    versions = client.search_model_versions("name='flare-classifier-community'")
    assert [str(v.version) for v in versions] == ["1"]


def test_calibrate_bad_data_exits_2_and_writes_nothing(files, site_table):
    broken = site_table.copy()
    broken["outcome"] = broken["outcome"].where(broken["outcome"] != "flare", None)
    path = files["root"] / "no_flare_outcomes.csv"
    broken.to_csv(path, index=False)
    out = files["root"] / "never"
    result = _calibrate(files, out, data=path)
    assert result.exit_code == 2
    assert "outcome" in result.output and "Traceback" not in result.output
    assert not out.exists()
    assert not list(files["root"].glob(".never-*"))


def test_calibrate_refuses_to_overwrite_a_folder_that_is_not_a_model(files):
    other = files["root"] / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    result = _calibrate(files, other)
    assert result.exit_code == 2
    assert "not a flare-ml model folder" in result.output
    assert (other / "keep.txt").read_text() == "mine"


def test_no_outcomes_at_all_is_refused_naming_the_column(bundle, site_table):
    with pytest.raises(FlareMLError, match=r"column 'outcome'.*no outcomes"):
        calibrate_to_site(bundle, site_table.drop(columns=["outcome"]))


def test_labels_left_indeterminate_are_refused_naming_the_bias(bundle, site_table):
    from flare_ml.labels import adjudicate

    labelled = adjudicate(site_table.drop(columns=["outcome"])).table
    indeterminate = labelled["label_reason"].notna() & labelled["outcome"].isna()
    assert indeterminate.any() and labelled["outcome"].notna().any()
    with pytest.raises(FlareMLError, match=r"left indeterminate by flare-ml label.*budget"):
        calibrate_to_site(bundle, labelled)


def test_fingerprint_and_expected_spread(bundle, site_table):
    site = calibrate_to_site(bundle, site_table)
    data = site.bundle.metadata["site_calibration"]["data"]
    assert data["n_patients"] == site_table["patient_id"].nunique() and len(data["sha256"]) == 64
    spread = site.expected_spread()
    coverage = site.bundle.conformal.class_coverage  # flare 0.90, progression 0.95
    for key, n in site.n_calibration.items():
        assert spread[key] == pytest.approx(np.sqrt(coverage[key] * (1 - coverage[key]) / n))
    assert spread["flare"] > spread["progression"]  # fewer flares, wider spread


def test_calibrate_never_replaces_a_model_silently(files):
    same = _calibrate(files, files["model"], "--force")
    assert same.exit_code == 2 and "is the model being recalibrated" in same.output
    out = files["root"] / "replace-me"
    assert _calibrate(files, out).exit_code == 0
    again = _calibrate(files, out)
    assert again.exit_code == 2 and "--force" in again.output
    forced = _calibrate(files, out, "--force", "--max-flare-called-progression", "0.2")
    assert forced.exit_code == 0, forced.output
    budget = FlareModelBundle.load(out).budget
    assert budget.max_flare_called_progression == 0.2
    assert budget.max_progression_called_flare == 0.05  # the model's own share kept


def test_calibrated_model_folder_follows_the_umask(files):
    import os
    import stat

    old = os.umask(0o022)
    try:
        out = files["root"] / "readable"
        result = _calibrate(files, out)
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
