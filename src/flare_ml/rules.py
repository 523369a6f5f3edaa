"""Rule baselines for flare versus progression, as scikit-learn classifiers.

The clinical rules that a reader applies today, written down so that the learned model can
be compared with them on the same rows and the same metrics (docs/sources.md, "Rule
baselines"). Each rule reads named columns of the feature matrix of
:class:`~flare_ml.features.TimepointFeaturizer` (one row per index assessment), learns
nothing from the data, and gives two things: ``decision_function``, a **ranking score** in
[0, 1] (higher = more flare-like) so that rules can be compared with models by AUROC and
precision-recall, and ``predict``, the rule's own decision (**1 = flare, 0 =
progression**), which is ``decision_function(X) >= decision_threshold`` on every row. The
score is *not* a probability and has not been fitted to outcomes, so the rules offer no
``predict_proba`` and the evaluation computes no Brier score, calibration or decision
curve for them. :class:`SeedCriteriaRule`
is the reading of De Bondt et al. (2020) with the timing and ALP signals of the literature
added, :class:`PCWG3WindowRule` the PCWG3 flare window, :class:`ALPOnlyRule` the ALP
criterion of Jung et al. (2022); :func:`make_rules` builds all three from a configuration
mapping (``configs/train/*.yaml``, key ``rules``).
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from flare_ml.errors import ConfigError

__all__ = [
    "RULES",
    "ALPOnlyRule",
    "PCWG3WindowRule",
    "RuleClassifier",
    "SeedCriteriaRule",
    "make_rules",
]

#: class codes: the positive class of every rule (and of flare-ml) is flare
FLARE, PROGRESSION = 1, 0

# feature names read by the rules (columns of TimepointFeaturizer's output)
_DAYS = "days_since_treatment_start"
_RESPONSE = "extraosseous_response_ordinal"
_NEW_EXTRAOSSEOUS = "new_extraosseous_lesion_now"
_BLASTIC = "new_lesion_morphology_blastic"
_DETERIORATION = "clinical_deterioration_now"
_ALP_PERCENT = "alp_percent_change_from_baseline"
_MARROW = "baseline_marrow_involvement"
_PREVIOUS_INDEX = "previous_index_events"


def _is_real(value: Any) -> bool:
    return (
        isinstance(value, Real) and not isinstance(value, bool) and bool(np.isfinite(float(value)))
    )


class RuleClassifier(ClassifierMixin, BaseEstimator):
    """Base class of the rule baselines: fixed thresholds, nothing learned from the data.

    Subclasses define :meth:`required_features`, :meth:`_check_params` and
    :meth:`_decide`, which maps the needed columns to the rule's decision (1 = flare, 0 =
    progression) and a ranking score in [0, 1]. :meth:`decision_function` gives the score,
    moved to the decision's side of :attr:`decision_threshold` where the two would
    disagree (rows whose inputs are missing), so that :meth:`predict` is
    ``decision_function(X) >= decision_threshold`` on every row. ``fit`` checks the
    parameters and that the needed columns are present, and records
    ``feature_names_in_``, ``n_features_in_`` and ``classes_ = [0, 1]``; it ignores the
    rows and the labels (apart from checking that labels, if given, are 0/1).

    Input must be a :class:`pandas.DataFrame` with named columns (the output of
    :class:`~flare_ml.features.TimepointFeaturizer`, or any frame holding the needed
    columns); extra columns are ignored and their order does not matter. Missing values
    (NaN or ``pd.NA``) are allowed and handled by each rule as documented.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"days_since_treatment_start": [60.0], "previous_index_events": [0]})
    >>> rule = PCWG3WindowRule().fit(X)
    >>> isinstance(rule, RuleClassifier), rule.predict(X).tolist()
    (True, [1])

    """

    #: the rule's decision: ``predict(X) == (decision_function(X) >= decision_threshold)``
    #: on every row; the operating threshold of the rule in evaluations
    decision_threshold: ClassVar[float] = 0.5

    def required_features(self) -> tuple[str, ...]:
        """Names of the feature columns the rule reads (with its current parameters).

        Returns
        -------
        tuple of str
            The column names.

        Examples
        --------
        >>> PCWG3WindowRule().required_features()
        ('days_since_treatment_start', 'previous_index_events')

        """
        raise NotImplementedError

    def _check_params(self) -> None:
        raise NotImplementedError

    def _decide(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # X is a 2-D table, but with named columns: a DataFrame, not a bare array (like
        # ColumnTransformer with column names). scikit-learn has no tag for that, so its
        # checks that feed bare arrays run and are expected failures in the tests.
        tags.input_tags.allow_nan = True
        tags.target_tags.required = False
        tags.classifier_tags.multi_class = False
        return tags

    # --- input handling -----------------------------------------------------------------

    def _frame(self, X: Any) -> pd.DataFrame:
        name = type(self).__name__
        if not isinstance(X, pd.DataFrame):
            raise ValueError(
                f"{name} reads named feature columns, so X must be a pandas DataFrame "
                f"(for example the output of TimepointFeaturizer), got {type(X).__name__}; "
                f"needed columns: {', '.join(self.required_features())}"
            )
        missing = [col for col in self.required_features() if col not in X.columns]
        if missing:
            raise ValueError(
                f"{name} needs the feature column(s) {', '.join(map(repr, missing))}, which "
                f"X lacks; compute features with flare_ml.features.TimepointFeaturizer or "
                f"add the column(s)"
            )
        if len(X) == 0:
            raise ValueError(f"{name}: X has 0 rows; at least one index row is needed")
        return X

    def _columns(self, X: Any) -> dict[str, np.ndarray]:
        check_is_fitted(self, "classes_")
        self._check_params()
        frame = self._frame(X)
        columns = {}
        for col in self.required_features():
            try:
                values = pd.to_numeric(frame[col], errors="raise")
                columns[col] = np.asarray(
                    pd.Series(values).to_numpy(dtype=float, na_value=np.nan), dtype=float
                )
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"{type(self).__name__}: feature column {col!r} must be numeric "
                    f"(flags 1/0, NaN where missing): {exc}"
                ) from None
        return columns

    # --- scikit-learn API ---------------------------------------------------------------

    def fit(self, X: pd.DataFrame, y: Any = None) -> RuleClassifier:
        """Check the thresholds and the needed columns; learn nothing from the rows.

        Parameters
        ----------
        X : pandas.DataFrame
            Feature rows, one per index assessment, with the columns of
            :meth:`required_features` (others are ignored).
        y : array-like of shape (n_samples,), optional
            Outcomes (1 = flare, 0 = progression). Not used; checked to be 0/1 and as long
            as ``X`` when given, so that a rule drops into a pipeline or a
            cross-validation beside a learned model.

        Returns
        -------
        RuleClassifier
            The fitted rule.

        Raises
        ------
        ValueError
            For an invalid threshold, an ``X`` that is not a DataFrame or lacks a needed
            column (the message names it), or labels other than 0/1 (continuous labels:
            "Unknown label type").

        Examples
        --------
        >>> import pandas as pd
        >>> X = pd.DataFrame({"alp_percent_change_from_baseline": [-20.0, 35.0]})
        >>> ALPOnlyRule().fit(X).classes_.tolist()
        [0, 1]

        """
        self._check_params()
        labels = None if y is None else np.asarray(y)
        if labels is not None:
            check_classification_targets(labels)
            if not np.isin(labels, (0, 1)).all():
                raise ValueError(
                    f"Only binary classification is supported. {type(self).__name__}: y "
                    f"must be 1 (flare) or 0 (progression); found "
                    f"{sorted(set(labels.ravel().tolist()) - {0, 1})[:5]}"
                )
        frame = self._frame(X)
        if labels is not None and labels.shape != (len(frame),):
            raise ValueError(
                f"{type(self).__name__}: y must have one label per row of X "
                f"({len(frame)}), got shape {labels.shape}"
            )
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.classes_ = np.array([PROGRESSION, FLARE])
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Give the rule's decision for each row: 1 = flare, 0 = progression.

        Parameters
        ----------
        X : pandas.DataFrame
            Feature rows with the columns of :meth:`required_features`.

        Returns
        -------
        ndarray of int of shape (n_samples,)
            The decision.

        Examples
        --------
        >>> import pandas as pd
        >>> X = pd.DataFrame({"alp_percent_change_from_baseline": [-20.0, 35.0]})
        >>> ALPOnlyRule().fit(X).predict(X).tolist()
        [1, 0]

        """
        flare = self.decision_function(X) >= self.decision_threshold
        return flare.astype(np.int64)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Give the rule's ranking score in [0, 1]; it is **not** a probability.

        Higher means more flare-like; it orders cases for AUROC and precision-recall, and
        ``decision_function(X) >= decision_threshold`` is the rule's decision
        (:meth:`predict`). It has not been fitted to outcomes, so it is not a P(flare):
        probability metrics (Brier score, calibration, decision curves) do not apply.
        Each rule documents its score. Where the score would disagree with the decision
        (rows whose inputs are missing, scored 0.5 for "no information"), it is moved just
        to the decision's side of ``decision_threshold``. Unlike scikit-learn's
        convention for ``decision_function`` (a threshold of 0), a rule's threshold is
        its ``decision_threshold``, on this [0, 1] scale.

        Parameters
        ----------
        X : pandas.DataFrame
            Feature rows with the columns of :meth:`required_features`.

        Returns
        -------
        ndarray of shape (n_samples,)
            The score of each row.

        Examples
        --------
        >>> import pandas as pd
        >>> X = pd.DataFrame({"alp_percent_change_from_baseline": [-5.0, 15.0, 35.0]})
        >>> rule = ALPOnlyRule().fit(X)
        >>> rule.decision_function(X).round(3).tolist(), rule.decision_threshold
        ([0.881, 0.5, 0.119], 0.5)

        """
        decision, score = self._decide(self._columns(X))
        below = np.nextafter(self.decision_threshold, -np.inf)
        # the score on the decision's side of the threshold (only missing inputs move)
        return np.where(
            decision == FLARE,
            np.maximum(score, self.decision_threshold),
            np.minimum(score, below),
        )


class SeedCriteriaRule(RuleClassifier):
    """The seed criteria: flare when every known flare sign holds (De Bondt et al. 2020).

    De Bondt et al. (2020) read new bone lesions under erlotinib as osteoblastic flare
    because of (1) extraosseous response while the bone lesions appeared, (2) their
    osteoblastic nature, (3) no clinical deterioration (and (4) diffuse marrow uptake on
    the baseline PET, optional here, see ``use_marrow_involvement``). The rule adds the
    two signals the wider literature gives for the same reading: early timing (new lesions
    after about 6 months indicated progression, Coleman 1988; flare settles by about 6
    months) and ALP not rising by the flare scan (Xu et al. 2025, the breast seed study:
    median ALP change -20 vs +33 U/L at pseudoprogression vs progression; Jung et al.
    2022: stable or decreased ALP predicted flare).

    The criteria, each holding, failing or unknown for a row:

    - **extraosseous response or stability**: holds when the RECIST response is CR, PR or
      SD (``extraosseous_response_ordinal >= 0``) and there is no new extraosseous lesion;
      fails on PD or a new extraosseous lesion; unknown otherwise (NE/missing response
      without a new extraosseous lesion).
    - **osteoblastic new lesions**: ``new_lesion_morphology_blastic`` is 1 (lytic and
      mixed fail). Morphology ``unknown`` (a bone scan's new uptake without a CT
      correlate; the featurizer gives NaN) leaves it unknown: the rule cannot call the
      lesions blastic, nor lytic, so the other criteria decide.
    - **no clinical deterioration**: ``clinical_deterioration_now`` is 0.
    - **early timing**: ``days_since_treatment_start <= early_window_days``.
    - **ALP not rising**: ``alp_percent_change_from_baseline <=
      alp_rise_tolerance_percent``; unknown when ALP or its baseline is missing.
    - **baseline marrow involvement** (only with ``use_marrow_involvement=True``):
      ``baseline_marrow_involvement`` is 1.

    Unknown criteria count neither for nor against. The decision is flare when at least
    one criterion is known and all known criteria hold; the score is the fraction of known
    criteria that hold (ties are common; a row with no known criterion scores 0.5 and is
    called progression). ``decision_threshold`` is 1.0: a score of 1 is the decision flare.

    Parameters
    ----------
    early_window_days : float, default=182
        Latest day after treatment start at which new lesions still read as flare
        (about 6 months: Coleman 1988, "new lesions appearing after 6 months indicated
        progressive disease"; Janicek 1994, bone-scan activity stabilised within
        6.2 +/- 3.0 months).
    alp_rise_tolerance_percent : float, default=10
        Largest rise of ALP over its baseline, in percent, that still counts as "not
        rising" (an allowance for assay and biological variation; a modelling choice,
        not a published cut-off).
    use_marrow_involvement : bool, default=False
        Add De Bondt's fourth sign. Off by default: in the design it points to flare when
        present, but its absence is no sign of progression, and it is often unrecorded.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        ``[0, 1]`` (progression, flare).
    feature_names_in_ : ndarray of str
        Columns of ``X`` seen in ``fit``.
    n_features_in_ : int
        Number of those columns.

    See Also
    --------
    PCWG3WindowRule, ALPOnlyRule

    Examples
    --------
    The De Bondt case (day 90, partial response, new blastic lesions, no deterioration,
    ALP 13.75% below baseline) reads as flare:

    >>> from flare_ml.cases import seed_case_timeline
    >>> from flare_ml.features import TimepointFeaturizer
    >>> X = TimepointFeaturizer().fit_transform(seed_case_timeline())
    >>> rule = SeedCriteriaRule().fit(X)
    >>> rule.predict(X).tolist(), rule.decision_function(X).tolist()
    ([1], [1.0])
    >>> rule.criteria(X).iloc[0].to_dict()
    {'extraosseous_response_or_stability': 1.0, 'osteoblastic_new_lesions': 1.0, \
'no_clinical_deterioration': 1.0, 'early_timing': 1.0, 'alp_not_rising': 1.0}

    """

    def __init__(
        self,
        early_window_days: float = 182,
        alp_rise_tolerance_percent: float = 10.0,
        use_marrow_involvement: bool = False,
    ) -> None:
        self.early_window_days = early_window_days
        self.alp_rise_tolerance_percent = alp_rise_tolerance_percent
        self.use_marrow_involvement = use_marrow_involvement

    #: the decision is "every known criterion holds", i.e. a score of 1
    decision_threshold: ClassVar[float] = 1.0

    def required_features(self) -> tuple[str, ...]:  # noqa: D102
        base = (_RESPONSE, _NEW_EXTRAOSSEOUS, _BLASTIC, _DETERIORATION, _DAYS, _ALP_PERCENT)
        return (*base, _MARROW) if self.use_marrow_involvement else base

    def _check_params(self) -> None:
        if not _is_real(self.early_window_days) or self.early_window_days <= 0:
            raise ValueError(
                f"SeedCriteriaRule: early_window_days must be a positive number of days, "
                f"got {self.early_window_days!r}"
            )
        if not _is_real(self.alp_rise_tolerance_percent):
            raise ValueError(
                f"SeedCriteriaRule: alp_rise_tolerance_percent must be a finite number, "
                f"got {self.alp_rise_tolerance_percent!r}"
            )
        if not isinstance(self.use_marrow_involvement, bool | np.bool_):
            raise ValueError(
                f"SeedCriteriaRule: use_marrow_involvement must be true or false, "
                f"got {self.use_marrow_involvement!r}"
            )

    def _criteria(self, col: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        def state(holds: np.ndarray, known: np.ndarray) -> np.ndarray:
            return np.where(known, holds.astype(float), np.nan)

        response, new_extra = col[_RESPONSE], col[_NEW_EXTRAOSSEOUS]
        extra_fails = (response < 0) | (new_extra == 1)
        extra_holds = (response >= 0) & ~extra_fails
        criteria = {
            "extraosseous_response_or_stability": state(extra_holds, extra_holds | extra_fails),
            "osteoblastic_new_lesions": state(col[_BLASTIC] == 1, ~np.isnan(col[_BLASTIC])),
            "no_clinical_deterioration": state(
                col[_DETERIORATION] == 0, ~np.isnan(col[_DETERIORATION])
            ),
            "early_timing": state(col[_DAYS] <= self.early_window_days, ~np.isnan(col[_DAYS])),
            "alp_not_rising": state(
                col[_ALP_PERCENT] <= self.alp_rise_tolerance_percent,
                ~np.isnan(col[_ALP_PERCENT]),
            ),
        }
        if self.use_marrow_involvement:
            criteria["baseline_marrow_involvement"] = state(
                col[_MARROW] == 1, ~np.isnan(col[_MARROW])
            )
        return criteria

    def _decide(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        states = np.column_stack(list(self._criteria(columns).values()))
        known = (~np.isnan(states)).sum(axis=1)
        holding = np.nansum(states, axis=1)
        score = np.divide(holding, known, out=np.full(len(states), 0.5), where=known > 0)
        decision = (known > 0) & (holding == known)
        return decision.astype(np.int64), score

    def criteria(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each criterion per row: 1.0 holds, 0.0 fails, NaN unknown.

        Parameters
        ----------
        X : pandas.DataFrame
            Feature rows with the columns of :meth:`required_features`.

        Returns
        -------
        pandas.DataFrame
            One column per criterion, indexed like ``X``; the reasons behind a decision.

        Examples
        --------
        >>> import pandas as pd
        >>> X = pd.DataFrame({
        ...     "extraosseous_response_ordinal": [1.0], "new_extraosseous_lesion_now": [0.0],
        ...     "new_lesion_morphology_blastic": [0.0], "clinical_deterioration_now": [None],
        ...     "days_since_treatment_start": [300.0],
        ...     "alp_percent_change_from_baseline": [None]})
        >>> SeedCriteriaRule().fit(X).criteria(X).iloc[0].tolist()
        [1.0, 0.0, nan, 0.0, nan]

        """
        criteria = self._criteria(self._columns(X))
        return pd.DataFrame(criteria, index=X.index)


