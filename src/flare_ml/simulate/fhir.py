"""Write a simulated cohort as HL7 FHIR R4 records (bulk NDJSON, or one Bundle per patient).

The FHIR adapter (:func:`flare_ml.records.fhir.read_fhir`) needs records to read, and no real
ones ship with flare-ml, so this writer turns a simulated cohort into the records a site's
FHIR server would export for it: a Patient per simulated patient (its ``patient_id`` is the
Patient id), a Condition with the cancer type's representative ICD-10-CM and SNOMED CT codes,
a MedicationAdministration per ingredient of the therapy class's representative regimen
(RxNorm, inline or through a Medication resource, from
:func:`flare_ml.records.mappings.representative_drugs`), an ALP Observation (LOINC 6768-6,
the site's lab unit in UCUM) per lab sample, a DiagnosticReport per imaging row carrying the
simulated report text (in ``conclusion`` or as base64 ``presentedForm``), and, for a share
of follow-up scans, an mCODE CancerDiseaseStatus Observation (LOINC 97509-4) derived from
the row's extraosseous response. Every resource is built with the R4B models of
``fhir.resources`` and serialised by them, so what is written is valid FHIR R4. Everything
written is synthetic.
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
from flare_ml.errors import ContractError
from flare_ml.records.fhir import (
    DICOM,
    DISEASE_STATUS_CODES,
    LOINC,
    LOINC_ALP,
    RXNORM,
    SNOMED,
)
from flare_ml.records.mappings import representative_condition, representative_drugs

__all__ = [
    "DISEASE_STATUS_STREAM",
    "RESPONSE_TO_STATUS",
    "FhirExport",
    "write_fhir",
]

#: second word of the disease-status draws' seed sequence (apart from cohort and reports)
DISEASE_STATUS_STREAM: Final = 15
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
_VOCABULARY_SYSTEM: Final = {
    "ICD10CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "ICD10": "http://hl7.org/fhir/sid/icd-10",
    "ICDO3": "http://terminology.hl7.org/CodeSystem/icd-o-3",
    "SNOMED": SNOMED,
}
_MODALITY_DICOM: Final = {
    "ct": ("CT", "Computed Tomography"),
    "pet_ct": ("PT", "Positron emission tomography"),
    "bone_scan": ("NM", "Nuclear Medicine"),
    "mri": ("MR", "Magnetic Resonance"),
    "radiograph": ("CR", "Computed Radiography"),
}
_MODALITY_TITLE: Final = {
    "ct": "CT chest, abdomen and pelvis",
    "pet_ct": "FDG PET-CT",
    "bone_scan": "Whole-body bone scintigraphy",
    "mri": "MRI",
    "radiograph": "Radiograph",
}
_UCUM: Final = "http://unitsofmeasure.org"
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


def write_fhir(
    cohort: Any,
    reports: Any,
    directory: str | Path,
    *,
    layout: Literal["ndjson", "bundle"] = "ndjson",
    disease_status_share: float = 0.25,
    seed: int | None = None,
) -> FhirExport:
    """Write a simulated cohort and its reports as FHIR R4 records.

    Parameters
    ----------
    cohort : SimulatedCohort
        The cohort (:func:`flare_ml.simulate.simulate_cohort`): its timepoint table and its
        long lab table.
    reports : SimulatedReports or DataFrame
        The report table (:func:`flare_ml.simulate.reports.simulate_reports`):
        ``patient_id``, ``assessment_date``, ``modality``, ``text``.
    directory : str or Path
        Output directory; created. An existing directory is replaced only when it holds
        nothing but ``.ndjson`` / ``.json`` files (an earlier export); otherwise an error.
        Written to a temporary directory first and renamed, so nothing is half-written.
    layout : {"ndjson", "bundle"}, default "ndjson"
        ``ndjson``: bulk-data files, one per resource type (``Patient.ndjson``, ...).
        ``bundle``: one transaction Bundle per patient (``<patient_id>.json``) whose
        references are ``urn:uuid:`` fullUrls.
    disease_status_share : float, default 0.25
        Share of follow-up imaging rows with a stated response that also get an mCODE
        CancerDiseaseStatus Observation on the scan date (:data:`RESPONSE_TO_STATUS`).
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
    if layout not in ("ndjson", "bundle"):
        raise ValueError(f"layout must be 'ndjson' or 'bundle', got {layout!r}")
    if not 0.0 <= disease_status_share <= 1.0:
        raise ValueError(f"disease_status_share must be in [0, 1], got {disease_status_share!r}")
    report_table = getattr(reports, "reports", reports)
    directory = Path(directory)
    _check_target(directory)
    rng = np.random.default_rng([int(cohort.seed if seed is None else seed), DISEASE_STATUS_STREAM])
    build = _Builder()
    notes: list[str] = []
    tp = cohort.timepoints
    no_drug: list[str] = []
    medications: set[str] = set()
    for index, (pid, rows) in enumerate(tp.groupby(c.PATIENT_ID, sort=True)):
        pid = str(pid)
        first = rows.iloc[0]
        start = _day(first[c.TREATMENT_START_DATE])
        last = _day(rows[c.ASSESSMENT_DATE].max())
        subject = {"reference": f"Patient/{pid}"}
        build.add("Patient", {"id": pid}, pid)
        codes = representative_condition(str(first[c.CANCER_TYPE]))
        onset = _day(pd.Timestamp(first[c.TREATMENT_START_DATE]) - pd.Timedelta(days=28))
        build.add(
            "Condition",
            {
                "id": f"cond-{pid}",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "code": "confirmed",
                        }
                    ]
                },
                "code": {
                    "coding": [
                        {"system": _VOCABULARY_SYSTEM[vocab], "code": code}
                        for vocab, code in codes.items()
                    ]
                },
                "subject": subject,
                "onsetDateTime": onset,
                "recordedDate": onset,
            },
            pid,
        )
        drugs = representative_drugs(str(first[c.THERAPY_CLASS]))
        if not drugs:
            no_drug.append(pid)
        for k, (ingredient, code) in enumerate(drugs):
            data: dict[str, Any] = {
                "id": f"ma-{pid}-{k + 1}",
                "status": "completed",
                "subject": subject,
                "effectivePeriod": {"start": start, "end": last},
            }
            if index % 2:  # every other patient: a Medication resource, by reference
                med_id = f"med-{code or _slug(ingredient)}"
                if med_id not in medications:
                    medications.add(med_id)
                    build.add(
                        "Medication",
                        {"id": med_id, "code": _medication_concept(ingredient, code)},
                        None,
                    )
                data["medicationReference"] = {"reference": f"Medication/{med_id}"}
            else:
                data["medicationCodeableConcept"] = _medication_concept(ingredient, code)
            build.add("MedicationAdministration", data, pid)
    if no_drug:
        notes.append(
            f"{len(no_drug)} patients on therapy class 'other' written without a medication "
            f"(no RxNorm ingredient maps to it), e.g. {', '.join(no_drug[:5])}"
        )
    _labs(build, cohort)
    n_status = _reports(build, report_table, tp, rng, disease_status_share)
    counts = {rtype: len(build.resources[rtype]) for rtype in _ORDER if build.resources[rtype]}
    if n_status:
        counts["Observation"] -= n_status
        counts["Observation (disease status)"] = n_status
    _write(build, directory, layout)
    return FhirExport(directory=directory, counts=counts, notes=notes)


