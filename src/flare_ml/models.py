"""XGBoost classifier of flare versus progression, tuned and calibrated without leakage.

:class:`FlareXGBClassifier` is a scikit-learn classifier over the feature matrix of
:class:`~flare_ml.features.TimepointFeaturizer` (one row per index assessment; ``1`` =
flare). Its ``fit`` does everything inside the data it is given, so that an outer
cross-validation around it stays honest: hyperparameters are searched over
patient-grouped, outcome-stratified inner folds with early stopping on each inner
validation fold; the number of trees is the median best iteration; the calibration
(none, sigmoid or isotonic) is chosen by cross-fitted log loss on the inner out-of-fold
scores and then fitted on all of them. :func:`grouped_folds` gives the patient-grouped
stratified splits used everywhere, so no patient is ever in two folds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import log_loss
from sklearn.model_selection import ParameterSampler, StratifiedGroupKFold
from sklearn.utils.validation import check_is_fitted

from flare_ml.calibration import METHODS, ProbabilityCalibrator

#: default search space (lists are sampled uniformly); overridden by configs/train/*.yaml
DEFAULT_SEARCH_SPACE: dict[str, list[Any]] = {
    "max_depth": [2, 3, 4, 5],
    "learning_rate": [0.03, 0.05, 0.1],
    "min_child_weight": [1, 3, 5, 10],
    "subsample": [0.7, 0.85, 1.0],
    "colsample_bytree": [0.6, 0.8, 1.0],
    "reg_lambda": [0.5, 1.0, 5.0],
}


def grouped_folds(
    y: np.ndarray, groups: np.ndarray, n_splits: int, random_state: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Patient-grouped, outcome-stratified folds: no patient appears in two folds.

    Parameters
    ----------
    y : array of shape (n,)
        Outcome (1 = flare).
    groups : array of shape (n,)
        Patient identifiers.
    n_splits : int
        Number of folds (reduced to the number of patients when fewer).
    random_state : int
        Seed of the shuffle.

    Returns
    -------
    list of (train_index, test_index)

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 1] * 10)
    >>> groups = np.repeat(np.arange(10), 2)
    >>> folds = grouped_folds(y, groups, 5, 0)
    >>> all(set(groups[tr]).isdisjoint(groups[te]) for tr, te in folds)
    True

    """
    n_groups = len(np.unique(groups))
    splitter = StratifiedGroupKFold(
        n_splits=min(n_splits, n_groups), shuffle=True, random_state=random_state
    )
    return list(splitter.split(np.zeros(len(y)), y, groups))


