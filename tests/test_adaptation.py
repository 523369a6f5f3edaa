"""Site adaptation (``flare-ml adapt``): candidates, selection, the adapted bundle, the CLI.

The prior of most tests is the session's small model (:func:`serving_helpers.small_bundle`,
400 simulated patients of the default site). The selection tests use it with its
probability calibration refitted on a large fresh cohort of the same (default) world, so
that "same world" means a calibrated prior there. All data are simulated.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from typer.testing import CliRunner

from flare_ml.adaptation import (
    CANDIDATES,
    MONOTONE_DIRECTIONS,
    RESIDUAL_PARAMS,
    AdaptSettings,
    SiteData,
    adapt_bundle,
    choose_update,
    cross_validate_candidates,
    fit_candidate,
    predict_candidate,
    prior_slope,
    site_data,
)
from flare_ml.bundle import (
    BASE_VALUE,
    PRIOR_PREFIX,
    SITE_PREFIX,
    SITE_RECALIBRATION,
    UPDATE_BOOSTER_FILE,
    UPDATE_FILE,
    FlareModelBundle,
    MarginUpdate,
)
from flare_ml.calibration import ProbabilityCalibrator
from flare_ml.cli import app
from flare_ml.data import contract as c
from flare_ml.data import write_table
from flare_ml.errors import FlareMLError
from flare_ml.evaluation import classification_metrics
from flare_ml.features import TimepointFeaturizer, index_outcomes
from flare_ml.models import FlareXGBClassifier
from flare_ml.serving.batch import score_file
from flare_ml.simulate import simulate_cohort
from flare_ml.training import bundle_from_model
from serving_helpers import bundle_copy, small_bundle

#: the simulated site most tests adapt to
SITE_PATIENTS, SITE_SEED = 150, 3
#: quick settings for tests that need the whole procedure, not its statistical power
QUICK = AdaptSettings(folds=3, repeats=1, conformal_folds=3)


@pytest.fixture(scope="module")
def site_table() -> pd.DataFrame:
    return simulate_cohort(SITE_PATIENTS, site="community", seed=SITE_SEED).timepoints


@pytest.fixture(scope="module")
def site(site_table: pd.DataFrame) -> SiteData:
    return site_data(small_bundle(), site_table)


@pytest.fixture(scope="module")
def adaptation(site_table: pd.DataFrame):
    return adapt_bundle(small_bundle(), site_table, QUICK, label="test site")


@pytest.fixture(scope="module")
def calibrated_prior() -> FlareModelBundle:
    """The small model with its calibration refitted on 2,500 fresh default patients."""
    prior = small_bundle()
    table = simulate_cohort(2500, seed=22).timepoints
    features = prior.features(table)
    calibrator = ProbabilityCalibrator("sigmoid").fit(
        prior.raw_proba(features), index_outcomes(table).to_numpy()
    )
    return dataclasses.replace(prior, calibrator=calibrator)


def _residual_update(site: SiteData, rounds: int = 25) -> MarginUpdate:
    """A residual booster with a fixed number of rounds (selection may choose zero)."""
    names = list(site.features.columns)
    params = {
        **RESIDUAL_PARAMS,
        "learning_rate": 0.3,
        "seed": 0,
        "monotone_constraints": "(" + ",".join("0" for _ in names) + ")",
    }
    booster = xgb.train(params, site.matrix(label=True, offset=True), rounds)
    return MarginUpdate("residual_boosting", residual=booster)


def _updated_bundles(site: SiteData) -> dict[str, FlareModelBundle]:
    prior = small_bundle()
    return {
        "none": prior,
        "intercept": dataclasses.replace(prior, update=MarginUpdate("intercept", 0.8)),
        "intercept_slope": dataclasses.replace(
            prior, update=MarginUpdate("intercept_slope", -0.4, 0.6)
        ),
        "residual_boosting": dataclasses.replace(prior, update=_residual_update(site)),
    }


# --- candidates ------------------------------------------------------------------------------
def test_each_candidate_fits_and_predicts_as_its_bundle_scores(site):
    """Every candidate fits on the site; its bundle scores exactly what it predicts."""
    prior = small_bundle()
    for name in CANDIDATES:
        fitted = fit_candidate(name, site, QUICK, seed=0)
        p = predict_candidate(fitted, site)
        assert p.shape == (len(site.y),)
        assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all(), name
        if isinstance(fitted, FlareXGBClassifier):
            bundle = bundle_from_model(fitted, prior.featurizer, 0.5)
        else:
            bundle = dataclasses.replace(prior, update=fitted)
        np.testing.assert_allclose(
            bundle.proba_from_features(site.features), p, rtol=0, atol=1e-9, err_msg=name
        )
    assert fit_candidate("none", site, QUICK, seed=0) is None
    assert isinstance(fit_candidate("full_refit", site, QUICK, seed=0), FlareXGBClassifier)


def test_recalibration_recovers_a_known_intercept_and_slope():
    rng = np.random.default_rng(0)
    margin = rng.normal(scale=2.0, size=20_000)
    y = (rng.uniform(size=margin.size) < 1 / (1 + np.exp(-(0.7 + 0.6 * margin)))).astype(int)
    site = SiteData(pd.DataFrame(index=range(margin.size)), y, np.arange(margin.size), margin)
    both = fit_candidate("intercept_slope", site, QUICK, seed=0)
    assert both.intercept == pytest.approx(0.7, abs=0.05)
    assert both.slope == pytest.approx(0.6, abs=0.03)
    # the evaluation module's calibration intercept and slope are the same fits
    reference = classification_metrics(y, 1 / (1 + np.exp(-margin)))
    assert both.slope == pytest.approx(reference["calibration_slope"], abs=1e-6)
    only = fit_candidate("intercept", site, QUICK, seed=0)
    assert only.slope == 1.0
    assert only.intercept == pytest.approx(reference["calibration_intercept"], abs=1e-6)


def test_residual_boosting_learns_what_an_empty_prior_misses_in_the_literature_direction(site):
    """With a prior that knows nothing the inner CV keeps rounds; constraints hold."""
    blank = dataclasses.replace(site, prior_margin=np.zeros(len(site.y)))
    update = fit_candidate("residual_boosting", blank, QUICK, seed=0)
    assert update.residual is not None and update.residual.num_boosted_rounds() > 0
    p = predict_candidate(update, blank)
    assert np.mean(np.log(np.where(site.y == 1, p, 1 - p))) > np.log(0.5)  # beats 50:50
    # monotone: moving one constrained feature moves the correction only its way
    rows = blank.subset(np.arange(40))
    for feature, direction in MONOTONE_DIRECTIONS.items():
        values = site.features[feature].dropna()
        low = dataclasses.replace(rows, features=rows.features.assign(**{feature: values.min()}))
        high = dataclasses.replace(rows, features=rows.features.assign(**{feature: values.max()}))
        m_low = update.residual.predict(low.matrix(), output_margin=True)
        m_high = update.residual.predict(high.matrix(), output_margin=True)
        assert (direction * (m_high - m_low) >= -1e-6).all(), feature


def test_monotone_directions_agree_with_the_simulated_literature():
    """Each constrained feature differs between flares and progressions its stated way."""
    table = simulate_cohort(2000, seed=3).timepoints
    features = TimepointFeaturizer().fit_transform(table)
    y = index_outcomes(table).to_numpy()
    for feature, direction in MONOTONE_DIRECTIONS.items():
        diff = np.nanmean(features[feature][y == 1]) - np.nanmean(features[feature][y == 0])
        assert np.sign(diff) == direction, feature


# --- selection ---------------------------------------------------------------------------------
#: the selection tests leave the full refit out: it is the slowest candidate, and on these
#: sites it loses to the prior by far (see test_adapt_on_a_site_is_an_ordinary_model)
PRIOR_BASED = AdaptSettings(candidates=CANDIDATES[:4])


def test_selection_keeps_the_prior_on_a_site_of_its_own_world(calibrated_prior):
    table = simulate_cohort(300, seed=31).timepoints  # default site, fresh patients
    cv = cross_validate_candidates(site_data(calibrated_prior, table), PRIOR_BASED)
    chosen, reason = choose_update(cv.fold_losses, cv.folds)
    assert chosen == "none", (reason, cv.table)
    assert list(cv.table.index) == list(CANDIDATES[:4])
    assert cv.fold_losses["none"].shape == (PRIOR_BASED.folds * PRIOR_BASED.repeats,)


def test_selection_recalibrates_a_site_with_a_shifted_intercept(calibrated_prior):
    """A community site where half the progression-only patients are missing.

    Dropping patients by outcome (case-control sampling) shifts the log-odds of flare by
    about log 2 = 0.69 and changes nothing else: the recalibration must see it.
    """
    table = simulate_cohort(800, site="community", seed=41).timepoints
    worst = index_outcomes(table).groupby(level=c.PATIENT_ID).max()
    progression_only = worst[worst == 0].index.to_numpy()
    drop = np.random.default_rng(41).choice(progression_only, len(progression_only) // 2, False)
    shifted = table[~table[c.PATIENT_ID].isin(drop)]
    site = site_data(calibrated_prior, shifted)
    cv = cross_validate_candidates(site, PRIOR_BASED)
    chosen, reason = choose_update(cv.fold_losses, cv.folds)
    assert chosen in ("intercept", "intercept_slope"), (reason, cv.table)
    assert cv.table.loc["none", "vs_best"] > cv.table.loc["none", "vs_best_se"]
    assert fit_candidate(chosen, site, PRIOR_BASED, seed=0).intercept > 0.3


def test_one_standard_error_rule_prefers_the_simpler_update():
    folds = 5
    base = np.array([0.50, 0.42, 0.61, 0.47, 0.55, 0.52, 0.44, 0.58, 0.49, 0.51])
    noise = np.array([0.01, -0.02, 0.015, -0.01, 0.0, 0.02, -0.015, 0.01, -0.005, 0.005])
    barely = {"none": base, "intercept": base - 0.002 + noise}  # better on average, in noise
    assert choose_update(barely, folds)[0] == "none"
    clearly = {"none": base, "intercept": base - 0.05 + noise}
    chosen, reason = choose_update(clearly, folds)
    assert chosen == "intercept" and "one standard error" in reason
    # the most flexible update only when it beats every simpler one beyond the noise
    refit = {**clearly, "full_refit": base - 0.051 + noise[::-1]}
    assert choose_update(refit, folds)[0] == "intercept"


def test_a_site_that_reverses_the_prior_gets_a_full_refit(site_table):
    """Outcomes swapped (flare <-> progression): the prior ranks the site backwards.

    Its recalibration slope is negative, so no update of the prior is kept, whatever the
    cross-validated log losses say; an unswapped site keeps a positive slope.
    """
    swapped = site_table.assign(
        **{c.OUTCOME: site_table[c.OUTCOME].map({"flare": "progression", "progression": "flare"})}
    )
    assert prior_slope(site_data(small_bundle(), site_table)) > 0.3
    reversed_site = site_data(small_bundle(), swapped)
    assert prior_slope(reversed_site) < 0
    result = adapt_bundle(small_bundle(), swapped, QUICK, label="swapped")
    assert result.chosen == "full_refit", result.reason
    assert "reverse the prior's ranking" in result.reason
    assert result.bundle.update is None
    selection = result.bundle.metadata["adaptation"]["selection"]
    assert selection["prior_slope"] == pytest.approx(prior_slope(reversed_site))
    # the refit ranks the swapped outcomes the right way round
    p = result.bundle.proba_from_features(reversed_site.features)
    assert classification_metrics(reversed_site.y, p)["auroc"] > 0.7


def test_a_site_at_the_minimum_of_five_flare_patients_adapts(site_table):
    """Five flare patients pass the entry check; inside a cross-conformal fold only four
    remain, so the inner cross-validation must use fewer folds instead of failing."""
    worst = index_outcomes(site_table).groupby(level=c.PATIENT_ID).max()
    keep = list(worst[worst == 1].index[:5]) + list(worst[worst == 0].index)
    table = site_table[site_table[c.PATIENT_ID].isin(keep)]
    site = site_data(small_bundle(), table)
    assert site.counts()["patients_with_flare"] == 5
    result = adapt_bundle(small_bundle(), table, AdaptSettings(repeats=1), label="five")
    assert len(result.conformal_choices) == AdaptSettings().conformal_folds
    assert result.chosen in CANDIDATES
    # the selection's own folds: five flare patients support all five
    assert cross_validate_candidates(site, AdaptSettings(repeats=1)).folds == 5


# --- the adapted bundle ------------------------------------------------------------------------
def test_adapt_on_a_site_is_an_ordinary_model(adaptation, site_table, tmp_path):
    result = adaptation
    bundle = result.bundle
    assert result.chosen in CANDIDATES and result.reason
    assert list(result.table.index) == list(CANDIDATES)
    assert result.table["chosen"].sum() == 1 and result.table.loc[result.chosen, "chosen"]
    assert np.isfinite(result.table[["log_loss", "log_loss_se", "auroc", "brier"]]).all().all()
    meta = bundle.metadata["adaptation"]
    assert meta["chosen"] == result.chosen
    assert [row["candidate"] for row in meta["selection"]["candidates"]] == list(CANDIDATES)
    assert meta["prior"]["digest"] == small_bundle().digest()
    # cross-conformal: every labelled index row calibrates, with the prior's error budget
    assert sum(bundle.conformal.n_calibration_.values()) == result.counts["index_rows"]
    assert bundle.budget == small_bundle().budget
    assert len(result.conformal_choices) == QUICK.conformal_folds
    assert bundle.threshold == bundle.conformal.flare_threshold()
    folder = bundle.save(tmp_path / "adapted")
    again = FlareModelBundle.load(folder)
    pd.testing.assert_frame_equal(again.predict(site_table), bundle.predict(site_table))


@pytest.mark.parametrize("kind", ["none", "intercept", "intercept_slope", "residual_boosting"])
def test_updated_bundle_saves_as_json_and_scores_identically_after_reload(
    kind, site, site_table, tmp_path
):
    bundle = _updated_bundles(site)[kind]
    folder = bundle.save(tmp_path / kind)
    names = sorted(p.name for p in folder.iterdir())
    assert all(n.endswith(".json") for n in names)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format_version"] == (1 if kind == "none" else 2)
    assert (UPDATE_FILE in names) == (kind != "none")
    assert (UPDATE_BOOSTER_FILE in names) == (kind == "residual_boosting")
    again = FlareModelBundle.load(folder)
    assert (again.update is None) == (kind == "none")
    expected = bundle.predict(site_table)
    pd.testing.assert_frame_equal(again.predict(site_table), expected)
    assert FlareModelBundle.from_files(bundle.to_files()).digest() == bundle.digest()
    if kind != "none":  # the update changes P(flare)
        prior = small_bundle().predict(site_table)["p_flare"]
        assert np.abs(expected["p_flare"] - prior).max() > 0.01


def test_format_1_bundles_still_load_and_a_newer_format_is_refused(tmp_path):
    folder = bundle_copy(tmp_path / "old")
    assert json.loads((folder / "manifest.json").read_text())["format_version"] == 1
    assert FlareModelBundle.load(folder).update is None
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = 3
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="format 3"):
        FlareModelBundle.load(folder)


def test_batch_pyfunc_and_spark_paths_take_the_adapted_model(site, site_table, tmp_path):
    from flare_ml.serving.pyfunc_model import FlareClassifierModel
    from flare_ml.serving.schema import to_wire_format

    bundle = _updated_bundles(site)["residual_boosting"]
    folder = bundle.save(tmp_path / "model")
    expected = bundle.predict(site_table)
    write_table(site_table, tmp_path / "site.csv")
    score_file(str(folder), tmp_path / "site.csv", tmp_path / "scores.parquet")
    batch = pd.read_parquet(tmp_path / "scores.parquet")
    np.testing.assert_array_equal(batch["p_flare"].to_numpy(), expected["p_flare"].to_numpy())
    assert batch["reasons"].tolist() == expected["reasons"].tolist()
    served = FlareClassifierModel()
    served.load_context(SimpleNamespace(artifacts={"bundle": str(folder)}))
    got = served.predict(None, to_wire_format(site_table))
    np.testing.assert_array_equal(got["p_flare"].to_numpy(), expected["p_flare"].to_numpy())
    assert got["decision"].tolist() == expected["decision"].tolist()


def test_spark_takes_the_adapted_model(spark, site, site_table, tmp_path):
    from flare_ml.spark import score_spark

    bundle = _updated_bundles(site)["intercept_slope"]
    write_table(site_table, tmp_path / "site.parquet")
    rows = spark.read.parquet(str(tmp_path / "site.parquet"))
    got = score_spark(rows, bundle).toPandas().sort_values([c.PATIENT_ID, c.ASSESSMENT_DATE])
    expected = bundle.predict(site_table).sort_values([c.PATIENT_ID, c.ASSESSMENT_DATE])
    np.testing.assert_allclose(got["p_flare"], expected["p_flare"], rtol=0, atol=1e-12)


# --- reasons -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["none", "intercept", "intercept_slope", "residual_boosting"])
def test_contributions_add_up_to_the_margin_with_the_prior_as_signals(kind, site):
    bundle = _updated_bundles(site)[kind]
    parts = bundle.contributions(site.features)
    margin = bundle.margin_from_features(site.features)
    np.testing.assert_allclose(parts.sum(axis=1), margin, rtol=0, atol=1e-4)
    p = bundle.proba_from_features(site.features)
    np.testing.assert_allclose(1 / (1 + np.exp(-margin)), p, rtol=0, atol=1e-12)
    # the prior is not hidden in a bias: its base value is one number, its signals vary
    assert np.ptp(parts[BASE_VALUE]) < 1e-4
    prior_columns = [k for k in parts if k.startswith(PRIOR_PREFIX)] or [
        k for k in parts if k not in (BASE_VALUE, SITE_RECALIBRATION)
    ]
    assert len(prior_columns) == 6
    assert parts[prior_columns].sum(axis=1).std() > 0.5
    if kind != "none":
        assert np.ptp(parts[SITE_RECALIBRATION]) < 1e-6
        site_columns = [k for k in parts if k.startswith(SITE_PREFIX)]
        assert (parts[site_columns].abs().to_numpy().max() > 0.01) == (kind == "residual_boosting")


def test_residual_contributions_are_computed_without_base_margin(site):
    """The site's part equals the residual trees' own margin, not XGBoost's offset bias."""
    bundle = _updated_bundles(site)["residual_boosting"]
    parts = bundle.contributions(site.features)
    residual = bundle.update.residual.predict(site.matrix(), output_margin=True)
    site_part = parts[[k for k in parts if k.startswith(SITE_PREFIX)]].sum(axis=1)
    constant = parts[SITE_RECALIBRATION]  # the residual trees' bias (a = 0, b = 1)
    np.testing.assert_allclose(site_part + constant, residual, rtol=0, atol=1e-4)
    # XGBoost's pred_contribs with the offset put the prior's margin in the bias
    offset = bundle.update.residual.predict(site.matrix(offset=True), pred_contribs=True)
    assert np.abs(offset[:, -1] - constant).max() > 0.5


