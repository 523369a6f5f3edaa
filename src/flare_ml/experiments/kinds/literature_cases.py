"""``kind: literature_cases``: the model's reading of published courses, scan by scan.

A model is fitted on a simulated training site with outer folds (operating threshold and
class-conditional conformal sets), as the bundle serving loads; each timeline of
:data:`flare_ml.cases.CASES` is scored through that bundle (each index scan from that
patient's rows up to that date only) and read by the three rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flare_ml.cases import CASES
from flare_ml.data import contract as c
from flare_ml.experiments.config import LiteratureCasesParams
from flare_ml.experiments.context import Context
from flare_ml.experiments.outputs import ConditionRecord, KindResult
from flare_ml.experiments.readout import RULE_NAMES
from flare_ml.experiments.registry import register


@dataclass
class CaseInfo:
    """A published course: its name, the function that builds it, its one-line summary."""

    name: str
    function: str
    summary: str


@dataclass
class IndexScan:
    """The model's and the rules' reading of one index scan of a case.

    Attributes
    ----------
    scan : pandas.Series
        The timeline's row of that scan (findings, ALP, treatment start).
    baseline_alp : float
        The case's first measured ALP (NaN when none).
    day : int
        Days since the start of treatment.

    """

    case: str
    scan: pd.Series
    baseline_alp: float
    day: int
    reported: str
    p_flare: float
    decision: str
    prediction_set: str
    rule_decisions: dict[str, str]
    reasons: str


@dataclass
class LiteratureCasesResult(KindResult):
    """Every index scan of every case, and how often each reader matches the report.

    Attributes
    ----------
    agree : dict of str to int
        Index scans whose decision matches the reported outcome: ``model`` and each rule.

    """

    cases: list[CaseInfo]
    scans: list[IndexScan]
    agree: dict[str, int]
    uncertain: int
    train_label: str
    train_rows: int
    outer_folds: int
    threshold: float
    policy: str


def _baseline_alp(timeline: pd.DataFrame) -> float:
    alp = timeline[c.ALP_U_L].dropna()
    return float(alp.iloc[0]) if len(alp) else np.nan


@register("literature_cases")
def compute(ctx: Context) -> LiteratureCasesResult:
    """The model's decision, prediction set and reasons at each index scan of each case."""
    params: LiteratureCasesParams = ctx.config.params
    train = ctx.cohort(params.train)
    bundle = ctx.fit_shipped(train.prepared)
    names = params.cases or list(CASES)
    scans, records, cases = [], [], []
    agree = {"model": 0, **dict.fromkeys(RULE_NAMES, 0)}
    uncertain = 0
    for name in names:
        build = CASES[name]
        timeline = build()
        cases.append(CaseInfo(name, build.__name__, (build.__doc__ or "").strip().splitlines()[0]))
        predictions = bundle.predict(timeline.drop(columns=[c.OUTCOME]))
        features = bundle.featurizer.transform(timeline)
        decisions = {
            r: np.where(rule.fit(features).predict(features) == 1, "flare", "progression")
            for r, rule in ctx.rules.items()
        }
        by_date = timeline.set_index(c.ASSESSMENT_DATE)
        baseline_alp = _baseline_alp(timeline)
        metrics: dict[str, float] = {}
        for i, pred in enumerate(predictions.itertuples(index=False)):
            row = by_date.loc[pred.assessment_date]
            reported = str(row[c.OUTCOME])
            agree["model"] += int(pred.decision == reported)
            uncertain += int(pred.decision == "uncertain")
            for r in RULE_NAMES:
                agree[r] += int(decisions[r][i] == reported)
            scans.append(
                IndexScan(
                    case=name,
                    scan=row,
                    baseline_alp=baseline_alp,
                    day=(pred.assessment_date - row[c.TREATMENT_START_DATE]).days,
                    reported=reported,
                    p_flare=float(pred.p_flare),
                    decision=pred.decision,
                    prediction_set=pred.prediction_set,
                    rule_decisions={r: str(decisions[r][i]) for r in RULE_NAMES},
                    reasons=pred.reasons,
                )
            )
            metrics[f"index_{i + 1}.p_flare"] = float(pred.p_flare)
            metrics[f"index_{i + 1}.decision_matches"] = float(pred.decision == reported)
        records.append(ConditionRecord(name, {"case": name, "function": build.__name__}, metrics))
    assert train.prepared.y is not None
    return LiteratureCasesResult(
        cohorts=[("training", train.label)],
        conditions=records,
        cases=cases,
        scans=scans,
        agree=agree,
        uncertain=uncertain,
        train_label=train.label,
        train_rows=len(train.prepared.y),
        outer_folds=ctx.train_config.model.outer_folds,
        threshold=bundle.threshold,
        policy=ctx.train_config.decision_policy.budget().describe(),
    )


__all__ = ["CaseInfo", "IndexScan", "LiteratureCasesResult", "compute"]
