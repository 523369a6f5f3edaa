"""What every experiment kind works with: the validated config, cohorts, fits and scores.

:class:`Context` simulates cohorts (cached, so a cohort used by several conditions is
drawn once), fits the XGBoost model with the experiment's training settings and freezes
it into the :class:`~flare_ml.bundle.FlareModelBundle` that serving loads, scores a
cohort with that bundle, the rules and the oracle, and evaluates scorers with the
patient-level bootstrap of :func:`flare_ml.evaluation.evaluate`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from flare_ml.bundle import FlareModelBundle
from flare_ml.data import contract as c
from flare_ml.evaluation import Evaluation, evaluate
from flare_ml.experiments.config import CohortSpec, ExperimentConfig, canonical_json, cohort_label
from flare_ml.progress import Progress, no_progress
from flare_ml.rules import make_rules
from flare_ml.simulate import simulate_cohort
from flare_ml.train_config import TrainConfig
from flare_ml.training import (
    MODEL_NAME,
    ORACLE_NAME,
    PreparedCohort,
    bundle_from_model,
    fit_bundle,
    make_featurizer,
    make_model,
    prepare_cohort,
)


@dataclass
class SimCohort:
    """A simulated, featurized cohort with its true (noise-free) outcomes."""

    spec: CohortSpec
    prepared: PreparedCohort
    true_y: np.ndarray

    @property
    def label(self) -> str:
        """The cohort's name in tables."""
        return self.prepared.label


class Context:
    """What every experiment kind gets: config, training config, caches, progress.

    Parameters
    ----------
    config : ExperimentConfig
        The validated experiment.
    train_config : TrainConfig
        The resolved training config (experiment seed, model overrides).
    progress : callable, optional
        ``progress(step, done, total)``.

    Examples
    --------
    >>> from flare_ml.experiments.config import load_params, resolve_train_config
    >>> cfg = ExperimentConfig(kind="literature_cases", experiment_name="x", seed=1,
    ...                        params=load_params("literature_cases", {}))
    >>> ctx = Context(cfg, resolve_train_config(cfg, "inline"))
    >>> cohort = ctx.cohort(CohortSpec(site="default", patients=30, seed=1))
    >>> cohort is ctx.cohort(CohortSpec(site="default", patients=30, seed=1))
    True

    """

    def __init__(
        self,
        config: ExperimentConfig,
        train_config: TrainConfig,
        progress: Progress = no_progress,
    ) -> None:
        self.config = config
        self.train_config = train_config
        self.progress = progress
        self.seed = config.seed
        self.n_resamples = config.bootstrap_resamples
        self.featurizer = make_featurizer(train_config).fit(
            pd.DataFrame(columns=list(c.CONTRACT_COLUMNS))
        )
        self.rules = make_rules(train_config.rules.model_dump())
        self._cohorts: dict[str, SimCohort] = {}

    def cohort(self, spec: CohortSpec) -> SimCohort:
        """Simulate and featurize a cohort (once per spec)."""
        key = canonical_json(spec.model_dump())
        if key not in self._cohorts:
            sim = simulate_cohort(spec.patients, site=spec.profile(), seed=spec.seed)
            prepared = prepare_cohort(
                sim.timepoints, self.featurizer, cohort_label(spec), sim.oracle
            )
            self._cohorts[key] = SimCohort(spec, prepared, true_outcomes(prepared, sim.oracle))
        return self._cohorts[key]

    def fit(
        self,
        cohort: PreparedCohort,
        rows: np.ndarray | None = None,
        drop: Iterable[str] = (),
    ) -> FlareModelBundle:
        """Fit the model on some rows/columns and freeze it into the bundle serving loads.

        Tuning, early stopping and calibration happen inside the fit. The bundle has no
        operating threshold of its own (0.5) and no conformal sets: experiments read its
        P(flare) (:meth:`~flare_ml.bundle.FlareModelBundle.proba_from_features`), which
        picks the columns the model was fitted on from a full feature table.
        """
        features = cohort.features.drop(columns=list(drop))
        y, groups = cohort.y, cohort.patient_ids
        assert y is not None
        if rows is not None:
            features, y, groups = features.iloc[rows], y[rows], groups[rows]
        model = make_model(self.train_config).fit(features, y, groups=groups)
        return bundle_from_model(model, self.featurizer, 0.5)

    def fit_shipped(self, cohort: PreparedCohort) -> FlareModelBundle:
        """The model as ``flare-ml train`` ships it: threshold and conformal sets included.

        :func:`flare_ml.training.fit_bundle` with the configured outer folds (the
        out-of-fold predictions choose the operating threshold and calibrate the
        conformal sets), reported as one ``model`` step.
        """
        self.progress("model", 0, 1)
        bundle = fit_bundle(
            cohort.timepoints, self.train_config, outer_folds=self.train_config.model.outer_folds
        )
        self.progress("model", 1, 1)
        return bundle

    def scores(
        self, cohort: PreparedCohort, model: FlareModelBundle | None = None
    ) -> dict[str, np.ndarray]:
        """Model (if given), rule and oracle scores on a cohort, in table order."""
        out: dict[str, np.ndarray] = {}
        if model is not None:
            out[MODEL_NAME] = model.proba_from_features(cohort.features)
        for name, rule in self.rules.items():
            out[name] = rule.fit(cohort.features).decision_function(cohort.features)
        if cohort.oracle is not None:
            out[ORACLE_NAME] = cohort.oracle
        return out

    def evaluate(
        self,
        cohort: PreparedCohort,
        scores: Mapping[str, np.ndarray],
        reference: str | None = MODEL_NAME,
        y: np.ndarray | None = None,
        metrics: tuple[str, ...] = ("auroc", "brier", "calibration_slope"),
    ) -> Evaluation:
        """Paired patient-level bootstrap of some metrics (95% CIs)."""
        return evaluate(
            cohort.y if y is None else y,
            scores,
            patient_ids=cohort.patient_ids,
            thresholds=0.5,
            n_resamples=self.n_resamples,
            seed=self.seed,
            metrics=metrics,
            reference=reference,
            probability_scorers=[name for name in scores if name not in self.rules],
        )


def true_outcomes(cohort: PreparedCohort, oracle: pd.DataFrame) -> np.ndarray:
    """Noise-free outcome of each index row (1 = flare), from the simulator's oracle file.

    Examples
    --------
    >>> from flare_ml.features import TimepointFeaturizer
    >>> sim = simulate_cohort(60, seed=2)
    >>> featurizer = TimepointFeaturizer().fit(sim.timepoints)
    >>> cohort = prepare_cohort(sim.timepoints, featurizer, "x", sim.oracle)
    >>> true_outcomes(cohort, sim.oracle).shape == cohort.y.shape
    True

    """
    keys = cohort.features.index.to_frame(index=False)
    keys[c.PATIENT_ID] = keys[c.PATIENT_ID].astype(str)
    o = oracle[[c.PATIENT_ID, c.ASSESSMENT_DATE, "true_outcome"]].copy()
    o[c.PATIENT_ID] = o[c.PATIENT_ID].astype(str)
    o[c.ASSESSMENT_DATE] = pd.to_datetime(o[c.ASSESSMENT_DATE]).astype(
        keys[c.ASSESSMENT_DATE].dtype
    )
    aligned = keys.merge(o, on=[c.PATIENT_ID, c.ASSESSMENT_DATE], how="left")
    return (aligned["true_outcome"] == "flare").to_numpy(dtype=int)


__all__ = ["Context", "Progress", "SimCohort", "no_progress", "true_outcomes"]