def test_reasons_of_an_intercept_update_are_the_priors(site, site_table):
    """A shift of the log-odds changes P(flare), not which signals weigh most."""
    bundles = _updated_bundles(site)
    shifted = bundles["intercept"].predict(site_table)
    prior = bundles["none"].predict(site_table)
    assert shifted["reasons"].tolist() == prior["reasons"].tolist()
    assert (shifted["p_flare"] > prior["p_flare"]).all()
    residual = bundles["residual_boosting"].predict(site_table)
    assert residual["reasons"].tolist() != prior["reasons"].tolist()


# --- reproducibility and refusals ---------------------------------------------------------------
def test_adaptation_is_reproducible_with_a_seed(site, site_table):
    settings = dataclasses.replace(QUICK, candidates=CANDIDATES[:4], seed=5)
    first = adapt_bundle(small_bundle(), site_table, settings)
    again = adapt_bundle(small_bundle(), site_table, settings)
    pd.testing.assert_frame_equal(first.table, again.table)
    assert first.bundle.digest() == again.bundle.digest()
    # the seed draws the folds: another seed, other cross-validated numbers
    cheap = dataclasses.replace(settings, candidates=("intercept",))
    one = cross_validate_candidates(site, cheap).table
    other = cross_validate_candidates(site, dataclasses.replace(cheap, seed=6)).table
    assert not np.allclose(one["log_loss"], other["log_loss"])


