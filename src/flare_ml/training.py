"""Train, cross-validate and externally validate flare-ml models from a config.

This module wires the parts together for one training run: it loads (or simulates) the
training cohort, computes point-in-time features, gets patient-grouped out-of-fold
predictions of the XGBoost model and of every rule baseline, fits the final model on all
training patients, chooses the operating threshold on the out-of-fold predictions, and
scores each external cohort through the frozen model's bundle, the object that serving
loads. Tracking and reporting live in
:mod:`flare_ml.tracking` and :mod:`flare_ml.report`; the command line only calls
:func:`run_training`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from flare_ml.bundle import FlareModelBundle
from flare_ml.data import contract as c
from flare_ml.data import load_timepoints, read_table
from flare_ml.data.fingerprint import data_fingerprint
from flare_ml.errors import FlareMLError
from flare_ml.evaluation import DecisionTable, decision_table
from flare_ml.features import TimepointFeaturizer, index_outcomes
from flare_ml.model_selection import grouped_folds
from flare_ml.models import FlareXGBClassifier
from flare_ml.progress import Progress, no_progress
from flare_ml.simulate import companion_paths, simulate_cohort
from flare_ml.site_calibration import check_at_site
from flare_ml.train_config import SimulatedCohortSpec, TrainConfig
from flare_ml.uncertainty import ClassConditionalConformal

#: how decision tables name the training cohort's decisions: out-of-fold P(flare) read
#: with the thresholds calibrated on them (the budget holds there by construction)
CALIBRATION_PATIENTS = "calibration patients (out-of-fold)"

MODEL_NAME = "xgboost"
ORACLE_NAME = "oracle"


@dataclass
class PreparedCohort:
    """A cohort ready for scoring: features, labels, context and oracle per index row.

    Attributes
    ----------
    label : str
        Where the cohort came from, e.g. ``"simulated site community (2000 patients,
        seed 2)"``; every reported number carries it.
    timepoints : DataFrame
        The validated timepoint table.
    features : DataFrame
        One row per index assessment (index: patient_id, assessment_date).
    y : ndarray or None
        1 = flare, 0 = progression; None when the cohort has no outcomes.
    patient_ids : ndarray
        Patient of each index row (the bootstrap and folds group on it).
    context : DataFrame
        ``cancer_type`` and ``therapy_class`` of each index row, for subgroups.
    oracle : ndarray or None
        The simulator's Bayes-optimal P(flare), when known.
    fingerprint : dict
        Hash and counts of the table (never rows).
    indeterminate : int
        Index rows left out because ``flare-ml label`` left their outcome indeterminate
        (a table with ``label_reason``; elsewhere a missing outcome is an error).

    """

    label: str
    timepoints: pd.DataFrame
    features: pd.DataFrame
    y: np.ndarray | None
    patient_ids: np.ndarray
    context: pd.DataFrame
    oracle: np.ndarray | None
    fingerprint: dict[str, Any]
    indeterminate: int = 0


def simulated_label(spec: SimulatedCohortSpec) -> str:
    """How a simulated cohort is named in reports.

    Examples
    --------
    >>> simulated_label(SimulatedCohortSpec(site="nordic", patients=100, seed=4))
    'simulated site nordic (100 patients, seed 4)'

    """
    return f"simulated site {spec.site} ({spec.patients} patients, seed {spec.seed})"


def load_cohort_source(
    spec: SimulatedCohortSpec | None = None, path: str | Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None, str]:
    """Timepoint table, oracle (if any) and label, from a file or the simulator.

    A file's oracle is read from its companion ``<name>.oracle.<ext>`` when present (as
    written by ``flare-ml simulate``).
    """
    if path is not None:
        table = load_timepoints(path)
        oracle_path = companion_paths(path)[0]
        oracle = read_table(oracle_path) if oracle_path.exists() else None
        return table, oracle, f"file {Path(path).name}"
    spec = spec or SimulatedCohortSpec()
    cohort = simulate_cohort(spec.patients, site=spec.site, seed=spec.seed)
    return cohort.timepoints, cohort.oracle, simulated_label(spec)


def prepare_cohort(
    timepoints: pd.DataFrame,
    featurizer: TimepointFeaturizer,
    label: str,
    oracle: pd.DataFrame | None = None,
    require_outcomes: bool = True,
) -> PreparedCohort:
    """Featurize a table and line up labels, patients, subgroups and oracle per index row."""
    features = featurizer.transform(timepoints)
    keys = features.index.to_frame(index=False)
    y = None
    indeterminate = 0
    if require_outcomes:
        outcomes = index_outcomes(timepoints, allow_missing=True)
        if outcomes.isna().any() and c.LABEL_REASON in timepoints.columns:
            # adjudicated by `flare-ml label`: an empty outcome is an indeterminate label,
            # left out of the targets (its rows stay history for later index rows)
            known = outcomes.notna().to_numpy()
            indeterminate = int((~known).sum())
            features, keys, outcomes = features[known], keys[known], outcomes[known]
            keys = keys.reset_index(drop=True)
        if outcomes.isna().any():
            n = int(outcomes.isna().sum())
            raise FlareMLError(
                f"{label}: column 'outcome' is missing on {n} index rows (imaging rows with "
                "new_bone_lesions > 0); training and evaluation need 'flare' or "
                "'progression' on every index row: adjudicate them from follow-up imaging "
                "with `flare-ml label`"
            )
        y = outcomes.to_numpy(dtype=int)
    if len(features) == 0:
        raise FlareMLError(f"{label}: the table has no index rows (new_bone_lesions > 0)")
    rows = timepoints.drop_duplicates([c.PATIENT_ID, c.ASSESSMENT_DATE]).set_index(
        [c.PATIENT_ID, c.ASSESSMENT_DATE]
    )
    context = (
        rows.reindex(features.index)[[c.CANCER_TYPE, c.THERAPY_CLASS]]
        .astype(str)
        .reset_index(drop=True)
    )
    oracle_p = None
    if oracle is not None:
        o = oracle.copy()
        o[c.ASSESSMENT_DATE] = pd.to_datetime(o[c.ASSESSMENT_DATE])
        o[c.PATIENT_ID] = o[c.PATIENT_ID].astype(str)
        aligned = keys.assign(**{c.PATIENT_ID: keys[c.PATIENT_ID].astype(str)}).merge(
            o[[c.PATIENT_ID, c.ASSESSMENT_DATE, "p_flare_oracle"]],
            on=[c.PATIENT_ID, c.ASSESSMENT_DATE],
            how="left",
        )
        if aligned["p_flare_oracle"].notna().all():
            oracle_p = aligned["p_flare_oracle"].to_numpy(dtype=float)
    return PreparedCohort(
        label=label,
        timepoints=timepoints,
        features=features,
        y=y,
        patient_ids=keys[c.PATIENT_ID].astype(str).to_numpy(),
        context=context,
        oracle=oracle_p,
        fingerprint=data_fingerprint(timepoints),
        indeterminate=indeterminate,
    )


def make_featurizer(config: TrainConfig) -> TimepointFeaturizer:
    """The featurizer a config asks for."""
    return TimepointFeaturizer(
        alp_upper_limit_normal=config.features.alp_upper_limit_normal,
        alp_slope_window_days=config.features.alp_slope_window_days,
    )


def make_model(config: TrainConfig) -> FlareXGBClassifier:
    """The (unfitted) XGBoost classifier a config asks for."""
    m = config.model
    return FlareXGBClassifier(
        search_space=m.search_space,
        n_candidates=m.n_candidates,
        inner_folds=m.inner_folds,
        n_estimators_max=m.n_estimators_max,
        early_stopping_rounds=m.early_stopping_rounds,
        calibration=m.calibration,
        random_state=config.seed,
        n_jobs=m.n_jobs,
    )


def out_of_fold_proba(
    model: FlareXGBClassifier,
    cohort: PreparedCohort,
    n_folds: int,
    seed: int,
    progress: Progress = no_progress,
) -> np.ndarray:
    """Patient-grouped out-of-fold P(flare).

    Each row is scored by a model that never saw its patient (tuning and calibration
    included, since they happen inside ``fit``).
    """
    assert cohort.y is not None
    folds = grouped_folds(cohort.y, cohort.patient_ids, n_folds, seed)
    oof = np.full(len(cohort.y), np.nan)
    for i, (train, test) in enumerate(folds):
        progress("out-of-fold models", i, len(folds))
        fitted = clone(model).fit(
            cohort.features.iloc[train], cohort.y[train], groups=cohort.patient_ids[train]
        )
        oof[test] = fitted.predict_proba(cohort.features.iloc[test])[:, 1]
    progress("out-of-fold models", len(folds), len(folds))
    return oof


def bundle_from_model(
    model: FlareXGBClassifier,
    featurizer: TimepointFeaturizer,
    threshold: float,
    conformal: ClassConditionalConformal | None = None,
    top_reasons: int = 3,
    metadata: dict[str, Any] | None = None,
) -> FlareModelBundle:
    """Freeze a fitted classifier and its featurizer into a JSON-saveable bundle."""
    return FlareModelBundle(
        featurizer_params=featurizer.get_params(),
        feature_names=[str(n) for n in model.feature_names_in_],
        booster=model.get_booster(),
        calibrator=model.calibrator_,
        threshold=float(threshold),
        conformal=conformal,
        top_reasons=top_reasons,
        metadata=metadata or {},
    )


def fit_final_model(
    model: FlareXGBClassifier,
    cohort: PreparedCohort,
    config: TrainConfig,
    oof: np.ndarray | None = None,
) -> tuple[FlareXGBClassifier, ClassConditionalConformal, int]:
    """Fit the final model and its class-conditional conformal thresholds.

    Two ways to calibrate the conformal thresholds on held-out training data
    (``uncertainty.calibration``):

    - ``out_of_fold`` (default): the thresholds come from the patient-grouped out-of-fold
      predictions ``oof``, each made by a model that never saw that patient (cross-
      conformal); the final model is then fitted on all training patients. Every training
      case calibrates, so the thresholds vary little between runs.
    - ``held_out``: split conformal proper. A patient-grouped, outcome-stratified share
      (``uncertainty.calibration_fraction``) is held out, the model is fitted on the rest
      and the thresholds on the held-out patients' predictions; the guarantee is exact for
      exchangeable patients, at the cost of fewer training and calibration cases.

    The per-class coverage is the config's error budget (``decision_policy``), so the
    fitted predictor's ``decision`` keeps it on patients like the calibration patients.

    Returns the fitted model, the conformal predictor and the number of calibration rows.
    """
    assert cohort.y is not None
    unc = config.uncertainty
    coverage = config.decision_policy.budget().coverage
    if unc.calibration == "out_of_fold":
        if oof is None:
            raise ValueError("out-of-fold calibration needs the out-of-fold predictions")
        model.fit(cohort.features, cohort.y, groups=cohort.patient_ids)
        conformal = ClassConditionalConformal(coverage).fit(oof, cohort.y)
        return model, conformal, len(oof)
    n_splits = max(2, round(1.0 / unc.calibration_fraction))
    fit_rows, calibration_rows = grouped_folds(
        cohort.y, cohort.patient_ids, n_splits, config.seed + 1
    )[0]
    model.fit(
        cohort.features.iloc[fit_rows], cohort.y[fit_rows], groups=cohort.patient_ids[fit_rows]
    )
    held_out = model.predict_proba(cohort.features.iloc[calibration_rows])[:, 1]
    conformal = ClassConditionalConformal(coverage).fit(held_out, cohort.y[calibration_rows])
    return model, conformal, len(calibration_rows)


def fit_bundle(
    timepoints: pd.DataFrame,
    config: TrainConfig | None = None,
    *,
    n_candidates: int | None = None,
    outer_folds: int | None = 5,
) -> FlareModelBundle:
    """Fit featurizer + model on a labelled table and return the bundle.

    With ``outer_folds`` the conformal thresholds (hence the decision and its operating
    threshold, :meth:`~flare_ml.uncertainty.ClassConditionalConformal.flare_threshold`)
    are calibrated on out-of-fold predictions for the config's error budget; with None
    there are none and the decision is ``P(flare) >= 0.5`` (quick fits for tests and
    examples).
    """
    config = config or TrainConfig()
    if n_candidates is not None:
        config = config.model_copy(
            update={"model": config.model.model_copy(update={"n_candidates": n_candidates})}
        )
    featurizer = make_featurizer(config).fit(timepoints)
    cohort = prepare_cohort(timepoints, featurizer, "training data")
    assert cohort.y is not None
    model = make_model(config)
    threshold = 0.5
    if outer_folds:
        oof = out_of_fold_proba(model, cohort, outer_folds, config.seed)
        model, conformal, _ = fit_final_model(model, cohort, config, oof)
        threshold = conformal.flare_threshold()
    else:
        model.fit(cohort.features, cohort.y, groups=cohort.patient_ids)
        conformal = None
    return bundle_from_model(
        model,
        featurizer,
        threshold,
        conformal,
        config.uncertainty.top_reasons,
        {"training": cohort.fingerprint},
    )


@dataclass
class TrainingResult:
    """Everything one training run produced (before tracking and reporting)."""

    config: TrainConfig
    training: PreparedCohort
    externals: list[PreparedCohort]
    model: FlareXGBClassifier
    bundle: FlareModelBundle
    rules: dict[str, Any]
    thresholds: dict[str, float]
    scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    evaluations: dict[str, Any] = field(default_factory=dict)
    coverage: dict[str, dict[str, float]] = field(default_factory=dict)
    site_coverage: dict[str, dict[str, float]] = field(default_factory=dict)
    decision_tables: list[DecisionTable] = field(default_factory=list)


def scores_with_rules(
    cohort: PreparedCohort, model_proba: np.ndarray, rules: dict[str, Any]
) -> dict[str, np.ndarray]:
    """The model's P(flare), each rule's score and the oracle (when known) on a cohort."""
    scores = {MODEL_NAME: model_proba}
    for name, rule in rules.items():
        scores[name] = rule.decision_function(cohort.features)
    if cohort.oracle is not None:
        scores[ORACLE_NAME] = cohort.oracle
    return scores


def train_and_validate(
    config: TrainConfig,
    data_path: str | Path | None = None,
    external_paths: list[str | Path] | None = None,
    progress: Progress = no_progress,
) -> TrainingResult:
    """Cross-validate on the training cohort, fit the final model, score externals.

    Parameters
    ----------
    config : TrainConfig
        The validated configuration.
    data_path : path, optional
        A labelled timepoint table; by default the config's simulated training cohort.
    external_paths : list of paths, optional
        Labelled external cohorts; by default the config's simulated external sites.
    progress : callable, optional
        ``progress(step, done, total)`` for progress bars.

    Returns
    -------
    TrainingResult
        The fitted model and its bundle, the rules, the thresholds, and per cohort the
        scores, evaluations and conformal coverage.

    Notes
    -----
    Where each reported P(flare) comes from:

    - Training cohort: patient-grouped **out-of-fold** predictions, each made by a
      model fitted in ``out_of_fold_proba`` on the other folds (tuning and
      calibration included), never by the final model; the operating threshold and,
      by default, the conformal thresholds are chosen on them.
    - External cohorts: the final model through its bundle
      (:func:`score_cohort_bundle`), the object that is saved, logged to MLflow and
      served. Their evaluation, conformal coverage and site coverage estimate, as
      reported and logged, are computed from these scores.

    """
    from flare_ml.evaluation import choose_operating_threshold, evaluate
    from flare_ml.rules import make_rules

    progress("training cohort", 0, 1)
    table, oracle, label = load_cohort_source(config.data.train, data_path)
    featurizer = make_featurizer(config).fit(table)
    training = prepare_cohort(table, featurizer, f"training: {label}", oracle)
    assert training.y is not None
    progress("training cohort", 1, 1)

    rules = {
        name: rule.fit(training.features, training.y)
        for name, rule in make_rules(config.rules.model_dump()).items()
    }
    model = make_model(config)
    oof = out_of_fold_proba(model, training, config.model.outer_folds, config.seed, progress)
    oof_scores = scores_with_rules(training, oof, rules)

    progress("final model", 0, 1)
    model, conformal, n_calibration = fit_final_model(model, training, config, oof)
    progress("final model", 1, 1)
    # one decision policy: the model is read where its decision column says flare (the
    # conformal thresholds of the error budget); the oracle, for reference, at the
    # threshold that keeps the same share of progressions called flare on the training
    # cohort; each rule at its own decision threshold
    budget = config.decision_policy.budget()
    thresholds = {
        name: float(rules[name].decision_threshold)
        if name in rules
        else conformal.flare_threshold()
        if name == MODEL_NAME
        else choose_operating_threshold(training.y, p, budget.max_progression_called_flare)
        for name, p in oof_scores.items()
    }
    bundle = bundle_from_model(
        model,
        featurizer,
        thresholds[MODEL_NAME],
        conformal,
        config.uncertainty.top_reasons,
        {
            "training": training.fingerprint,
            "training_label": training.label,
            "conformal_calibration": config.uncertainty.calibration,
            "conformal_calibration_rows": n_calibration,
        },
    )

    externals = []
    sources: list[tuple[SimulatedCohortSpec | None, str | Path | None]]
    if external_paths:
        sources = [(None, p) for p in external_paths]
    else:
        sources = [(spec, None) for spec in config.data.external]
    for i, (spec, path) in enumerate(sources):
        progress("external cohorts", i, len(sources))
        ext_table, ext_oracle, ext_label = load_cohort_source(spec, path)
        externals.append(
            prepare_cohort(ext_table, featurizer, f"external: {ext_label}", ext_oracle)
        )
    progress("external cohorts", len(sources), len(sources))

    result = TrainingResult(
        config=config,
        training=training,
        externals=externals,
        model=model,
        bundle=bundle,
        rules=rules,
        thresholds=thresholds,
    )
    result.scores[training.label] = oof_scores
    for ext in externals:  # through the bundle: the object that serving loads
        result.scores[ext.label] = score_cohort_bundle(ext, bundle, rules)

    # conformal coverage on each external cohort: of the thresholds calibrated on
    # training patients (transported), and of thresholds the site would calibrate on its
    # own labelled patients (cross-fitted: no patient calibrates their own set)
    # and the decision column against outcomes with each (the error budget's verdict)
    result.decision_tables.append(
        decision_table(
            training.y,
            conformal.decide(oof)[0],
            budget,
            cohort=training.label,
            thresholds=CALIBRATION_PATIENTS,
        )
    )
    for cohort in externals:
        assert cohort.y is not None
        check = check_at_site(
            conformal,
            result.scores[cohort.label][MODEL_NAME],
            cohort.y,
            cohort.patient_ids,
            cohort=cohort.label,
            seed=config.seed,
        )
        result.coverage[cohort.label] = check.coverage
        result.site_coverage[cohort.label] = check.site_coverage
        result.decision_tables.extend(check.decision_tables)

    cohorts = [training, *externals]
    for i, cohort in enumerate(cohorts):
        progress("bootstrap evaluation", i, len(cohorts))
        assert cohort.y is not None
        result.evaluations[cohort.label] = evaluate(
            cohort.y,
            result.scores[cohort.label],
            patient_ids=cohort.patient_ids,
            thresholds=thresholds,
            subgroups=cohort.context[list(config.evaluation.subgroups)],
            n_resamples=config.evaluation.bootstrap_resamples,
            seed=config.seed,
            probability_scorers=(MODEL_NAME, ORACLE_NAME),
        )
    progress("bootstrap evaluation", len(cohorts), len(cohorts))
    return result


def score_cohort_bundle(
    cohort: PreparedCohort, bundle: FlareModelBundle, rules: dict[str, Any]
) -> dict[str, np.ndarray]:
    """P(flare) of a frozen model, each rule's score and the oracle (when known) on a cohort.

    The model's P(flare) is :meth:`FlareModelBundle.proba_from_features
    <flare_ml.bundle.FlareModelBundle.proba_from_features>`: the same object and the same
    computation that the pyfunc model, ``flare-ml score``, Spark and the REST server
    load, so a number reported for a cohort is the number serving gives for it.

    Parameters
    ----------
    cohort : PreparedCohort
        The cohort, featurized with the bundle's featurizer parameters.
    bundle : FlareModelBundle
        The frozen model.
    rules : dict
        Fitted rule baselines by name.

    Returns
    -------
    dict of str to numpy.ndarray
        ``"xgboost"``, each rule's name and, when known, ``"oracle"``.

    Examples
    --------
    >>> from flare_ml.simulate import simulate_cohort
    >>> table = simulate_cohort(300, seed=3).timepoints
    >>> bundle = fit_bundle(table, n_candidates=1, outer_folds=None)
    >>> cohort = prepare_cohort(table, bundle.featurizer, "example")
    >>> scores = score_cohort_bundle(cohort, bundle, {})
    >>> bool((scores["xgboost"] == bundle.predict(table)["p_flare"].to_numpy()).all())
    True

    """
    return scores_with_rules(cohort, bundle.proba_from_features(cohort.features), rules)
