"""``kind: ablations``: refit without each clinical signal group, on the same patients.

One model on all training patients per condition (the full model and one without each
signal group of :data:`flare_ml.explain.SIGNALS`), each frozen into the bundle serving
loads and scored on the same external patients together with the rules and the oracle;
the changes are paired bootstrap differences with the full model as reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flare_ml.evaluation import Evaluation
from flare_ml.experiments.config import AblationParams
from flare_ml.experiments.context import Context
from flare_ml.experiments.outputs import ConditionRecord, KindResult
from flare_ml.experiments.readout import difference, evaluation_metrics
from flare_ml.experiments.registry import register
from flare_ml.explain import SIGNALS
from flare_ml.train_config import TrainConfig

FULL = "full model"


@dataclass
class AblationResult(KindResult):
    """The external evaluation of every ablated model (reference: the full model).

    Attributes
    ----------
    ablated : list of (str, tuple of str)
        Condition name and the feature columns it drops; the full model first.
    evaluation : Evaluation
        AUROC, Brier and calibration of every condition, rule and the oracle.

    """

    ablated: list[tuple[str, tuple[str, ...]]]
    evaluation: Evaluation
    train_label: str
    train_rows: int
    external_label: str
    external_rows: int
    train_config: TrainConfig


@register("ablations")
def compute(ctx: Context) -> AblationResult:
    """Refit without each clinical signal group; change in external AUROC and calibration."""
    params: AblationParams = ctx.config.params
    train = ctx.cohort(params.train)
    external = ctx.cohort(params.external)
    signals = params.signals or list(SIGNALS)
    ablated = [(FULL, ())] + [(f"without {s}", tuple(SIGNALS[s])) for s in signals]
    scores: dict[str, np.ndarray] = {}
    for i, (name, dropped) in enumerate(ablated):
        ctx.progress("ablation models", i, len(ablated))
        bundle = ctx.fit(train.prepared, drop=dropped)
        scores[name] = bundle.proba_from_features(external.prepared.features)
    ctx.progress("ablation models", len(ablated), len(ablated))
    scores.update(ctx.scores(external.prepared))
    ev = ctx.evaluate(
        external.prepared,
        scores,
        reference=FULL,
        metrics=("auroc", "brier", "calibration_slope", "calibration_intercept"),
    )
    records = [
        ConditionRecord(
            name,
            {"features_removed": ",".join(dropped) or "none"},
            {
                k.split(".", 1)[1]: v
                for k, v in evaluation_metrics(ev).items()
                if k.startswith(f"{name}.")
            }
            | {"auroc_change_vs_full": difference(ev, name)[0] if name != FULL else 0.0},
        )
        for name, dropped in ablated
    ]
    assert train.prepared.y is not None and external.prepared.y is not None
    return AblationResult(
        cohorts=[("training", train.label), ("external", external.label)],
        conditions=records,
        ablated=ablated,
        evaluation=ev,
        train_label=train.label,
        train_rows=len(train.prepared.y),
        external_label=external.label,
        external_rows=len(external.prepared.y),
        train_config=ctx.train_config,
    )


__all__ = ["FULL", "AblationResult", "compute"]