class PCWG3WindowRule(RuleClassifier):
    """New bone lesions inside the PCWG3 flare window read as flare (Scher et al. 2016).

    PCWG3 treats new bone lesions on scans in the flare window ("generally the first 8-12
    weeks post-baseline, primarily the initial post-baseline assessment") as unconfirmed:
    they become progression only if a scan at least 6 weeks later shows further new lesions
    (the "2+2" rule); outside the window, new lesions are progression once they persist.
    As a rule on the index row alone:

    - **decision**: flare when ``days_since_treatment_start <= window_days`` and no earlier
      scan of the patient showed new bone lesions (``previous_index_events == 0``; new
      lesions after earlier ones are PCWG3's confirmation of progression); progression
      otherwise, and when the day is missing.
    - **score**: ``window_days / (window_days + days)``, which falls with time and is 0.5
      at the window's edge (so ``score >= 0.5`` is the decision); 0 when
      ``previous_index_events > 0``; just below 0.5 when the day is missing (no
      information, called progression). A missing ``previous_index_events`` counts as 0
      (no confirmation seen). ``decision_threshold`` is 0.5.

    Parameters
    ----------
    window_days : float, default=84
        Length of the flare window in days (12 weeks, the upper end of PCWG3's "8-12
        weeks").

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        ``[0, 1]`` (progression, flare).
    feature_names_in_ : ndarray of str
        Columns of ``X`` seen in ``fit``.
    n_features_in_ : int
        Number of those columns.

    See Also
    --------
    SeedCriteriaRule, ALPOnlyRule

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"days_since_treatment_start": [56.0, 84.0, 120.0, 56.0],
    ...                   "previous_index_events": [0.0, 0.0, 0.0, 1.0]})
    >>> rule = PCWG3WindowRule().fit(X)
    >>> rule.predict(X).tolist()
    [1, 1, 0, 0]
    >>> rule.decision_function(X).round(3).tolist()
    [0.6, 0.5, 0.412, 0.0]

    """

    def __init__(self, window_days: float = 84) -> None:
        self.window_days = window_days

    def required_features(self) -> tuple[str, ...]:  # noqa: D102
        return (_DAYS, _PREVIOUS_INDEX)

    def _check_params(self) -> None:
        if not _is_real(self.window_days) or self.window_days <= 0:
            raise ValueError(
                f"PCWG3WindowRule: window_days must be a positive number of days, "
                f"got {self.window_days!r}"
            )

    def _decide(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        days = columns[_DAYS]
        confirmed = columns[_PREVIOUS_INDEX] > 0  # NaN compares False: not confirmed
        known = ~np.isnan(days)
        window = float(self.window_days)
        elapsed = np.clip(np.where(known, days, 0.0), 0.0, None)
        score = np.where(known, window / (window + elapsed), 0.5)
        score = np.where(confirmed, 0.0, score)
        decision = known & ~confirmed & (np.where(known, days, np.inf) <= window)
        return decision.astype(np.int64), score


class ALPOnlyRule(RuleClassifier):
    """Stable or falling ALP reads as flare (Jung et al. 2022).

    Jung et al. (*Cancers* 2022;14:254; 160 breast and prostate patients with new or
    extended bone-scan lesions, half of them flare) found "stable or decreased ALP" an
    independent predictor of flare. The rule reads the ALP change from baseline in
    percent (``alp_percent_change_from_baseline``; relative, so that prostate cancer's
    high baseline ALP does not dominate):

    - **decision**: flare when the change is at most ``max_rise_percent``; missing ALP (or
      baseline) gives ``missing_decision``.
    - **score**: ``1 / (1 + exp((change - max_rise_percent) / scale_percent))``, a
      decreasing logistic that is 0.5 at the threshold (so ``score >= 0.5`` is the
      decision, ``decision_threshold`` = 0.5); for missing ALP 0.5 (no information) when
      ``missing_decision`` is flare and just below 0.5 when it is progression.

    Parameters
    ----------
    max_rise_percent : float, default=15
        Largest rise over baseline, in percent, read as "stable". Jung's abstract does not
        define "stable"; the one operational definition in the literature collected for
        this project is the serum-ALP flare study in prostate cancer, where "increased"
        meant a rise of at least 15% over baseline and "decreased" a fall of more than 15%
        (docs/sources.md, "ALP"). Set 0 for the strict reading "not above baseline".
    scale_percent : float, default=10
        Width of the logistic score, in percentage points (a change of ``scale_percent``
        above the threshold scores 0.27, below it 0.73). Affects the ranking of nothing
        (the score is monotone in the change either way) except ties with missing rows.
    missing_decision : {"progression", "flare"}, default="progression"
        Decision when ALP is unknown. Progression is the conservative reading: without
        the ALP sign the rule gives no reason to keep a possibly failing therapy.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        ``[0, 1]`` (progression, flare).
    feature_names_in_ : ndarray of str
        Columns of ``X`` seen in ``fit``.
    n_features_in_ : int
        Number of those columns.

    See Also
    --------
    SeedCriteriaRule, PCWG3WindowRule

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"alp_percent_change_from_baseline": [-25.0, 10.0, 40.0, None]})
    >>> rule = ALPOnlyRule().fit(X)
    >>> rule.predict(X).tolist()
    [1, 1, 0, 0]
    >>> rule.decision_function(X).round(3).tolist()
    [0.982, 0.622, 0.076, 0.5]

    """

    _MISSING_DECISIONS: ClassVar[dict[str, int]] = {"progression": PROGRESSION, "flare": FLARE}

    def __init__(
        self,
        max_rise_percent: float = 15.0,
        scale_percent: float = 10.0,
        missing_decision: str = "progression",
    ) -> None:
        self.max_rise_percent = max_rise_percent
        self.scale_percent = scale_percent
        self.missing_decision = missing_decision

    def required_features(self) -> tuple[str, ...]:  # noqa: D102
        return (_ALP_PERCENT,)

    def _check_params(self) -> None:
        if not _is_real(self.max_rise_percent):
            raise ValueError(
                f"ALPOnlyRule: max_rise_percent must be a finite number, "
                f"got {self.max_rise_percent!r}"
            )
        if not _is_real(self.scale_percent) or self.scale_percent <= 0:
            raise ValueError(
                f"ALPOnlyRule: scale_percent must be a positive number, got {self.scale_percent!r}"
            )
        if self.missing_decision not in self._MISSING_DECISIONS:
            raise ValueError(
                f"ALPOnlyRule: missing_decision must be 'progression' or 'flare', "
                f"got {self.missing_decision!r}"
            )

    def _margin(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        change = columns[_ALP_PERCENT]
        margin = (float(self.max_rise_percent) - change) / float(self.scale_percent)
        return np.where(np.isnan(change), 0.0, margin)

    def _decide(self, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        change = columns[_ALP_PERCENT]
        missing = np.isnan(change)
        decision = np.where(
            missing,
            self._MISSING_DECISIONS[self.missing_decision],
            np.where(missing, np.inf, change) <= self.max_rise_percent,
        )
        return decision.astype(np.int64), expit(self._margin(columns))


#: the rule baselines by their configuration / report name
RULES: dict[str, type[RuleClassifier]] = {
    "seed_criteria": SeedCriteriaRule,
    "pcwg3_window": PCWG3WindowRule,
    "alp_only": ALPOnlyRule,
}


def make_rules(
    config: Mapping[str, Mapping[str, Any] | None] | Any | None = None,
) -> dict[str, RuleClassifier]:
    """Build the three rule baselines, with thresholds from a configuration mapping.

    Parameters
    ----------
    config : mapping, optional
        ``{"seed_criteria": {...}, "pcwg3_window": {...}, "alp_only": {...}}``, each value
        the keyword parameters of that rule (missing rules or parameters keep their
        defaults); a pydantic model with ``model_dump()`` (``TrainConfig.rules``) works
        too.

    Returns
    -------
    dict of str to RuleClassifier
        Unfitted rules, keyed ``seed_criteria``, ``pcwg3_window``, ``alp_only``.

    Raises
    ------
    ConfigError
        For an unknown rule or parameter (the message names the dotted key and lists the
        allowed ones) or an invalid value.

    Examples
    --------
    >>> rules = make_rules({"pcwg3_window": {"window_days": 56}})
    >>> sorted(rules)
    ['alp_only', 'pcwg3_window', 'seed_criteria']
    >>> rules["pcwg3_window"].window_days, rules["seed_criteria"].early_window_days
    (56, 182)
    >>> make_rules({"pcwg3_window": {"window_weeks": 12}})
    Traceback (most recent call last):
    ...
    flare_ml.errors.ConfigError: rules.pcwg3_window.window_weeks: unknown key (check its \
spelling); allowed: window_days

    """
    if config is None:
        config = {}
    if hasattr(config, "model_dump"):
        config = config.model_dump()
    if not isinstance(config, Mapping):
        raise ConfigError(f"rules: must be a mapping of rule name to parameters, got {config!r}")
    for name in config:
        if name not in RULES:
            raise ConfigError(
                f"rules.{name}: unknown rule (check its spelling); allowed: {', '.join(RULES)}"
            )
    rules: dict[str, RuleClassifier] = {}
    for name, cls in RULES.items():
        params = config.get(name) or {}
        if not isinstance(params, Mapping):
            raise ConfigError(f"rules.{name}: must be a mapping of parameters, got {params!r}")
        allowed = sorted(cls().get_params())
        for key in params:
            if key not in allowed:
                raise ConfigError(
                    f"rules.{name}.{key}: unknown key (check its spelling); "
                    f"allowed: {', '.join(allowed)}"
                )
        rule = cls(**params)
        try:
            rule._check_params()
        except ValueError as exc:
            raise ConfigError(f"rules.{name}: {exc}") from None
        rules[name] = rule
    return rules
