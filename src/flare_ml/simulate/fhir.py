"""Write a simulated cohort as HL7 FHIR R4 records (bulk NDJSON, or one Bundle per patient).

The FHIR adapter (:func:`flare_ml.records.fhir.read_fhir`) needs records to read, and no real
ones ship with flare-ml, so this writer turns a simulated cohort into the records a site's
FHIR server would export for it. It serialises the cohort's clinical events
(:func:`flare_ml.simulate.records.cohort_events`, the same events the OMOP writer writes):
a Patient per person (the simulated ``patient_id`` is the Patient id), a Condition per
diagnosis (ICD-10-CM, SNOMED CT, ICD-O-3 codings), a MedicationAdministration per drug record
(RxNorm, inline or through a Medication resource), an ALP Observation (LOINC 6768-6, the
site's lab unit in UCUM) per lab sample, an imaging DiagnosticReport per report (text in
``conclusion`` or as base64 ``presentedForm``) and, for a chosen share of follow-up scans, an
mCODE CancerDiseaseStatus Observation (LOINC 97509-4) derived from the row's extraosseous
response. Every resource is built with the R4B models of ``fhir.resources`` and serialised by
them, so what is written is valid FHIR R4. Everything written is synthetic.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from flare_ml.data import contract as c
from flare_ml.data.labs import is_alp_test
from flare_ml.errors import ContractError
from flare_ml.records.events import ALP_LOINC, ALP_LOINC_NAME, ClinicalEvents
from flare_ml.records.fhir import (
    DICOM,
    DISEASE_STATUS_CODES,
    LOINC,
    RXNORM,
    SNOMED,
    SYSTEMS,
)
from flare_ml.simulate import SimulatedCohort
from flare_ml.simulate.records import REPORT_TITLES, cohort_events
from flare_ml.simulate.reports import DEFAULT_BONE_SCAN_SHARE

__all__ = [
    "DISEASE_STATUS_STREAM",
    "RESPONSE_TO_STATUS",
    "FhirExport",
    "write_fhir",
    "write_fhir_events",
]

#: second word of the disease-status draws' seed sequence (apart from the cohort, its
#: reports (14) and its confirmation scans (15))
DISEASE_STATUS_STREAM: Final = 16
#: the simulated extraosseous response -> the mCODE disease status a clinician would record
RESPONSE_TO_STATUS: Final = {
    "CR": "improved",
    "PR": "improved",
    "SD": "stable",
    "PD": "worsened",
    "NE": "undetermined",
}
_STATUS_CODE: Final = {status: code for code, status in DISEASE_STATUS_CODES.items()}
_STATUS_DISPLAY: Final = {
    "improved": "Patient's condition improved (finding)",
    "stable": "Patient's condition stable (finding)",
    "worsened": "Patient's condition worsened (finding)",
    "undetermined": "Patient condition undetermined (finding)",
}
_VOCABULARY_SYSTEM: Final = {vocabulary: system for system, vocabulary in SYSTEMS.items()}
_MODALITY_DICOM: Final = {
    "ct": ("CT", "Computed Tomography"),
    "pet_ct": ("PT", "Positron emission tomography"),
    "bone_scan": ("NM", "Nuclear Medicine"),
    "mri": ("MR", "Magnetic Resonance"),
    "radiograph": ("CR", "Computed Radiography"),
}
_UCUM: Final = "http://unitsofmeasure.org"
_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
_MCODE_STATUS_PROFILE: Final = (
    "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-cancer-disease-status"
)
_ORDER: Final = (
    "Patient",
    "Condition",
    "Medication",
    "MedicationAdministration",
    "Observation",
    "DiagnosticReport",
)


@dataclass
class FhirExport:
    """What :func:`write_fhir` wrote.

    Attributes
    ----------
    directory : Path
        The output directory.
    counts : dict of str to int
        Resources written, by resource type (mCODE disease-status Observations are counted
        apart, as ``"Observation (disease status)"``).
    notes : list of str
        What the records could not carry (e.g. patients on therapy class ``other``, which
        has no RxNorm ingredient in the mapping table).

    """

    directory: Path
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _day(value: Any) -> str:
    return pd.Timestamp(value).date().isoformat()


def _slug(text: str) -> str:
    out = "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")
    return out[:60] or "x"


class _Builder:
    """Builds resources as validated R4B models, keyed by type."""

    def __init__(self) -> None:
        from fhir.resources.R4B import get_fhir_model_class

        self._model = get_fhir_model_class
        self.resources: dict[str, list[Any]] = defaultdict(list)
        self.patient_of: dict[tuple[str, str], str] = {}

    def add(self, rtype: str, data: dict[str, Any], patient: str | None) -> None:
        model = self._model(rtype).model_validate({"resourceType": rtype, **data})
        self.resources[rtype].append(model)
        if patient is not None:
            self.patient_of[(rtype, data["id"])] = patient


def _medication_concept(ingredient: str, code: str) -> dict[str, Any]:
    if code:
        return {"coding": [{"system": RXNORM, "code": code, "display": ingredient}]}
    return {"text": ingredient}


def _fhir_id(text: str) -> str:
    """A valid FHIR id (``[A-Za-z0-9-.]{1,64}``) from any text."""
    out = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in str(text))
    return out[:64] or "x"


def write_fhir_events(
    events: ClinicalEvents,
    directory: str | Path,
    *,
    layout: Literal["ndjson", "bundle"] = "ndjson",
) -> FhirExport:
    """Serialise clinical events as FHIR R4 records; :func:`read_fhir` reads them back.

    One Patient per person; one Condition per patient and diagnosis date (a coding per
    vocabulary); one MedicationAdministration per drug record (every other patient's
    through a Medication resource); one ALP Observation per ALP sample; one imaging
    DiagnosticReport per report (every other one's text in ``conclusion``, the others'
    as base64 ``presentedForm``); one mCODE CancerDiseaseStatus Observation per
    disease-status record.

    Parameters
    ----------
    events : ClinicalEvents
        The events (:func:`flare_ml.simulate.records.cohort_events`, or any).
    directory : str or Path
        See :func:`write_fhir`.
    layout : {"ndjson", "bundle"}, default "ndjson"
        See :func:`write_fhir`.

    Returns
    -------
    FhirExport

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import pandas as pd
    >>> from flare_ml.records.fhir import read_fhir
    >>> events = ClinicalEvents.from_frames(
    ...     persons=pd.DataFrame({"patient_id": ["P1"]}),
    ...     labs=pd.DataFrame({"patient_id": ["P1"], "sample_date": ["2024-01-05"],
    ...                        "test": ["ALP"], "value": [2.1], "unit": ["ukat/L"]}))
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "fhir"
    >>> write_fhir_events(events, out).counts
    {'Patient': 1, 'Observation': 1}
    >>> read_fhir(out).labs[["value", "unit"]].values.tolist()
    [[2.1, 'ukat/L']]

    """
    if layout not in ("ndjson", "bundle"):
        raise ValueError(f"layout must be 'ndjson' or 'bundle', got {layout!r}")
    directory = Path(directory)
    _check_target(directory)
    build = _Builder()
    persons = [str(p) for p in events.persons[c.PATIENT_ID]]
    persons += sorted(
        {
            str(p)
            for name in ("conditions", "drugs", "labs", "reports", "disease_status")
            for p in getattr(events, name)[c.PATIENT_ID]
        }
        - set(persons)
    )
    by_reference = {pid: i % 2 == 1 for i, pid in enumerate(persons)}
    for pid in persons:
        build.add("Patient", {"id": _fhir_id(pid)}, pid)
    _conditions(build, events.conditions)
    _drugs(build, events.drugs, by_reference)
    _labs(build, events.labs)
    _reports(build, events.reports)
    _statuses(build, events.disease_status)
    counts = {rtype: len(build.resources[rtype]) for rtype in _ORDER if build.resources[rtype]}
    if len(events.disease_status):
        counts["Observation"] -= len(events.disease_status)
        counts["Observation (disease status)"] = len(events.disease_status)
        if not counts["Observation"]:
            del counts["Observation"]
    _write(build, directory, layout)
    return FhirExport(directory=directory, counts=counts)


def write_fhir(
    cohort: SimulatedCohort,
    reports: Any,
    directory: str | Path,
    *,
    layout: Literal["ndjson", "bundle"] = "ndjson",
    disease_status_share: float = 0.0,
    bone_scan_share: float = DEFAULT_BONE_SCAN_SHARE,
    seed: int | None = None,
) -> FhirExport:
    """Write a simulated cohort and its reports as FHIR R4 records.

    The cohort's events are :func:`flare_ml.simulate.records.cohort_events` (the same the
    OMOP writer writes), serialised by :func:`write_fhir_events`.

    Parameters
    ----------
    cohort : SimulatedCohort
        The cohort (:func:`flare_ml.simulate.simulate_cohort`).
    reports : SimulatedReports, DataFrame or None
        The report table (:func:`flare_ml.simulate.reports.simulate_reports`:
        ``patient_id``, ``assessment_date``, ``modality``, ``text``); None: the reports
        of :func:`~flare_ml.simulate.records.cohort_events` (``bone_scan_share``).
    directory : str or Path
        Output directory; created. An existing directory is replaced only when it holds
        nothing but ``.ndjson`` / ``.json`` files (an earlier export); otherwise an error.
        Written to a temporary directory first and renamed, so nothing is half-written.
    layout : {"ndjson", "bundle"}, default "ndjson"
        ``ndjson``: bulk-data files, one per resource type (``Patient.ndjson``, ...).
        ``bundle``: one transaction Bundle per patient (``<patient_id>.json``) whose
        references are ``urn:uuid:`` fullUrls.
    disease_status_share : float, default 0.0
        Share of follow-up imaging rows that also get an mCODE CancerDiseaseStatus
        Observation on the scan date, the row's response as a clinician would record it
        (:data:`RESPONSE_TO_STATUS`).
    bone_scan_share : float, default 0.3
        With ``reports`` None: share of follow-up scans reported as bone scans.
    seed : int, optional
        Seed of the disease-status draws (default: the cohort's seed), drawn from
        ``numpy.random.default_rng([seed, DISEASE_STATUS_STREAM])``.

    Returns
    -------
    FhirExport

    Raises
    ------
    ContractError
        ``directory`` exists and holds other files.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from flare_ml.simulate import simulate_cohort
    >>> from flare_ml.simulate.reports import simulate_reports
    >>> cohort = simulate_cohort(3, seed=2)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "fhir"
    >>> export = write_fhir(cohort, simulate_reports(cohort.timepoints, seed=2), out)
    >>> sorted(p.name for p in out.iterdir())[:3]
    ['Condition.ndjson', 'DiagnosticReport.ndjson', 'Medication.ndjson']
    >>> export.counts["Patient"]
    3

    """
    if not 0.0 <= disease_status_share <= 1.0:
        raise ValueError(f"disease_status_share must be in [0, 1], got {disease_status_share!r}")
    events = cohort_events(cohort, bone_scan_share=bone_scan_share)
    if reports is not None:
        table = getattr(reports, "reports", reports)
        table = table.sort_values([c.PATIENT_ID, c.ASSESSMENT_DATE], kind="stable")
        events.reports = table.assign(
            report_id=[f"{p}-R{i}" for i, p in enumerate(table[c.PATIENT_ID], start=1)]
        ).reset_index(drop=True)[list(events.reports.columns)]
    rng = np.random.default_rng([int(cohort.seed if seed is None else seed), DISEASE_STATUS_STREAM])
    events.disease_status = _draw_statuses(cohort.timepoints, rng, disease_status_share)
    export = write_fhir_events(events, directory, layout=layout)
    export.notes = [str(d) for d in events.dropped]
    return export


def _draw_statuses(tp: pd.DataFrame, rng: np.random.Generator, share: float) -> pd.DataFrame:
    """A disease status on a ``share`` of the follow-up scans with a response."""
    rows = tp[(tp[c.ROW_TYPE] == "imaging") & tp[c.EXTRAOSSEOUS_RESPONSE].isin(RESPONSE_TO_STATUS)]
    rows = rows.sort_values([c.PATIENT_ID, c.ASSESSMENT_DATE], kind="stable")
    chosen = rows[rng.random(len(rows)) < share] if share > 0 else rows.iloc[:0]
    return pd.DataFrame(
        {
            c.PATIENT_ID: chosen[c.PATIENT_ID].astype(str),
            "status_date": pd.to_datetime(chosen[c.ASSESSMENT_DATE]),
            "status": chosen[c.EXTRAOSSEOUS_RESPONSE].astype(str).map(RESPONSE_TO_STATUS),
        }
    )


def _ref(pid: Any) -> dict[str, str]:
    return {"reference": f"Patient/{_fhir_id(str(pid))}"}


def _conditions(build: _Builder, conditions: pd.DataFrame) -> None:
    frame = conditions.assign(_day=conditions["condition_date"].astype(str))
    for n, ((pid, _), rows) in enumerate(frame.groupby([c.PATIENT_ID, "_day"], sort=False), 1):
        day = rows["condition_date"].iloc[0]
        data: dict[str, Any] = {
            "id": f"cond-{n}",
            "clinicalStatus": {"coding": [{"system": _CLINICAL, "code": "active"}]},
            "verificationStatus": {"coding": [{"system": _VERIFICATION, "code": "confirmed"}]},
            "code": {
                "coding": [
                    {"system": _VOCABULARY_SYSTEM[str(v)], "code": str(code)}
                    for v, code in zip(rows["vocabulary"], rows["code"], strict=True)
                ]
            },
            "subject": _ref(pid),
        }
        if pd.notna(day):
            data["onsetDateTime"] = _day(day)
        build.add("Condition", data, str(pid))


def _drugs(build: _Builder, drugs: pd.DataFrame, by_reference: dict[str, bool]) -> None:
    medications: set[str] = set()
    for n, row in enumerate(drugs.itertuples(index=False), start=1):
        pid, ingredient, code = str(row.patient_id), str(row.ingredient), str(row.rxnorm_code)
        data: dict[str, Any] = {"id": f"ma-{n}", "status": "completed", "subject": _ref(pid)}
        if pd.notna(row.end_date):
            data["effectivePeriod"] = {"start": _day(row.start_date), "end": _day(row.end_date)}
        else:
            data["effectiveDateTime"] = _day(row.start_date)
        if by_reference.get(pid, False):  # every other patient: a Medication resource
            med_id = _fhir_id(f"med-{code or _slug(ingredient)}")
            if med_id not in medications:
                medications.add(med_id)
                concept = _medication_concept(ingredient, code)
                build.add("Medication", {"id": med_id, "code": concept}, None)
            data["medicationReference"] = {"reference": f"Medication/{med_id}"}
        else:
            data["medicationCodeableConcept"] = _medication_concept(ingredient, code)
        build.add("MedicationAdministration", data, pid)


def _labs(build: _Builder, labs: pd.DataFrame) -> None:
    alp = labs[is_alp_test(labs["test"])]
    alp = alp.dropna(subset=["value"])
    for n, row in enumerate(alp.itertuples(index=False), start=1):
        unit = str(row.unit)
        build.add(
            "Observation",
            {
                "id": f"alp-{n}",
                "status": "final",
                "category": [{"coding": [{"system": _OBSERVATION_CATEGORY, "code": "laboratory"}]}],
                "code": {
                    "coding": [{"system": LOINC, "code": ALP_LOINC, "display": ALP_LOINC_NAME}],
                    "text": "ALP",
                },
                "subject": _ref(row.patient_id),
                "effectiveDateTime": _day(row.sample_date),
                "valueQuantity": {
                    "value": float(row.value),
                    "unit": unit,
                    "system": _UCUM,
                    "code": unit,
                },
            },
            str(row.patient_id),
        )


def _reports(build: _Builder, reports: pd.DataFrame) -> None:
    for n, row in enumerate(reports.itertuples(index=False), start=1):
        pid, modality = str(row.patient_id), str(row.modality or "")
        category = [{"coding": [{"system": LOINC, "code": "LP29684-5", "display": "Radiology"}]}]
        if modality in _MODALITY_DICOM:
            dcm, display = _MODALITY_DICOM[modality]
            category.append({"coding": [{"system": DICOM, "code": dcm, "display": display}]})
        data: dict[str, Any] = {
            "id": _fhir_id(row.report_id) if str(row.report_id) else f"img-{n}",
            "status": "final",
            "category": category,
            "code": {
                "coding": [
                    {"system": LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}
                ],
                "text": REPORT_TITLES.get(modality, "Diagnostic imaging study"),
            },
            "subject": _ref(pid),
        }
        if pd.notna(row.assessment_date):
            day = _day(row.assessment_date)
            data["effectiveDateTime"] = day
            data["issued"] = f"{day}T17:00:00+00:00"
        text = str(row.text)
        if n % 2:
            data["conclusion"] = text
        else:
            encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
            data["presentedForm"] = [{"contentType": "text/plain; charset=utf-8", "data": encoded}]
        build.add("DiagnosticReport", data, pid)


def _statuses(build: _Builder, statuses: pd.DataFrame) -> None:
    for n, row in enumerate(statuses.itertuples(index=False), start=1):
        status = str(row.status)
        build.add(
            "Observation",
            {
                "id": f"cds-{n}",
                "meta": {"profile": [_MCODE_STATUS_PROFILE]},
                "status": "final",
                "code": {
                    "coding": [
                        {
                            "system": LOINC,
                            "code": "97509-4",
                            "display": "Cancer Disease Progression",
                        }
                    ]
                },
                "subject": _ref(row.patient_id),
                "effectiveDateTime": _day(row.status_date),
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": SNOMED,
                            "code": _STATUS_CODE[status],
                            "display": _STATUS_DISPLAY[status],
                        }
                    ]
                },
            },
            str(row.patient_id),
        )


# --- files --------------------------------------------------------------------------------
def _check_target(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise ContractError(f"--out {directory} is a file; FHIR records are written to a directory")
    if directory.is_dir():
        others = [
            p.name
            for p in directory.iterdir()
            if not (p.is_file() and p.name.endswith((".ndjson", ".json")))
        ]
        if others:
            raise ContractError(
                f"--out {directory} exists and holds other files "
                f"({', '.join(sorted(others)[:5])}); choose a new or empty directory"
            )


def _uuid(rtype: str, rid: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'flare-ml/{rtype}/{rid}')}"


def _rewrite(obj: Any, urls: dict[str, str]) -> Any:
    """Replace ``Type/id`` references by the ``urn:uuid:`` fullUrls of the Bundle."""
    if isinstance(obj, dict):
        return {
            k: (urls.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite(v, urls))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_rewrite(v, urls) for v in obj]
    return obj


def _write(build: _Builder, directory: Path, layout: str) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        if layout == "ndjson":
            for rtype in _ORDER:
                models = build.resources[rtype]
                if models:
                    lines = [m.model_dump_json(exclude_none=True) for m in models]
                    (tmp / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n", "utf-8")
        else:
            _write_bundles(build, tmp)
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _write_bundles(build: _Builder, tmp: Path) -> None:
    from fhir.resources.R4B.bundle import Bundle

    urls = {
        f"{rtype}/{m.id}": _uuid(rtype, m.id) for rtype in _ORDER for m in build.resources[rtype]
    }
    by_patient: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for rtype in _ORDER:
        for model in build.resources[rtype]:
            pid = build.patient_of.get((rtype, model.id))
            if pid is not None:
                by_patient[pid].append((rtype, model))
    medications = {m.id: m for m in build.resources["Medication"]}
    for pid, members in by_patient.items():
        used = {
            str(m.medicationReference.reference).split("/", 1)[1]
            for rtype, m in members
            if rtype == "MedicationAdministration" and m.medicationReference is not None
        }
        members = [("Medication", medications[mid]) for mid in sorted(used)] + members
        entries = []
        for rtype, model in members:
            resource = _rewrite(json.loads(model.model_dump_json(exclude_none=True)), urls)
            entries.append(
                {
                    "fullUrl": urls[f"{rtype}/{model.id}"],
                    "resource": resource,
                    "request": {"method": "PUT", "url": f"{rtype}/{model.id}"},
                }
            )
        bundle = Bundle.model_validate(
            {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        )
        (tmp / f"{_fhir_id(pid)}.json").write_text(
            bundle.model_dump_json(exclude_none=True), "utf-8"
        )
