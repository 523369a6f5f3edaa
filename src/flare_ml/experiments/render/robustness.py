"""Render robustness: external AUROC per scorer under each condition, and findings."""

from __future__ import annotations

import pandas as pd

from flare_ml.experiments.kinds.robustness import RobustnessResult
from flare_ml.experiments.outputs import KindOutput, Table
from flare_ml.experiments.readout import RULE_NAMES, above_zero, metric, versus
from flare_ml.experiments.render.text import SCORER_LABELS, fmt, fmt_ci, tuning
from flare_ml.training import MODEL_NAME, ORACLE_NAME


def _findings(result: RobustnessResult) -> list[str]:
    findings = []
    for one in result.outcomes:
        rule, true_ev = one.best_rule, one.true_evaluation
        vs_rule = versus(one.evaluation, rule)
        if not above_zero(vs_rule):
            findings.append(
                f"{one.condition.name}: XGBoost does not clearly beat the best rule "
                f"({SCORER_LABELS[rule]}) on the recorded labels: "
                f"{fmt_ci(vs_rule, sign=True)} AUROC; against the noise-free outcomes "
                f"XGBoost {fmt(metric(true_ev, MODEL_NAME, 'auroc')[0])} vs "
                f"{fmt(metric(true_ev, rule, 'auroc')[0])}."
            )
    base = result.outcomes[0]
    for one in result.outcomes[1:]:
        changes = ", ".join(
            f"{SCORER_LABELS[s]} "
            + fmt(
                metric(one.evaluation, s, "auroc")[0] - metric(base.evaluation, s, "auroc")[0],
                3,
                sign=True,
            )
            for s in (MODEL_NAME, *RULE_NAMES, ORACLE_NAME)
        )
        findings.append(f"{one.condition.name} vs {base.condition.name}: AUROC {changes}.")
    return findings


def render(result: RobustnessResult) -> KindOutput:
    """One row per condition: XGBoost with its CI, the rules, the oracle, the best rule.

    Examples
    --------
    >>> render(result).tables[0].title  # doctest: +SKIP
    'External AUROC per scorer under each condition'

    """
    rows = []
    for one in result.outcomes:
        cond, ev, true_ev, rule = one.condition, one.evaluation, one.true_evaluation, one.best_rule
        rows.append(
            {
                "group": cond.group or "-",
                "condition": cond.name,
                "XGBoost": fmt_ci(metric(ev, MODEL_NAME, "auroc")),
                **{SCORER_LABELS[r]: fmt(metric(ev, r, "auroc")[0]) for r in RULE_NAMES},
                "oracle": fmt(metric(ev, ORACLE_NAME, "auroc")[0]),
                "XGBoost - best rule": (
                    f"{fmt_ci(versus(ev, rule), sign=True)} ({SCORER_LABELS[rule]})"
                ),
                "XGBoost calibration slope": fmt_ci(metric(ev, MODEL_NAME, "calibration_slope"), 2),
                "vs true outcome: XGBoost / best rule": (
                    f"{fmt(metric(true_ev, MODEL_NAME, 'auroc')[0])} / "
                    f"{fmt(metric(true_ev, rule, 'auroc')[0])}"
                ),
            }
        )
    notes = [
        f"AUROC on the external cohort of each condition against its recorded labels; "
        f"XGBoost with its 95% CI, the rules and the oracle as estimates (their CIs are in "
        f"MLflow). XGBoost - best rule: paired bootstrap difference with the rule that does "
        f"best on that cohort. vs true outcome: AUROC of XGBoost and of that rule against "
        f"the simulator's noise-free outcomes instead of the recorded labels (they differ "
        f"only by label noise). Each training cohort gets one model "
        f"({tuning(result.train_config)}), reused by "
        "the conditions that share it; the cohorts of each condition are listed above."
    ]
    table = Table("External AUROC per scorer under each condition", pd.DataFrame(rows), notes)
    return KindOutput(result.cohorts, [table], result.conditions, _findings(result))


__all__ = ["render"]
