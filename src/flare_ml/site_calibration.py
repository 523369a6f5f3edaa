"""Recalibrate the "uncertain" decision on a new site's own labelled patients.

The conformal thresholds shipped with a model are calibrated on held-out training
patients, and their per-class coverage holds for patients exchangeable with those. A new
site's patients are not: their scan schedule (a feature), case mix, missing data and the
reliability of their outcome adjudication differ, and on the simulated external sites the
transported thresholds miss the target coverage by up to five points
(docs/uncertainty.md). Reweighting the training patients towards the site (conformal
prediction under covariate shift) does not rescue this, because the sites are almost perfectly
separable by their schedules. What does is the standard remedy for transporting a
clinical model, local recalibration: this module keeps the trees and the probability
calibrator, and refits only the class-conditional conformal thresholds (with them the
``decision`` column and its operating threshold, for the same error budget) on the site's
labelled index assessments. It also reports, before anything is
deployed, the coverage the old thresholds gave on these patients and the coverage the new
ones can be expected to give (cross-fitted, so that no patient calibrates their own set).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flare_ml.bundle import FlareModelBundle
from flare_ml.data import contract as c
from flare_ml.data.fingerprint import data_fingerprint
from flare_ml.errors import FlareMLError
from flare_ml.evaluation import DecisionTable, decision_table
from flare_ml.features import index_outcomes
from flare_ml.uncertainty import (
    FLARE,
    PROGRESSION,
    ClassConditionalConformal,
    ErrorBudget,
    coverage_report,
    cross_fitted_sets,
    decisions_from_sets,
    min_calibration_cases,
    per_class_coverage,
)

#: how coverage tables name the two sets of conformal thresholds
TRANSPORTED = "shipped (training thresholds)"
SITE_CALIBRATED = "recalibrated on the site (cross-fitted)"


@dataclass
class SiteCalibration:
    """A model recalibrated on one site, with the coverage evidence for it.

    Attributes
    ----------
    bundle : FlareModelBundle
        A copy of the model whose conformal thresholds, and the decision threshold that
        follows from them, come from the site's patients (trees and probability
        calibrator unchanged).
    label : str
        Where the site's patients came from (a file name, a simulated cohort).
    transported : dict
        :func:`~flare_ml.uncertainty.coverage_report` of the model's previous thresholds
        on the site's patients.
    cross_fitted : dict
        The same report for thresholds calibrated on the site's other patients
        (patient-grouped folds): what the recalibrated model can be expected to deliver
        on the site's future patients.

    """

    bundle: FlareModelBundle
    label: str
    transported: dict[str, float] | None
    cross_fitted: dict[str, float]

    @property
    def thresholds(self) -> dict[str, float]:
        """The new per-class nonconformity thresholds (those of :attr:`bundle`)."""
        return dict(self.bundle.conformal.thresholds_)

    @property
    def n_calibration(self) -> dict[str, int]:
        """Index assessments per recorded outcome (``flare``, ``progression``)."""
        return dict(self.bundle.conformal.n_calibration_)

    def expected_spread(self) -> dict[str, float]:
        """One standard deviation of the coverage a recalibration on this many cases gets.

        The realised coverage of split-conformal thresholds calibrated on ``n`` cases of a
        class varies between samples by about ``sqrt(coverage (1 - coverage) / n)``.

        Examples
        --------
        >>> site = calibrate_to_site(bundle, local_table)  # doctest: +SKIP
        >>> site.expected_spread()  # doctest: +SKIP
        {'flare': 0.016, 'progression': 0.012}

        """
        cov = self.bundle.conformal.class_coverage
        return {
            k: float(np.sqrt(cov[k] * (1 - cov[k]) / max(n, 1)))
            for k, n in self.n_calibration.items()
        }

    def summary(self) -> pd.DataFrame:
        """Coverage before and after, per class, as a table.

        Examples
        --------
        >>> site = calibrate_to_site(bundle, local_table)  # doctest: +SKIP
        >>> site.summary()  # doctest: +SKIP
                                       overall  flare  progression  uncertain
        shipped (training thresholds) ...

        """
        rows = {TRANSPORTED: self.transported, SITE_CALIBRATED: self.cross_fitted}
        return pd.DataFrame(
            {
                name: {
                    "overall": r["coverage"],
                    "flare": r["coverage_flare"],
                    "progression": r["coverage_progression"],
                    "uncertain": r["uncertain_fraction"],
                }
                for name, r in rows.items()
                if r is not None
            }
        ).T


def calibrate_to_site(
    bundle: FlareModelBundle,
    timepoints: pd.DataFrame,
    *,
    coverage: float | Mapping[str, float] | None = None,
    label: str = "site cohort",
    n_folds: int = 5,
    seed: int = 0,
    fingerprint: dict[str, Any] | None = None,
) -> SiteCalibration:
    """Refit the conformal thresholds of ``bundle`` on a site's labelled patients.

    Parameters
    ----------
    bundle : FlareModelBundle
        The trained model (left unchanged).
    timepoints : DataFrame
        The site's validated timepoint table, with ``outcome`` on every index row.
    coverage : float or dict, optional
        Target coverage per class; by default the model's own, the coverage of its error
        budget (:attr:`~flare_ml.uncertainty.ClassConditionalConformal.budget`).
    label : str, default "site cohort"
        Where the patients came from, recorded in the new model's metadata.
    n_folds : int, default 5
        Folds of the cross-fitted coverage estimate.
    seed : int, default 0
        Seed of the fold assignment.
    fingerprint : dict, optional
        Hash and counts of the table (never rows), recorded in the metadata; computed
        from ``timepoints`` when not given.

    Returns
    -------
    SiteCalibration

    Raises
    ------
    ContractError
        When an index row has no ``outcome``.
    FlareMLError
        When one outcome has too few index assessments for a finite threshold.

    Examples
    --------
    >>> from flare_ml.simulate import simulate_cohort
    >>> from flare_ml.training import fit_bundle
    >>> bundle = fit_bundle(simulate_cohort(600, seed=3).timepoints, n_candidates=1,
    ...                     outer_folds=2)
    >>> site = calibrate_to_site(bundle, simulate_cohort(600, site="community", seed=4)
    ...                          .timepoints, label="community")
    >>> site.bundle.metadata["conformal_calibration"]
    'site'
    >>> site.bundle.conformal.thresholds_ != bundle.conformal.thresholds_
    True

    """
    if coverage is None:
        coverage = (
            bundle.conformal.class_coverage
            if bundle.conformal is not None
            else ErrorBudget().coverage
        )
    cov = per_class_coverage(coverage)
    if c.OUTCOME not in timepoints.columns or timepoints[c.OUTCOME].isna().all():
        raise FlareMLError(
            f"{label}: calibration needs column 'outcome' (flare or progression, adjudicated "
            "by follow-up imaging) on every index row; the table has no outcomes"
        )
    if c.LABEL_REASON in timepoints.columns:
        left = index_outcomes(timepoints, allow_missing=True).isna()
        if left.any():
            raise FlareMLError(
                f"{label}: {int(left.sum())} of {len(left)} index rows were left indeterminate "
                "by flare-ml label; thresholds calibrated on the confirmed rows alone can miss "
                "the error budget, because those over-represent what follow-up could confirm "
                "(docs/labels.md, Limits). Keep the model's thresholds, or calibrate on a "
                "fully followed-up subset (index rows with an outcome only)"
            )
    if fingerprint is None:
        fingerprint = data_fingerprint(timepoints)
    features = bundle.features(timepoints)
    y = index_outcomes(timepoints).reindex(features.index).to_numpy(dtype=int)
    counts = {FLARE: int((y == 1).sum()), PROGRESSION: int((y == 0).sum())}
    needed = {k: min_calibration_cases(cov[k]) for k in counts}
    short = {k: n for k, n in counts.items() if n < needed[k]}
    if short:
        found = ", ".join(
            f"{n} {k} (at least {needed[k]} for {cov[k]:.0%} coverage)" for k, n in short.items()
        )
        raise FlareMLError(
            f"{label}: column 'outcome' has too few index assessments to calibrate the "
            f"decision's coverage per class: {found}; a few hundred give a stable threshold"
        )
    p = bundle.proba_from_features(features)
    patients = features.index.get_level_values(c.PATIENT_ID).astype(str).to_numpy()
    transported = (
        coverage_report(bundle.conformal.predict_sets(p), y)
        if bundle.conformal is not None
        else None
    )
    cross_fitted = site_coverage_estimate(p, y, patients, coverage, n_folds, seed)
    conformal = ClassConditionalConformal(cov).fit(p, y)
    metadata = dict(bundle.metadata)
    metadata["thresholds"] = {
        **dict(metadata.get("thresholds", {})),
        "xgboost": conformal.flare_threshold(),
    }
    metadata.update(
        {
            "conformal_calibration": "site",
            "conformal_calibration_rows": len(y),
            "site_calibration": {
                "label": label,
                "coverage": cov,
                "budget": conformal.budget.to_dict(),
                "n_calibration": counts,
                "previous_thresholds": (
                    bundle.conformal.thresholds_ if bundle.conformal is not None else None
                ),
                "transported_coverage": transported,
                "cross_fitted_coverage": cross_fitted,
                "data": fingerprint,
            },
        }
    )
    return SiteCalibration(
        bundle=dataclasses.replace(
            bundle,
            conformal=conformal,
            threshold=conformal.flare_threshold(),
            metadata=metadata,
        ),
        label=label,
        transported=transported,
        cross_fitted=cross_fitted,
    )


def site_coverage_estimate(
    p_flare: np.ndarray,
    y: np.ndarray,
    patient_ids: np.ndarray,
    coverage: float | Mapping[str, float],
    n_folds: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Coverage a site would get by calibrating on its own labelled patients (cross-fitted).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=2000)
    >>> y = (rng.uniform(size=2000) < p).astype(int)
    >>> report = site_coverage_estimate(p, y, np.arange(2000), 0.9)
    >>> sorted(report)
    ['coverage', 'coverage_flare', 'coverage_progression', 'uncertain_fraction']

    """
    return coverage_report(cross_fitted_sets(p_flare, y, patient_ids, coverage, n_folds, seed), y)


