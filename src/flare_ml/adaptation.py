"""Adapt a prior model to a site: choose by the site's own labelled patients how far to update.

A prior (any :class:`~flare_ml.bundle.FlareModelBundle`, typically one trained on a large
simulated population) rarely fits a new site exactly, and a site's 50-300 labelled
patients cannot support a new model. Clinical prediction modelling's answer is *model
updating*, in steps of growing flexibility: the prior as is (``none``), recalibration in
the large (``intercept``: ``logit p + a``), logistic recalibration (``intercept_slope``:
``a + b logit p``), a shallow, strongly regularised residual booster on the site's
features with the prior's log-odds as ``base_margin`` (``residual_boosting``, with
monotone constraints where the literature fixes a direction and zero rounds allowed),
or a new model from scratch (``full_refit``). :func:`adapt_bundle` estimates each by
patient-grouped repeated cross-validation on the site (:func:`cross_validate_candidates`),
takes the simplest whose log loss is within one standard error of the best
(:func:`choose_update`; a prior whose ranking the site reverses is replaced by a full
refit), refits it on all the site's patients and calibrates the conformal
thresholds by cross-conformal prediction on out-of-fold predictions of this whole
procedure, so that no split is wasted. The result is an ordinary bundle (docs/adapt.md).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from flare_ml.bundle import FlareModelBundle, MarginUpdate, prior_logit
from flare_ml.data import contract as c
from flare_ml.data.fingerprint import data_fingerprint
from flare_ml.errors import FlareMLError
from flare_ml.evaluation import classification_metrics
from flare_ml.model_selection import grouped_folds
from flare_ml.models import FlareXGBClassifier, booster_input
from flare_ml.train_config import TrainConfig
from flare_ml.training import bundle_from_model, make_model, prepare_cohort
from flare_ml.uncertainty import ClassConditionalConformal, ErrorBudget

__all__ = [
    "CANDIDATES",
    "MONOTONE_DIRECTIONS",
    "RESIDUAL_PARAMS",
    "AdaptSettings",
    "Adaptation",
    "CrossValidation",
    "SiteData",
    "adapt_bundle",
    "choose_update",
    "corrected_se",
    "cross_validate_candidates",
    "fit_candidate",
    "predict_candidate",
    "prior_slope",
    "site_data",
]

#: the updates, simplest first (the one-standard-error rule prefers the earlier)
CANDIDATES: tuple[str, ...] = (
    "none",
    "intercept",
    "intercept_slope",
    "residual_boosting",
    "full_refit",
)

#: direction of P(flare) in a feature where the literature fixes it (+1: a higher value is
#: more flare-like); the residual booster may only move the prior's log-odds this way in
#: these features. Flare is a healing response of a responding tumour, seen early
#: (PCWG3's 8-12 week window; docs/sources.md, Flare incidence by therapy): extraosseous
#: response and sclerosis of known lesions point to flare; a later scan, growing sum of
#: diameters, new extraosseous lesions, progressive lysis and clinical deterioration point
#: to progression. Features whose direction depends on context (the ALP course, lesion
#: counts, morphology, therapy) are left free.
MONOTONE_DIRECTIONS: dict[str, int] = {
    "days_since_treatment_start": -1,
    "extraosseous_response_ordinal": 1,
    "best_extraosseous_response_ordinal": 1,
    "sld_percent_change_from_baseline": -1,
    "sld_percent_change_from_nadir": -1,
    "sld_change_from_nadir_mm": -1,
    "new_extraosseous_lesion_now": -1,
    "new_extraosseous_lesion_ever": -1,
    "progressive_lysis_now": -1,
    "known_lesion_sclerosis_now": 1,
    "clinical_deterioration_now": -1,
}

#: XGBoost parameters of the residual booster: shallow, slow and strongly regularised
#: (its rounds are chosen by inner cross-validation, zero allowed); ``base_score`` 0.5
#: makes its margin without ``base_margin`` the correction alone
RESIDUAL_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "tree_method": "hist",
    "base_score": 0.5,
    "max_depth": 2,
    "learning_rate": 0.05,
    "min_child_weight": 3.0,
    "reg_lambda": 10.0,
    "reg_alpha": 0.5,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "nthread": 1,
}

_LOG_LOSS_EPS = 1e-15


@dataclass(frozen=True)
class AdaptSettings:
    """How :func:`adapt_bundle` cross-validates, selects and calibrates.

    Parameters
    ----------
    folds, repeats : int
        Patient-grouped folds and repeats of the cross-validation that compares the
        candidates (default 5 x 3).
    conformal_folds : int
        Outer folds of the cross-conformal calibration: each holds out its patients,
        runs the whole adaptation (selection included) on the others and predicts them.
    conformal_repeats : int
        Repeats of the selection's cross-validation inside each conformal fold.
    candidates : tuple of str
        The updates to compare (a subset of :data:`CANDIDATES`; ``none`` always
        included).
    max_rounds : int
        Most rounds of the residual booster.
    inner_folds : int
        Patient-grouped folds that choose the residual booster's rounds.
    early_stopping_rounds : int
        An inner fit of the residual booster stops after this many rounds without a
        better held-out log loss.
    full_refit_candidates : int
        Hyperparameter sets tried by the full refit
        (:class:`~flare_ml.models.FlareXGBClassifier`) inside the cross-validation that
        compares the candidates (cheap: it only has to estimate how well a refit does).
    final_refit_candidates : int
        Hyperparameter sets tried when the full refit is the *chosen* update and is
        fitted on all the rows (the adapted model itself, and its replay in each
        cross-conformal fold). Default 6, the training config's ``n_candidates``: a
        chosen full refit is the model ``flare-ml train`` would fit. With one candidate,
        a site of about 40 index rows often got a constant model (one boosting round
        without a split).
    seed : int
        Seed of every fold and fit.

    Examples
    --------
    >>> AdaptSettings(repeats=1).folds
    5

    """

    folds: int = 5
    repeats: int = 3
    conformal_folds: int = 5
    conformal_repeats: int = 1
    candidates: tuple[str, ...] = CANDIDATES
    max_rounds: int = 200
    inner_folds: int = 3
    early_stopping_rounds: int = 30
    full_refit_candidates: int = 1
    final_refit_candidates: int = 6
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.candidates) - set(CANDIDATES)
        if unknown:
            raise ValueError(f"unknown candidates {sorted(unknown)}; choose from {CANDIDATES}")
        ordered = tuple(k for k in CANDIDATES if k in {"none", *self.candidates})
        object.__setattr__(self, "candidates", ordered)
        for name in ("folds", "conformal_folds", "inner_folds"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be at least 2")
        for name in (
            "repeats",
            "conformal_repeats",
            "max_rounds",
            "early_stopping_rounds",
            "full_refit_candidates",
            "final_refit_candidates",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


@dataclass
class SiteData:
    """A site's labelled index assessments, with the prior's log-odds of each.

    Attributes
    ----------
    features : DataFrame
        Feature rows (the prior's featurizer and columns).
    y : ndarray
        1 = flare, 0 = progression.
    groups : ndarray
        Patient of each row.
    prior_margin : ndarray
        :func:`~flare_ml.bundle.prior_logit` of the prior's P(flare).

    """

    features: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    prior_margin: np.ndarray

    def subset(self, rows: np.ndarray) -> SiteData:
        """The rows ``rows`` (positions)."""
        return SiteData(
            self.features.iloc[rows], self.y[rows], self.groups[rows], self.prior_margin[rows]
        )

    def matrix(self, label: bool = False, offset: bool = False, named: bool = True) -> xgb.DMatrix:
        """The booster input of the rows, with outcomes and the prior's margin if asked.

        ``named=False`` leaves the columns unnamed, for inner fits whose booster is
        discarded: XGBoost then skips its column-name check at every boosting round.
        """
        names = list(self.features.columns) if named else None
        m = booster_input(self.features.to_numpy(dtype=np.float32), names, nthread=1)
        if label:
            m.set_label(self.y)
        if offset:
            m.set_base_margin(self.prior_margin)
        return m

    def counts(self) -> dict[str, int]:
        """Patients, index rows, flares, and patients with a flare / a progression."""
        flare_patients = len(np.unique(self.groups[self.y == 1]))
        progression_patients = len(np.unique(self.groups[self.y == 0]))
        return {
            "patients": len(np.unique(self.groups)),
            "index_rows": len(self.y),
            "flares": int(self.y.sum()),
            "patients_with_flare": flare_patients,
            "patients_with_progression": progression_patients,
        }


def site_data(prior: FlareModelBundle, table: pd.DataFrame, min_patients: int = 5) -> SiteData:
    """The site's labelled index rows featurized by the prior, with the prior's log-odds.

    Raises
    ------
    FlareMLError
        When the table has no ``outcome`` column, an index row has no outcome, or fewer
        than ``min_patients`` patients have a flare (or a progression) at an index
        assessment: every cross-validation fold must hold both outcomes.

    Examples
    --------
    >>> from flare_ml.simulate import simulate_cohort
    >>> table = simulate_cohort(20, seed=1).timepoints.drop(columns="outcome")
    >>> site_data(bundle, table)  # doctest: +SKIP
    Traceback (most recent call last):
    FlareMLError: the site's table records no outcome ...

    """
    names = {str(name).strip().lower(): name for name in table.columns}
    if c.OUTCOME not in names or table[names[c.OUTCOME]].isna().all():
        raise FlareMLError(
            "the site's table records no outcome (its 'outcome' column is absent or "
            "empty): adaptation needs the recorded outcome ('flare' or 'progression') of "
            "every index row (imaging with new_bone_lesions > 0)"
        )
    cohort = prepare_cohort(table, prior.featurizer, "site")
    assert cohort.y is not None
    features = cohort.features[prior.feature_names]
    site = SiteData(
        features,
        cohort.y,
        cohort.patient_ids,
        prior_logit(prior.proba_from_features(features)),
    )
    counts = site.counts()
    have = (counts["patients_with_flare"], counts["patients_with_progression"])
    if min(have) < min_patients:
        raise FlareMLError(
            f"too few labelled patients to adapt: adaptation needs at least {min_patients} "
            f"patients with a flare and {min_patients} with a progression at an index "
            f"assessment (so that each of the {min_patients} patient-grouped "
            f"cross-validation folds holds both outcomes); this table has {have[0]} and "
            f"{have[1]} ({counts['patients']} patients with index rows). Label more "
            "patients, or score with the prior as is"
        )
    return site


# --- the candidates -------------------------------------------------------------------------
def _recalibrate(margin: np.ndarray, y: np.ndarray, fit_slope: bool) -> tuple[float, float]:
    """Maximum-likelihood ``a`` (and ``b``) of ``logit P(y) = a + b margin``.

    Newton-Raphson with step halving and a tiny ridge towards (0, 1), so that a fit on
    separable data stays finite.
    """
    ridge = 1e-4
    theta = np.array([0.0, 1.0])
    x = np.column_stack([np.ones_like(margin), margin])

    def objective(t: np.ndarray) -> float:
        eta = x @ t
        return float(
            np.sum(np.logaddexp(0.0, eta) - y * eta) + 0.5 * ridge * np.sum((t - [0, 1]) ** 2)
        )

    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(x @ theta)))
        grad = x.T @ (p - y) + ridge * (theta - [0.0, 1.0])
        hess = (x * (p * (1 - p))[:, None]).T @ x + ridge * np.eye(2)
        if not fit_slope:
            grad[1], hess[0, 1], hess[1, 0], hess[1, 1] = 0.0, 0.0, 0.0, 1.0
        step = np.linalg.solve(hess, grad)
        old, size = objective(theta), 1.0
        while objective(theta - size * step) > old and size > 1e-8:
            size /= 2
        theta = theta - size * step
        if np.max(np.abs(size * step)) < 1e-10:
            break
    return float(theta[0]), float(theta[1])


def _monotone(names: list[str]) -> str:
    """XGBoost's ``monotone_constraints`` string for these columns."""
    return "(" + ",".join(str(MONOTONE_DIRECTIONS.get(n, 0)) for n in names) + ")"


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    q = np.clip(p, _LOG_LOSS_EPS, 1 - _LOG_LOSS_EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)))


