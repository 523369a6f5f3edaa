"""``kind: robustness``: model and rules under missing ALP, label noise and shifts.

Each condition overrides the training and/or external site profile; each distinct
training cohort gets one model (frozen into the bundle serving loads, reused by the
conditions that share it), scored on the condition's external cohort with the rules and
the oracle, against the recorded labels (bootstrap CIs) and the simulator's noise-free
outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass

from flare_ml.bundle import FlareModelBundle
from flare_ml.evaluation import Evaluation, evaluate
from flare_ml.experiments.config import RobustnessCondition, RobustnessParams
from flare_ml.experiments.context import Context
from flare_ml.experiments.outputs import ConditionRecord, KindResult
from flare_ml.experiments.readout import best_rule, evaluation_metrics, metric
from flare_ml.experiments.registry import register
from flare_ml.train_config import TrainConfig


@dataclass
class ConditionOutcome:
    """One condition's external evaluations (recorded labels; noise-free outcomes)."""

    condition: RobustnessCondition
    evaluation: Evaluation
    true_evaluation: Evaluation
    best_rule: str


@dataclass
class RobustnessResult(KindResult):
    """One :class:`ConditionOutcome` per condition, the reference condition first."""

    outcomes: list[ConditionOutcome]
    train_config: TrainConfig


@register("robustness")
def compute(ctx: Context) -> RobustnessResult:
    """Model and rules under missing ALP, label noise, schedule and case-mix shifts."""
    params: RobustnessParams = ctx.config.params
    models: dict[str, FlareModelBundle] = {}
    records, cohorts, outcomes = [], [], []
    n = len(params.conditions)
    for i, cond in enumerate(params.conditions):
        ctx.progress("robustness conditions", i, n)
        train = ctx.cohort(params.train.with_overrides(cond.train))
        external = ctx.cohort(params.external.with_overrides(cond.external, cond.external_site))
        if train.label not in models:
            models[train.label] = ctx.fit(train.prepared)
        scores = ctx.scores(external.prepared, models[train.label])
        ev = ctx.evaluate(external.prepared, scores)
        true_ev = evaluate(
            external.true_y,
            scores,
            patient_ids=external.prepared.patient_ids,
            n_resamples=0,
            metrics=("auroc",),
            probability_scorers=[n for n in scores if n not in ctx.rules],
        )
        outcomes.append(ConditionOutcome(cond, ev, true_ev, best_rule(ev)))
        cohorts.append((f"{cond.name}: training", train.label))
        cohorts.append((f"{cond.name}: external", external.label))
        records.append(
            ConditionRecord(
                cond.name,
                {"group": cond.group, "training": train.label, "external": external.label},
                evaluation_metrics(ev)
                | {f"true_outcome.{s}.auroc": metric(true_ev, s, "auroc")[0] for s in scores},
            )
        )
    ctx.progress("robustness conditions", n, n)
    return RobustnessResult(
        cohorts=cohorts, conditions=records, outcomes=outcomes, train_config=ctx.train_config
    )


__all__ = ["ConditionOutcome", "RobustnessResult", "compute"]
