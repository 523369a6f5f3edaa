"""The trained model as a folder of plain JSON files: save, load and score.

A :class:`FlareModelBundle` holds everything needed to go from raw timepoint rows to a
decision per index assessment: the featurizer's parameters, XGBoost's own JSON model, the
probability calibrator, the class-conditional conformal thresholds, the operating
threshold, plus metadata (feature names, data fingerprint, versions, rule settings, the
synthetic-data caveat). Scoring returns P(flare), the decision (``flare``,
``progression`` or ``uncertain``), the conformal prediction set and the top reasons in
clinical words. It is written as JSON only, never
pickle, so loading a model never runs stored code; the MLflow pyfunc model, batch scoring,
Spark and the scores that training reports for external cohorts all go through this one
class, so their answers agree (``tests/test_scoring_parity.py`` checks it).

A bundle adapted to a site (``flare-ml adapt``, :mod:`flare_ml.adaptation`) is the prior
model's parts plus a :class:`MarginUpdate` on the prior's log-odds (an intercept, an
intercept and slope, or a shallow residual booster), stored as two more JSON files; it
scores, explains and serves through the same methods (docs/adapt.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from flare_ml import __version__
from flare_ml.calibration import ProbabilityCalibrator
from flare_ml.data import contract as c
from flare_ml.explain import reasons, signal_sums
from flare_ml.features import TimepointFeaturizer
from flare_ml.models import booster_input
from flare_ml.uncertainty import ClassConditionalConformal, ErrorBudget

#: format of bundles with a site update (:class:`MarginUpdate`); bundles without one are
#: still written as format 1, which every earlier flare-ml reads
FORMAT_VERSION = 2
#: the formats :meth:`FlareModelBundle.load` reads
SUPPORTED_FORMATS = (1, 2)
#: below this many feature rows XGBoost runs single-threaded (see ``_booster_for``)
SMALL_BATCH_ROWS = 1024
MANIFEST = "manifest.json"
BOOSTER_FILE = "booster.json"
FEATURIZER_FILE = "featurizer.json"
CALIBRATOR_FILE = "calibrator.json"
CONFORMAL_FILE = "conformal.json"
UPDATE_FILE = "update.json"
UPDATE_BOOSTER_FILE = "update_booster.json"
#: the kinds of :class:`MarginUpdate`
UPDATE_KINDS = ("intercept", "intercept_slope", "residual_boosting")
#: the prior's P(flare) is clipped to [eps, 1 - eps] before its logit (its margin)
PRIOR_LOGIT_EPS = 1e-6
#: below this absolute sum of a row's prior SHAP values, the calibrator's slope at the
#: base value scales them (see :meth:`FlareModelBundle.contributions`)
_SMALL_SHAP_SUM = 1e-4
#: column names of :meth:`FlareModelBundle.contributions`
BASE_VALUE = "base value"
SITE_RECALIBRATION = "site recalibration"
PRIOR_PREFIX = "prior: "
SITE_PREFIX = "site: "
#: output columns of :meth:`FlareModelBundle.predict`
OUTPUT_COLUMNS = (
    c.PATIENT_ID,
    c.ASSESSMENT_DATE,
    "p_flare",
    "decision",
    "prediction_set",
    "reasons",
)
SYNTHETIC_CAVEAT = (
    "Trained on synthetic cohorts from the flare-ml simulator; not validated on patients "
    "and not for clinical use."
)


def prior_logit(p: np.ndarray) -> np.ndarray:
    """Log-odds of P(flare), clipped to [PRIOR_LOGIT_EPS, 1 - PRIOR_LOGIT_EPS] (float64).

    Examples
    --------
    >>> prior_logit(np.array([0.5, 1.0])).round(2).tolist()
    [0.0, 13.82]

    """
    q = np.clip(np.asarray(p, dtype=np.float64), PRIOR_LOGIT_EPS, 1.0 - PRIOR_LOGIT_EPS)
    return np.log(q) - np.log1p(-q)


def _expit(margin: np.ndarray) -> np.ndarray:
    """The logistic function (float64)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(margin, dtype=np.float64)))


