"""``kind: headline``: model vs each rule vs oracle, out-of-fold and on external sites.

The same training run as ``flare-ml train`` (:func:`flare_ml.training.train_and_validate`):
patient-grouped out-of-fold predictions on the training site, then the final model on
each external site. Besides that run's evaluations, each cohort gets a paired AUROC
bootstrap with the model as reference, so that every scorer is compared with XGBoost on
the same patients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flare_ml.evaluation import Evaluation, evaluate
from flare_ml.experiments.config import CohortSpec, HeadlineParams, cohort_label
from flare_ml.experiments.context import Context
from flare_ml.experiments.outputs import ConditionRecord, KindResult
from flare_ml.experiments.readout import best_rule, evaluation_metrics
from flare_ml.experiments.registry import register
from flare_ml.train_config import DataConfig, SimulatedCohortSpec, TrainConfig
from flare_ml.training import MODEL_NAME, train_and_validate


@dataclass
class HeadlineCohort:
    """One evaluated cohort: the training site out-of-fold, or an external site.

    Attributes
    ----------
    label : str
        The cohort's label (``training: ...`` or ``external: ...``).
    evaluation : Evaluation
        The training run's evaluation (every metric, at the chosen thresholds).
    paired : Evaluation
        AUROC of every scorer, paired with XGBoost as the reference.
    scorers : list of str
        Scorers in table order.
    best_rule : str
        The rule with the highest AUROC on this cohort.
    coverage : dict or None
        Conformal coverage and uncertain fraction (external cohorts).

    """

    label: str
    evaluation: Evaluation
    paired: Evaluation
    scorers: list[str]
    best_rule: str
    coverage: dict[str, Any] | None

    @property
    def external(self) -> bool:
        """An external site (not the training site's out-of-fold predictions)."""
        return self.label.startswith("external")


@dataclass
class HeadlineResult(KindResult):
    """What the headline computed: one :class:`HeadlineCohort` per cohort."""

    evaluated: list[HeadlineCohort]
    thresholds: dict[str, float]
    train_config: TrainConfig


def _simple(spec: CohortSpec) -> SimulatedCohortSpec:
    return SimulatedCohortSpec(site=spec.site, patients=spec.patients, seed=spec.seed)


@register("headline")
def compute(ctx: Context) -> HeadlineResult:
    """Model vs each rule vs oracle, out-of-fold and on external sites (``flare-ml train``)."""
    params: HeadlineParams = ctx.config.params
    cfg = ctx.train_config.model_copy(
        update={
            "data": DataConfig(
                train=_simple(params.train), external=[_simple(s) for s in params.external]
            )
        }
    )
    result = train_and_validate(cfg, progress=ctx.progress)
    evaluated, conditions = [], []
    for cohort in [result.training, *result.externals]:
        ev = result.evaluations[cohort.label]
        scores = result.scores[cohort.label]
        paired = evaluate(
            cohort.y,
            scores,
            patient_ids=cohort.patient_ids,
            thresholds=result.thresholds,
            n_resamples=ctx.n_resamples,
            seed=ctx.seed,
            metrics=("auroc",),
            reference=MODEL_NAME,
            probability_scorers=[n for n in scores if n not in result.rules],
        )
        coverage = result.coverage.get(cohort.label)
        one = HeadlineCohort(cohort.label, ev, paired, list(scores), best_rule(ev), coverage)
        evaluated.append(one)
        key = "out_of_fold" if not one.external else f"external_{cohort.label.split()[3]}"
        conditions.append(
            ConditionRecord(
                key,
                {"cohort": cohort.label},
                {
                    **evaluation_metrics(ev),
                    **evaluation_metrics(paired, "paired."),
                    **({f"conformal.{k}": v for k, v in coverage.items()} if coverage else {}),
                },
            )
        )
    return HeadlineResult(
        cohorts=[("training", cohort_label(params.train))]
        + [("external", cohort_label(s)) for s in params.external],
        conditions=conditions,
        evaluated=evaluated,
        thresholds=result.thresholds,
        train_config=cfg,
    )


__all__ = ["HeadlineCohort", "HeadlineResult", "compute"]
