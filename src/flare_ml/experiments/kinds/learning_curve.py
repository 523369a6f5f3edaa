"""``kind: learning_curve``: external AUROC, calibration and gap to the oracle vs size.

For each replicate draw, a pool of training patients is simulated once; the model is
fitted on its first ``n`` patients for every size (nested), frozen into the bundle
serving loads, and evaluated on the same external patients as the rules and the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flare_ml.data import contract as c
from flare_ml.evaluation import Evaluation
from flare_ml.experiments.config import CohortSpec, LearningCurveParams
from flare_ml.experiments.context import Context
from flare_ml.experiments.outputs import ConditionRecord, KindResult
from flare_ml.experiments.readout import best_rule, evaluation_metrics
from flare_ml.experiments.registry import register
from flare_ml.train_config import TrainConfig
from flare_ml.training import MODEL_NAME


@dataclass
class SizeDraw:
    """One model: the first ``patients`` of one pool, evaluated externally."""

    evaluation: Evaluation
    patients: int
    index_rows: int
    flares: int
    label: str


@dataclass
class LearningCurveResult(KindResult):
    """Per size, one :class:`SizeDraw` per replicate (draw 1 first).

    Attributes
    ----------
    per_size : dict of int to list of SizeDraw
        Sizes in the configured order.
    best_rule : str
        The best rule on the external cohort (rules learn nothing: one for all sizes).

    """

    per_size: dict[int, list[SizeDraw]]
    best_rule: str
    params: LearningCurveParams
    pool_labels: list[str]
    external_label: str
    train_config: TrainConfig

    @property
    def reference(self) -> Evaluation:
        """The first draw at the smallest size (rules and oracle are read from it)."""
        return self.per_size[self.params.sizes[0]][0].evaluation


@register("learning_curve")
def compute(ctx: Context) -> LearningCurveResult:
    """External AUROC, calibration and gap to the oracle vs training cohort size."""
    params: LearningCurveParams = ctx.config.params
    external = ctx.cohort(params.external)
    fixed = ctx.scores(external.prepared)
    pool_size = max(params.sizes)
    records = []
    per_size: dict[int, list[SizeDraw]] = {n: [] for n in params.sizes}
    total = len(params.sizes) * params.replicates
    done = 0
    pools = []
    for r in range(params.replicates):
        spec = CohortSpec(site=params.train_site, patients=pool_size, seed=params.train_seed + r)
        pool = ctx.cohort(spec)
        pools.append(pool)
        patients = pd.unique(pool.prepared.timepoints[c.PATIENT_ID].astype(str))
        for n in params.sizes:
            ctx.progress("learning-curve models", done, total)
            chosen = set(patients[:n].tolist())
            rows_idx = np.flatnonzero(np.isin(pool.prepared.patient_ids, list(chosen)))
            bundle = ctx.fit(pool.prepared, rows=rows_idx)
            scores = {MODEL_NAME: bundle.proba_from_features(external.prepared.features), **fixed}
            ev = ctx.evaluate(external.prepared, scores)
            y = pool.prepared.y
            assert y is not None
            label = f"first {n} patients of {pool.label}"
            per_size[n].append(SizeDraw(ev, n, len(rows_idx), int(y[rows_idx].sum()), label))
            records.append(
                ConditionRecord(
                    f"n={n} draw {r}",
                    {"training": label, "patients": n, "index_rows": len(rows_idx)},
                    evaluation_metrics(ev),
                )
            )
            done += 1
    ctx.progress("learning-curve models", total, total)
    return LearningCurveResult(
        cohorts=[("training pool", p.label) for p in pools] + [("external", external.label)],
        conditions=records,
        per_size=per_size,
        best_rule=best_rule(per_size[params.sizes[0]][0].evaluation),
        params=params,
        pool_labels=[p.label for p in pools],
        external_label=external.label,
        train_config=ctx.train_config,
    )


__all__ = ["LearningCurveResult", "SizeDraw", "compute"]