def _labs(build: _Builder, cohort: Any) -> None:
    labs = cohort.labs
    test = str(getattr(cohort.site.labs, "test_name", "ALP")).lower()
    labs = labs[labs["test"].astype(str).str.lower().isin({test, "alp"})]
    labs = labs.dropna(subset=["value"]).sort_values(["patient_id", "sample_date"], kind="stable")
    for i, row in enumerate(labs.itertuples(index=False), start=1):
        unit = str(row.unit)
        build.add(
            "Observation",
            {
                "id": f"alp-{i}",
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "laboratory",
                            }
                        ]
                    }
                ],
                "code": {
                    "coding": [
                        {
                            "system": LOINC,
                            "code": LOINC_ALP,
                            "display": "Alkaline phosphatase [Enzymatic activity/volume] "
                            "in Serum or Plasma",
                        }
                    ],
                    "text": "ALP",
                },
                "subject": {"reference": f"Patient/{row.patient_id}"},
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


def _reports(
    build: _Builder,
    reports: pd.DataFrame,
    tp: pd.DataFrame,
    rng: np.random.Generator,
    share: float,
) -> int:
    """DiagnosticReports (and disease-status Observations); returns how many statuses."""
    key = [c.PATIENT_ID, c.ASSESSMENT_DATE]
    response = tp.set_index(key)[c.EXTRAOSSEOUS_RESPONSE]
    n_status = 0
    ordered = reports.sort_values(key, kind="stable").reset_index(drop=True)
    for i, row in enumerate(ordered.itertuples(index=False), start=1):
        pid, when = str(row.patient_id), _day(row.assessment_date)
        modality = str(row.modality or "")
        category = [{"coding": [{"system": LOINC, "code": "LP29684-5", "display": "Radiology"}]}]
        if modality in _MODALITY_DICOM:
            dcm, display = _MODALITY_DICOM[modality]
            category.append({"coding": [{"system": DICOM, "code": dcm, "display": display}]})
        data: dict[str, Any] = {
            "id": f"img-{i}",
            "status": "final",
            "category": category,
            "code": {
                "coding": [
                    {"system": LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}
                ],
                "text": _MODALITY_TITLE.get(modality, "Diagnostic imaging study"),
            },
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": when,
            "issued": f"{when}T17:00:00+00:00",
        }
        text = str(row.text)
        if i % 2:
            data["conclusion"] = text
        else:
            encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
            data["presentedForm"] = [{"contentType": "text/plain; charset=utf-8", "data": encoded}]
        build.add("DiagnosticReport", data, pid)
        value = response.get((row.patient_id, pd.Timestamp(row.assessment_date)))
        status = RESPONSE_TO_STATUS.get(str(value)) if isinstance(value, str) else None
        if status is None or rng.random() >= share:
            continue
        n_status += 1
        build.add(
            "Observation",
            {
                "id": f"cds-{i}",
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
                "subject": {"reference": f"Patient/{pid}"},
                "effectiveDateTime": when,
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
            pid,
        )
    return n_status


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
        (tmp / f"{pid}.json").write_text(bundle.model_dump_json(exclude_none=True), "utf-8")
