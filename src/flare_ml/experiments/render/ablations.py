"""Render the ablations: external AUROC and calibration without each signal group."""

from __future__ import annotations

import pandas as pd

from flare_ml.experiments.kinds.ablations import FULL, AblationResult
from flare_ml.experiments.outputs import KindOutput, Table
from flare_ml.experiments.readout import RULE_NAMES, above_zero, below_zero, difference, metric
from flare_ml.experiments.render.text import SCORER_LABELS, fmt, fmt_ci, tuning
from flare_ml.training import ORACLE_NAME


def render(result: AblationResult) -> KindOutput:
    """One table (ablated models, then the rules and the oracle for scale), one finding each.

    Examples
    --------
    >>> render(result).tables[0].title  # doctest: +SKIP
    'External AUROC and calibration without each signal'

    """
    ev = result.evaluation
    full_slope = metric(ev, FULL, "calibration_slope")[0]
    rows = []
    references = [(s, None) for s in (*RULE_NAMES, ORACLE_NAME)]
    for name, dropped in [*result.ablated, *references]:
        model_row = dropped is not None
        slope = metric(ev, name, "calibration_slope")
        rows.append(
            {
                "condition": name if model_row else f"{SCORER_LABELS[name]} (reference)",
                "features removed": str(len(dropped)) if dropped is not None else "-",
                "external AUROC": fmt_ci(metric(ev, name, "auroc")),
                "change in AUROC vs full": "-"
                if name == FULL
                else fmt_ci(difference(ev, name), sign=True),
                "calibration slope": fmt_ci(slope, 2) if model_row else "-",
                "change in slope": fmt(slope[0] - full_slope, 2, sign=True)
                if model_row and name != FULL
                else "-",
                "Brier": fmt(metric(ev, name, "brier")[0]) if model_row else "-",
                "change in Brier vs full": fmt_ci(difference(ev, name, "brier"), sign=True)
                if model_row and name != FULL
                else "-",
            }
        )
    findings = []
    for name, _ in result.ablated[1:]:
        change = difference(ev, name)
        slope_change = metric(ev, name, "calibration_slope")[0] - full_slope
        significance = (
            "a clear loss"
            if below_zero(change)
            else "a clear gain"
            if above_zero(change)
            else "no clear change"
        )
        findings.append(
            f"{name}: external AUROC {fmt_ci(change, sign=True)} vs the full model "
            f"({significance}), calibration slope {fmt(slope_change, 2, sign=True)}."
        )
    notes = [
        f"Training: {result.train_label}, {result.train_rows} index rows; external: "
        f"{result.external_label}, {result.external_rows} index rows. Each condition is one "
        "model fitted on all training patients with the same tuning settings and seed "
        f"({tuning(result.train_config)}, early stopping and calibration inside); no outer "
        "cross-validation. Changes are ablated minus full on the same "
        "external patients, with paired bootstrap CIs. The signal groups are "
        "`flare_ml.explain.SIGNALS`: `therapy` holds the cancer-type and therapy-class "
        "columns, `bone findings` the new-lesion count and morphology, lysis, sclerosis, "
        "earlier index events and baseline marrow involvement. Rules and the oracle do not "
        "depend on the model's features; they are listed for scale."
    ]
    table = Table("External AUROC and calibration without each signal", pd.DataFrame(rows), notes)
    return KindOutput(result.cohorts, [table], result.conditions, findings)


__all__ = ["render"]
