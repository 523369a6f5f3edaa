"""Render the learning curve: AUROC vs size, the rules and oracle for scale, findings."""

from __future__ import annotations

import pandas as pd

from flare_ml.experiments.kinds.learning_curve import LearningCurveResult
from flare_ml.experiments.outputs import KindOutput, Table
from flare_ml.experiments.readout import RULE_NAMES, above_zero, difference, metric, versus
from flare_ml.experiments.render.text import SCORER_LABELS, fmt, fmt_ci, tuning
from flare_ml.training import MODEL_NAME, ORACLE_NAME


def _findings(result: LearningCurveResult, not_better: list[str]) -> list[str]:
    params, rule, reference = result.params, result.best_rule, result.reference
    findings = []
    if not_better:
        findings.append(
            f"XGBoost does not clearly beat the best rule ({SCORER_LABELS[rule]}, external "
            f"AUROC {fmt(metric(reference, rule, 'auroc')[0])}) when trained on "
            + ", ".join(not_better)
            + ": the paired 95% CI of the difference reaches 0 or below."
        )
    clear = [n for n in params.sizes if above_zero(versus(result.per_size[n][0].evaluation, rule))]
    if clear:
        findings.append(
            f"From {clear[0]} training patients on (first draw), XGBoost beats "
            f"{SCORER_LABELS[rule]} with a CI above 0."
        )
    last = result.per_size[params.sizes[-1]][0].evaluation
    findings.append(
        f"At {params.sizes[-1]} training patients the gap to the oracle is "
        f"{fmt_ci(difference(last, ORACLE_NAME), sign=True)} AUROC and the calibration slope "
        f"{fmt_ci(metric(last, MODEL_NAME, 'calibration_slope'), 2)}; at "
        f"{params.sizes[0]} patients they are "
        f"{fmt(difference(reference, ORACLE_NAME)[0], sign=True)} "
        f"and {fmt(metric(reference, MODEL_NAME, 'calibration_slope')[0], 2)}."
    )
    return findings


def render(result: LearningCurveResult) -> KindOutput:
    """The size table, the rules and oracle on the same external cohort, and findings.

    Examples
    --------
    >>> render(result).tables[0].title  # doctest: +SKIP
    'External AUROC vs training cohort size'

    """
    params, rule = result.params, result.best_rule
    rows, not_better = [], []
    for n in params.sizes:
        first = result.per_size[n][0]
        ev = first.evaluation
        aurocs = [metric(d.evaluation, MODEL_NAME, "auroc")[0] for d in result.per_size[n]]
        vs_rule = versus(ev, rule)
        gap = difference(ev, ORACLE_NAME)
        rows.append(
            {
                "training patients": str(n),
                "index rows (flares)": f"{first.index_rows} ({first.flares})",
                "XGBoost external AUROC": fmt_ci(metric(ev, MODEL_NAME, "auroc")),
                "calibration slope": fmt_ci(metric(ev, MODEL_NAME, "calibration_slope"), 2),
                "oracle - XGBoost": fmt_ci(gap, sign=True),
                f"XGBoost - {SCORER_LABELS[rule]}": fmt_ci(vs_rule, sign=True),
                **(
                    {
                        f"AUROC over {params.replicates} draws (min-max)": (
                            f"{min(aurocs):.3f}-{max(aurocs):.3f}"
                        )
                    }
                    if params.replicates > 1
                    else {}
                ),
            }
        )
        if not above_zero(vs_rule):
            not_better.append(
                f"{n} patients ({fmt_ci(vs_rule, sign=True)}"
                + (
                    f"; over {params.replicates} draws the model's AUROC spans "
                    f"{min(aurocs):.3f}-{max(aurocs):.3f}"
                    if params.replicates > 1
                    else ""
                )
                + ")"
            )
    fixed_rows = [
        {
            "scorer": SCORER_LABELS[s],
            "external AUROC": fmt_ci(metric(result.reference, s, "auroc")),
        }
        for s in (*RULE_NAMES, ORACLE_NAME)
    ]
    notes = [
        f"Training cohorts are nested: the first n patients (in simulation order) of "
        f"{result.pool_labels[0]}"
        + (
            f" (draw 1; draws 2-{params.replicates} use seeds {params.train_seed + 1}-"
            f"{params.train_seed + params.replicates - 1}); CIs are from draw 1"
            if params.replicates > 1
            else ""
        )
        + f". External cohort: {result.external_label}. One model per size "
        f"({tuning(result.train_config)}, early stopping and calibration inside the training "
        "patients), evaluated on the same external patients with paired "
        "bootstrap CIs. The rules learn nothing, so their AUROC does not depend on the size."
    ]
    tables = [
        Table("External AUROC vs training cohort size", pd.DataFrame(rows), notes),
        Table("Rules and oracle on the same external cohort", pd.DataFrame(fixed_rows)),
    ]
    return KindOutput(result.cohorts, tables, result.conditions, _findings(result, not_better))


__all__ = ["render"]