@dataclass
class SiteCheck:
    """How a model's decisions fare on a labelled cohort, as shipped and recalibrated there.

    Attributes
    ----------
    coverage : dict
        :func:`~flare_ml.uncertainty.coverage_report` of the model's own thresholds.
    site_coverage : dict
        The same for thresholds recalibrated on the cohort (cross-fitted).
    decision_tables : list of DecisionTable
        The decision column against the outcomes with each: the model's thresholds
        first, then the recalibrated ones.

    """

    coverage: dict[str, float]
    site_coverage: dict[str, float]
    decision_tables: list[DecisionTable]


def check_at_site(
    conformal: ClassConditionalConformal,
    p_flare: np.ndarray,
    y: np.ndarray,
    patient_ids: np.ndarray,
    *,
    cohort: str,
    model_thresholds: str = TRANSPORTED,
    n_folds: int = 5,
    seed: int = 0,
) -> SiteCheck:
    """Coverage and decision tables of a model's thresholds and of site-recalibrated ones.

    The recalibrated thresholds keep the model's error budget and are cross-fitted over
    patient-grouped folds (no patient calibrates their own set), so they measure what
    ``flare-ml calibrate`` on these patients can be expected to deliver.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=2000)
    >>> y = (rng.uniform(size=2000) < p).astype(int)
    >>> cp = ClassConditionalConformal(ErrorBudget().coverage).fit(p, y)
    >>> check = check_at_site(cp, p, y, np.arange(2000), cohort="example")
    >>> [t.thresholds for t in check.decision_tables]
    ['shipped (training thresholds)', 'recalibrated on the site (cross-fitted)']

    """
    y = np.asarray(y, dtype=int)
    shipped = conformal.predict_sets(p_flare)
    site = cross_fitted_sets(p_flare, y, patient_ids, conformal.class_coverage, n_folds, seed)
    tables = [
        decision_table(
            y, decisions_from_sets(sets)[0], conformal.budget, cohort=cohort, thresholds=source
        )
        for sets, source in ((shipped, model_thresholds), (site, SITE_CALIBRATED))
    ]
    return SiteCheck(coverage_report(shipped, y), coverage_report(site, y), tables)
