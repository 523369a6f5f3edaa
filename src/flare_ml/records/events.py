"""What an adapter extracts from a site's records, before it becomes a timepoint table.

The OMOP and FHIR adapters read very different structures but extract the same few kinds of
clinical events: who the patients are, their coded diagnoses, their anticancer drugs, their
ALP results, their imaging reports and (FHIR mCODE only) a clinician's disease-status
judgements. :class:`ClinicalEvents` holds them as plain DataFrames with fixed columns, so
that one function (:func:`flare_ml.records.assemble.assemble_timepoints`) turns either source
into the contract, and :class:`Dropped` records what was left out and why, with counts and a
few example ids, so that nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

import pandas as pd

from flare_ml.data import contract as c

__all__ = [
    "ALP_LOINC",
    "ALP_LOINC_NAME",
    "CONDITION_COLUMNS",
    "DISEASE_STATUSES",
    "DRUG_COLUMNS",
    "LAB_COLUMNS",
    "PERSON_COLUMNS",
    "REPORT_COLUMNS",
    "STATUS_COLUMNS",
    "ClinicalEvents",
    "Dropped",
    "dropped_for",
    "modality_of",
]

PERSON_COLUMNS: Final = (c.PATIENT_ID,)
CONDITION_COLUMNS: Final = (c.PATIENT_ID, "condition_date", "vocabulary", "code")
DRUG_COLUMNS: Final = (c.PATIENT_ID, "start_date", "end_date", "ingredient", "rxnorm_code")
LAB_COLUMNS: Final = (c.PATIENT_ID, "sample_date", "test", "value", "unit")
REPORT_COLUMNS: Final = (c.PATIENT_ID, c.ASSESSMENT_DATE, "modality", "text", "report_id")
STATUS_COLUMNS: Final = (c.PATIENT_ID, "status_date", "status")
#: LOINC code (and its long name) of serum/plasma alkaline phosphatase: what both adapters
#: read ALP by, and what the simulator's record writers write
ALP_LOINC: Final = "6768-6"
ALP_LOINC_NAME: Final = "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma"
#: mCODE CancerDiseaseStatus values, as the FHIR adapter names them
DISEASE_STATUSES: Final = ("improved", "stable", "worsened", "undetermined")

_DATES: Final = {
    "conditions": ("condition_date",),
    "drugs": ("start_date", "end_date"),
    "labs": ("sample_date",),
    "reports": (c.ASSESSMENT_DATE,),
    "disease_status": ("status_date",),
}
_COLUMNS: Final = {
    "persons": PERSON_COLUMNS,
    "conditions": CONDITION_COLUMNS,
    "drugs": DRUG_COLUMNS,
    "labs": LAB_COLUMNS,
    "reports": REPORT_COLUMNS,
    "disease_status": STATUS_COLUMNS,
}


@dataclass(frozen=True)
class Dropped:
    """Records left out at one stage, for one reason.

    Parameters
    ----------
    stage : str
        Where: ``"omop"``, ``"fhir"`` (extraction) or ``"assemble"``.
    reason : str
        Why, in words a data manager understands.
    count : int
        How many records (or patients: the reason says which).
    examples : tuple of str
        Up to five example ids.

    Examples
    --------
    >>> print(Dropped("assemble", "patients without a mapped cancer diagnosis", 3, ("7", "9")))
    assemble: 3 patients without a mapped cancer diagnosis (e.g. 7, 9)

    """

    stage: str
    reason: str
    count: int
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        eg = f" (e.g. {', '.join(self.examples)})" if self.examples else ""
        return f"{self.stage}: {self.count} {self.reason}{eg}"


def dropped_for(stage: str, reason: str, ids: Iterable[object]) -> list[Dropped]:
    """A one-item list for ``ids`` (empty when there are none), with up to 5 examples.

    Examples
    --------
    >>> dropped_for("fhir", "reports without text", ["r1", "r2"])
    [Dropped(stage='fhir', reason='reports without text', count=2, examples=('r1', 'r2'))]
    >>> dropped_for("fhir", "reports without text", [])
    []

    """
    ids = [str(i) for i in ids]
    if not ids:
        return []
    unique = list(dict.fromkeys(ids))
    return [Dropped(stage, reason, len(ids), tuple(unique[:5]))]


def _frame(name: str, frame: pd.DataFrame | None) -> pd.DataFrame:
    columns = _COLUMNS[name]
    if frame is None:
        frame = pd.DataFrame({col: pd.Series(dtype=object) for col in columns})
    missing = [col for col in columns if col not in frame.columns]
    optional = {"end_date", "rxnorm_code", "report_id", "modality"}
    if set(missing) - optional:
        raise ValueError(f"{name} lacks the columns {sorted(set(missing) - optional)}")
    out = frame.copy()
    for col in missing:
        out[col] = pd.NaT if col in _DATES.get(name, ()) else ""
    for col in _DATES.get(name, ()):
        out[col] = pd.to_datetime(out[col], errors="coerce").astype("datetime64[ns]")
    out[c.PATIENT_ID] = out[c.PATIENT_ID].astype(str)
    if name == "reports":  # every report needs an id of its own, for messages and joins
        ids = out["report_id"].fillna("").astype(str)
        generated = "report-" + pd.Series(range(1, len(out) + 1), index=out.index).astype(str)
        out["report_id"] = ids.where(ids != "", generated)
    return out.loc[:, list(columns)].reset_index(drop=True)


@dataclass
class ClinicalEvents:
    """The clinical events an adapter extracted from a site's records.

    Build it with :meth:`from_frames`, which checks the columns and coerces the dates.

    Attributes
    ----------
    persons : DataFrame
        ``patient_id``: the site's person id.
    conditions : DataFrame
        ``patient_id``, ``condition_date``, ``vocabulary`` (``ICD10CM``, ``ICD10``,
        ``ICDO3`` or ``SNOMED``), ``code``.
    drugs : DataFrame
        ``patient_id``, ``start_date``, ``end_date``, ``ingredient`` (RxNorm ingredient
        name), ``rxnorm_code``.
    labs : DataFrame
        The lab adapter's long table: ``patient_id``, ``sample_date``, ``test``,
        ``value``, ``unit``.
    reports : DataFrame
        ``patient_id``, ``assessment_date``, ``modality``, ``text``, ``report_id``.
    disease_status : DataFrame
        ``patient_id``, ``status_date``, ``status`` (:data:`DISEASE_STATUSES`).
    dropped : list of Dropped
        What the extraction left out.
    source : str
        Where the records came from, for messages.

    """

    persons: pd.DataFrame
    conditions: pd.DataFrame
    drugs: pd.DataFrame
    labs: pd.DataFrame
    reports: pd.DataFrame
    disease_status: pd.DataFrame
    dropped: list[Dropped] = field(default_factory=list)
    source: str = "records"

    @classmethod
    def from_frames(
        cls,
        *,
        persons: pd.DataFrame,
        conditions: pd.DataFrame | None = None,
        drugs: pd.DataFrame | None = None,
        labs: pd.DataFrame | None = None,
        reports: pd.DataFrame | None = None,
        disease_status: pd.DataFrame | None = None,
        dropped: Sequence[Dropped] = (),
        source: str = "records",
    ) -> ClinicalEvents:
        """Check the columns, coerce dates and ids, fill absent frames with empty ones.

        Raises
        ------
        ValueError
            A frame lacks a required column (an adapter bug, not a data error).

        Examples
        --------
        >>> import pandas as pd
        >>> events = ClinicalEvents.from_frames(persons=pd.DataFrame({"patient_id": [1, 2]}))
        >>> events.persons["patient_id"].tolist(), len(events.drugs)
        (['1', '2'], 0)

        """
        return cls(
            persons=_frame("persons", persons).drop_duplicates(ignore_index=True),
            conditions=_frame("conditions", conditions),
            drugs=_frame("drugs", drugs),
            labs=_frame("labs", labs),
            reports=_frame("reports", reports),
            disease_status=_frame("disease_status", disease_status),
            dropped=list(dropped),
            source=source,
        )


#: (pattern, modality) in the order tried: PET before CT, bone scan before the rest
_MODALITY_PATTERNS: Final = (
    (re.compile(r"\bPET\b|\bFDG\b|\bPSMA\b", re.IGNORECASE), "pet_ct"),
    (re.compile(r"bone scan|scintigra|\bMDP\b|Tc-?99m", re.IGNORECASE), "bone_scan"),
    (re.compile(r"\bMRI?\b|magnetic resonance", re.IGNORECASE), "mri"),
    (re.compile(r"\bCT\b|computed tomograph", re.IGNORECASE), "ct"),
    (re.compile(r"radiograph|x-ray|\bXR\b", re.IGNORECASE), "radiograph"),
)


def modality_of(*texts: str | None) -> str:
    """The imaging modality the first of ``texts`` to name one names, else "".

    The adapters pass a report's title (OMOP ``note_title``, FHIR ``DiagnosticReport.code``)
    and then its text; the first 200 characters of each are searched, PET before CT and
    bone scan before the rest.

    Examples
    --------
    >>> modality_of("FDG PET-CT, skull base to mid-thigh")
    'pet_ct'
    >>> modality_of("Bone scintigraphy")
    'bone_scan'
    >>> modality_of(None, "CT CAP. Comparison: 2024-01-02")
    'ct'
    >>> modality_of("Discharge summary")
    ''

    """
    for text in texts:
        if not text:
            continue
        head = str(text)[:200]
        for pattern, modality in _MODALITY_PATTERNS:
            if pattern.search(head):
                return modality
    return ""
