"""Render the headline: a summary table, one table per cohort, computed findings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flare_ml.experiments.kinds.headline import HeadlineCohort, HeadlineResult
from flare_ml.experiments.outputs import KindOutput, Table
from flare_ml.experiments.readout import (
    RULE_NAMES,
    above_zero,
    below_zero,
    difference,
    metric,
    versus,
)
from flare_ml.experiments.render.text import SCORER_LABELS, fmt, fmt_ci
from flare_ml.training import MODEL_NAME, ORACLE_NAME


def _where(label: str) -> str:
    """``out-of-fold, <site>`` or ``external, <site>`` from a cohort label."""
    return label.replace("training: ", "out-of-fold, ").replace("external: ", "external, ")


def _cohort_table(one: HeadlineCohort, result: HeadlineResult) -> Table:
    ev, paired = one.evaluation, one.paired
    rows = []
    for scorer in one.scorers:
        is_rule = scorer in RULE_NAMES
        rows.append(
            {
                "scorer": SCORER_LABELS.get(scorer, scorer),
                "threshold": fmt(result.thresholds[scorer], 3),
                "AUROC": fmt_ci(metric(ev, scorer, "auroc")),
                "AUPRC": fmt_ci(metric(ev, scorer, "auprc")),
                "Brier": "-" if is_rule else fmt(metric(ev, scorer, "brier")[0]),
                "calibration slope": "-"
                if is_rule
                else fmt_ci(metric(ev, scorer, "calibration_slope"), 2),
                "sensitivity": fmt_ci(metric(ev, scorer, "sensitivity"), 2),
                "specificity": fmt_ci(metric(ev, scorer, "specificity"), 2),
                "XGBoost - scorer (AUROC)": "-"
                if scorer == MODEL_NAME
                else fmt_ci(versus(paired, scorer), sign=True),
            }
        )
    policy = result.train_config.decision_policy
    return Table(
        _where(one.label),
        pd.DataFrame(rows),
        [
            f"{ev.n} index rows ({ev.n_flare} flares) of {ev.n_patients} patients. "
            "Rules are read at their own decision; XGBoost where its decision column says "
            "flare (the conformal thresholds of its error budget: "
            f"{policy.budget().describe()}); the oracle at the threshold that calls at most "
            f"{policy.max_progression_called_flare:.0%} of the training cohort's "
            "progressions flare. Rule scores rank cases but are not probabilities, so "
            "no Brier score or calibration slope is given for them."
        ],
    )


def render(result: HeadlineResult) -> KindOutput:
    """The summary table, one table per cohort and one finding per cohort.

    Examples
    --------
    >>> render(result)  # doctest: +SKIP
    KindOutput(cohorts=[('training', ...)], tables=[Table(title='Summary', ...), ...], ...)

    """
    summary, tables, findings = [], [], []
    for one in result.evaluated:
        ev, paired, rule = one.evaluation, one.paired, one.best_rule
        where = _where(one.label)
        model_minus_rule = versus(paired, rule)
        oracle_gap = difference(paired, ORACLE_NAME) if ORACLE_NAME in one.scorers else None
        coverage = one.coverage
        summary.append(
            {
                "cohort": where,
                "XGBoost AUROC": fmt_ci(metric(ev, MODEL_NAME, "auroc")),
                "best rule AUROC": f"{SCORER_LABELS[rule]} " + fmt_ci(metric(ev, rule, "auroc")),
                "XGBoost - best rule": fmt_ci(model_minus_rule, sign=True),
                "oracle AUROC": fmt_ci(metric(ev, ORACLE_NAME, "auroc")),
                "oracle - XGBoost": fmt_ci(oracle_gap, sign=True) if oracle_gap else "-",
                "calibration slope": fmt_ci(metric(ev, MODEL_NAME, "calibration_slope"), 2),
                "conformal coverage (uncertain)": (
                    f"{coverage['coverage']:.3f} ({coverage['uncertain_fraction']:.1%})"
                    if coverage
                    else "-"
                ),
            }
        )
        tables.append(_cohort_table(one, result))
        verdict = (
            "better than"
            if above_zero(model_minus_rule)
            else "not distinguishable from"
            if not below_zero(model_minus_rule)
            else "worse than"
        )
        findings.append(
            f"{where}: XGBoost is {verdict} the best rule ({SCORER_LABELS[rule]}), AUROC "
            f"difference {fmt_ci(model_minus_rule, sign=True)}; the oracle ceiling is "
            f"{fmt(oracle_gap[0] if oracle_gap else np.nan, sign=True)} above XGBoost."
        )
    summary_table = Table(
        "Summary",
        pd.DataFrame(summary),
        [
            "Out-of-fold: each training index row is scored by a model that never saw its "
            f"patient ({result.train_config.model.outer_folds} patient-grouped folds, tuning "
            "and calibration inside each). External: the final model, fitted on all training "
            "patients, scores another simulated site unchanged. Best rule: the rule with the "
            "highest AUROC on that cohort. Conformal coverage: share of external index rows "
            "whose prediction set holds the true outcome (target 0.90), and the share of "
            "`uncertain` decisions."
        ],
    )
    return KindOutput(result.cohorts, [summary_table, *tables], result.conditions, findings)


__all__ = ["render"]
