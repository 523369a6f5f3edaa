"""Render the literature cases: each index scan's findings, readings and reasons."""

from __future__ import annotations

import pandas as pd

from flare_ml.data import contract as c
from flare_ml.experiments.kinds.literature_cases import IndexScan, LiteratureCasesResult
from flare_ml.experiments.outputs import KindOutput, Table
from flare_ml.experiments.readout import RULE_NAMES
from flare_ml.experiments.render.text import SCORER_LABELS

DAYS_PER_MONTH = 30.44


def findings_text(scan: IndexScan) -> str:
    """The scan's findings in words: response, new lesions, flags, ALP vs baseline.

    Examples
    --------
    >>> row = pd.Series({c.EXTRAOSSEOUS_RESPONSE: "PR", c.NEW_BONE_LESIONS: 2,
    ...                  c.NEW_LESION_MORPHOLOGY: "blastic", c.PROGRESSIVE_LYSIS: False,
    ...                  c.KNOWN_LESION_SCLEROSIS: True, c.NEW_EXTRAOSSEOUS_LESION: None,
    ...                  c.CLINICAL_DETERIORATION: False, c.ALP_U_L: 90.0})
    >>> findings_text(IndexScan("x", row, 110.0, 52, "flare", 0.8, "flare", "flare", {}, ""))
    ... # doctest: +NORMALIZE_WHITESPACE
    'extraosseous PR, 2 new blastic bone lesions, sclerosis of a known lesion,
     ALP 90 U/L (-20 from baseline)'

    """
    row = scan.scan
    count = row[c.NEW_BONE_LESIONS]
    parts = [
        f"extraosseous {row[c.EXTRAOSSEOUS_RESPONSE]}",
        f"{count} new {row[c.NEW_LESION_MORPHOLOGY]} bone lesion{'s' if count != 1 else ''}",
    ]
    flags = {
        c.PROGRESSIVE_LYSIS: "progressive lysis",
        c.KNOWN_LESION_SCLEROSIS: "sclerosis of a known lesion",
        c.NEW_EXTRAOSSEOUS_LESION: "new extraosseous lesion",
        c.CLINICAL_DETERIORATION: "clinical deterioration",
    }
    parts += [text for col, text in flags.items() if pd.notna(row[col]) and bool(row[col])]
    if pd.notna(row[c.ALP_U_L]):
        delta = float(row[c.ALP_U_L]) - scan.baseline_alp
        parts.append(f"ALP {row[c.ALP_U_L]:.0f} U/L ({delta:+.0f} from baseline)")
    else:
        parts.append("ALP not measured")
    return ", ".join(parts)


def render(result: LiteratureCasesResult) -> KindOutput:
    """One row per index scan, the cases among the cohorts, one agreement finding.

    Examples
    --------
    >>> render(result).tables[0].title  # doctest: +SKIP
    'Decisions and reasons at each index scan'

    """
    rows = [
        {
            "case": scan.case,
            "index scan": f"day {scan.day} ({scan.day / DAYS_PER_MONTH:.1f} months)",
            "findings": findings_text(scan),
            "reported": scan.reported,
            "P(flare)": f"{scan.p_flare:.3f}",
            "decision": scan.decision,
            "prediction set": scan.prediction_set.replace(",", ", ") or "(empty)",
            **{SCORER_LABELS[r]: scan.rule_decisions[r] for r in RULE_NAMES},
            "top reasons (SHAP, clinical signals)": scan.reasons,
        }
        for scan in result.scans
    ]
    notes = [
        f"Model: XGBoost fitted on {result.train_label} ({result.train_rows} index rows) with "
        f"{result.outer_folds} outer patient-grouped folds for the class-conditional "
        f"conformal sets of its error budget ({result.policy}; decision = flare from "
        f"P(flare) {result.threshold:.3f}); `uncertain` = both outcomes in the set: "
        "confirm with follow-up imaging in at least six weeks. Each index scan is "
        "scored from that patient's rows up to that date only; the outcome column is "
        "removed before scoring. Rules: their own decisions."
    ]
    agree, total = result.agree, len(result.scans)
    findings = [
        f"XGBoost's decision matches the reported outcome at {agree['model']} of {total} "
        f"index scans ({result.uncertain} `uncertain`); seed criteria {agree['seed_criteria']}, "
        f"PCWG3 window {agree['pcwg3_window']}, ALP only {agree['alp_only']} of {total}."
    ]
    described = [
        f"`{case.name}` (`flare_ml.cases.{case.function}`): {case.summary}" for case in result.cases
    ]
    return KindOutput(
        result.cohorts + [("case", d) for d in described],
        [Table("Decisions and reasons at each index scan", pd.DataFrame(rows), notes)],
        result.conditions,
        findings,
    )


__all__ = ["DAYS_PER_MONTH", "findings_text", "render"]
