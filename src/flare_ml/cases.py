"""Literature cases as timepoint tables.

Published case reports, written down as rows of the data contract (README, "The data
contract"), so that tests, documentation and demos can check that flare-ml reads a real,
adjudicated course the way its authors did; the source papers and their numbers are in
``docs/sources.md``, Seed cases. Each function returns one patient's timeline with
canonical dtypes (``patient_id`` text, dates ``datetime64``, contract categories as
``category`` with the full vocabulary, flags as nullable ``boolean``,
``new_bone_lesions`` as ``Int64``).
Values the report does not give are assumptions, marked as such in the function's
docstring; none of them is a patient record.
"""

from __future__ import annotations

import numpy as np
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
    U/L: a mild early rise and fall, the course of healing in docs/sources.md, ALP; the
    report gives no ALP); ``new_bone_lesions`` = 0 and no SLD at day 212 (the
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


# --- breast cancer timelines matching Front Oncol 2025 (docs/sources.md, Seed cases) ---

#: the study's median time from treatment start to the flare scan, in days (1.73 months)
_BREAST_FLARE_DAY = round(1.73 * 30.44)
#: ... and its median interval from the flare to progression, in days (14.27 months)
_BREAST_PROGRESSION_DAY = _BREAST_FLARE_DAY + round(14.27 * 30.44)
#: follow-up CTs every two 28-day cycles after the flare scan, up to six weeks before
#: the progression scan
_BREAST_SCAN_DAYS = (
    0,
    *range(_BREAST_FLARE_DAY, _BREAST_PROGRESSION_DAY - 41, 56),
    _BREAST_PROGRESSION_DAY,
)
#: ALP drawn at the start of every 28-day cycle
_BREAST_LAB_DAYS = tuple(range(28, _BREAST_PROGRESSION_DAY, 28))


def _alp_course(anchors: tuple[tuple[int, float], ...], day: int) -> float:
    """ALP on ``day``: straight lines between (day, U/L) anchors, whole U/L."""
    days = [float(d) for d, _ in anchors]
    values = [v for _, v in anchors]
    return float(round(float(np.interp(day, days, values))))


def _breast_timeline(
    patient_id: str,
    start: str,
    therapy: str,
    alp: tuple[tuple[int, float], ...],
    sld: tuple[float, float, float, float],
    flare: dict[str, object],
    progression: dict[str, object],
) -> pd.DataFrame:
    """One breast-cancer patient: baseline, flare scan, stable follow-ups, progression scan.

    ``sld`` is (baseline, at the flare scan, at the follow-up scans, at progression);
    ``flare`` and ``progression`` hold the findings of the two index scans.
    """
    start_ts = pd.Timestamp(start)
    common = {
        c.PATIENT_ID: patient_id,
        c.TREATMENT_START_DATE: start_ts,
        c.CANCER_TYPE: "breast",
        c.THERAPY_CLASS: therapy,
        c.BASELINE_MARROW_INVOLVEMENT: False,
    }
    quiet = {
        c.NEW_EXTRAOSSEOUS_LESION: False,
        c.NEW_BONE_LESIONS: 0,
        c.NEW_LESION_MORPHOLOGY: "none",
        c.PROGRESSIVE_LYSIS: False,
        c.KNOWN_LESION_SCLEROSIS: False,
        c.CLINICAL_DETERIORATION: False,
    }
    rows: list[dict[str, object]] = []
    for day in _BREAST_SCAN_DAYS:
        row: dict[str, object] = {c.ROW_TYPE: "imaging", **quiet, "day": day}
        if day == 0:
            row.update({c.EXTRAOSSEOUS_RESPONSE: "baseline", c.SLD_MM: sld[0]})
            row.pop(c.NEW_EXTRAOSSEOUS_LESION)
        elif day == _BREAST_FLARE_DAY:
            row.update({c.SLD_MM: sld[1], **flare, c.OUTCOME: "flare"})
        elif day == _BREAST_PROGRESSION_DAY:
            row.update({c.SLD_MM: sld[3], **progression, c.OUTCOME: "progression"})
        else:
            row.update({c.EXTRAOSSEOUS_RESPONSE: flare[c.EXTRAOSSEOUS_RESPONSE], c.SLD_MM: sld[2]})
        rows.append(row)
    rows += [
        {c.ROW_TYPE: "lab", c.CLINICAL_DETERIORATION: False, "day": day} for day in _BREAST_LAB_DAYS
    ]
    for row in rows:
        row.update(common)
        day = int(row.pop("day"))  # type: ignore[call-overload]
        row[c.ALP_U_L] = _alp_course(alp, day)
        row[c.ASSESSMENT_DATE] = start_ts + pd.Timedelta(days=day)
    table = _typed(rows)
    return table.sort_values(c.ASSESSMENT_DATE, ignore_index=True)


_BREAST_ASSUMPTIONS = """
    **From the study** (Front Oncol 2025, 23 patients; docs/sources.md, Seed cases):
    breast cancer with bone metastases on first-line systemic therapy, CT (bone window)
    every two cycles; new osteoblastic lesions at a median 1.73 months (here day 53) read
    as pseudoprogression because later scans showed no progression; progression
    (extraosseous PD or progressive lysis of bone lesions) a median 14.27 months after the
    flare (here day 487); ALP change from the pretreatment baseline about -20 U/L at the
    flare and +33 U/L at progression (the study's medians, here exactly). HER2 status
    cannot be written in the data contract, so HER2-positive and HER2-negative variants
    are not represented.

    **Assumptions** (the study reports summaries, not patients): every date (28-day cycles,
    CTs at days 0, 53, then every 56 days, and day 487); the therapy class; every
    ``sld_mm`` value; lesion counts; the ALP values between the anchors (straight lines, a
    transient early rise in month 1, the course of healing in docs/sources.md, ALP; a
    plateau; then a rise over the last months); no marrow involvement, no clinical
    deterioration, no sclerosis of known lesions unless stated.
"""


def breast_endocrine_timeline() -> pd.DataFrame:
    """Breast cancer on endocrine therapy: flare with stable disease, later lytic progression.

    Endocrine therapy (``endocrine``). At the first CT (day 53, 1.73 months) three new
    osteoblastic bone lesions while extraosseous disease is stable (SLD -5%) and ALP has
    fallen 20 U/L from 96 U/L (outcome ``flare``). CTs every two cycles stay stable. At day
    487 (14.27 months after the flare) two new lytic bone lesions with progressive lysis of
    a known lesion, extraosseous disease still stable, ALP 33 U/L above baseline (outcome
    ``progression``).
    {assumptions}

    Returns
    -------
    pandas.DataFrame
        One patient's timeline (10 imaging rows, 17 lab rows) in
        :data:`flare_ml.data.contract.CONTRACT_COLUMNS`, sorted by date.

    Examples
    --------
    >>> t = breast_endocrine_timeline()
    >>> index = t[t["new_bone_lesions"] > 0]
    >>> index["outcome"].tolist(), index["new_lesion_morphology"].tolist()
    (['flare', 'progression'], ['blastic', 'lytic'])
    >>> (index["alp_u_l"] - t["alp_u_l"].iloc[0]).tolist()
    [-20.0, 33.0]

    """
    return _breast_timeline(
        "FrontOncol2025-A-L1",
        "2019-03-04",
        "endocrine",
        alp=(
            (0, 96.0),
            (21, 104.0),
            (_BREAST_FLARE_DAY, 76.0),
            (140, 74.0),
            (380, 78.0),
            (_BREAST_PROGRESSION_DAY, 129.0),
        ),
        sld=(42.0, 40.0, 40.0, 41.0),
        flare={
            c.EXTRAOSSEOUS_RESPONSE: "SD",
            c.NEW_BONE_LESIONS: 3,
            c.NEW_LESION_MORPHOLOGY: "blastic",
        },
        progression={
            c.EXTRAOSSEOUS_RESPONSE: "SD",
            c.NEW_BONE_LESIONS: 2,
            c.NEW_LESION_MORPHOLOGY: "lytic",
            c.PROGRESSIVE_LYSIS: True,
        },
    )


def breast_cdk46_timeline() -> pd.DataFrame:
    """Breast cancer on a CDK4/6 inhibitor: flare in partial response, later extraosseous PD.

    CDK4/6 inhibitor with endocrine therapy (``cdk46_endocrine``). At the first CT (day 53)
    four new osteoblastic lesions and new sclerosis of a known lytic lesion while the
    extraosseous disease responds (SLD 50 -> 34 mm, -32%: partial response) and ALP has
    fallen 20 U/L from 112 U/L (outcome ``flare``). The partial response holds (nadir 30
    mm). At day 487 extraosseous progression (SLD 38 mm, +27% from the nadir, a new liver
    lesion) with three new mixed bone lesions, ALP 33 U/L above baseline (outcome
    ``progression``).
    {assumptions}

    Returns
    -------
    pandas.DataFrame
        One patient's timeline, as :func:`breast_endocrine_timeline`.

    Examples
    --------
    >>> t = breast_cdk46_timeline()
    >>> index = t[t["new_bone_lesions"] > 0]
    >>> index["extraosseous_response"].tolist(), index["outcome"].tolist()
    (['PR', 'PD'], ['flare', 'progression'])

    """
    return _breast_timeline(
        "FrontOncol2025-B-L1",
        "2020-06-01",
        "cdk46_endocrine",
        alp=(
            (0, 112.0),
            (21, 121.0),
            (_BREAST_FLARE_DAY, 92.0),
            (200, 88.0),
            (400, 95.0),
            (_BREAST_PROGRESSION_DAY, 145.0),
        ),
        sld=(50.0, 34.0, 30.0, 38.0),
        flare={
            c.EXTRAOSSEOUS_RESPONSE: "PR",
            c.NEW_BONE_LESIONS: 4,
            c.NEW_LESION_MORPHOLOGY: "blastic",
            c.KNOWN_LESION_SCLEROSIS: True,
        },
        progression={
            c.EXTRAOSSEOUS_RESPONSE: "PD",
            c.NEW_EXTRAOSSEOUS_LESION: True,
            c.NEW_BONE_LESIONS: 3,
            c.NEW_LESION_MORPHOLOGY: "mixed",
        },
    )


def breast_osteoblastic_progression_timeline() -> pd.DataFrame:
    """Breast cancer on a CDK4/6 inhibitor: flare, then a progression that looks osteoblastic too.

    The hard reading: both index scans show new *osteoblastic* lesions with stable
    extraosseous disease, so morphology alone cannot tell them apart. At day 53 two new
    blastic lesions, SLD 28 -> 27 mm, ALP 20 U/L below its 88 U/L baseline (outcome
    ``flare``). At day 487 two more new blastic lesions, extraosseous disease still stable,
    but a known lesion shows progressive lysis (the study's progression criterion) and ALP
    is 33 U/L above baseline (outcome ``progression``); timing, lysis and ALP separate them.
    {assumptions}

    Returns
    -------
    pandas.DataFrame
        One patient's timeline, as :func:`breast_endocrine_timeline`.

    Examples
    --------
    >>> t = breast_osteoblastic_progression_timeline()
    >>> t.loc[t["new_bone_lesions"] > 0, "new_lesion_morphology"].tolist()
    ['blastic', 'blastic']

    """
    return _breast_timeline(
        "FrontOncol2025-C-L1",
        "2021-02-01",
        "cdk46_endocrine",
        alp=(
            (0, 88.0),
            (25, 95.0),
            (_BREAST_FLARE_DAY, 68.0),
            (300, 70.0),
            (400, 80.0),
            (_BREAST_PROGRESSION_DAY, 121.0),
        ),
        sld=(28.0, 27.0, 27.0, 28.0),
        flare={
            c.EXTRAOSSEOUS_RESPONSE: "SD",
            c.NEW_BONE_LESIONS: 2,
            c.NEW_LESION_MORPHOLOGY: "blastic",
        },
        progression={
            c.EXTRAOSSEOUS_RESPONSE: "SD",
            c.NEW_BONE_LESIONS: 2,
            c.NEW_LESION_MORPHOLOGY: "blastic",
            c.PROGRESSIVE_LYSIS: True,
        },
    )


for _case in (
    breast_endocrine_timeline,
    breast_cdk46_timeline,
    breast_osteoblastic_progression_timeline,
):
    _case.__doc__ = (_case.__doc__ or "").replace("{assumptions}", _BREAST_ASSUMPTIONS)

#: every literature case by name: a function returning its timeline
CASES = {
    "nsclc_seed_case": seed_case_timeline,
    "breast_endocrine": breast_endocrine_timeline,
    "breast_cdk46": breast_cdk46_timeline,
    "breast_osteoblastic_progression": breast_osteoblastic_progression_timeline,
}

__all__ += [
    "CASES",
    "breast_cdk46_timeline",
    "breast_endocrine_timeline",
    "breast_osteoblastic_progression_timeline",
]