def _fit_residual(site: SiteData, settings: AdaptSettings, seed: int) -> MarginUpdate:
    """Residual booster on the prior's margin, its rounds (0 allowed) by inner CV."""
    params = {
        **RESIDUAL_PARAMS,
        "seed": seed,
        "monotone_constraints": _monotone(list(site.features.columns)),
    }
    folds = grouped_folds(site.y, site.groups, _folds_for(site, settings.inner_folds), seed)
    curve = np.zeros(settings.max_rounds + 1)
    for train, valid in folds:
        inner, held = site.subset(train), site.subset(valid)
        if len(np.unique(inner.y)) < 2:
            continue
        history: dict[str, Any] = {}
        xgb.train(
            params,
            inner.matrix(label=True, offset=True, named=False),
            settings.max_rounds,
            evals=[(held.matrix(label=True, offset=True, named=False), "valid")],
            evals_result=history,
            early_stopping_rounds=settings.early_stopping_rounds,
            verbose_eval=False,
        )
        losses = [_log_loss(held.y, 1 / (1 + np.exp(-held.prior_margin)))]
        losses += history["valid"]["logloss"]
        # after an early stop the held-out loss is taken to stay where it stopped
        losses += [losses[-1]] * (settings.max_rounds + 1 - len(losses))
        curve += len(valid) * np.asarray(losses)
    rounds = int(np.argmin(curve))  # the first minimum: zero rounds when nothing helps
    if rounds == 0:
        return MarginUpdate("residual_boosting")
    booster = xgb.train(params, site.matrix(label=True, offset=True), rounds)
    return MarginUpdate("residual_boosting", residual=booster)


