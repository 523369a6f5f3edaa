"""Read HL7 FHIR R4 records (bulk NDJSON or Bundle JSON) into :class:`ClinicalEvents`.

A site's FHIR export is a directory of bulk-data NDJSON files (one resource per line,
``Patient.ndjson`` and so on; the file names do not matter, each line's ``resourceType``
does) or of Bundle JSON files (``collection``, ``transaction``, ``searchset``, ...; each
``entry.resource`` is read), or a single such file. Every resource this module reads is
parsed by the R4B models of ``fhir.resources`` (FHIR 4.x), so an invalid resource is found
where it is, not three steps later; it is skipped and reported (file, line, id and the
first validation error), never a traceback. From the resources it extracts what the
records core (:func:`flare_ml.records.assemble.assemble_timepoints`) needs: Patient ids,
Condition codings (ICD-10-CM, ICD-10, ICD-O-3, SNOMED CT), medications (RxNorm, from
MedicationAdministration and MedicationRequest, inline or through a Medication resource),
ALP Observations (LOINC 6768-6), imaging DiagnosticReports (text from ``presentedForm`` or
``conclusion``) and mCODE CancerDiseaseStatus Observations (LOINC 97509-4, or 88040-1 of
mCODE STU1). Whatever it leaves out is counted in :class:`~flare_ml.records.events.Dropped`
entries with a few example ids. The elements read, the codes and where they were verified
are in ``docs/records_fhir.md``.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd
from pydantic import ValidationError

from flare_ml.errors import ContractError
from flare_ml.records.events import ALP_LOINC, ClinicalEvents, Dropped, modality_of

__all__ = [
    "DISEASE_STATUS_CODES",
    "DISEASE_STATUS_LOINC",
    "SYSTEMS",
    "read_fhir",
]

#: code systems (canonical URIs) and the vocabulary names of ClinicalEvents.conditions
SYSTEMS: Final = {
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD10CM",
    "http://hl7.org/fhir/sid/icd-10": "ICD10",
    "http://terminology.hl7.org/CodeSystem/icd-o-3": "ICDO3",
    "http://snomed.info/sct": "SNOMED",
}
LOINC: Final = "http://loinc.org"
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED: Final = "http://snomed.info/sct"
DICOM: Final = "http://dicom.nema.org/resources/ontology/DCM"
V2_0074: Final = "http://terminology.hl7.org/CodeSystem/v2-0074"
#: serum/plasma alkaline phosphatase, catalytic activity per volume
#: mCODE CancerDiseaseStatus Observation.code: 97509-4 (mCODE STU2+), 88040-1 (STU1)
DISEASE_STATUS_LOINC: Final = ("97509-4", "88040-1")
#: mCODE ConditionStatusTrendVS (SNOMED CT) -> ClinicalEvents.disease_status status
DISEASE_STATUS_CODES: Final = {
    "268910001": "improved",
    "359746009": "stable",
    "271299001": "worsened",
    "709137006": "undetermined",
}
#: DICOM modality codes (and HL7 v2 table 0074 diagnostic service sections) -> modality
_DICOM_MODALITY: Final = {
    "CT": "ct",
    "NM": "bone_scan",
    "PT": "pet_ct",
    "MR": "mri",
    "CR": "radiograph",
    "DX": "radiograph",
    "RG": "radiograph",
}
_V2_MODALITY: Final = {"CT": "ct", "NMS": "bone_scan", "NMR": "mri"}
#: report categories that are not imaging (LOINC parts of US Core, HL7 v2 0074 sections)
_NOT_IMAGING: Final = {
    (LOINC, "LP7839-6"),  # pathology
    (LOINC, "LP29708-2"),  # cardiology
    (V2_0074, "LAB"),
    (V2_0074, "PAT"),
    (V2_0074, "SP"),
    (V2_0074, "CH"),
    (V2_0074, "HM"),
    (V2_0074, "MB"),
    (V2_0074, "EC"),
    (V2_0074, "CG"),
}
_READ_TYPES: Final = (
    "Patient",
    "Condition",
    "Medication",
    "MedicationAdministration",
    "MedicationRequest",
    "Observation",
    "DiagnosticReport",
)
_OTHER_OBSERVATION: Final = "Observation not read (not ALP 6768-6 or disease status)"
_SUFFIXES: Final = (".ndjson", ".json", ".ndjson.gz", ".json.gz", ".jsonl")
_MAX_EXAMPLES: Final = 5
_STAGE: Final = "fhir"


@dataclass
class _Raw:
    """One resource as read, with where it came from."""

    resource: dict[str, Any]
    where: str
    full_url: str | None = None


@dataclass
class _Drops:
    """Counts and example ids of what was left out, by reason."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, reason: str, example: str) -> None:
        self.counts[reason] += 1
        if len(self.examples[reason]) < _MAX_EXAMPLES:
            self.examples[reason].append(example)

    def entries(self) -> list[Dropped]:
        return [
            Dropped(_STAGE, reason, count, tuple(self.examples[reason]))
            for reason, count in self.counts.items()
        ]