def test_an_adapted_model_is_not_adapted_again(site, site_table):
    with pytest.raises(FlareMLError, match="already adapted"):
        adapt_bundle(_updated_bundles(site)["intercept"], site_table, QUICK)


# --- command line ------------------------------------------------------------------------------
def test_cli_adapt_writes_the_model_and_prints_the_choice(tmp_path, monkeypatch):
    """The command wires options through (quick settings: the full procedure is tested above)."""
    import flare_ml.workflows

    quick = functools.partial(AdaptSettings, folds=3, repeats=1, conformal_folds=3)
    monkeypatch.setattr(flare_ml.workflows, "AdaptSettings", quick)
    monkeypatch.chdir(tmp_path)
    write_table(simulate_cohort(80, site="nordic", seed=9).timepoints, tmp_path / "site.csv")
    prior = bundle_copy(tmp_path / "prior")
    args = ["adapt", "--data", "site.csv", "--out", "adapted", "--prior", str(prior)]
    result = CliRunner().invoke(app, [*args, "--seed", "2"])
    assert result.exit_code == 0, result.output
    bundle = FlareModelBundle.load(tmp_path / "adapted")
    chosen = bundle.metadata["adaptation"]["chosen"]
    assert f"chosen      {chosen}:" in result.output
    for name in CANDIDATES:
        assert name in result.output
    assert "cross-conformal" in result.output and "SYNTHETIC" in result.output
    assert bundle.metadata["adaptation"]["selection"]["seed"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".adapted")]  # no staging
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "--force" in again.output


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (lambda: simulate_cohort(80, seed=9).timepoints.drop(columns="outcome"), "no outcome"),
        (lambda: simulate_cohort(10, seed=9).timepoints, "at least 5 patients with a flare"),
    ],
    ids=["no-outcome", "too-few-patients"],
)
def test_cli_adapt_bad_input_exits_2_and_writes_nothing(table, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_table(table(), tmp_path / "site.csv")
    prior = bundle_copy(tmp_path / "prior")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(
        app, ["adapt", "--data", "site.csv", "--out", "adapted", "--prior", str(prior)]
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_cli_adapt_with_an_unknown_prior_exits_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_table(simulate_cohort(30, seed=9).timepoints, tmp_path / "site.csv")
    result = CliRunner().invoke(
        app, ["adapt", "--data", "site.csv", "--out", "adapted", "--prior", "no-such-model"]
    )
    assert result.exit_code == 2 and "no-such-model" in result.output
    assert not (tmp_path / "adapted").exists() and not (tmp_path / "mlflow.db").exists()


def test_site_data_counts_patients_and_refuses_missing_outcomes(site_table):
    site = site_data(small_bundle(), site_table)
    counts = site.counts()
    assert counts["index_rows"] == len(site.y) and counts["flares"] == int(site.y.sum())
    unlabelled = site_table.copy()
    index_rows = (unlabelled["new_bone_lesions"].fillna(0) > 0) & (
        unlabelled["row_type"] == "imaging"
    )
    unlabelled.loc[index_rows[index_rows].index[:3], "outcome"] = None
    with pytest.raises(FlareMLError, match="outcome"):
        site_data(small_bundle(), unlabelled)


def test_evaluate_and_calibrate_take_the_adapted_model(site, site_table, tmp_path):
    from flare_ml.workflows import calibrate, evaluate

    bundle = _updated_bundles(site)["residual_boosting"]
    folder = bundle.save(tmp_path / "model")
    write_table(site_table, tmp_path / "site.csv")
    result = evaluate(str(folder), tmp_path / "site.csv", n_resamples=0)
    np.testing.assert_array_equal(
        result["predictions"]["p_flare"].to_numpy(),
        bundle.predict(site_table)["p_flare"].to_numpy(),
    )
    outcome = calibrate(str(folder), tmp_path / "site.csv", tmp_path / "recalibrated")
    again = FlareModelBundle.load(outcome.bundle_dir)
    assert again.update is not None and again.update.residual is not None
    np.testing.assert_array_equal(
        again.proba_from_features(site.features), bundle.proba_from_features(site.features)
    )


@pytest.mark.parametrize("method", ["none", "sigmoid", "isotonic"])
def test_contributions_are_exact_whatever_the_priors_calibrator(method, site):
    """The calibrator's secant slope carries the booster's SHAP values onto its log-odds."""
    prior = small_bundle()
    calibrator = ProbabilityCalibrator(method).fit(prior.raw_proba(site.features), site.y)
    bundle = dataclasses.replace(
        prior, calibrator=calibrator, update=MarginUpdate("intercept_slope", 0.3, 0.7)
    )
    parts = bundle.contributions(site.features)
    margin = bundle.margin_from_features(site.features)
    np.testing.assert_allclose(parts.sum(axis=1), margin, rtol=0, atol=1e-4)
    assert np.ptp(parts[BASE_VALUE]) < 1e-4


@pytest.mark.slow
def test_rest_serves_the_adapted_model_as_the_bundle_scores(site, site_table, tmp_path):
    """``mlflow models serve`` of a registered adapted model on loopback answers one
    patient with the adapted bundle's own P(flare), decision, set and reasons.

    The model carries a residual booster (a format-2 bundle), the update that touches
    most of the serving path; its answers must differ from the prior's.
    """
    import requests

    from flare_ml.serving.schema import to_wire_format
    from serving_helpers import register_model, serve

    bundle = dataclasses.replace(small_bundle(), update=_residual_update(site))
    uri = register_model(tmp_path, bundle.save(tmp_path / "adapted"))
    index_patients = site_table.loc[site_table[c.NEW_BONE_LESIONS].fillna(0) > 0, c.PATIENT_ID]
    patient = site_table[site_table[c.PATIENT_ID] == index_patients.iloc[0]].drop(
        columns=[c.OUTCOME]
    )
    records = json.loads(to_wire_format(patient).to_json(orient="records"))
    expected = bundle.predict(patient)
    with serve(uri, tmp_path / "server.log") as base:
        response = requests.post(
            f"{base}/invocations",
            data=json.dumps({"dataframe_records": records}),
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
    assert response.status_code == 200, response.text
    rows = response.json()["predictions"]
    assert len(rows) == len(expected) >= 1
    for row, (_, want) in zip(rows, expected.iterrows(), strict=True):
        assert row["p_flare"] == pytest.approx(float(want["p_flare"]), abs=1e-6)
        assert row["decision"] == want["decision"]
        assert row["prediction_set"] == want["prediction_set"]
        assert row["reasons"] == want["reasons"] != ""
    prior_p = small_bundle().predict(patient)["p_flare"].to_numpy(float)
    assert not np.allclose([row["p_flare"] for row in rows], prior_p)  # the update served