def _full_refit_model(settings: AdaptSettings, seed: int, final: bool) -> FlareXGBClassifier:
    """The training machinery's classifier, sized for a site (single-threaded)."""
    model = make_model(TrainConfig())
    candidates = settings.final_refit_candidates if final else settings.full_refit_candidates
    return model.set_params(n_candidates=candidates, random_state=seed, n_jobs=1)


def fit_candidate(
    name: str, site: SiteData, settings: AdaptSettings, seed: int, final: bool = False
) -> MarginUpdate | FlareXGBClassifier | None:
    """Fit one candidate update on a site's rows.

    Returns None for ``none`` (and for any candidate when the rows hold one outcome
    only: there is nothing to fit), a :class:`~flare_ml.bundle.MarginUpdate` for the
    prior-based updates, a fitted :class:`~flare_ml.models.FlareXGBClassifier` for
    ``full_refit`` (``final=True``: the chosen update's fit, with
    :attr:`AdaptSettings.final_refit_candidates` hyperparameter sets).

    Examples
    --------
    >>> update = fit_candidate("intercept", site, AdaptSettings(), 0)  # doctest: +SKIP
    >>> update.kind  # doctest: +SKIP
    'intercept'

    """
    if name == "none" or len(np.unique(site.y)) < 2:
        return None
    if name in ("intercept", "intercept_slope"):
        a, b = _recalibrate(site.prior_margin, site.y, fit_slope=name == "intercept_slope")
        return MarginUpdate(name, intercept=a, slope=b)
    if name == "residual_boosting":
        return _fit_residual(site, settings, seed)
    if name == "full_refit":
        model = _full_refit_model(settings, seed, final)
        model.set_params(inner_folds=_folds_for(site, model.inner_folds))
        return model.fit(site.features, site.y, groups=site.groups)
    raise ValueError(f"unknown candidate {name!r}")


