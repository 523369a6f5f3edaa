"""Evaluation of several scorers on one cohort, side by side: :func:`evaluate`.

It checks the outcomes, the scores of every scorer, their thresholds and the patient ids
once, draws one set of patient-level bootstrap resamples shared by all scorers (so
comparisons are paired), and assembles for each scorer its metrics with intervals, its
decision curve and calibration table (probability scorers only), its subgroup metrics, and
the paired differences with a reference scorer, into an :class:`~flare_ml.evaluation.Evaluation`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from flare_ml.evaluation.bootstrap import (
    _bootstrap_replicates,
    _calibration_start,
    _estimates,
    _patient_counts,
    _summarise,
)
from flare_ml.evaluation.curves import (
    _CALIBRATION_COLUMNS,
    _DECISION_CURVE_COLUMNS,
    calibration_curve_table,
    decision_curve,
)
from flare_ml.evaluation.inputs import _check_groups, _check_p, _check_threshold, _check_y
from flare_ml.evaluation.metrics import METRICS, PROBABILITY_METRICS, _check_metrics, _Scored
from flare_ml.evaluation.result import Evaluation
from flare_ml.evaluation.subgroups import _SUBGROUP_COLUMNS, subgroup_metrics

__all__ = ["evaluate"]

#: metrics of the paired comparisons with a reference scorer
_COMPARED = ("auroc", "auprc", "brier")


def _resolve_patient_ids(y: Any, patient_ids: Any) -> Any:
    if patient_ids is not None:
        return patient_ids
    index = getattr(y, "index", None)
    if isinstance(index, pd.MultiIndex) and "patient_id" in index.names:
        return index.get_level_values("patient_id")
    raise ValueError(
        "patient_ids are needed for the patient-level bootstrap (or pass y as the Series "
        "of flare_ml.features.index_outcomes, whose index holds them)"
    )


def _check_probability_scorers(
    probability_scorers: Collection[str] | None, scores: Mapping[str, Any]
) -> frozenset[str]:
    """The names of the probability scorers: all of ``scores`` when None."""
    if probability_scorers is None:
        return frozenset(scores)
    if isinstance(probability_scorers, str):
        raise ValueError(
            f"probability_scorers must be a collection of scorer names, not the string "
            f"{probability_scorers!r} (write [{probability_scorers!r}])"
        )
    names = list(probability_scorers)
    unknown = [name for name in names if name not in scores]
    if unknown:
        raise ValueError(f"probability_scorers {unknown} are not among the scorers {list(scores)}")
    return frozenset(names)


def evaluate(
    y: Any,
    scores: Mapping[str, Any],
    patient_ids: Any = None,
    thresholds: Mapping[str, float] | float = 0.5,
    subgroups: pd.DataFrame | pd.Series | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    *,
    metrics: Iterable[str] = METRICS,
    reference: str | None = None,
    decision_thresholds: Any = None,
    calibration_bins: int = 10,
    subgroup_min_size: int = 20,
    confidence: float = 0.95,
    probability_scorers: Collection[str] | None = None,
) -> Evaluation:
    """Evaluate several scorers on one cohort, side by side, with paired bootstrap CIs.

    Parameters
    ----------
    y : array-like of shape (n,)
        Outcomes: 1 = flare, 0 = progression (for example
        :func:`flare_ml.features.index_outcomes`).
    scores : mapping of str to array-like
        Scorer name (``"xgboost"``, ``"seed_criteria"``, ``"oracle"``, ...) to its flare
        scores, aligned with ``y``: probabilities of flare in [0, 1], or, for a scorer
        left out of ``probability_scorers``, a ranking score (any finite real, higher =
        more flare-like).
    patient_ids : array-like of shape (n,), optional
        Patient of each row; taken from ``y``'s index level ``patient_id`` when omitted.
    thresholds : mapping of str to float, or float, default=0.5
        Operating threshold of each scorer (chosen beforehand, for example by
        :func:`~flare_ml.evaluation.choose_operating_threshold` on training data); one
        float applies to all.
    subgroups : pandas.DataFrame or Series, optional
        Grouping variables aligned with ``y`` (see
        :func:`~flare_ml.evaluation.subgroups_from_features`).
    n_resamples : int, default=1000
        Patient-level bootstrap resamples (shared by all scorers, so comparisons are
        paired).
    seed : int, default=0
        Seed of the resampling; the same seed gives identical output.
    metrics : iterable of str, default=METRICS
        Metrics of the ``metrics`` table.
    reference : str, optional
        A scorer to compare all others with (paired differences in AUROC, AUPRC, and Brier
        score where both are probability scorers).
    decision_thresholds : array-like, optional
        Threshold probabilities of the decision curves (default 0.05 to 0.95).
    calibration_bins : int, default=10
        Equal-width bins of the calibration table.
    subgroup_min_size : int, default=20
        Smallest subgroup level with metrics.
    confidence : float, default=0.95
        Coverage of the intervals.
    probability_scorers : collection of str, optional
        The scorers whose scores are probabilities of flare; None (the default) means
        every scorer. The others are ranking scores (a rule's ``decision_function``, say):
        they may take any finite real value and get the discrimination metrics (AUROC,
        AUPRC) and the metrics at their threshold, but no probability metrics (Brier
        score, log loss, calibration intercept and slope, ECE: NaN in the ``metrics``
        table, calibration slope NaN in ``subgroups``), no rows in the ``calibration`` and
        ``decision_curves`` tables, and no Brier comparison. Probability scorers must lie
        in [0, 1]. Every name must be one of ``scores``.

    Returns
    -------
    Evaluation
        The tables.

    Raises
    ------
    ValueError
        If the outcomes, scores, thresholds, patient ids, subgroups, ``reference`` or
        ``probability_scorers`` cannot be evaluated (the message says which and why).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=400)
    >>> y = (rng.uniform(size=400) < p).astype(int)
    >>> ev = evaluate(y, {"model": p, "coin": rng.uniform(size=400)},
    ...               patient_ids=np.arange(400), n_resamples=100, reference="coin")
    >>> ev.summary_table()[["scorer", "AUROC"]].to_numpy().tolist()  # doctest: +SKIP
    [['model', '0.84 [0.80, 0.88]'], ['coin', '0.49 [0.43, 0.55]']]
    >>> ev.estimate("model", "auroc") > ev.estimate("coin", "auroc")
    True

    A ranking score (here the log-odds of ``p``, not a probability) ranks like ``p`` but
    gets no probability metrics:

    >>> ranked = evaluate(y, {"model": p, "log_odds": np.log(p / (1 - p))},
    ...                   patient_ids=np.arange(400), thresholds={"model": 0.5, "log_odds": 0.0},
    ...                   n_resamples=0, probability_scorers=["model"])
    >>> ranked.estimate("log_odds", "auroc") == ranked.estimate("model", "auroc")
    True
    >>> ranked.estimate("log_odds", "brier"), sorted(set(ranked.calibration["scorer"]))
    (nan, ['model'])

    """
    yv = _check_y(y)
    if not scores:
        raise ValueError("scores is empty: give at least one scorer")
    chosen = _check_metrics(metrics)
    codes = _check_groups(_resolve_patient_ids(y, patient_ids), len(yv))
    if reference is not None and reference not in scores:
        raise ValueError(f"reference {reference!r} is not one of the scorers {list(scores)}")
    probabilities = _check_probability_scorers(probability_scorers, scores)
    scored: dict[str, _Scored] = {}
    chosen_thresholds: dict[str, float] = {}
    for name, values in scores.items():
        if isinstance(values, pd.Series) and isinstance(y, pd.Series):
            if not values.index.equals(y.index):
                raise ValueError(f"scores[{name!r}] is not aligned with y (different index)")
        if isinstance(thresholds, Mapping):
            if name not in thresholds:
                raise ValueError(
                    f"no threshold for scorer {name!r}; thresholds has {list(thresholds)}"
                )
            threshold = thresholds[name]
        else:
            threshold = thresholds
        chosen_thresholds[name] = _check_threshold(threshold)
        is_probability = name in probabilities
        pv = _check_p(values, len(yv), f"scores[{name!r}]", probability=is_probability)
        scored[name] = _Scored(yv, pv, chosen_thresholds[name], is_probability)

    if isinstance(subgroups, pd.Series | pd.DataFrame) and isinstance(y, pd.Series):
        both_labelled = not isinstance(subgroups.index, pd.RangeIndex) and not isinstance(
            y.index, pd.RangeIndex
        )
        if both_labelled and not subgroups.index.equals(y.index):
            raise ValueError("subgroups are not aligned with y (different index)")
    counts = _patient_counts(codes, int(n_resamples), seed)
    compared = _COMPARED
    metric_tables, curves, calibration, subgroup_tables = [], [], [], []
    replicates: dict[str, dict[str, np.ndarray]] = {}
    estimates: dict[str, dict[str, float]] = {}
    for name, s in scored.items():
        needed = tuple(dict.fromkeys((*chosen, *(compared if reference else ()))))
        estimates[name] = _estimates(s, needed)
        replicates[name] = _bootstrap_replicates(
            s, codes, counts, needed, _calibration_start(s, needed)
        )
        table = _summarise(estimates[name], {m: replicates[name][m] for m in chosen}, confidence)
        metric_tables.append(table.assign(scorer=name))
        if s.probability:
            curves.append(decision_curve(yv, s.p, decision_thresholds).assign(scorer=name))
            calibration.append(
                calibration_curve_table(yv, s.p, calibration_bins).assign(scorer=name)
            )
        if subgroups is not None:
            subgroup_tables.append(
                subgroup_metrics(
                    yv,
                    s.p,
                    subgroups,
                    chosen_thresholds[name],
                    subgroup_min_size,
                    groups=codes,
                    n_resamples=n_resamples,
                    seed=seed,
                    confidence=confidence,
                    probability=s.probability,
                ).assign(scorer=name)
            )

    comparison_rows = []
    if reference is not None:
        tail = (1 - confidence) / 2
        for name in scored:
            if name == reference:
                continue
            for metric in compared:
                both_probabilities = scored[name].probability and scored[reference].probability
                if metric in PROBABILITY_METRICS and not both_probabilities:
                    continue
                diff = replicates[name][metric] - replicates[reference][metric]
                finite = diff[np.isfinite(diff)]
                low, high = np.quantile(finite, [tail, 1 - tail]) if len(finite) else (np.nan,) * 2
                comparison_rows.append(
                    {
                        "scorer": name,
                        "reference": reference,
                        "metric": metric,
                        "difference": estimates[name][metric] - estimates[reference][metric],
                        "ci_low": float(low),
                        "ci_high": float(high),
                    }
                )

    def stack(tables: list[pd.DataFrame], columns: Sequence[str] = ()) -> pd.DataFrame:
        if not tables:
            return pd.DataFrame(columns=["scorer", *columns])
        frame = pd.concat(tables, ignore_index=True)
        return frame[["scorer", *[c for c in frame.columns if c != "scorer"]]]

    return Evaluation(
        metrics=stack(metric_tables),
        decision_curves=stack(curves, _DECISION_CURVE_COLUMNS),
        subgroups=stack(subgroup_tables, _SUBGROUP_COLUMNS),
        calibration=stack(calibration, _CALIBRATION_COLUMNS),
        comparisons=pd.DataFrame(
            comparison_rows,
            columns=["scorer", "reference", "metric", "difference", "ci_low", "ci_high"],
        ),
        thresholds=chosen_thresholds,
        n=len(yv),
        n_flare=int(yv.sum()),
        n_patients=int(codes.max()) + 1 if len(codes) else 0,
        n_resamples=int(n_resamples),
        seed=seed,
        confidence=confidence,
        probability_scorers=tuple(name for name in scored if name in probabilities),
    )