class FlareXGBClassifier(ClassifierMixin, BaseEstimator):
    """Gradient-boosted P(flare) with grouped tuning, early stopping and calibration.

    Parameters
    ----------
    search_space : dict, optional
        XGBoost parameters to search, each a list of values (default
        :data:`DEFAULT_SEARCH_SPACE`).
    n_candidates : int, default 8
        Number of parameter sets sampled from ``search_space``.
    inner_folds : int, default 3
        Patient-grouped folds used for tuning, early stopping and calibration.
    n_estimators_max : int, default 500
        Upper bound on boosting rounds; early stopping picks the number.
    early_stopping_rounds : int, default 30
        Rounds without improvement of the validation log loss before stopping.
    calibration : {"auto", "none", "sigmoid", "isotonic"}, default "auto"
        ``auto`` chooses by cross-fitted log loss on the inner out-of-fold scores.
    random_state : int, default 0
        Seed for sampling, folds and XGBoost.
    n_jobs : int, default 2
        Threads for XGBoost.

    Attributes
    ----------
    classes_ : ndarray
        ``[0, 1]``; 1 is flare.
    best_params_ : dict
        The chosen XGBoost parameters, ``n_estimators`` included.
    cv_results_ : list of dict
        Per candidate: parameters, mean and std of inner log loss, best iterations.
    calibration_ : str
        The calibration used.
    calibration_scores_ : dict
        Cross-fitted log loss of each calibration method.
    calibrator_ : ProbabilityCalibrator
        Fitted on the inner out-of-fold scores.
    model_ : xgboost.XGBClassifier
        The final model, refitted on all the data.
    feature_names_in_ : ndarray
        Feature names seen in ``fit``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"signal": rng.normal(size=300), "noise": rng.normal(size=300)})
    >>> y = (X["signal"] + rng.normal(scale=0.5, size=300) > 0).astype(int)
    >>> groups = np.arange(300) // 2
    >>> clf = FlareXGBClassifier(n_candidates=2, random_state=0).fit(X, y, groups=groups)
    >>> clf.predict_proba(X).shape
    (300, 2)

    """

    def __init__(
        self,
        search_space: dict[str, list[Any]] | None = None,
        n_candidates: int = 8,
        inner_folds: int = 3,
        n_estimators_max: int = 500,
        early_stopping_rounds: int = 30,
        calibration: str = "auto",
        random_state: int = 0,
        n_jobs: int = 2,
    ) -> None:
        self.search_space = search_space
        self.n_candidates = n_candidates
        self.inner_folds = inner_folds
        self.n_estimators_max = n_estimators_max
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- helpers ---------------------------------------------------------------------
    def _xgb(self, params: dict[str, Any], **extra: Any) -> xgb.XGBClassifier:
        return xgb.XGBClassifier(
            objective="binary:logistic",
            tree_method="hist",
            eval_metric="logloss",
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            **params,
            **extra,
        )

    def _candidates(self) -> Iterator[dict[str, Any]]:
        space = self.search_space or DEFAULT_SEARCH_SPACE
        yield from ParameterSampler(space, n_iter=self.n_candidates, random_state=self.random_state)

    # -- scikit-learn API ------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: Any, groups: Any = None) -> FlareXGBClassifier:
        """Tune, early-stop, choose a calibration and refit on all of ``X``.

        Parameters
        ----------
        X : DataFrame
            Feature matrix (NaN allowed).
        y : array-like
            1 = flare, 0 = progression.
        groups : array-like, optional
            Patient identifiers; without them every row is its own patient.

        """
        if self.calibration not in ("auto", *METHODS):
            raise ValueError(f"calibration must be 'auto' or one of {METHODS}")
        X = pd.DataFrame(X)
        y_arr = np.asarray(y, dtype=int)
        if set(np.unique(y_arr)) != {0, 1}:
            raise ValueError("y must contain both classes, 0 (progression) and 1 (flare)")
        g = np.arange(len(y_arr)) if groups is None else np.asarray(groups)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.classes_ = np.array([0, 1])
        folds = grouped_folds(y_arr, g, self.inner_folds, self.random_state)

        results = []
        best: dict[str, Any] | None = None
        for params in self._candidates():
            oof = np.full(len(y_arr), np.nan)
            losses, iterations = [], []
            for train, valid in folds:
                model = self._xgb(
                    params,
                    n_estimators=self.n_estimators_max,
                    early_stopping_rounds=self.early_stopping_rounds,
                )
                model.fit(
                    X.iloc[train],
                    y_arr[train],
                    eval_set=[(X.iloc[valid], y_arr[valid])],
                    verbose=False,
                )
                oof[valid] = model.predict_proba(X.iloc[valid])[:, 1]
                losses.append(log_loss(y_arr[valid], oof[valid], labels=[0, 1]))
                iterations.append(model.best_iteration + 1)
            row = {
                "params": dict(params),
                "mean_log_loss": float(np.mean(losses)),
                "std_log_loss": float(np.std(losses)),
                "best_iterations": iterations,
            }
            results.append(row)
            if best is None or row["mean_log_loss"] < best["mean_log_loss"]:
                best = {**row, "oof": oof}
        assert best is not None
        self.cv_results_ = results
        n_estimators = max(1, int(np.median(best["best_iterations"])))
        self.best_params_ = {**best["params"], "n_estimators": n_estimators}

        oof = best["oof"]
        self.calibration_scores_ = self._score_calibrations(oof, y_arr, folds)
        self.calibration_ = (
            min(self.calibration_scores_, key=self.calibration_scores_.__getitem__)
            if self.calibration == "auto"
            else self.calibration
        )
        self.calibrator_ = ProbabilityCalibrator(self.calibration_).fit(oof, y_arr)
        self.model_ = self._xgb(self.best_params_).fit(X, y_arr, verbose=False)
        return self

    @staticmethod
    def _score_calibrations(
        oof: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
    ) -> dict[str, float]:
        """Cross-fitted log loss of each calibration method on out-of-fold scores."""
        scores = {}
        for method in METHODS:
            calibrated = np.empty_like(oof)
            for train, valid in folds:
                cal = ProbabilityCalibrator(method).fit(oof[train], y[train])
                calibrated[valid] = cal.transform(oof[valid])
            scores[method] = float(log_loss(y, np.clip(calibrated, 1e-6, 1 - 1e-6)))
        return scores

    def raw_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated P(flare) of the boosted trees."""
        check_is_fitted(self, "model_")
        return self.model_.predict_proba(pd.DataFrame(X)[list(self.feature_names_in_)])[:, 1]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated class probabilities, columns ``[P(progression), P(flare)]``."""
        p = np.clip(self.calibrator_.transform(self.raw_proba(X)), 0.0, 1.0)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 (flare) where P(flare) >= 0.5, else 0."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def get_booster(self) -> xgb.Booster:
        """The fitted XGBoost booster (for SHAP and saving as JSON/UBJ)."""
        check_is_fitted(self, "model_")
        return self.model_.get_booster()
