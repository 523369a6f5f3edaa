"""Shared helpers of the serving tests: one small trained model per test session.

Training is the slow part of every serving test, so the bundle is fitted once (a small
config: one candidate, two folds, at most 60 trees) and cached for the whole session;
each test gets its own copy of the saved folder when it needs files.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from flare_ml.bundle import FlareModelBundle

TRAIN_PATIENTS = 400


def quick_config():
    """A training config small enough for tests (seconds, not minutes)."""
    from flare_ml.train_config import TrainConfig

    cfg = TrainConfig()
    model = cfg.model.model_copy(
        update={
            "n_candidates": 1,
            "outer_folds": 2,
            "inner_folds": 2,
            "n_estimators_max": 60,
            "early_stopping_rounds": 10,
            "n_jobs": 1,
        }
    )
    return cfg.model_copy(update={"model": model})


@functools.cache
def _fitted() -> tuple[FlareModelBundle, Path]:
    from flare_ml.simulate import simulate_cohort
    from flare_ml.training import fit_bundle

    table = simulate_cohort(TRAIN_PATIENTS, seed=11).timepoints
    bundle = fit_bundle(table, quick_config(), outer_folds=2)
    folder = bundle.save(Path(tempfile.mkdtemp(prefix="flare-ml-test-bundle-")) / "bundle")
    return bundle, folder


def small_bundle() -> FlareModelBundle:
    """The session's small trained bundle (with conformal thresholds)."""
    return _fitted()[0]


def bundle_copy(target: Path) -> Path:
    """A copy of the session bundle's folder at ``target``."""
    return Path(shutil.copytree(_fitted()[1], target))


@functools.cache
def scoring_cohort(patients: int = 120, seed: int = 5) -> pd.DataFrame:
    """A synthetic cohort to score (a different seed from the training cohort)."""
    from flare_ml.simulate import simulate_cohort

    return simulate_cohort(patients, seed=seed).timepoints
