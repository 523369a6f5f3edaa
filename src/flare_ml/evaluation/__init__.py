"""Evaluation of flare scores: discrimination, calibration, operating point, uncertainty.

Everything here scores a vector ``p`` of flare scores against outcomes ``y`` with the
project's convention: **the positive class is flare (y = 1), progression is y = 0**, and a
case is *called flare* when ``p >= threshold``. So sensitivity is the share of true flares
called flare, specificity the share of true progressions called progression, and
``progression_called_flare`` (= 1 - specificity) the harm the operating point is chosen to
bound: a failing therapy continued. Learned models, rule baselines and the simulator's
Bayes-optimal oracle are all just *scorers* and are evaluated side by side by
:func:`evaluate`; a scorer's scores are either probabilities of flare (every metric applies)
or ranking scores, such as a rule's ``decision_function``, which get the discrimination and
threshold metrics but no probability metrics (Brier score, calibration, decision curves).
Confidence intervals come from a **patient-level** bootstrap (patients are resampled with
replacement and bring all their index rows), computed as weighted metrics over a matrix of
resampling weights so that 1,000 resamples of a few thousand rows take well under a second
per scorer; the same seed gives the same resamples for every scorer, so differences between
scorers are paired. The package has one module per job: ``metrics`` (metric kernels,
:func:`classification_metrics`, :func:`choose_operating_threshold`), ``recalibration`` (the
Newton fits of the calibration intercept and slope), ``curves`` (decision curves,
calibration tables), ``bootstrap`` (the patient-level bootstrap), ``subgroups``, ``result``
(:class:`Evaluation`), ``orchestration`` (:func:`evaluate`), ``decisions`` (the
``decision`` column against outcomes: :func:`decision_table`, the error budget's verdict)
and ``inputs`` (input checks); their public names are all importable from ``flare_ml.evaluation``.
"""

from __future__ import annotations

from flare_ml.evaluation.bootstrap import bootstrap_metrics, patient_bootstrap_weights
from flare_ml.evaluation.curves import (
    DEFAULT_DECISION_THRESHOLDS,
    calibration_curve_table,
    decision_curve,
)
from flare_ml.evaluation.decisions import (
    DecisionTable,
    decision_table,
    decision_table_from_counts,
    wilson_interval,
)
from flare_ml.evaluation.metrics import (
    METRICS,
    PROBABILITY_METRICS,
    THRESHOLD_METRICS,
    choose_operating_threshold,
    classification_metrics,
)
from flare_ml.evaluation.orchestration import evaluate
from flare_ml.evaluation.result import Evaluation
from flare_ml.evaluation.subgroups import subgroup_metrics, subgroups_from_features

__all__ = [
    "DEFAULT_DECISION_THRESHOLDS",
    "METRICS",
    "PROBABILITY_METRICS",
    "THRESHOLD_METRICS",
    "DecisionTable",
    "Evaluation",
    "bootstrap_metrics",
    "calibration_curve_table",
    "choose_operating_threshold",
    "classification_metrics",
    "decision_curve",
    "decision_table",
    "decision_table_from_counts",
    "evaluate",
    "patient_bootstrap_weights",
    "subgroup_metrics",
    "subgroups_from_features",
    "wilson_interval",
]