# --- files -----------------------------------------------------------------------------------
def _files(path: Path) -> tuple[list[Path], list[Path]]:
    """The JSON/NDJSON files under ``path`` and the other files there."""
    if path.is_file():
        return [path], []
    files: list[Path] = []
    others: list[Path] = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        if file.name.startswith("."):
            continue
        (files if file.name.lower().endswith(_SUFFIXES) else others).append(file)
    return files, others


def _open_text(file: Path) -> str:
    raw = file.read_bytes()
    if file.name.lower().endswith(".gz"):
        raw = gzip.decompress(raw)
    return raw.decode("utf-8-sig")


def _entries(obj: Any, where: str, drops: _Drops) -> Iterator[_Raw]:
    """Yield the resources of a parsed JSON value (a resource or a Bundle, recursively)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("resourceType"), str):
        drops.add("not a FHIR resource (no resourceType)", where)
        return
    if obj["resourceType"] != "Bundle":
        yield _Raw(obj, where)
        return
    for i, entry in enumerate(obj.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if resource is None:
            continue  # request-only entries (DELETE) and the like: nothing to read
        inner = f"{where} entry {i}"
        for raw in _entries(resource, inner, drops):
            if raw.where == inner and isinstance(entry.get("fullUrl"), str):
                raw.full_url = entry["fullUrl"]
            yield raw


def _resources(files: list[Path], drops: _Drops) -> Iterator[_Raw]:
    """Yield every resource of the files: NDJSON line by line, JSON files whole."""
    for file in files:
        try:
            text = _open_text(file)
        except UnicodeDecodeError:
            raise ContractError(
                f"cannot read FHIR file {file}: it is not UTF-8 text (FHIR records are JSON or "
                "NDJSON; an OMOP DuckDB file goes to `flare-ml ingest omop --db`)"
            ) from None
        except (OSError, EOFError) as exc:
            raise ContractError(f"cannot read FHIR file {file}: {exc}") from exc
        name = file.name.lower()
        whole: Any = None
        if not name.endswith((".ndjson", ".ndjson.gz", ".jsonl")):
            try:
                whole = json.loads(text)
            except json.JSONDecodeError:
                whole = None  # perhaps NDJSON under a .json name: read it line by line
        if whole is not None:
            yield from _entries(whole, file.name, drops)
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{file.name} line {number}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                drops.add("line is not JSON", f"{where} ({exc.msg})")
                continue
            yield from _entries(obj, where, drops)


# --- values ------------------------------------------------------------------------------------
def _day(value: Any) -> pd.Timestamp | None:
    """A FHIR date/dateTime as a day (the date as written, time zone not converted)."""
    if isinstance(value, datetime):
        return pd.Timestamp(value.date())
    if isinstance(value, date):
        return pd.Timestamp(value)
    return None  # partial dates ("2021", "2021-03") stay strings: less than a day


def _codings(concept: Any) -> list[Any]:
    return list(getattr(concept, "coding", None) or []) if concept is not None else []


def _has_code(concept: Any, system: str, codes: tuple[str, ...] | set[str]) -> bool:
    return any(c.system == system and c.code in codes for c in _codings(concept))


@dataclass
class _Refs:
    """Reference resolution: ``Type/id``, absolute URLs, ``urn:uuid:`` fullUrls."""

    by_url: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, raw: _Raw, rtype: str, rid: str) -> None:
        self.by_url[f"{rtype}/{rid}"] = (rtype, rid)
        if raw.full_url:
            self.by_url[raw.full_url] = (rtype, rid)

    def resolve(self, reference: str | None) -> tuple[str, str] | None:
        if not reference:
            return None
        if reference in self.by_url:
            return self.by_url[reference]
        if reference.startswith(("urn:uuid:", "urn:oid:", "#")):
            return None
        parts = reference.rstrip("/").split("/")
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        if len(parts) >= 2:
            return parts[-2], parts[-1]
        return None


def _id_of(raw: _Raw) -> str:
    rid = raw.resource.get("id")
    if isinstance(rid, str) and rid:
        return rid
    if raw.full_url and raw.full_url.startswith("urn:uuid:"):
        return raw.full_url.removeprefix("urn:uuid:")
    return ""


def _label(rtype: str, rid: str, where: str) -> str:
    return f"{rtype}/{rid}" if rid else f"{rtype} at {where}"


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)
    err = errors[0]
    loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__") or "resource"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{loc}: {err.get('msg', '')}{more}"


# --- the reader ------------------------------------------------------------------------------
def read_fhir(path: str | Path, *, strict: bool = False) -> ClinicalEvents:
    r"""Read FHIR R4 bulk NDJSON or Bundle JSON files into clinical events.

    Parameters
    ----------
    path : str or Path
        A directory (read recursively: every ``*.ndjson``, ``*.json``, ``*.jsonl``, also
        gzipped) or one such file. NDJSON: one resource per line (a line may also hold a
        Bundle). JSON: one resource or a Bundle of any type.
    strict : bool, default False
        Raise :class:`~flare_ml.errors.ContractError` on the first resource that is not
        valid FHIR R4 (or a line that is not JSON) instead of skipping and reporting it.

    Returns
    -------
    ClinicalEvents
        ``persons``, ``conditions``, ``drugs``, ``labs`` (``test`` ``"alp"``),
        ``reports``, ``disease_status`` and ``dropped`` (what was left out and why, with
        up to five example ids each); ``source`` is ``"fhir <path>"``.

    Raises
    ------
    ContractError
        The path does not exist, a file cannot be read, there is no FHIR resource in it,
        or (``strict``) a resource is invalid.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> lines = [
    ...     {"resourceType": "Patient", "id": "p1"},
    ...     {"resourceType": "Observation", "id": "o1", "status": "final",
    ...      "code": {"coding": [{"system": "http://loinc.org", "code": "6768-6"}]},
    ...      "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-01-05",
    ...      "valueQuantity": {"value": 112, "unit": "U/L"}},
    ... ]
    >>> _ = (d / "export.ndjson").write_text("\n".join(json.dumps(x) for x in lines))
    >>> events = read_fhir(d)
    >>> events.labs[["patient_id", "test", "value", "unit"]].values.tolist()
    [['p1', 'alp', 112.0, 'U/L']]

    """
    path = Path(path)
    if not path.exists():
        raise ContractError(f"FHIR input {path} does not exist")
    files, others = _files(path)
    drops = _Drops()
    for other in others:
        drops.add("file not read (not .ndjson / .json / .jsonl)", other.name)
    if not files:
        raise ContractError(
            f"no FHIR files in {path}: expected bulk NDJSON (*.ndjson) or Bundle JSON (*.json)"
        )
    from fhir.resources.R4B import get_fhir_model_class

    # 1. parse every resource of a type we read; index them for references
    parsed: dict[str, list[tuple[_Raw, Any]]] = defaultdict(list)
    refs = _Refs()
    n_seen = 0
    for raw in _resources(files, drops):
        n_seen += 1
        rtype = raw.resource["resourceType"]
        rid = _id_of(raw)
        if rtype not in _READ_TYPES:
            drops.add(f"resource type not read: {rtype}", _label(rtype, rid, raw.where))
            continue
        if rtype == "Observation" and _plainly_other_observation(raw.resource):
            # most of an export: vital signs, other labs; not worth parsing
            drops.add(_OTHER_OBSERVATION, _label(rtype, rid, raw.where))
            continue
        try:
            model = get_fhir_model_class(rtype).model_validate(raw.resource)
        except ValidationError as exc:
            message = f"{_label(rtype, rid, raw.where)} in {raw.where}: {_first_error(exc)}"
            if strict:
                raise ContractError(f"invalid FHIR R4 resource: {message}") from exc
            drops.add("invalid FHIR R4 resource (skipped)", message)
            continue
        parsed[rtype].append((raw, model))
        if rid:
            refs.add(raw, rtype, rid)
    if strict and drops.counts.get("line is not JSON"):
        raise ContractError(
            "lines that are not JSON: " + "; ".join(drops.examples["line is not JSON"])
        )
    if n_seen == 0:
        raise ContractError(f"no FHIR resources in {path}")
    reader = _Extractor(refs, drops)
    for raw, model in parsed["Medication"]:
        reader.medication(raw, model)
    for raw, model in parsed["Patient"]:
        reader.patient(raw, model)
    for raw, model in parsed["Condition"]:
        reader.condition(raw, model)
    for rtype in ("MedicationAdministration", "MedicationRequest"):
        for raw, model in parsed[rtype]:
            reader.drug(raw, model, rtype)
    for raw, model in parsed["Observation"]:
        reader.observation(raw, model)
    for raw, model in parsed["DiagnosticReport"]:
        reader.report(raw, model)
    return ClinicalEvents.from_frames(
        persons=pd.DataFrame({"patient_id": sorted(reader.persons)}, dtype=object),
        conditions=pd.DataFrame(
            reader.conditions, columns=["patient_id", "condition_date", "vocabulary", "code"]
        ),
        drugs=pd.DataFrame(
            reader.drugs,
            columns=["patient_id", "start_date", "end_date", "ingredient", "rxnorm_code"],
        ),
        labs=pd.DataFrame(
            reader.labs, columns=["patient_id", "sample_date", "test", "value", "unit"]
        ),
        reports=pd.DataFrame(
            reader.reports,
            columns=["patient_id", "assessment_date", "modality", "text", "report_id"],
        ),
        disease_status=pd.DataFrame(
            reader.statuses, columns=["patient_id", "status_date", "status"]
        ),
        dropped=drops.entries(),
        source=f"fhir {path}",
    )


class _Extractor:
    """Turns parsed resources into event rows, reporting what it leaves out."""

    def __init__(self, refs: _Refs, drops: _Drops) -> None:
        self.refs = refs
        self.drops = drops
        self.persons: set[str] = set()
        self.medications: dict[str, list[tuple[str, str]]] = {}
        self.conditions: list[tuple[Any, ...]] = []
        self.drugs: list[tuple[Any, ...]] = []
        self.labs: list[tuple[Any, ...]] = []
        self.reports: list[tuple[Any, ...]] = []
        self.statuses: list[tuple[Any, ...]] = []

    # -- shared steps
    def _patient(self, raw: _Raw, model: Any, rtype: str) -> str | None:
        subject = getattr(model, "subject", None)
        label = _label(rtype, _id_of(raw), raw.where)
        if subject is None or not subject.reference:
            self.drops.add(f"{rtype} without a subject", label)
            return None
        target = self.refs.resolve(subject.reference)
        if target is None:
            self.drops.add(f"{rtype} subject reference not resolved", label)
            return None
        if target[0] != "Patient":
            self.drops.add(f"{rtype} subject is not a Patient ({target[0]})", label)
            return None
        self.persons.add(target[1])
        return target[1]

    def _entered_in_error(self, raw: _Raw, model: Any, what: str, bad: set[str]) -> bool:
        status = getattr(model, "status", None)
        if status in bad:
            rtype = raw.resource["resourceType"]
            self.drops.add(f"{what} with status {status}", _label(rtype, _id_of(raw), raw.where))
            return True
        return False

    def _no_date(self, raw: _Raw, what: str, rtype: str, value: Any) -> None:
        label = _label(rtype, _id_of(raw), raw.where)
        if isinstance(value, str):
            self.drops.add(f"{what} with a date less precise than a day", f"{label} ({value})")
        else:
            self.drops.add(f"{what} without a date", label)

    # -- resources
    def patient(self, raw: _Raw, model: Any) -> None:
        rid = _id_of(raw)
        if rid:
            self.persons.add(rid)
        else:
            self.drops.add("Patient without an id", raw.where)

    def medication(self, raw: _Raw, model: Any) -> None:
        rid = _id_of(raw)
        if rid:
            self.medications[rid] = self._ingredients(model.code, model)

    @staticmethod
    def _ingredients(concept: Any, medication: Any = None) -> list[tuple[str, str]]:
        """(name, RxNorm code) pairs of a medication concept (and its ingredients)."""
        found: list[tuple[str, str]] = []
        if medication is not None:
            for ingredient in getattr(medication, "ingredient", None) or []:
                item = getattr(ingredient, "itemCodeableConcept", None)
                if item is not None:
                    found.extend(_Extractor._ingredients(item))
            if found:
                return found
        rx = [c for c in _codings(concept) if c.system == RXNORM and c.code]
        if rx:
            return [(c.display or getattr(concept, "text", None) or "", c.code) for c in rx[:1]]
        text = getattr(concept, "text", None) if concept is not None else None
        if text:
            return [(text, "")]
        named = [c.display for c in _codings(concept) if c.display]
        return [(named[0], "")] if named else []

    def condition(self, raw: _Raw, model: Any) -> None:
        label = _label("Condition", _id_of(raw), raw.where)
        verification = _codings(model.verificationStatus)
        if any(c.code in ("refuted", "entered-in-error") for c in verification):
            self.drops.add("Condition refuted or entered in error", label)
            return
        patient = self._patient(raw, model, "Condition")
        if patient is None:
            return
        codes = [
            (SYSTEMS[c.system], c.code)
            for c in _codings(model.code)
            if c.system in SYSTEMS and c.code
        ]
        if not codes:
            self.drops.add(
                "Condition without an ICD-10-CM, ICD-10, ICD-O-3 or SNOMED coding", label
            )
            return
        value = model.onsetDateTime or (model.onsetPeriod.start if model.onsetPeriod else None)
        day = _day(value) or _day(model.recordedDate)
        if day is None:
            self._no_date(raw, "Condition", "Condition", value or model.recordedDate)
            return
        for vocabulary, code in codes:
            self.conditions.append((patient, day, vocabulary, code))

    def drug(self, raw: _Raw, model: Any, rtype: str) -> None:
        label = _label(rtype, _id_of(raw), raw.where)
        if self._entered_in_error(raw, model, rtype, {"entered-in-error", "not-done", "cancelled"}):
            return
        patient = self._patient(raw, model, rtype)
        if patient is None:
            return
        if model.medicationCodeableConcept is not None:
            ingredients = self._ingredients(model.medicationCodeableConcept)
        elif model.medicationReference is not None:
            ref = model.medicationReference.reference or ""
            target = self._contained(model, ref) if ref.startswith("#") else None
            if target is None:
                resolved = self.refs.resolve(ref)
                if resolved is None or resolved[1] not in self.medications:
                    self.drops.add(f"{rtype} medicationReference not found", label)
                    return
                ingredients = self.medications[resolved[1]]
            else:
                ingredients = target
        else:
            ingredients = []
        if not ingredients:
            self.drops.add(f"{rtype} without an RxNorm coding or a medication name", label)
            return
        if rtype == "MedicationAdministration":
            period = model.effectivePeriod
            value = model.effectiveDateTime or (period.start if period else None)
            start, end = _day(value), _day(period.end) if period and period.end else None
        else:
            value = model.authoredOn
            start, end = _day(value), None
        if start is None:
            self._no_date(raw, rtype, rtype, value)
            return
        for name, code in ingredients:
            self.drugs.append((patient, start, end if end is not None else pd.NaT, name, code))

    def _contained(self, model: Any, ref: str) -> list[tuple[str, str]] | None:
        for inner in getattr(model, "contained", None) or []:
            if getattr(inner, "id", None) == ref[1:] and inner.get_resource_type() == "Medication":
                return self._ingredients(inner.code, inner)
        return None

    def observation(self, raw: _Raw, model: Any) -> None:
        is_alp = _has_code(model.code, LOINC, (ALP_LOINC,))
        is_status = _has_code(model.code, LOINC, DISEASE_STATUS_LOINC)
        label = _label("Observation", _id_of(raw), raw.where)
        if not (is_alp or is_status):
            self.drops.add(_OTHER_OBSERVATION, label)
            return
        what = "ALP Observation" if is_alp else "disease-status Observation"
        if self._entered_in_error(raw, model, what, {"entered-in-error", "cancelled"}):
            return
        patient = self._patient(raw, model, "Observation")
        if patient is None:
            return
        period = model.effectivePeriod
        value = model.effectiveDateTime or (period.start if period else None)
        day = _day(value) or _day(model.issued)
        if day is None:
            self._no_date(raw, what, "Observation", value)
            return
        if is_alp:
            quantity = model.valueQuantity
            if quantity is None or quantity.value is None:
                self.drops.add("ALP Observation without a valueQuantity", label)
                return
            unit = quantity.unit or quantity.code or ""
            self.labs.append((patient, day, "alp", float(quantity.value), unit))
            return
        concept = model.valueCodeableConcept
        statuses = [
            DISEASE_STATUS_CODES[c.code]
            for c in _codings(concept)
            if c.system == SNOMED and c.code in DISEASE_STATUS_CODES
        ]
        if not statuses:
            shown = ", ".join(f"{c.code}" for c in _codings(concept)) or "no value"
            self.drops.add(
                "disease-status value not in mCODE ConditionStatusTrendVS", f"{label} ({shown})"
            )
            return
        self.statuses.append((patient, day, statuses[0]))

    def report(self, raw: _Raw, model: Any) -> None:
        label = _label("DiagnosticReport", _id_of(raw), raw.where)
        categories = [(c.system, c.code) for cat in model.category or [] for c in _codings(cat)]
        modality = _modality_from_codes(
            [*categories, *((c.system, c.code) for c in _codings(model.code))]
        )
        if categories and not modality and all(cat in _NOT_IMAGING for cat in categories):
            self.drops.add("DiagnosticReport not an imaging report (category)", label)
            return
        if self._entered_in_error(
            raw, model, "DiagnosticReport", {"entered-in-error", "cancelled"}
        ):
            return
        patient = self._patient(raw, model, "DiagnosticReport")
        if patient is None:
            return
        text, why = _report_text(model)
        if not text:
            self.drops.add(f"DiagnosticReport without text ({why})", label)
            return
        period = model.effectivePeriod
        value = model.effectiveDateTime or (period.start if period else None)
        day = _day(value) or _day(model.issued)
        if day is None:
            self._no_date(raw, "DiagnosticReport", "DiagnosticReport", value)
            return
        if not modality:
            code_text = getattr(model.code, "text", None) or ""
            titles = [code_text, *(c.display or "" for c in _codings(model.code))]
            modality = modality_of(" ".join(titles), text.split("\n", 1)[0])
        self.reports.append((patient, day, modality, text, _id_of(raw) or raw.where))


def _plainly_other_observation(resource: dict[str, Any]) -> bool:
    """True when an Observation's raw ``code`` is well formed and names neither code read.

    Examples
    --------
    >>> loinc = lambda code: {"code": {"coding": [{"system": LOINC, "code": code}]}}
    >>> _plainly_other_observation(loinc("8480-6")), _plainly_other_observation(loinc("6768-6"))
    (True, False)
    >>> _plainly_other_observation({"code": "oops"})  # malformed: parsed, and reported
    False

    """
    code = resource.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    if not isinstance(codings, list) or not codings:
        return False
    if not all(isinstance(x, dict) for x in codings):
        return False
    wanted = {ALP_LOINC, *DISEASE_STATUS_LOINC}
    return not any(x.get("system") == LOINC and x.get("code") in wanted for x in codings)


def _modality_from_codes(codes: list[tuple[str | None, str | None]]) -> str:
    for system, code in codes:
        if system == DICOM and code in _DICOM_MODALITY:
            return _DICOM_MODALITY[code]
        if system == V2_0074 and code in _V2_MODALITY:
            return _V2_MODALITY[code]
    return ""


def _report_text(model: Any) -> tuple[str, str]:
    """The report text: ``presentedForm`` plain text (decoded), else ``conclusion``."""
    why = "no conclusion or presentedForm"
    for form in model.presentedForm or []:
        content_type = (form.contentType or "").split(";")[0].strip().lower()
        if content_type and content_type != "text/plain":
            why = f"presentedForm is {content_type}, not text/plain"
            continue
        if form.data is None:
            why = "presentedForm without inline data" + (" (url only)" if form.url else "")
            continue
        data = form.data if isinstance(form.data, bytes) else str(form.data).encode()
        charset = "utf-8"
        if "charset=" in (form.contentType or ""):
            charset = form.contentType.split("charset=", 1)[1].split(";")[0].strip() or charset
        try:
            text = data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            why = "presentedForm data not decodable as text"
            continue
        if text.strip():
            return text, ""
    if model.conclusion and model.conclusion.strip():
        return model.conclusion, ""
    return "", why
