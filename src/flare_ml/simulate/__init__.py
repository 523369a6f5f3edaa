"""Synthetic cohort simulator, calibrated to the literature, with an exact oracle.

No real patient cohort ships with flare-ml, so this package generates cohorts in the data
contract from a stated causal story whose every parameter lives in
``configs/simulation`` next to its source (see ``biology/literature.yaml``). Site profiles
(``default``, ``community``, ``nordic``, ``thoracic``) differ in case mix, visit schedule,
lab units and missingness so that a model trained at one site can be validated at another.
Besides the timepoint table the simulator returns the raw lab table and, kept apart so it
can never leak into features, the Bayes-optimal P(flare) of every index row.

Everything it produces is synthetic; none of it describes a real patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flare_ml.data import contract as c
from flare_ml.simulate.config import (
    Biology,
    ConfirmationScans,
    SiteProfile,
    available_sites,
    load_biology,
    load_confirmation,
    load_site,
)
from flare_ml.simulate.generator import generate
from flare_ml.simulate.oracle import compute_oracle

#: the lab adapter's as-of window used when the simulator attaches ALP to its table
ALP_WINDOW_DAYS = 30
#: second word of the confirmation scans' seed sequence: a stream apart from the cohort's
CONFIRMATION_STREAM = 15


@dataclass
class SimulatedCohort:
    """A simulated cohort: the timepoint table, the raw lab table and the oracle.

    Attributes
    ----------
    timepoints : DataFrame
        The timepoint table in the data contract (``alp_u_l`` attached from ``labs``).
    labs : DataFrame
        The long lab table (``patient_id``, ``sample_date``, ``test``, ``value``,
        ``unit``) in the site's units.
    oracle : DataFrame
        One row per index row: ``patient_id``, ``assessment_date``, ``p_flare_oracle``,
        ``p_flare_true_oracle``, ``true_outcome``, ``course``. Never a feature.
    site : SiteProfile
        The site profile the cohort was drawn from.
    seed : int
        The seed.

    """

    timepoints: pd.DataFrame
    labs: pd.DataFrame
    oracle: pd.DataFrame
    site: SiteProfile
    seed: int


def simulate_cohort(
    n_patients: int,
    site: str | Path | SiteProfile = "default",
    seed: int = 0,
    biology: Biology | None = None,
    *,
    confirmation_scans: bool = False,
    confirmation: ConfirmationScans | None = None,
) -> SimulatedCohort:
    """Simulate a cohort of ``n_patients`` at a site.

    Parameters
    ----------
    n_patients : int
        Number of patients (one line of therapy each).
    site : str, Path or SiteProfile, default "default"
        A shipped site name (see :func:`available_sites`), a path to a site YAML file, or a
        loaded profile.
    seed : int, default 0
        Seed of the random generator; the same seed and configs give an identical cohort.
    biology : Biology, optional
        Disease biology; defaults to the literature-calibrated file.
    confirmation_scans : bool, default False
        Give lines that end at a progression index a confirmation scan 6-16 weeks later
        (and the lab visits before it), so that follow-up adjudication
        (:mod:`flare_ml.labels`) has something to read. Drawn from their own random
        stream (``numpy.random.default_rng([seed, CONFIRMATION_STREAM])``): every row of
        the cohort without them is unchanged, and False gives exactly the cohort of
        earlier versions. A confirmation scan with new bone lesions is an index row
        (outcome progression; oracle P(flare) 0).
    confirmation : ConfirmationScans, optional
        Their parameters; defaults to ``biology/confirmation.yaml``.

    Returns
    -------
    SimulatedCohort

    Examples
    --------
    >>> cohort = simulate_cohort(50, site="default", seed=1)
    >>> sorted(cohort.timepoints["row_type"].unique())
    ['imaging', 'lab']
    >>> bool(cohort.oracle["p_flare_oracle"].between(0, 1).all())
    True

    """
    from flare_ml.data.labs import attach_alp

    if n_patients < 1:
        raise ValueError("n_patients must be at least 1")
    profile = site if isinstance(site, SiteProfile) else load_site(site)
    biology = biology or load_biology()
    rng = np.random.default_rng(seed)
    prefix = f"{profile.name[:3].upper()}{seed}-"
    confirm_rng = None
    if confirmation_scans:
        confirmation = confirmation or load_confirmation()
        confirm_rng = np.random.default_rng([int(seed), CONFIRMATION_STREAM])
    table, labs, state, latent = generate(
        rng,
        n_patients,
        profile,
        biology,
        id_prefix=prefix,
        confirm_rng=confirm_rng,
        confirmation=confirmation,
    )
    n_img = len(latent["row_patient"])
    oracle = compute_oracle(table.iloc[:n_img], latent, state, biology, profile)
    table = attach_alp(table, labs, window_days=ALP_WINDOW_DAYS)
    table = table.sort_values([c.PATIENT_ID, c.ASSESSMENT_DATE], kind="stable", ignore_index=True)
    return SimulatedCohort(timepoints=table, labs=labs, oracle=oracle, site=profile, seed=seed)


def companion_paths(out: str | Path) -> tuple[Path, Path]:
    """Paths of the oracle and lab files written beside a simulated table.

    Examples
    --------
    >>> [p.name for p in companion_paths("cohort.parquet")]
    ['cohort.oracle.parquet', 'cohort.labs.parquet']

    """
    out = Path(out)
    suffix = "".join(out.suffixes) or ".csv"
    stem = out.name[: -len(suffix)] if out.suffixes else out.name
    return out.with_name(f"{stem}.oracle{suffix}"), out.with_name(f"{stem}.labs{suffix}")


def write_cohort(cohort: SimulatedCohort, out: str | Path) -> dict[str, Path]:
    """Write the timepoint table to ``out`` and the oracle and lab table beside it.

    The format (CSV or Parquet) follows the file extension. The oracle goes to a separate
    file (``<name>.oracle.<ext>``) so that it can never be read as a feature.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> paths = write_cohort(simulate_cohort(20, seed=3), d / "c.csv")
    >>> sorted(p.name for p in paths.values())
    ['c.csv', 'c.labs.csv', 'c.oracle.csv']

    """
    from flare_ml.data import write_table

    oracle_path, labs_path = companion_paths(out)
    paths = {"timepoints": Path(out), "oracle": oracle_path, "labs": labs_path}
    write_table(cohort.timepoints, paths["timepoints"])
    write_table(cohort.oracle, paths["oracle"])
    write_table(cohort.labs, paths["labs"])
    return paths


__all__ = [
    "CONFIRMATION_STREAM",
    "SimulatedCohort",
    "available_sites",
    "companion_paths",
    "load_biology",
    "load_confirmation",
    "load_site",
    "simulate_cohort",
    "write_cohort",
]