def predict_candidate(
    fitted: MarginUpdate | FlareXGBClassifier | None, site: SiteData
) -> np.ndarray:
    """P(flare) of a fitted candidate on a site's rows.

    The same computation as the adapted bundle's
    :meth:`~flare_ml.bundle.FlareModelBundle.proba_from_features`.
    """
    if isinstance(fitted, FlareXGBClassifier):
        return fitted.predict_proba(site.features)[:, 1]
    margin = site.prior_margin
    if isinstance(fitted, MarginUpdate):
        residual = np.zeros(len(margin))
        if fitted.residual is not None:
            residual = fitted.residual.predict(site.matrix(), output_margin=True)
        margin = fitted.margin(margin, residual.astype(np.float64))
    return 0.5 * (1.0 + np.tanh(0.5 * margin))


# --- selection ------------------------------------------------------------------------------
@dataclass
class CrossValidation:
    """Cross-validated metrics of every candidate on one site.

    Attributes
    ----------
    table : DataFrame
        One row per candidate (index: name, simplest first): ``log_loss`` (mean over
        folds and repeats) and its standard error ``log_loss_se``
        (:func:`corrected_se`), ``vs_best`` (mean per-fold difference from the
        candidate with the lowest log loss) and its standard error ``vs_best_se``, and
        ``auroc``, ``brier``, ``calibration_slope`` and ``calibration_intercept`` (of
        each repeat's pooled out-of-fold predictions, averaged over repeats).
    fold_losses : dict
        Per candidate, the log loss of each fold (repeats x folds, flattened).
    oof : dict
        Per candidate, out-of-fold P(flare) (repeats x rows).
    folds : int
        Folds per repeat.

    """

    table: pd.DataFrame
    fold_losses: dict[str, np.ndarray]
    oof: dict[str, np.ndarray]
    folds: int


