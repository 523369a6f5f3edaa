"""The training configuration: what to train on, how to tune, evaluate and track.

``configs/train/*.yaml`` files are validated against :class:`TrainConfig`; an unknown or
misspelt key, or a value of the wrong type, is a :class:`~flare_ml.errors.ConfigError`
that names the dotted key and the file. The resolved configuration is logged to MLflow
with every training run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from flare_ml.config_io import CONFIG_ROOT, StrictModel, load_config
from flare_ml.decision_policy import ErrorBudget

DEFAULT_TRAIN_CONFIG = CONFIG_ROOT / "train" / "default.yaml"


#: the embedded MLflow tracking store in the working directory (MLflow 3's own default)
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


class SimulatedCohortSpec(StrictModel):
    """A cohort drawn from the simulator."""

    site: str = "default"
    patients: Annotated[int, Field(ge=20)] = 2000
    seed: int = 0


class DataConfig(StrictModel):
    train: SimulatedCohortSpec = SimulatedCohortSpec()
    external: list[SimulatedCohortSpec] = []


class FeatureConfig(StrictModel):
    alp_upper_limit_normal: Annotated[float, Field(gt=0)] = 147.0
    alp_slope_window_days: Annotated[int, Field(ge=7)] = 90


class ModelConfig(StrictModel):
    outer_folds: Annotated[int, Field(ge=2)] = 5
    inner_folds: Annotated[int, Field(ge=2)] = 3
    n_candidates: Annotated[int, Field(ge=1)] = 6
    n_estimators_max: Annotated[int, Field(ge=1)] = 500
    early_stopping_rounds: Annotated[int, Field(ge=1)] = 30
    calibration: Literal["auto", "none", "sigmoid", "isotonic"] = "auto"
    n_jobs: Annotated[int, Field(ge=1)] = 2
    search_space: dict[str, list[Any]] | None = None


class RulesConfig(StrictModel):
    seed_criteria: dict[str, Any] = {}
    pcwg3_window: dict[str, Any] = {}
    alp_only: dict[str, Any] = {}


class DecisionPolicyConfig(StrictModel):
    """The clinical error budget (:class:`flare_ml.uncertainty.ErrorBudget`)."""

    max_progression_called_flare: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    max_flare_called_progression: Annotated[float, Field(gt=0, lt=0.5)] = 0.10

    def budget(self) -> ErrorBudget:
        """The budget as the object that conformal calibration and scoring use."""
        return ErrorBudget(self.max_progression_called_flare, self.max_flare_called_progression)


class EvaluationConfig(StrictModel):
    bootstrap_resamples: Annotated[int, Field(ge=0)] = 1000
    subgroups: list[Literal["cancer_type", "therapy_class"]] = ["cancer_type", "therapy_class"]


class UncertaintyConfig(StrictModel):
    calibration: Literal["out_of_fold", "held_out"] = "out_of_fold"
    calibration_fraction: Annotated[float, Field(gt=0, le=0.5)] = 0.25
    top_reasons: Annotated[int, Field(ge=1, le=6)] = 3


class TrackingConfig(StrictModel):
    tracking_uri: str = DEFAULT_TRACKING_URI
    registered_model_name: str = "flare-classifier"


class TrainConfig(StrictModel):
    """A validated training configuration (``configs/train/*.yaml``).

    Examples
    --------
    >>> cfg = load_train_config()
    >>> cfg.tracking.registered_model_name
    'flare-classifier'
    >>> cfg.model.outer_folds
    5

    """

    experiment_name: str = "flare-ml"
    seed: int = 0
    data: DataConfig = DataConfig()
    features: FeatureConfig = FeatureConfig()
    model: ModelConfig = ModelConfig()
    rules: RulesConfig = RulesConfig()
    decision_policy: DecisionPolicyConfig = DecisionPolicyConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    uncertainty: UncertaintyConfig = UncertaintyConfig()
    tracking: TrackingConfig = TrackingConfig()
    output_dir: str = "outputs/latest"


def load_train_config(path: str | Path | None = None) -> TrainConfig:
    """Load and validate a training config (the shipped default when ``path`` is None).

    Examples
    --------
    >>> load_train_config().data.train.site
    'default'

    """
    return load_config(TrainConfig, path or DEFAULT_TRAIN_CONFIG)
