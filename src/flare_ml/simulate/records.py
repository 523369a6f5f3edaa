"""A simulated cohort as the clinical events a site's records would hold.

The record writers (:mod:`flare_ml.simulate.omop`, :mod:`flare_ml.simulate.fhir`) write the
same events in two formats, so they share this one translation: each simulated patient is a
person with one coded cancer diagnosis (a month before the start), the anticancer drugs of
their therapy class started on the treatment start date (through the shipped mapping
table's representative regimen, so the adapters map them back), their raw ALP results in
the site's units, and one radiology report per imaging row written by
:func:`flare_ml.simulate.reports.simulate_reports`. What records cannot carry is lost here,
by design, and the round trip documents it: the ``other`` therapy class (no ingredient in
the table), ``sld_mm`` and ``clinical_deterioration`` (not in reports), lab visits whose
ALP is missing (no record of the visit).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from flare_ml.data import contract as c
from flare_ml.records.events import ClinicalEvents, Dropped
from flare_ml.records.mappings import representative_condition, representative_drugs
from flare_ml.simulate import SimulatedCohort
from flare_ml.simulate.reports import (
    DEFAULT_BONE_SCAN_SHARE,
    round_trip_agreement,
    simulate_reports,
)

__all__ = ["DIAGNOSIS_DAYS_BEFORE_START", "REPORT_TITLES", "cohort_events", "record_round_trip"]

#: the simulated diagnosis date, this many days before the treatment start
DIAGNOSIS_DAYS_BEFORE_START: Final = 30
#: the title both record writers give a report of each modality (OMOP ``note_title``, FHIR
#: ``DiagnosticReport.code.text``); the adapters take the modality from it
REPORT_TITLES: Final = {
    "ct": "CT chest, abdomen and pelvis",
    "pet_ct": "FDG PET-CT",
    "bone_scan": "Whole-body bone scintigraphy",
    "mri": "MRI",
    "radiograph": "Radiograph",
}


def cohort_events(
    cohort: SimulatedCohort, *, bone_scan_share: float = DEFAULT_BONE_SCAN_SHARE
) -> ClinicalEvents:
    """The clinical events a site's records would hold for a simulated cohort.

    Parameters
    ----------
    cohort : SimulatedCohort
        A simulated cohort (:func:`flare_ml.simulate.simulate_cohort`).
    bone_scan_share : float, default 0.3
        Share of follow-up scans reported as bone scans (see
        :func:`~flare_ml.simulate.reports.simulate_reports`).

    Returns
    -------
    ClinicalEvents
        Persons, ICD-10-CM diagnoses, drugs, ALP results and reports; patients of the
        ``other`` therapy class get no drug record (the mapping table has no ingredient for
        it) and are listed in ``dropped``.

    Examples
    --------
    >>> from flare_ml.simulate import simulate_cohort
    >>> events = cohort_events(simulate_cohort(20, seed=2))
    >>> len(events.persons), sorted(events.conditions["vocabulary"].unique())
    (20, ['ICD10CM'])
    >>> bool(events.reports["text"].str.len().gt(0).all())
    True

    """
    table = cohort.timepoints
    patients = table.drop_duplicates(c.PATIENT_ID)[
        [c.PATIENT_ID, c.TREATMENT_START_DATE, c.CANCER_TYPE, c.THERAPY_CLASS]
    ]
    start = pd.to_datetime(patients[c.TREATMENT_START_DATE])
    conditions = pd.DataFrame(
        {
            c.PATIENT_ID: patients[c.PATIENT_ID],
            "condition_date": start - pd.Timedelta(days=DIAGNOSIS_DAYS_BEFORE_START),
            "vocabulary": "ICD10CM",
            "code": [representative_condition(t)["ICD10CM"] for t in patients[c.CANCER_TYPE]],
        }
    )
    drugs, no_drug = [], []
    for pid, begin, therapy in zip(
        patients[c.PATIENT_ID], start, patients[c.THERAPY_CLASS], strict=True
    ):
        regimen = representative_drugs(therapy)
        if not regimen:
            no_drug.append(str(pid))
        for ingredient, code in regimen:
            drugs.append(
                {
                    c.PATIENT_ID: pid,
                    "start_date": begin,
                    "end_date": pd.NaT,
                    "ingredient": ingredient,
                    "rxnorm_code": code,
                }
            )
    reports = simulate_reports(table, seed=cohort.seed, bone_scan_share=bone_scan_share).reports
    reports = reports.assign(
        report_id=[f"{p}-R{i}" for i, p in enumerate(reports[c.PATIENT_ID], start=1)]
    )
    dropped = []
    if no_drug:
        dropped.append(
            Dropped(
                "simulate",
                "patients of therapy class 'other': no ingredient in therapy_classes.csv, "
                "so no drug record written",
                len(no_drug),
                tuple(no_drug[:5]),
            )
        )
    return ClinicalEvents.from_frames(
        persons=patients[[c.PATIENT_ID]],
        conditions=conditions,
        drugs=pd.DataFrame(drugs),
        labs=cohort.labs,
        reports=reports,
        dropped=dropped,
        source=f"simulated cohort (seed {cohort.seed})",
    )


#: the columns the round trip compares outside the report reader's
CONTEXT_COLUMNS: Final = (
    c.TREATMENT_START_DATE,
    c.CANCER_TYPE,
    c.THERAPY_CLASS,
    c.ALP_U_L,
    c.SLD_MM,
    c.CLINICAL_DETERIORATION,
)


def _equal(a: pd.Series, b: pd.Series) -> np.ndarray:
    a, b = a.astype(object), b.astype(object)
    both_missing = a.isna().to_numpy() & b.isna().to_numpy()
    same = (a.astype(str).to_numpy() == b.astype(str).to_numpy()) & ~a.isna().to_numpy()
    return same | both_missing


def record_round_trip(
    cohort: SimulatedCohort,
    timepoints: pd.DataFrame,
    *,
    bone_scan_share: float = DEFAULT_BONE_SCAN_SHARE,
) -> pd.DataFrame:
    """Compare a table ingested from a simulated cohort's records with the cohort, by column.

    Parameters
    ----------
    cohort : SimulatedCohort
        The simulated cohort the records were written from.
    timepoints : DataFrame
        The table an adapter and :func:`~flare_ml.records.assemble.assemble_timepoints`
        made of them.
    bone_scan_share : float
        The share the records were written with (the reports are written again, from
        the same seed, to know what each states).

    Returns
    -------
    DataFrame
        One row per compared item. ``rows``: rows compared (for ``imaging rows`` and ``lab
        rows``: rows of the cohort), ``agreement``: share equal (for the row sets: share
        found), ``explained``: differences a documented loss explains (the reading
        conventions, for the imaging columns, where ``NE`` written for a report that
        states no response counts as that silence; a column records do not carry; a lab
        visit without an ALP sample, or a patient of class ``other``, which leave no
        record), and ``unexplained``.

    Examples
    --------
    >>> from flare_ml.simulate import simulate_cohort
    >>> from flare_ml.records.assemble import assemble_timepoints
    >>> cohort = simulate_cohort(20, seed=4)
    >>> table = assemble_timepoints(cohort_events(cohort)).timepoints
    >>> out = record_round_trip(cohort, table)
    >>> int(out.loc["new_bone_lesions", "unexplained"]), int(out.loc["cancer_type", "unexplained"])
    (0, 0)

    """
    key = [c.PATIENT_ID, c.ASSESSMENT_DATE]
    sim = cohort.timepoints.copy()
    got = timepoints.copy()
    for frame in (sim, got):
        frame[c.ASSESSMENT_DATE] = pd.to_datetime(frame[c.ASSESSMENT_DATE])
    merged = sim.merge(got, on=key, how="left", suffixes=("", "_got"), indicator=True)
    found = (merged["_merge"] == "both").to_numpy()
    samples = pd.MultiIndex.from_arrays(
        [cohort.labs[c.PATIENT_ID], pd.to_datetime(cohort.labs["sample_date"])]
    )
    sampled = pd.MultiIndex.from_frame(merged[key]).isin(samples)
    lab = (merged[c.ROW_TYPE] == "lab").to_numpy()
    out: dict[str, dict[str, float]] = {}
    carried = set(events_columns_lost())
    for name, mask in (("imaging rows", ~lab), ("lab rows", lab)):
        n = int(mask.sum())
        missing = mask & ~found
        # a lab visit whose ALP is missing leaves no record; a patient of class 'other' none
        lost = missing & ((lab & ~sampled) | (merged[c.THERAPY_CLASS] == "other").to_numpy())
        out[name] = {
            "rows": n,
            "agreement": float(found[mask].mean()) if n else np.nan,
            "explained": int(lost.sum()),
            "unexplained": int((missing & ~lost).sum()),
        }
    both = merged[found]
    for col in CONTEXT_COLUMNS:
        agree = _equal(both[col], both[f"{col}_got"])
        lost = ~agree & (col in carried) & both[f"{col}_got"].isna().to_numpy()
        out[col] = {
            "rows": len(both),
            "agreement": float(agree.mean()) if len(both) else np.nan,
            "explained": int(lost.sum()),
            "unexplained": int((~agree & ~lost).sum()),
        }
    stated = simulate_reports(cohort.timepoints, seed=cohort.seed, bone_scan_share=bone_scan_share)
    read = got.merge(stated.reports[[*key, "modality"]], on=key, how="left")
    # ``NE`` is what the assembly writes where no report states a response (a bone scan):
    # compare it as the report's silence, which the writer's record names
    silent = read.merge(stated.stated[[*key, c.EXTRAOSSEOUS_RESPONSE]], on=key, how="left")
    silent = (
        silent[f"{c.EXTRAOSSEOUS_RESPONSE}_y"].isna()
        & (silent[f"{c.EXTRAOSSEOUS_RESPONSE}_x"] == "NE")
    ).to_numpy()
    read.loc[silent, c.EXTRAOSSEOUS_RESPONSE] = None
    reading = round_trip_agreement(sim, read, stated.stated)
    for field, row in reading.iterrows():
        out[str(field)] = {
            "rows": int(row["rows"]),
            "agreement": float(row["agreement"]),
            "explained": int(row["explained"]),
            "unexplained": int(row["unexplained"]),
        }
    return pd.DataFrame.from_dict(out, orient="index")


def events_columns_lost() -> tuple[str, ...]:
    """The contract columns a site's records do not carry, so a round trip loses them.

    Examples
    --------
    >>> events_columns_lost()
    ('sld_mm', 'clinical_deterioration')

    """
    return (c.SLD_MM, c.CLINICAL_DETERIORATION)