@dataclass
class MarginUpdate:
    """A site's update of a prior model, on the prior's log-odds (its margin).

    The adapted log-odds of flare are ``intercept + slope * m + r(x)``, where ``m`` is
    the logit of the prior's calibrated P(flare) (:func:`prior_logit`) and ``r(x)`` the
    margin of the residual booster (zero without one): recalibration in the large
    (``intercept``), logistic recalibration (``intercept_slope``) or residual boosting on
    the site's features with the prior's margin as offset (``residual_boosting``).

    Parameters
    ----------
    kind : {"intercept", "intercept_slope", "residual_boosting"}
        Which update (:data:`UPDATE_KINDS`).
    intercept, slope : float
        The recalibration ``a`` and ``b`` (0 and 1 leave the prior as is).
    residual : xgboost.Booster, optional
        Trees fitted with ``base_score`` 0.5 (margin 0), so that their margin without a
        ``base_margin`` is the correction alone; None for zero rounds.

    Examples
    --------
    >>> update = MarginUpdate("intercept", intercept=0.5)
    >>> update.margin(np.array([0.0, 1.0]), np.zeros(2)).tolist()
    [0.5, 1.5]
    >>> MarginUpdate.from_dict(update.to_dict()) == update
    True

    """

    kind: str
    intercept: float = 0.0
    slope: float = 1.0
    residual: xgb.Booster | None = None

    def __post_init__(self) -> None:
        if self.kind not in UPDATE_KINDS:
            raise ValueError(f"update kind must be one of {UPDATE_KINDS}, got {self.kind!r}")
        if self.residual is not None and self.kind != "residual_boosting":
            raise ValueError(f"a {self.kind} update has no residual booster")

    def margin(self, prior_margin: np.ndarray, residual_margin: np.ndarray) -> np.ndarray:
        """Adapted log-odds from the prior's log-odds and the residual booster's margin."""
        return self.intercept + self.slope * prior_margin + residual_margin

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (the residual booster is saved as its own JSON file)."""
        return {
            "kind": self.kind,
            "intercept": float(self.intercept),
            "slope": float(self.slope),
            "residual_rounds": 0 if self.residual is None else self.residual.num_boosted_rounds(),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any], residual: xgb.Booster | None = None) -> MarginUpdate:
        """Rebuild an update from :meth:`to_dict` output and its residual booster."""
        return cls(
            kind=str(state["kind"]),
            intercept=float(state["intercept"]),
            slope=float(state["slope"]),
            residual=residual,
        )


def _joined_reasons(
    features: pd.DataFrame, signal_shap: pd.DataFrame | tuple[list[str], np.ndarray], top: int
) -> list[str]:
    """:func:`flare_ml.explain.reasons` of each row, joined by ``"; "``."""
    return ["; ".join(row) for row in reasons(features, signal_shap, top)]


@dataclass
class FlareModelBundle:
    """Featurizer + XGBoost booster + calibrator + threshold, saved as JSON.

    Parameters
    ----------
    featurizer_params : dict
        Parameters of :class:`~flare_ml.features.TimepointFeaturizer`.
    feature_names : list of str
        Columns the booster was trained on, in order.
    booster : xgboost.Booster
        The trained trees.
    calibrator : ProbabilityCalibrator
        Maps raw booster probabilities to calibrated P(flare).
    threshold : float
        Operating threshold on calibrated P(flare): with conformal thresholds, the
        smallest P(flare) decided flare
        (:meth:`~flare_ml.uncertainty.ClassConditionalConformal.flare_threshold`), so
        the metrics read at it describe the ``decision`` column.
    conformal : ClassConditionalConformal, optional
        Per-class conformal thresholds of the error budget (:attr:`budget`); without
        them every decision follows ``threshold`` and the prediction set holds the
        decided class.
    top_reasons : int
        How many reasons to give per index assessment.
    metadata : dict
        Free-form JSON metadata (training fingerprint, config digest, versions).
    update : MarginUpdate, optional
        A site's update on top of the log-odds of ``booster`` + ``calibrator`` (the
        prior); None for a model used as trained.

    Examples
    --------
    >>> import tempfile
    >>> from flare_ml.simulate import simulate_cohort
    >>> from flare_ml.training import fit_bundle
    >>> table = simulate_cohort(300, seed=3).timepoints
    >>> bundle = fit_bundle(table, n_candidates=1, outer_folds=None)
    >>> folder = bundle.save(tempfile.mkdtemp())
    >>> again = FlareModelBundle.load(folder)
    >>> bool(np.allclose(bundle.predict(table)["p_flare"], again.predict(table)["p_flare"]))
    True

    """

    featurizer_params: dict[str, Any]
    feature_names: list[str]
    booster: xgb.Booster
    calibrator: ProbabilityCalibrator
    threshold: float = 0.5
    conformal: ClassConditionalConformal | None = None
    top_reasons: int = 3
    metadata: dict[str, Any] = field(default_factory=dict)
    update: MarginUpdate | None = None

    def __post_init__(self) -> None:
        self.featurizer = TimepointFeaturizer(**self.featurizer_params)  # learns nothing

    # -- scoring ----------------------------------------------------------------------
    def features(self, timepoints: pd.DataFrame) -> pd.DataFrame:
        """Feature rows of every index assessment in ``timepoints``."""
        return self._model_columns(self.featurizer.transform(timepoints))

    def _model_columns(self, features: pd.DataFrame) -> pd.DataFrame:
        """``features`` restricted to :attr:`feature_names`, in order (as is when it is)."""
        if features.columns.tolist() == self.feature_names:
            return features
        return features[self.feature_names]

    def _matrix(self, features: pd.DataFrame) -> xgb.DMatrix:
        """The booster's input for ``features`` (one thread for small inputs)."""
        return booster_input(
            self._model_columns(features).to_numpy(dtype=np.float32),
            self.feature_names,
            nthread=1 if len(features) < SMALL_BATCH_ROWS else -1,
        )

    def _booster_for(self, n_rows: int, booster: xgb.Booster | None = None) -> xgb.Booster:
        """The booster, or a single-threaded copy of it for fewer than SMALL_BATCH_ROWS rows.

        Waking a team of OpenMP threads costs more than predicting a few rows (a REST
        request of one patient), and far more on a busy machine; a separate copy keeps
        the setting thread-safe for concurrent requests. ``booster`` picks another
        booster of the bundle (the update's residual trees); default :attr:`booster`.
        """
        booster = self.booster if booster is None else booster
        if n_rows >= SMALL_BATCH_ROWS:
            return booster
        copies = self.__dict__.setdefault("_single_thread", {})
        cached = copies.get(id(booster))
        if cached is None or cached[0] is not booster:
            single = booster.copy()
            single.set_param({"nthread": 1})
            cached = (booster, single)
            copies[id(booster)] = cached
        return cached[1]

    def raw_proba(self, features: pd.DataFrame, matrix: xgb.DMatrix | None = None) -> np.ndarray:
        """Uncalibrated booster P(flare) for a feature matrix.

        ``matrix`` reuses a DMatrix of ``features`` (as built by ``_matrix``).
        """
        if len(features) == 0:
            return np.empty(0)
        booster = self._booster_for(len(features))
        return booster.predict(self._matrix(features) if matrix is None else matrix)

    def proba_from_features(
        self, features: pd.DataFrame, matrix: xgb.DMatrix | None = None
    ) -> np.ndarray:
        """Calibrated P(flare) for a feature matrix: the model's one computation of it.

        Every P(flare) of the model goes through here: :meth:`score_columns` (hence
        :meth:`predict`, the pyfunc model, batch scoring, Spark and the REST server) and
        the scores that training reports for external cohorts. ``matrix`` reuses a
        DMatrix of ``features``. With a site :attr:`update` it is the logistic function
        of :meth:`margin_from_features`.

        Examples
        --------
        >>> from flare_ml.simulate import simulate_cohort
        >>> from flare_ml.training import fit_bundle
        >>> table = simulate_cohort(300, seed=3).timepoints
        >>> bundle = fit_bundle(table, n_candidates=1, outer_folds=None)
        >>> p = bundle.proba_from_features(bundle.features(table))
        >>> bool(((p >= 0) & (p <= 1)).all()), len(p) == len(bundle.predict(table))
        (True, True)

        """
        if self.update is None:
            return self._prior_proba(features, matrix)
        return _expit(self.margin_from_features(features, matrix))

    def _prior_proba(self, features: pd.DataFrame, matrix: xgb.DMatrix | None) -> np.ndarray:
        """P(flare) of :attr:`booster` and :attr:`calibrator` (the prior of an update)."""
        return np.clip(self.calibrator.transform(self.raw_proba(features, matrix)), 0.0, 1.0)

    def _residual_margin(self, n_rows: int, matrix: xgb.DMatrix) -> np.ndarray:
        """Margin of the update's residual trees (zeros without them)."""
        residual = self.update.residual if self.update is not None else None
        if residual is None:
            return np.zeros(n_rows)
        booster = self._booster_for(n_rows, residual)
        return booster.predict(matrix, output_margin=True).astype(np.float64)

    def margin_from_features(
        self, features: pd.DataFrame, matrix: xgb.DMatrix | None = None
    ) -> np.ndarray:
        """Log-odds of flare of each feature row: what :meth:`contributions` add up to.

        Without an update, the logit of P(flare) (:func:`prior_logit`); with one, the
        adapted margin ``a + b * prior_logit(prior P(flare)) + residual(x)`` whose
        logistic function is P(flare).

        Examples
        --------
        >>> from flare_ml.simulate import simulate_cohort
        >>> from flare_ml.training import fit_bundle
        >>> table = simulate_cohort(300, seed=3).timepoints
        >>> bundle = fit_bundle(table, n_candidates=1, outer_folds=None)
        >>> shifted = dataclasses.replace(bundle, update=MarginUpdate("intercept", 1.0))
        >>> feats = bundle.features(table)
        >>> diff = shifted.margin_from_features(feats) - bundle.margin_from_features(feats)
        >>> bool(np.allclose(diff, 1.0))
        True

        """
        if len(features) == 0:
            return np.empty(0)
        if matrix is None:
            matrix = self._matrix(features)
        margin = prior_logit(self._prior_proba(features, matrix))
        if self.update is None:
            return margin
        return self.update.margin(margin, self._residual_margin(len(features), matrix))

    def _prior_slope(
        self, contrib_sum: np.ndarray, bias: float, prior_margin: np.ndarray
    ) -> tuple[np.ndarray, float]:
        """Per row, the factor that maps the booster's SHAP values onto the prior's margin.

        The prior's margin is ``g(booster margin)`` for the calibrator's monotone map
        ``g``; the factor is the secant slope ``(g(m) - g(bias)) / (m - bias)`` (exactly
        ``a`` for a sigmoid calibrator, 1 without one), or ``g``'s slope at the bias for
        a row whose SHAP values add up to almost nothing. Returns the factors and
        ``g(bias)``, the base value.
        """
        base = float(prior_logit(self.calibrator.transform(_expit(np.array([bias]))))[0])
        h = 1e-3
        ends = prior_logit(self.calibrator.transform(_expit(np.array([bias - h, bias + h]))))
        local = float(ends[1] - ends[0]) / (2 * h)
        small = np.abs(contrib_sum) < _SMALL_SHAP_SUM
        with np.errstate(divide="ignore", invalid="ignore"):
            secant = (prior_margin - base) / contrib_sum
        return np.where(small, local, secant), base

    def contributions(
        self, features: pd.DataFrame, matrix: xgb.DMatrix | None = None
    ) -> pd.DataFrame:
        """Exact additive explanation of :meth:`margin_from_features`, by clinical signal.

        XGBoost's TreeSHAP values of :attr:`booster` (``pred_contribs``, computed without
        any ``base_margin``) are summed per clinical signal
        (:data:`flare_ml.explain.SIGNALS`) and carried onto the prior's calibrated
        log-odds by the calibrator's secant slope (:meth:`_prior_slope`). Without an
        update the columns are the signals and ``base value``; with one, the prior's
        signals (``prior: <signal>``, times the update's slope), the residual trees'
        own TreeSHAP values (``site: <signal>``, computed without the prior's margin as
        ``base_margin``, whose bias XGBoost gets wrong), ``site recalibration`` (the
        update's constant: ``a + (b - 1) * base value`` plus the residual trees' bias)
        and ``base value`` (the prior's log-odds at its booster's expected margin).
        Each row adds up to :meth:`margin_from_features` (to rounding); the ``base
        value`` is the same for every row up to a remainder below 1e-4 (rows whose
        prior SHAP values add up to less than 1e-4 in total).

        Returns
        -------
        DataFrame
            One row per feature row (same index), one column per part, in log-odds of
            flare.

        Examples
        --------
        >>> from flare_ml.simulate import simulate_cohort
        >>> from flare_ml.training import fit_bundle
        >>> table = simulate_cohort(300, seed=3).timepoints
        >>> bundle = fit_bundle(table, n_candidates=1, outer_folds=None)
        >>> adapted = dataclasses.replace(bundle, update=MarginUpdate("intercept_slope", 0.3, 0.8))
        >>> feats = bundle.features(table)
        >>> parts = adapted.contributions(feats)
        >>> bool(np.allclose(parts.sum(axis=1), adapted.margin_from_features(feats), atol=1e-6))
        True
        >>> parts.columns[0], parts.columns[-1]
        ('prior: time since treatment start', 'base value')

        """
        names, prior_signals, site_signals, constant, base = self._parts(features, matrix)
        index = features.index
        if self.update is None:
            frame = pd.DataFrame(prior_signals, index=index, columns=names)
        else:
            frame = pd.concat(
                [
                    pd.DataFrame(
                        prior_signals, index=index, columns=[PRIOR_PREFIX + n for n in names]
                    ),
                    pd.DataFrame(
                        site_signals, index=index, columns=[SITE_PREFIX + n for n in names]
                    ),
                ],
                axis=1,
            )
            frame[SITE_RECALIBRATION] = constant
        frame[BASE_VALUE] = base
        return frame

    def _parts(
        self, features: pd.DataFrame, matrix: xgb.DMatrix | None
    ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Signal names, prior and site signal sums, the update's constant, base values."""
        n = len(features)
        if matrix is None:
            matrix = self._matrix(features)
        values = self._booster_for(n).predict(matrix, pred_contribs=True).astype(np.float64)
        names, sums = signal_sums(values[:, :-1], self.feature_names)
        contrib_sum = values[:, :-1].sum(axis=1)
        prior_margin = prior_logit(self._prior_proba(features, matrix))
        bias = float(values[0, -1]) if n else 0.0
        scale, base = self._prior_slope(contrib_sum, bias, prior_margin)
        remainder = prior_margin - base - scale * contrib_sum
        update = self.update
        slope = 1.0 if update is None else update.slope
        prior_signals = sums * (slope * scale)[:, None]
        site_signals = np.zeros_like(prior_signals)
        constant = np.zeros(n)
        if update is not None:
            constant += update.intercept + (update.slope - 1.0) * base
            if update.residual is not None:
                residual = self._booster_for(n, update.residual)
                site = residual.predict(matrix, pred_contribs=True).astype(np.float64)
                site_signals = signal_sums(site[:, :-1], self.feature_names)[1]
                constant += site[:, -1]
        return names, prior_signals, site_signals, constant, base + slope * remainder

    @property
    def budget(self) -> ErrorBudget | None:
        """The error budget the ``decision`` column keeps (None without conformal sets)."""
        return self.conformal.budget if self.conformal is not None else None

    def with_budget(self, budget: ErrorBudget) -> FlareModelBundle:
        """A copy whose decisions keep another error budget (same trees and P(flare)).

        The conformal thresholds come from those kept at fit time for a grid of budgets
        (:meth:`~flare_ml.uncertainty.ClassConditionalConformal.with_budget`), so
        tightening the budget at scoring time needs no calibration data.

        Raises
        ------
        ValueError
            When the model has no conformal thresholds, or none for this budget.

        Examples
        --------
        >>> strict = bundle.with_budget(ErrorBudget(0.02, 0.10))  # doctest: +SKIP
        >>> strict.threshold > bundle.threshold  # doctest: +SKIP
        True

        """
        if self.conformal is None:
            raise ValueError(
                "this model has no conformal thresholds, so its decision has no error budget"
            )
        conformal = self.conformal.with_budget(budget)
        threshold = conformal.flare_threshold()
        metadata = dict(self.metadata)
        if "thresholds" in metadata:
            metadata["thresholds"] = {**dict(metadata["thresholds"]), "xgboost": threshold}
        return dataclasses.replace(
            self, conformal=conformal, threshold=threshold, metadata=metadata
        )

    def digest(self) -> str:
        """SHA-256 (first 16 hex digits) of the bundle's files: which model scored.

        Examples
        --------
        >>> len(bundle.digest())  # doctest: +SKIP
        16

        """
        sha = hashlib.sha256()
        for name, data in sorted(self.to_files().items()):
            sha.update(name.encode() + b"\0" + data)
        return sha.hexdigest()[:16]

    def decide(self, p_flare: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decisions and prediction sets for calibrated P(flare) values."""
        if self.conformal is not None:
            return self.conformal.decide(p_flare)
        decision = np.where(p_flare >= self.threshold, "flare", "progression").astype(object)
        return decision, decision.copy()

    def explain(self, features: pd.DataFrame, matrix: xgb.DMatrix | None = None) -> list[str]:
        """Top reasons of each feature row, joined by ``"; "``.

        The same text as :func:`flare_ml.explain.reasons` on the exact TreeSHAP values of
        :func:`flare_ml.explain.shap_contributions` (same describers, same order); with
        a site update, on the signals of :meth:`contributions`, the prior's and the
        site's part of each signal added (the update's constant is no reason). Built
        from plain dict rows instead of one pandas Series per row, which makes it several
        times faster on large batches. ``matrix`` reuses a DMatrix of ``features``.
        """
        if len(features) == 0:
            return []
        if self.update is not None:  # the prior's and the site's part of each signal
            names, prior_signals, site_signals, _, _ = self._parts(features, matrix)
            return _joined_reasons(
                features, (names, prior_signals + site_signals), self.top_reasons
            )
        booster = self._booster_for(len(features))
        values = booster.predict(
            self._matrix(features) if matrix is None else matrix, pred_contribs=True
        )
        signals = signal_sums(values[:, :-1], self.feature_names)
        return _joined_reasons(features, signals, self.top_reasons)

    def predict(self, timepoints: pd.DataFrame, with_reasons: bool = True) -> pd.DataFrame:
        """Score every index row of a timepoint table.

        Returns one row per index assessment with :data:`OUTPUT_COLUMNS`: ``patient_id``,
        ``assessment_date``, ``p_flare`` (calibrated), ``decision`` (``flare``,
        ``progression`` or ``uncertain``: confirm with follow-up imaging in at least six
        weeks), ``prediction_set`` (``flare``, ``progression``, ``flare,progression`` or
        empty) and ``reasons`` (empty when ``with_reasons`` is False). Non-index rows
        (baseline, follow-up scans without new bone lesions, lab rows) are history for
        the features and get no output row.
        """
        return self.predict_features(self.features(timepoints), with_reasons)

    def predict_features(self, features: pd.DataFrame, with_reasons: bool = True) -> pd.DataFrame:
        """:meth:`predict` on feature rows already computed (index: patient, date)."""
        columns = self.score_columns(features, with_reasons)
        text = {
            col: pd.array(columns[col], dtype="str")
            for col in (c.PATIENT_ID, "decision", "prediction_set", "reasons")
        }
        return pd.DataFrame({**columns, **text}, columns=list(OUTPUT_COLUMNS))

    def score_columns(self, features: pd.DataFrame, with_reasons: bool = True) -> dict[str, Any]:
        """:meth:`predict_features` as plain NumPy columns, before any DataFrame is built.

        Returns
        -------
        dict of str to numpy.ndarray
            :data:`OUTPUT_COLUMNS`: ``patient_id``, ``decision``, ``prediction_set`` and
            ``reasons`` as object arrays of text, ``assessment_date`` as
            ``datetime64[s]``, ``p_flare`` as float64. The served model turns them into
            its JSON-safe output directly (:func:`flare_ml.serving.schema.score_wire`).

        """
        feats = self._model_columns(features)
        n = len(feats)
        matrix = self._matrix(feats) if n else None
        p = self.proba_from_features(feats, matrix)
        decision, prediction_set = self.decide(p)
        reasons = self.explain(feats, matrix) if with_reasons and n else [""] * n
        return {
            c.PATIENT_ID: feats.index.get_level_values(c.PATIENT_ID).to_numpy(dtype=object),
            c.ASSESSMENT_DATE: feats.index.get_level_values(c.ASSESSMENT_DATE).to_numpy(),
            "p_flare": np.asarray(p, dtype=np.float64),
            "decision": np.asarray(decision, dtype=object),
            "prediction_set": np.asarray(prediction_set, dtype=object),
            "reasons": np.asarray(reasons, dtype=object),
        }

    # -- persistence ------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write the bundle as JSON files into ``folder`` (created if needed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / BOOSTER_FILE).write_bytes(bytes(self.booster.save_raw("json")))
        (folder / FEATURIZER_FILE).write_text(json.dumps(self.featurizer_params, indent=2))
        (folder / CALIBRATOR_FILE).write_text(json.dumps(self.calibrator.to_dict()))
        if self.conformal is not None:
            (folder / CONFORMAL_FILE).write_text(json.dumps(self.conformal.to_dict(), indent=2))
        if self.update is not None:
            (folder / UPDATE_FILE).write_text(json.dumps(self.update.to_dict(), indent=2))
            if self.update.residual is not None:
                raw = bytes(self.update.residual.save_raw("json"))
                (folder / UPDATE_BOOSTER_FILE).write_bytes(raw)
        manifest = {
            "format_version": 1 if self.update is None else FORMAT_VERSION,
            "flare_ml_version": __version__,
            "xgboost_version": xgb.__version__,
            "feature_names": self.feature_names,
            "threshold": self.threshold,
            "top_reasons": self.top_reasons,
            "caveat": SYNTHETIC_CAVEAT,
            "metadata": self.metadata,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        return folder

    def to_files(self) -> dict[str, bytes]:
        """Return the bundle's files as ``{file name: bytes}`` (what :meth:`save` writes).

        Handy to ship a model to remote workers (for example a Spark broadcast) without
        a shared file system; :meth:`from_files` reads it back.

        Examples
        --------
        >>> from flare_ml.simulate import simulate_cohort
        >>> from flare_ml.training import fit_bundle
        >>> bundle = fit_bundle(simulate_cohort(300, seed=3).timepoints, n_candidates=1,
        ...                     outer_folds=None)
        >>> files = bundle.to_files()
        >>> sorted(files)[:2]
        ['booster.json', 'calibrator.json']
        >>> FlareModelBundle.from_files(files).feature_names == bundle.feature_names
        True

        """
        with tempfile.TemporaryDirectory(prefix="flare-ml-bundle-") as tmp:
            folder = self.save(tmp)
            return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> FlareModelBundle:
        """Rebuild a bundle from :meth:`to_files` output (JSON only; nothing unpickled)."""
        with tempfile.TemporaryDirectory(prefix="flare-ml-bundle-") as tmp:
            for name, data in files.items():
                if Path(name).name != name or not name.endswith(".json"):
                    raise ValueError(f"unexpected file in a model bundle: {name!r}")
                (Path(tmp) / name).write_bytes(data)
            return cls.load(tmp)

    @classmethod
    def load(cls, folder: str | Path) -> FlareModelBundle:
        """Read a bundle written by :meth:`save` (JSON only; nothing is unpickled)."""
        folder = Path(folder)
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("format_version") not in SUPPORTED_FORMATS:
            raise ValueError(
                f"model bundle format {manifest.get('format_version')} is not supported "
                f"by flare-ml {__version__} (reads formats {SUPPORTED_FORMATS})"
            )
        update = None
        if manifest["format_version"] >= 2:  # a bundle with a site update
            residual = None
            if (folder / UPDATE_BOOSTER_FILE).exists():
                residual = xgb.Booster()
                residual.load_model(bytearray((folder / UPDATE_BOOSTER_FILE).read_bytes()))
            update = MarginUpdate.from_dict(
                json.loads((folder / UPDATE_FILE).read_text()), residual
            )
        conformal_path = folder / CONFORMAL_FILE
        conformal = (
            ClassConditionalConformal.from_dict(json.loads(conformal_path.read_text()))
            if conformal_path.exists()
            else None
        )
        booster = xgb.Booster()
        booster.load_model(bytearray((folder / BOOSTER_FILE).read_bytes()))
        return cls(
            featurizer_params=json.loads((folder / FEATURIZER_FILE).read_text()),
            feature_names=list(manifest["feature_names"]),
            booster=booster,
            calibrator=ProbabilityCalibrator.from_dict(
                json.loads((folder / CALIBRATOR_FILE).read_text())
            ),
            threshold=float(manifest["threshold"]),
            conformal=conformal,
            top_reasons=int(manifest.get("top_reasons", 3)),
            metadata=manifest.get("metadata", {}),
            update=update,
        )
