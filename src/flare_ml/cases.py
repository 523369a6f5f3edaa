"""Literature cases as timepoint tables.

Published case reports, written down as rows of the data contract (``DESIGN.md`` section
2), so that tests, documentation and demos can check that flare-ml reads a real, adjudicated
course the way its authors did. Each function returns one patient's timeline with canonical
dtypes (``patient_id`` text, dates ``datetime64``, contract categories as ``category``
with the full vocabulary, flags as nullable ``boolean``, ``new_bone_lesions`` as ``Int64``).
Values the report does not give are assumptions, marked as such in the function's
docstring; none of them is a patient record.
"""

from __future__ import annotations

import pandas as pd

from flare_ml.data import contract as c

__all__ = ["seed_case_timeline"]

_FLAGS = (
    c.NEW_EXTRAOSSEOUS_LESION,
    c.PROGRESSIVE_LYSIS,
    c.KNOWN_LESION_SCLEROSIS,
    c.BASELINE_MARROW_INVOLVEMENT,
    c.CLINICAL_DETERIORATION,
)


def _typed(rows: list[dict[str, object]]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(c.CONTRACT_COLUMNS))
    table[c.PATIENT_ID] = table[c.PATIENT_ID].astype("str")
    for col in c.DATE_COLUMNS:
        table[col] = pd.to_datetime(table[col])
    for col, vocabulary in c.VOCABULARIES.items():
        table[col] = table[col].astype(pd.CategoricalDtype(list(vocabulary)))
    for col in _FLAGS:
        table[col] = table[col].astype("boolean")
    for col in c.FLOAT_COLUMNS:
        table[col] = table[col].astype("float64")
    table[c.NEW_BONE_LESIONS] = table[c.NEW_BONE_LESIONS].astype("Int64")
    return table


def seed_case_timeline(*, include_follow_up: bool = True) -> pd.DataFrame:
    """Build the NSCLC/EGFR-TKI bone-flare case of De Bondt et al. (2020) as a timepoint table.

    A 72-year-old never-smoker with stage IV EGFR exon 21 adenocarcinoma, liver and bone
    marrow metastases (diffuse marrow uptake on the baseline PET, no focal lytic or
    blastic lesion on CT) starts erlotinib (``egfr_tki``). At the first follow-up CT the
    primary tumour, nodes and liver metastases shrink (RECIST partial response) while
    numerous new osteoblastic bone lesions appear, with no clinical deterioration; the
    authors read this as osteoblastic flare, continued erlotinib, and two-monthly CTs kept
    the partial response until month 7 (outcome ``flare``). At month 7 she was admitted
    with fever; PET showed progression in lung, liver and bone.

    Rows: baseline imaging at day 0, lab-only ALP draws at days 28 and 56, the index
    imaging at day 90 (``new_bone_lesions > 0``, outcome ``flare``) and, with
    ``include_follow_up``, a CT at day 150 (partial response kept) and the PET at day 212
    (progression, clinical deterioration).

    **Assumptions** (not in the report): the treatment start date (2019-01-07); the day-90
    date of the first follow-up (the text says "three months", the figure captions "eight
    weeks"); every ``sld_mm`` value (96 mm at baseline, 62 mm at day 90, i.e. -35%, 58 mm
    at day 150; the report gives only the 29 mm primary and a partial response); the count
    of 12 new bone lesions ("a large number"); every ALP value (160, 178, 151, 138, 130
    U/L: a mild early rise and fall, the course literature.md section 4 describes for
    healing; the report gives no ALP); ``new_bone_lesions`` = 0 and no SLD at day 212 (the
    report says bone progressed, not that new lesions were counted).

    Parameters
    ----------
    include_follow_up : bool, default=True
        Add the day-150 and day-212 rows after the index assessment.

    Returns
    -------
    pandas.DataFrame
        The timeline, one row per assessment, columns
        :data:`flare_ml.data.contract.CONTRACT_COLUMNS`, sorted by date.

    Examples
    --------
    >>> timeline = seed_case_timeline()
    >>> index = timeline[timeline["new_bone_lesions"] > 0].iloc[0]
    >>> str(index["assessment_date"].date()), index["new_lesion_morphology"], index["outcome"]
    ('2019-04-07', 'blastic', 'flare')

    """
    start = pd.Timestamp("2019-01-07")
    common = {
        c.PATIENT_ID: "DeBondt2020-L1",
        c.TREATMENT_START_DATE: start,
        c.CANCER_TYPE: "nsclc",
        c.THERAPY_CLASS: "egfr_tki",
        c.BASELINE_MARROW_INVOLVEMENT: True,
    }
    no_bone_change = {
        c.NEW_BONE_LESIONS: 0,
        c.NEW_LESION_MORPHOLOGY: "none",
        c.PROGRESSIVE_LYSIS: False,
    }
    rows: list[dict[str, object]] = [
        {  # baseline CT + PET: no focal bone lesion, diffuse marrow uptake
            c.ROW_TYPE: "imaging",
            c.EXTRAOSSEOUS_RESPONSE: "baseline",
            c.SLD_MM: 96.0,
            **no_bone_change,
            c.KNOWN_LESION_SCLEROSIS: False,
            c.ALP_U_L: 160.0,
            c.CLINICAL_DETERIORATION: False,
            "day": 0,
        },
        {c.ROW_TYPE: "lab", c.ALP_U_L: 178.0, c.CLINICAL_DETERIORATION: False, "day": 28},
        {c.ROW_TYPE: "lab", c.ALP_U_L: 151.0, c.CLINICAL_DETERIORATION: False, "day": 56},
        {  # first follow-up CT: partial response, numerous new blastic bone lesions
            c.ROW_TYPE: "imaging",
            c.EXTRAOSSEOUS_RESPONSE: "PR",
            c.NEW_EXTRAOSSEOUS_LESION: False,
            c.SLD_MM: 62.0,
            c.NEW_BONE_LESIONS: 12,
            c.NEW_LESION_MORPHOLOGY: "blastic",
            c.PROGRESSIVE_LYSIS: False,
            c.KNOWN_LESION_SCLEROSIS: False,
            c.ALP_U_L: 138.0,
            c.CLINICAL_DETERIORATION: False,
            c.OUTCOME: "flare",
            "day": 90,
        },
    ]
    if include_follow_up:
        rows += [
            {  # two-monthly CT: partial response maintained
                c.ROW_TYPE: "imaging",
                c.EXTRAOSSEOUS_RESPONSE: "PR",
                c.NEW_EXTRAOSSEOUS_LESION: False,
                c.SLD_MM: 58.0,
                **no_bone_change,
                c.ALP_U_L: 130.0,
                c.CLINICAL_DETERIORATION: False,
                "day": 150,
            },
            {  # month 7: fever, PET shows progression in lung, liver and bone
                c.ROW_TYPE: "imaging",
                c.EXTRAOSSEOUS_RESPONSE: "PD",
                c.NEW_BONE_LESIONS: 0,
                c.NEW_LESION_MORPHOLOGY: "none",
                c.CLINICAL_DETERIORATION: True,
                "day": 212,
            },
        ]
    for row in rows:
        row.update(common)
        row[c.ASSESSMENT_DATE] = start + pd.Timedelta(days=int(row.pop("day")))  # type: ignore[call-overload]
    return _typed(rows)
