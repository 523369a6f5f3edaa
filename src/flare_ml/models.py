"""XGBoost classifier of flare versus progression, tuned and calibrated without leakage.

:class:`FlareXGBClassifier` is a scikit-learn classifier over the feature matrix of
:class:`~flare_ml.features.TimepointFeaturizer` (one row per index assessment; ``1`` =
flare). Its ``fit`` does everything inside the data it is given, so that an outer
cross-validation around it stays honest: hyperparameters are searched over
patient-grouped, outcome-stratified inner folds
(:func:`~flare_ml.model_selection.grouped_folds`) with early stopping on each inner
validation fold; the number of trees is the median best iteration; the calibration
(none, sigmoid or isotonic) is chosen by cross-fitted log loss on the inner out-of-fold
scores and then fitted on all of them. The patient identifiers reach ``fit`` as
``groups``, directly or through scikit-learn's metadata routing; its probabilities are
computed exactly as the saved :class:`~flare_ml.bundle.FlareModelBundle` computes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import log_loss
from sklearn.model_selection import ParameterSampler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from flare_ml.calibration import METHODS, ProbabilityCalibrator
from flare_ml.model_selection import grouped_folds, patient_groups

__all__ = ["DEFAULT_SEARCH_SPACE", "FlareXGBClassifier"]

#: default search space (lists are sampled uniformly); overridden by configs/train/*.yaml
DEFAULT_SEARCH_SPACE: dict[str, list[Any]] = {
    "max_depth": [2, 3, 4, 5],
    "learning_rate": [0.03, 0.05, 0.1],
    "min_child_weight": [1, 3, 5, 10],
    "subsample": [0.7, 0.85, 1.0],
    "colsample_bytree": [0.6, 0.8, 1.0],
    "reg_lambda": [0.5, 1.0, 5.0],
}


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= minimum


def booster_input(
    values: np.ndarray, feature_names: list[str] | None, nthread: int = -1
) -> xgb.DMatrix:
    """The one way flare-ml hands feature rows to a booster: float32, NaN as missing.

    :meth:`FlareXGBClassifier.raw_proba` and the saved bundle
    (:class:`flare_ml.bundle.FlareModelBundle`) both predict on this matrix, so the
    estimator and every serving path give the same P(flare) to the last bit.

    Parameters
    ----------
    values : ndarray of shape (n_rows, n_features)
        Feature values in the order of ``feature_names``.
    feature_names : list of str or None
        The booster's column names (None: unnamed, for inner fits that are discarded).
    nthread : int, default -1
        Threads XGBoost uses to build the matrix (-1: all).

    Returns
    -------
    xgboost.DMatrix

    Examples
    --------
    >>> booster_input(np.array([[1.0, np.nan]]), ["a", "b"]).num_col()
    2

    """
    return xgb.DMatrix(
        np.asarray(values, dtype=np.float32),
        feature_names=feature_names,
        missing=np.nan,
        nthread=nthread,
    )


class FlareXGBClassifier(ClassifierMixin, BaseEstimator):
    """Gradient-boosted P(flare) with grouped tuning, early stopping and calibration.

    A binary classifier: ``y`` must hold exactly two classes. With flare-ml's labels (1 =
    flare, 0 = progression) ``classes_`` is ``[0, 1]`` and ``predict_proba(X)[:, 1]`` is
    P(flare); other binary labels are sorted and the second is the positive class, as in
    scikit-learn (the outcome words ``"flare"``/``"progression"`` are refused, since
    sorting them would make progression the positive class). NaN in ``X`` is allowed
    (the trees learn where missing values go); infinite values are refused.

    **Patients.** ``fit(X, y, groups=patient_ids)`` keeps every patient whole inside one
    inner fold. Without ``groups``, ``fit`` still fits but warns
    (:class:`~flare_ml.model_selection.MissingGroupsWarning`, a ``UserWarning``) that every
    row is taken as its own patient and the inner folds can leak a patient's other rows.
    It warns rather than refuses so that the estimator stays usable where rows really are
    patients, in scikit-learn's own estimator checks, and in tools that call ``fit(X,
    y)``; the warning names the leak and the fix.

    **Metadata routing.** ``fit`` requests ``groups`` by default, so with
    ``sklearn.set_config(enable_metadata_routing=True)`` scikit-learn's
    ``cross_validate(clf, X, y, cv=StratifiedGroupKFold(), params={"groups": g})`` and
    ``GridSearchCV(clf, ...).fit(X, y, groups=g)`` pass each training fold's patient ids
    to ``fit`` (``set_fit_request(groups=True)`` states it explicitly;
    ``set_fit_request(groups=False)`` turns it off). Without routing, scikit-learn hands
    ``groups`` to the splitter only, and ``fit`` warns.

    Parameters
    ----------
    search_space : dict, optional
        XGBoost parameters to search, each a list of values (default
        :data:`DEFAULT_SEARCH_SPACE`).
    n_candidates : int, default 8
        Number of parameter sets sampled from ``search_space``.
    inner_folds : int, default 3
        Patient-grouped folds used for tuning, early stopping and calibration (at least
        2; reduced to the number of patients when fewer).
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
    classes_ : ndarray of shape (2,)
        The two labels seen in ``fit``, sorted (``[0, 1]`` for flare-ml's labels; 1 is
        flare).
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
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Feature names seen in ``fit``; only when ``X`` had string column names. Later
        inputs with these columns are read by name (extra columns are ignored, order
        does not matter), like the saved bundle does.

    See Also
    --------
    flare_ml.model_selection.grouped_folds : the patient-grouped folds.
    flare_ml.bundle.FlareModelBundle : the saved form of a fitted classifier.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"signal": rng.normal(size=300), "noise": rng.normal(size=300)})
    >>> y = (X["signal"] + rng.normal(scale=0.5, size=300) > 0).astype(int)
    >>> groups = np.arange(300) // 2
    >>> clf = FlareXGBClassifier(n_candidates=2, random_state=0).fit(X, y, groups=groups)
    >>> clf.predict_proba(X).shape, clf.classes_.tolist()
    ((300, 2), [0, 1])

    The patients reach every inner fit through scikit-learn's metadata routing:

    >>> import sklearn
    >>> from sklearn.model_selection import StratifiedGroupKFold, cross_validate
    >>> small = FlareXGBClassifier(n_candidates=1, inner_folds=2, n_estimators_max=20)
    >>> with sklearn.config_context(enable_metadata_routing=True):
    ...     result = cross_validate(small, X, y, cv=StratifiedGroupKFold(2),
    ...                             params={"groups": groups}, scoring="roc_auc")
    >>> bool(result["test_score"].min() > 0.8)
    True

    """

    #: ``fit`` asks for the patient ids whenever metadata routing is on
    __metadata_request__fit = {"groups": True}  # noqa: RUF012 (scikit-learn's convention)

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

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags

    # -- helpers ---------------------------------------------------------------------
    def _check_params(self) -> None:
        name = type(self).__name__
        if self.calibration not in ("auto", *METHODS):
            raise ValueError(
                f"{name}: calibration must be 'auto' or one of {METHODS}, got {self.calibration!r}"
            )
        for param, minimum in (
            ("n_candidates", 1),
            ("inner_folds", 2),
            ("n_estimators_max", 1),
            ("early_stopping_rounds", 1),
        ):
            value = getattr(self, param)
            if not _is_int(value, minimum):
                raise ValueError(f"{name}: {param} must be an integer >= {minimum}, got {value!r}")

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

    def _column_names(self) -> list[str]:
        """Names of the booster's columns: the fitted feature names, else f0, f1, ..."""
        if hasattr(self, "feature_names_in_"):
            return [str(n) for n in self.feature_names_in_]
        return [f"f{i}" for i in range(self.n_features_in_)]

    def _float32(self, X: Any) -> np.ndarray:
        """``X`` as the float32 matrix the booster reads (the fitted columns, in order)."""
        names = getattr(self, "feature_names_in_", None)
        if (
            names is not None
            and isinstance(X, pd.DataFrame)
            and X.columns.is_unique
            and set(names) <= set(X.columns)
        ):
            X = X[list(names)]  # by name, as the saved bundle reads it
        values = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        return np.asarray(values, dtype=np.float32)

    # -- scikit-learn API ------------------------------------------------------------
    def fit(self, X: Any, y: Any, groups: Any = None) -> FlareXGBClassifier:
        """Tune, early-stop, choose a calibration and refit on all of ``X``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Feature matrix (NaN allowed).
        y : array-like of shape (n_samples,)
            Two classes: 1 = flare, 0 = progression.
        groups : array-like of shape (n_samples,), optional
            Patient identifiers. Without them every row is taken as its own patient and
            a :class:`~flare_ml.model_selection.MissingGroupsWarning` is raised.

        Returns
        -------
        FlareXGBClassifier
            The fitted classifier.

        Raises
        ------
        ValueError
            For invalid parameters, ``X`` with infinite values, a ``y`` that is not
            binary (one class, more than two, or continuous) or holds the outcome words,
            or fewer than 2 patients.

        Examples
        --------
        >>> import numpy as np
        >>> X, y = np.zeros((4, 1)), np.array([0, 1, 2, 1])
        >>> FlareXGBClassifier().fit(X, y, groups=[0, 1, 2, 3])
        Traceback (most recent call last):
        ...
        ValueError: Only binary classification is supported. FlareXGBClassifier separates \
flare from progression: y must hold exactly two classes, got 3: [0, 1, 2]

        """
        self._check_params()
        name = type(self).__name__
        X_arr, y_raw = validate_data(self, X, y, ensure_all_finite="allow-nan")
        check_classification_targets(y_raw)
        classes, y_arr = np.unique(y_raw, return_inverse=True)
        if len(classes) == 1:
            raise ValueError(
                f"{name}: y has one class only ({classes[0]!r}); fitting needs both "
                f"classes, 0 (progression) and 1 (flare)"
            )
        if len(classes) > 2:
            raise ValueError(
                f"Only binary classification is supported. {name} separates flare "
                f"from progression: y must hold exactly two classes, got "
                f"{len(classes)}: {classes[:5].tolist()}"
            )
        if {str(c).lower() for c in classes} == {"flare", "progression"}:
            raise ValueError(
                f"{name}: y holds the outcome words 'flare' and 'progression'; sorted, "
                f"'progression' would be the positive class. Give y as 1 = flare, "
                f"0 = progression (flare_ml.features.index_outcomes does)"
            )
        g = patient_groups(groups, len(y_arr), name)
        if len(np.unique(g)) < 2:
            raise ValueError(f"{name}: fitting needs at least 2 patients for its inner folds")
        self.classes_ = classes
        frame = pd.DataFrame(X_arr, columns=self._column_names())
        folds = grouped_folds(y_arr, g, self.inner_folds, self.random_state)

        results, oofs = [], []
        for params in self._candidates():
            oof = np.full(len(y_arr), np.nan)
            losses, iterations = [], []
            for train, valid in folds:
                model = self._xgb(
                    params,
                    n_estimators=self.n_estimators_max,
                    early_stopping_rounds=self.early_stopping_rounds,
                )
                # inner fits read unnamed arrays: the trees are the same, and XGBoost
                # does not re-check the column names at every boosting round (with names
                # that check took half the time of a small-site fit); only the final,
                # saved booster carries the names
                model.fit(
                    X_arr[train],
                    y_arr[train],
                    eval_set=[(X_arr[valid], y_arr[valid])],
                    verbose=False,
                )
                oof[valid] = model.predict_proba(X_arr[valid])[:, 1]
                losses.append(log_loss(y_arr[valid], oof[valid], labels=[0, 1]))
                iterations.append(model.best_iteration + 1)
            results.append(
                {
                    "params": dict(params),
                    "mean_log_loss": float(np.mean(losses)),
                    "std_log_loss": float(np.std(losses)),
                    "best_iterations": iterations,
                }
            )
            oofs.append(oof)
        # the first candidate with the lowest mean inner log loss
        best = min(range(len(results)), key=lambda i: results[i]["mean_log_loss"])
        self.cv_results_ = results
        n_estimators = max(1, int(np.median(results[best]["best_iterations"])))
        self.best_params_ = {**results[best]["params"], "n_estimators": n_estimators}

        oof = oofs[best]
        self.calibration_scores_ = self._score_calibrations(oof, y_arr, folds)
        self.calibration_ = (
            min(self.calibration_scores_, key=self.calibration_scores_.__getitem__)
            if self.calibration == "auto"
            else self.calibration
        )
        self.calibrator_ = ProbabilityCalibrator(self.calibration_).fit(oof, y_arr)
        self.model_ = self._xgb(self.best_params_).fit(frame, y_arr, verbose=False)
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

    def raw_proba(self, X: Any) -> np.ndarray:
        """Uncalibrated P(flare) of the boosted trees, exactly as the saved bundle scores.

        The booster predicts on a float32 ``xgboost.DMatrix`` of the fitted columns with
        NaN as missing, the computation of
        :meth:`flare_ml.bundle.FlareModelBundle.raw_proba`, so the two agree to the last
        bit.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Feature rows (a DataFrame is read by column name when fitted with names).

        Returns
        -------
        ndarray of shape (n_samples,)
            The booster's P(flare) (float32, as the booster gives it).

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(200, 2)); y = (X[:, 0] > 0).astype(int)
        >>> clf = FlareXGBClassifier(n_candidates=1, calibration="none", n_estimators_max=20)
        >>> clf = clf.fit(X, y, groups=np.arange(200) // 2)
        >>> bool(np.array_equal(clf.raw_proba(X), clf.predict_proba(X)[:, 1]))
        True

        """
        check_is_fitted(self, "model_")
        booster = self.model_.get_booster()
        return booster.predict(booster_input(self._float32(X), self._column_names()))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Feature rows.

        Returns
        -------
        ndarray of shape (n_samples, 2)
            ``[P(progression), P(flare)]`` for flare-ml's labels.

        """
        check_is_fitted(self, "calibrator_")
        p = np.clip(self.calibrator_.transform(self.raw_proba(X)), 0.0, 1.0)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """The positive class (1, flare) where its probability is >= 0.5, else the other.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Feature rows.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.

        """
        check_is_fitted(self, "classes_")
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

    def get_booster(self) -> xgb.Booster:
        """The fitted XGBoost booster (for SHAP and saving as JSON/UBJ)."""
        check_is_fitted(self, "model_")
        return self.model_.get_booster()