def corrected_se(values: np.ndarray, folds: int) -> float:
    """Standard error of a mean over repeated cross-validation folds.

    Folds of repeated cross-validation share training patients, so their values are
    correlated and ``sd / sqrt(n)`` is too small. The variance is inflated as for
    overlapping training sets (the corrected resampled t-test): ``sd**2 * (1 / n +
    n_test / n_train)``, with ``n_test / n_train = 1 / (folds - 1)``.

    Examples
    --------
    >>> round(corrected_se(np.array([0.1, 0.3, 0.2, 0.4]), folds=2), 4)
    0.1443

    """
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return 0.0
    return float(values.std(ddof=1) * np.sqrt(1.0 / len(values) + 1.0 / (folds - 1)))


def _mean_or_nan(values: list[float]) -> float:
    """Mean of the finite values; NaN, without a warning, when there are none.

    A tiny site's repeats can all leave a calibration slope undefined.
    """
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _folds_for(site: SiteData, wanted: int) -> int:
    """Folds a site's rows support: at most the patients of the rarer outcome (>= 2).

    Stratified patient-grouped folds need at least one patient of each outcome per fold;
    inside a cross-conformal fold of a small site the rarer outcome can have fewer
    patients than the folds asked for.
    """
    flare = len(np.unique(site.groups[site.y == 1]))
    progression = len(np.unique(site.groups[site.y == 0]))
    return max(2, min(wanted, flare, progression))


def cross_validate_candidates(
    site: SiteData, settings: AdaptSettings, repeats: int | None = None, seed: int | None = None
) -> CrossValidation:
    """Patient-grouped repeated cross-validation of every candidate update on a site.

    Each repeat draws new patient-grouped, outcome-stratified folds
    (:func:`~flare_ml.model_selection.grouped_folds`); every candidate is fitted on the
    same training patients of each fold and scored on its held-out patients.

    Examples
    --------
    >>> cv = cross_validate_candidates(site, AdaptSettings(repeats=1))  # doctest: +SKIP
    >>> cv.table.index.tolist()  # doctest: +SKIP
    ['none', 'intercept', 'intercept_slope', 'residual_boosting', 'full_refit']

    """
    repeats = settings.repeats if repeats is None else repeats
    seed = settings.seed if seed is None else seed
    names = settings.candidates
    n = len(site.y)
    folds = _folds_for(site, settings.folds)
    oof = {k: np.full((repeats, n), np.nan) for k in names}
    losses: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        for k, (train, test) in enumerate(grouped_folds(site.y, site.groups, folds, seed + r)):
            fit_on, held = site.subset(train), site.subset(test)
            for name in names:
                fitted = fit_candidate(name, fit_on, settings, seed + 1000 * r + k)
                p = predict_candidate(fitted, held)
                oof[name][r, test] = p
                losses[name].append(_log_loss(held.y, p))
    fold_losses = {k: np.asarray(v) for k, v in losses.items()}
    best = _best(fold_losses)
    rows = {}
    for name in names:
        fold = fold_losses[name]
        pooled = [classification_metrics(site.y, oof[name][r]) for r in range(repeats)]
        diff = fold - fold_losses[best]
        rows[name] = {
            "log_loss": float(fold.mean()),
            "log_loss_se": corrected_se(fold, folds),
            "vs_best": float(diff.mean()),
            "vs_best_se": corrected_se(diff, folds),
            **{
                m: _mean_or_nan([p[m] for p in pooled])
                for m in ("auroc", "brier", "calibration_slope", "calibration_intercept")
            },
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "candidate"
    return CrossValidation(table, fold_losses, oof, folds)


def _best(fold_losses: dict[str, np.ndarray]) -> str:
    """The candidate with the lowest mean log loss (the simpler one on a tie)."""
    order = [k for k in CANDIDATES if k in fold_losses]
    return min(order, key=lambda k: (float(np.mean(fold_losses[k])), order.index(k)))


def choose_update(
    fold_losses: dict[str, np.ndarray], folds: int, prior_slope: float = 1.0
) -> tuple[str, str]:
    """The simplest candidate within one standard error of the best CV log loss.

    The one-standard-error rule, on paired differences: every candidate was scored on
    the same folds, so each is compared with the candidate of lowest mean log loss
    (the best) fold by fold. A candidate whose mean excess log loss over the best is at
    most one standard error of that excess (:func:`corrected_se`, which allows for the
    overlap of repeated folds) is as good as the best within the noise of the
    cross-validation, and the simplest such candidate (order of :data:`CANDIDATES`) is
    chosen. A more flexible update must therefore beat every simpler one by more than
    the noise; ``full_refit``, the most flexible, is chosen only when it beats every
    prior-based update so.

    A prior the site's outcomes reverse is replaced, not updated: when the logistic
    recalibration slope of the prior on all the site's rows is at most zero
    (``prior_slope``, :func:`prior_slope`), its ranking is flat or backwards at the
    site, every prior-based update keeps that ranking (the residual booster may not undo
    it against its monotone constraints), and ``full_refit`` is chosen whenever it is a
    candidate. This guard is part of the design, not tuned: it fires on a reversed
    ranking, whatever its cause.

    Parameters
    ----------
    fold_losses : dict of str to ndarray
        Per candidate, the log loss of each fold (all repeats, same folds for all).
    folds : int
        Folds per repeat.
    prior_slope : float, default 1.0
        The prior's logistic recalibration slope on the site (:func:`prior_slope`).

    Returns
    -------
    (str, str)
        The chosen candidate and the reason in words.

    Examples
    --------
    >>> losses = {"none": np.array([0.60, 0.70, 0.65, 0.62]),
    ...           "intercept": np.array([0.50, 0.61, 0.55, 0.52])}
    >>> choose_update(losses, folds=2)[0]
    'intercept'
    >>> losses["intercept"] = np.array([0.58, 0.72, 0.60, 0.64])
    >>> choose_update(losses, folds=2)[0]
    'none'
    >>> losses["full_refit"] = np.array([0.59, 0.73, 0.61, 0.66])
    >>> choose_update(losses, folds=2, prior_slope=-0.4)[0]
    'full_refit'

    """
    order = [k for k in CANDIDATES if k in fold_losses]
    if prior_slope <= 0 and "full_refit" in order:
        refit = float(np.mean(fold_losses["full_refit"]))
        return "full_refit", (
            f"the site's outcomes reverse the prior's ranking (logistic recalibration "
            f"slope {prior_slope:.2f} <= 0), which no update of the prior can undo, so the "
            f"prior is replaced by a full refit (cross-validated log loss {refit:.4f})"
        )
    best = _best(fold_losses)
    mean = {k: float(np.mean(fold_losses[k])) for k in order}
    excess = {k: fold_losses[k] - fold_losses[best] for k in order}
    se = {k: corrected_se(excess[k], folds) for k in order}
    chosen = next(k for k in order if float(np.mean(excess[k])) <= se[k] + 1e-12)
    if chosen == best:
        simpler = order[: order.index(chosen)]
        reason = f"{chosen} has the lowest cross-validated log loss ({mean[chosen]:.4f})"
        if simpler:
            reason += ", and every simpler update is worse by more than one standard error (" + (
                ", ".join(f"{k} +{np.mean(excess[k]):.4f} ± {se[k]:.4f}" for k in simpler) + ")"
            )
    else:
        reason = (
            f"{chosen} is the simplest update within one standard error of the best: its "
            f"cross-validated log loss {mean[chosen]:.4f} exceeds that of {best} "
            f"({mean[best]:.4f}) by {np.mean(excess[chosen]):.4f} ± {se[chosen]:.4f}"
        )
    return chosen, reason


# --- the whole procedure --------------------------------------------------------------------
@dataclass
class Adaptation:
    """An adapted model and the evidence for the update it chose.

    Attributes
    ----------
    bundle : FlareModelBundle
        The adapted model: the prior with a :class:`~flare_ml.bundle.MarginUpdate`, the
        prior as is (``none``), or a new model (``full_refit``); conformal thresholds
        from cross-conformal calibration on the site.
    chosen : str
        The chosen candidate.
    reason : str
        Why, in words (the one-standard-error rule).
    table : DataFrame
        :attr:`CrossValidation.table`, with a ``chosen`` column.
    conformal_choices : list of str
        The candidate the whole procedure chose in each cross-conformal fold.
    counts : dict
        Patients, index rows and flares of the site.
    seconds : float
        Wall time of the adaptation.

    """

    bundle: FlareModelBundle
    chosen: str
    reason: str
    table: pd.DataFrame
    conformal_choices: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> pd.DataFrame:
        """The cross-validation table as text, one row per candidate (for printing).

        Columns: ``candidate``, ``log loss`` (mean ± standard error), ``vs best`` (excess
        over the best ± its standard error), ``AUROC``, ``Brier``, ``cal. slope``,
        ``cal. intercept`` and ``chosen`` (an arrow on the chosen row).

        Examples
        --------
        >>> result.summary().columns.tolist()[:3]  # doctest: +SKIP
        ['candidate', 'log loss', 'vs best']

        """
        t = self.table
        shown = pd.DataFrame({"candidate": t.index.to_list()})
        shown["log loss"] = [
            f"{m:.4f} ± {se:.4f}" for m, se in t[["log_loss", "log_loss_se"]].to_numpy()
        ]
        shown["vs best"] = [
            f"{m:+.4f} ± {se:.4f}" for m, se in t[["vs_best", "vs_best_se"]].to_numpy()
        ]
        for column, name in (
            ("auroc", "AUROC"),
            ("brier", "Brier"),
            ("calibration_slope", "cal. slope"),
            ("calibration_intercept", "cal. intercept"),
        ):
            shown[name] = [f"{v:.3f}" for v in t[column]]
        shown["chosen"] = ["<-" if k == self.chosen else "" for k in t.index]
        return shown


def prior_slope(site: SiteData) -> float:
    """The logistic recalibration slope ``b`` of the prior on a site's rows.

    ``b`` is how the site's outcomes scale the prior's log-odds (``logit P = a + b m``,
    maximum likelihood on all the rows). ``b`` near 1: the prior ranks the site's
    patients as it should; ``0 < b < 1``: it is overconfident there; ``b <= 0``: the
    site's outcomes run flat or *against* the prior's ranking, the sign of a prior that
    is wrong at this site (:func:`choose_update`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> margin = rng.normal(size=400)
    >>> outcome = (rng.random(400) < 1 / (1 + np.exp(margin))).astype(float)  # reversed
    >>> site = SiteData(pd.DataFrame({"x": margin}), outcome, np.arange(400), margin)
    >>> prior_slope(site) < 0
    True

    """
    if len(np.unique(site.y)) < 2:
        return 1.0
    return _recalibrate(site.prior_margin, site.y, fit_slope=True)[1]


def _select_and_fit(
    site: SiteData, settings: AdaptSettings, repeats: int, seed: int
) -> tuple[str, str, CrossValidation, MarginUpdate | FlareXGBClassifier | None]:
    """The adaptation procedure on some rows: cross-validate, choose, refit on them all."""
    cv = cross_validate_candidates(site, settings, repeats=repeats, seed=seed)
    chosen, reason = choose_update(cv.fold_losses, cv.folds, prior_slope=prior_slope(site))
    return chosen, reason, cv, fit_candidate(chosen, site, settings, seed, final=True)


def _cross_conformal(site: SiteData, settings: AdaptSettings) -> tuple[np.ndarray, list[str]]:
    """Out-of-fold P(flare) of the whole adaptation procedure (selection included)."""
    oof = np.full(len(site.y), np.nan)
    choices = []
    seed = settings.seed + 7919
    for k, (train, test) in enumerate(
        grouped_folds(site.y, site.groups, settings.conformal_folds, seed)
    ):
        chosen, _, _, fitted = _select_and_fit(
            site.subset(train), settings, settings.conformal_repeats, seed + 10 * k
        )
        oof[test] = predict_candidate(fitted, site.subset(test))
        choices.append(chosen)
    return oof, choices


def adapt_bundle(
    prior: FlareModelBundle,
    table: pd.DataFrame,
    settings: AdaptSettings | None = None,
    *,
    label: str = "site",
    prior_uri: str | None = None,
) -> Adaptation:
    """Adapt a prior model to a site's labelled timepoint table.

    Parameters
    ----------
    prior : FlareModelBundle
        The model to adapt (without a site update of its own).
    table : DataFrame
        The site's timepoint table, with the outcome of every index row.
    settings : AdaptSettings, optional
        Folds, repeats, candidates and seed.
    label : str
        Where the site's patients came from (recorded in the model).
    prior_uri : str, optional
        How the prior was named (recorded in the model).

    Returns
    -------
    Adaptation

    Raises
    ------
    FlareMLError
        For a prior that already carries a site update, or a table without outcomes or
        with too few labelled patients (:func:`site_data`).

    Notes
    -----
    The conformal thresholds are **cross-conformal**: the site's patients are split
    into ``conformal_folds`` patient-grouped folds; for each, the whole procedure
    (cross-validated selection, then the chosen update's fit) runs on the other folds and
    predicts the held-out patients. Class-conditional thresholds for the prior's error
    budget (:meth:`~flare_ml.uncertainty.ClassConditionalConformal.from_budget`) are set
    on these out-of-fold predictions. Every labelled patient calibrates and every one
    trains the final model; a split-conformal hold-out would spend a fifth of a small
    site on calibration alone.

    Examples
    --------
    >>> from flare_ml.simulate import simulate_cohort
    >>> from flare_ml.training import fit_bundle
    >>> prior = fit_bundle(simulate_cohort(600, seed=1).timepoints, n_candidates=1,
    ...                    outer_folds=None)
    >>> site = simulate_cohort(150, site="community", seed=2).timepoints
    >>> quick = AdaptSettings(repeats=1, candidates=("intercept", "intercept_slope"))
    >>> result = adapt_bundle(prior, site, quick)
    >>> result.chosen in quick.candidates, result.bundle.conformal is not None
    (True, True)

    """
    started = time.perf_counter()
    settings = settings or AdaptSettings()
    if prior.update is not None:
        raise FlareMLError(
            "this model is already adapted to a site (it carries a site update); adapt "
            "its prior instead (see its metadata 'adaptation' -> 'prior')"
        )
    site = site_data(prior, table, min_patients=settings.folds)
    chosen, reason, cv, fitted = _select_and_fit(site, settings, settings.repeats, settings.seed)
    oof, choices = _cross_conformal(site, settings)
    budget = prior.budget or ErrorBudget()
    conformal = ClassConditionalConformal.from_budget(budget).fit(oof, site.y)
    threshold = conformal.flare_threshold()
    cv_table = cv.table.assign(chosen=[k == chosen for k in cv.table.index])
    counts = site.counts()
    metadata = {
        k: v
        for k, v in prior.metadata.items()
        if k not in ("site_calibration", "conformal_calibration_rows", "thresholds")
    }
    metadata.update(
        {
            "training_label": f"adapted on {label} ({chosen}) from prior "
            f"{prior_uri or prior.metadata.get('training_label', 'model')}",
            "training": data_fingerprint(table),
            "conformal_calibration": "cross-conformal on the site (out-of-fold predictions "
            "of the whole adaptation procedure)",
            "conformal_calibration_rows": len(oof),
            "thresholds": {"xgboost": threshold},
            "adaptation": {
                "chosen": chosen,
                "reason": reason,
                "site": label,
                "site_counts": counts,
                "prior": {
                    "uri": prior_uri,
                    "digest": prior.digest(),
                    "training_label": prior.metadata.get("training_label"),
                    "training": prior.metadata.get("training"),
                },
                "selection": {
                    "rule": "simplest candidate within one standard error of the best "
                    "cross-validated log loss; a full refit when the site reverses the "
                    "prior's ranking (recalibration slope <= 0)",
                    "prior_slope": prior_slope(site),
                    "folds": settings.folds,
                    "repeats": settings.repeats,
                    "seed": settings.seed,
                    "candidates": cv_table.reset_index().to_dict("records"),
                },
                "conformal": {
                    "method": "cross-conformal",
                    "folds": settings.conformal_folds,
                    "selection_repeats": settings.conformal_repeats,
                    "chosen_in_folds": choices,
                },
                "update": fitted.to_dict() if isinstance(fitted, MarginUpdate) else None,
            },
        }
    )
    if isinstance(fitted, FlareXGBClassifier):
        bundle = bundle_from_model(
            fitted, prior.featurizer, threshold, conformal, prior.top_reasons, metadata
        )
    else:
        bundle = dataclasses.replace(
            prior,
            conformal=conformal,
            threshold=threshold,
            metadata=metadata,
            update=fitted if isinstance(fitted, MarginUpdate) else None,
        )
    return Adaptation(
        bundle=bundle,
        chosen=chosen,
        reason=reason,
        table=cv_table,
        conformal_choices=choices,
        counts=counts,
        seconds=time.perf_counter() - started,
    )
