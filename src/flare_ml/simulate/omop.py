"""Write clinical events as an OMOP CDM 5.4 database (DuckDB file or any SQLAlchemy URL).

A site's records reach flare-ml as an OMOP Common Data Model, so the simulator writes its
cohorts as one. :func:`write_omop_events` serialises any
:class:`~flare_ml.records.events.ClinicalEvents` (the same events the FHIR writer
serialises) and :func:`write_omop` writes a simulated cohort's,
:func:`flare_ml.simulate.records.cohort_events`: PERSON (the event's ``patient_id`` as
``person_source_value``), OBSERVATION_PERIOD (first to last dated record),
CONDITION_OCCURRENCE (a SNOMED code as the standard concept; ICD-10-CM, ICD-10 and ICD-O-3
codes as the source concept and value, with standard concept 0, since the writer knows no
mapping), DRUG_EXPOSURE (the RxNorm ingredient; every second person's exposure is a
clinical-drug concept linked to its ingredient through CONCEPT_ANCESTOR, so that both ways a
warehouse records a drug are exercised), MEASUREMENT (ALP as concept 3035995, LOINC 6768-6;
U/L and ukat/L as UCUM unit concepts, other spellings in ``unit_source_value``), NOTE (the
report texts, note class LOINC 18748-4 "Diagnostic imaging study", the title naming the
modality), the Oncology extension's EPISODE (one treatment-regimen episode per person and
drug start date) and EPISODE_EVENT (linking it to its drug exposures), and the CONCEPT and
CONCEPT_ANCESTOR rows for every concept it uses. Table and column names, types and NOT NULL
constraints follow the official CDM 5.4 DDL (OHDSI/CommonDataModel, ``inst/ddl/5.4``),
restricted to these tables; required concept fields the events do not know (gender, race,
record type, encoding) hold 0, the CDM's "no matching concept". Concept ids are site-local
(>= 2,000,000,000, the CDM's range for local concepts) except ALP's 3035995; vocabulary ids
and concept codes are the real ones, which is what the reader matches (the Episode and
CDM-field concepts, matched by vocabulary and name, carry local codes). Everything written
is synthetic; see ``docs/records_omop.md``.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from datetime import date
from pathlib import Path
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa

from flare_ml.data import contract as c
from flare_ml.data.labs import is_alp_test
from flare_ml.errors import ContractError, FlareMLError
from flare_ml.records.events import ALP_LOINC, ALP_LOINC_NAME, ClinicalEvents, dropped_for
from flare_ml.records.omop import ALP_CONCEPT_ID, IMAGING_NOTE_CODES
from flare_ml.simulate import SimulatedCohort
from flare_ml.simulate.records import REPORT_TITLES, cohort_events
from flare_ml.simulate.reports import DEFAULT_BONE_SCAN_SHARE

__all__ = [
    "ALP_CONCEPT_ID",
    "LOCAL_CONCEPT_START",
    "RADIOLOGY_NOTE_CLASS",
    "cdm_metadata",
    "omop_frames",
    "write_omop",
    "write_omop_events",
]

#: the first concept id of the site-local range (the CDM reserves ids >= 2,000,000,000)
LOCAL_CONCEPT_START: Final = 2_000_000_000
#: the note class of radiology reports: LOINC document ontology "Diagnostic imaging study"
RADIOLOGY_NOTE_CLASS: Final = ("LOINC", IMAGING_NOTE_CODES[0], "Diagnostic imaging study")
#: the vocabulary of concepts that exist only in the simulation (clinical-drug products)
SIM_VOCABULARY: Final = "FLARE_ML_SIM"
#: unit spellings that are UCUM codes, written as UCUM unit concepts (others: source value)
_UCUM: Final = {"U/L": "unit per liter", "ukat/L": "microkatal per liter"}
#: condition vocabularies: (concept class, standard concept flag)
_CONDITION_CLASS: Final = {
    "SNOMED": ("Clinical Finding", "S"),
    "ICD10CM": ("ICD10 code", None),
    "ICD10": ("ICD10 code", None),
    "ICDO3": ("ICDO Condition", None),
}
#: the CDM's limit on PERSON.person_source_value
_SOURCE_VALUE_LENGTH: Final = 50
_FAR_FUTURE: Final = date(2099, 12, 31)
_EPOCH: Final = date(1970, 1, 1)


def _col(name: str, kind: Any, required: bool = False) -> sa.Column:
    return sa.Column(name, kind, nullable=not required)


def cdm_metadata(schema: str | None = None) -> sa.MetaData:
    """The CDM 5.4 tables the writer fills, as SQLAlchemy Core tables.

    Names, types and NOT NULL constraints follow the official CDM 5.4 DDL; only the tables
    the adapter reads (and OBSERVATION_PERIOD, which every CDM tool expects) are defined.

    Examples
    --------
    >>> meta = cdm_metadata()
    >>> sorted(meta.tables)[:3]
    ['concept', 'concept_ancestor', 'condition_occurrence']
    >>> meta.tables["note"].c.note_text.nullable
    False

    """
    i, d, t, txt, num = sa.Integer, sa.Date, sa.DateTime, sa.Text, sa.Numeric

    def s(n: int) -> sa.String:
        return sa.String(n)

    meta = sa.MetaData(schema=schema)
    sa.Table(
        "person", meta,
        _col("person_id", i, True), _col("gender_concept_id", i, True),
        _col("year_of_birth", i, True), _col("month_of_birth", i), _col("day_of_birth", i),
        _col("birth_datetime", t), _col("race_concept_id", i, True),
        _col("ethnicity_concept_id", i, True), _col("location_id", i), _col("provider_id", i),
        _col("care_site_id", i), _col("person_source_value", s(50)),
        _col("gender_source_value", s(50)), _col("gender_source_concept_id", i),
        _col("race_source_value", s(50)), _col("race_source_concept_id", i),
        _col("ethnicity_source_value", s(50)), _col("ethnicity_source_concept_id", i),
    )  # fmt: skip
    sa.Table(
        "observation_period", meta,
        _col("observation_period_id", i, True), _col("person_id", i, True),
        _col("observation_period_start_date", d, True),
        _col("observation_period_end_date", d, True), _col("period_type_concept_id", i, True),
    )  # fmt: skip
    sa.Table(
        "condition_occurrence", meta,
        _col("condition_occurrence_id", i, True), _col("person_id", i, True),
        _col("condition_concept_id", i, True), _col("condition_start_date", d, True),
        _col("condition_start_datetime", t), _col("condition_end_date", d),
        _col("condition_end_datetime", t), _col("condition_type_concept_id", i, True),
        _col("condition_status_concept_id", i), _col("stop_reason", s(20)),
        _col("provider_id", i), _col("visit_occurrence_id", i), _col("visit_detail_id", i),
        _col("condition_source_value", s(50)), _col("condition_source_concept_id", i),
        _col("condition_status_source_value", s(50)),
    )  # fmt: skip
    sa.Table(
        "drug_exposure", meta,
        _col("drug_exposure_id", i, True), _col("person_id", i, True),
        _col("drug_concept_id", i, True), _col("drug_exposure_start_date", d, True),
        _col("drug_exposure_start_datetime", t), _col("drug_exposure_end_date", d, True),
        _col("drug_exposure_end_datetime", t), _col("verbatim_end_date", d),
        _col("drug_type_concept_id", i, True), _col("stop_reason", s(20)),
        _col("refills", i), _col("quantity", num), _col("days_supply", i), _col("sig", txt),
        _col("route_concept_id", i), _col("lot_number", s(50)), _col("provider_id", i),
        _col("visit_occurrence_id", i), _col("visit_detail_id", i),
        _col("drug_source_value", s(50)), _col("drug_source_concept_id", i),
        _col("route_source_value", s(50)), _col("dose_unit_source_value", s(50)),
    )  # fmt: skip
    sa.Table(
        "measurement", meta,
        _col("measurement_id", i, True), _col("person_id", i, True),
        _col("measurement_concept_id", i, True), _col("measurement_date", d, True),
        _col("measurement_datetime", t), _col("measurement_time", s(10)),
        _col("measurement_type_concept_id", i, True), _col("operator_concept_id", i),
        _col("value_as_number", num), _col("value_as_concept_id", i),
        _col("unit_concept_id", i), _col("range_low", num), _col("range_high", num),
        _col("provider_id", i), _col("visit_occurrence_id", i), _col("visit_detail_id", i),
        _col("measurement_source_value", s(50)), _col("measurement_source_concept_id", i),
        _col("unit_source_value", s(50)), _col("unit_source_concept_id", i),
        _col("value_source_value", s(50)), _col("measurement_event_id", i),
        _col("meas_event_field_concept_id", i),
    )  # fmt: skip
    sa.Table(
        "note", meta,
        _col("note_id", i, True), _col("person_id", i, True), _col("note_date", d, True),
        _col("note_datetime", t), _col("note_type_concept_id", i, True),
        _col("note_class_concept_id", i, True), _col("note_title", s(250)),
        _col("note_text", txt, True), _col("encoding_concept_id", i, True),
        _col("language_concept_id", i, True), _col("provider_id", i),
        _col("visit_occurrence_id", i), _col("visit_detail_id", i),
        _col("note_source_value", s(50)), _col("note_event_id", i),
        _col("note_event_field_concept_id", i),
    )  # fmt: skip
    sa.Table(
        "episode", meta,
        _col("episode_id", i, True), _col("person_id", i, True),
        _col("episode_concept_id", i, True), _col("episode_start_date", d, True),
        _col("episode_start_datetime", t), _col("episode_end_date", d),
        _col("episode_end_datetime", t), _col("episode_parent_id", i),
        _col("episode_number", i), _col("episode_object_concept_id", i, True),
        _col("episode_type_concept_id", i, True), _col("episode_source_value", s(50)),
        _col("episode_source_concept_id", i),
    )  # fmt: skip
    sa.Table(
        "episode_event", meta,
        _col("episode_id", i, True), _col("event_id", i, True),
        _col("episode_event_field_concept_id", i, True),
    )  # fmt: skip
    sa.Table(
        "concept", meta,
        _col("concept_id", i, True), _col("concept_name", s(255), True),
        _col("domain_id", s(20), True), _col("vocabulary_id", s(20), True),
        _col("concept_class_id", s(20), True), _col("standard_concept", s(1)),
        _col("concept_code", s(50), True), _col("valid_start_date", d, True),
        _col("valid_end_date", d, True), _col("invalid_reason", s(1)),
    )  # fmt: skip
    sa.Table(
        "concept_ancestor", meta,
        _col("ancestor_concept_id", i, True), _col("descendant_concept_id", i, True),
        _col("min_levels_of_separation", i, True), _col("max_levels_of_separation", i, True),
    )  # fmt: skip
    return meta


class _Concepts:
    """The CONCEPT rows the writer uses, one id per (vocabulary, code)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self.next_id = LOCAL_CONCEPT_START

    def add(
        self,
        vocabulary: str,
        code: str,
        name: str,
        domain: str,
        concept_class: str,
        standard: str | None = "S",
        concept_id: int | None = None,
    ) -> int:
        key = (vocabulary, code)
        if key not in self.rows:
            if concept_id is None:
                concept_id, self.next_id = self.next_id, self.next_id + 1
            self.rows[key] = {
                "concept_id": concept_id,
                "concept_name": name[:255],
                "domain_id": domain,
                "vocabulary_id": vocabulary,
                "concept_class_id": concept_class,
                "standard_concept": standard,
                "concept_code": code,
                "valid_start_date": _EPOCH,
                "valid_end_date": _FAR_FUTURE,
                "invalid_reason": None,
            }
        return int(self.rows[key]["concept_id"])

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.rows.values()))


def _dates(values: pd.Series) -> list[date | None]:
    """Dates as ``datetime.date`` (None where missing), as the DATE columns take them."""
    return [None if pd.isna(v) else pd.Timestamp(v).date() for v in values]


def _check(events: ClinicalEvents) -> None:
    """Refuse what the CDM cannot hold: a missing NOT NULL date, an over-long person id."""
    required = {
        "conditions": "condition_date",
        "drugs": "start_date",
        "labs": "sample_date",
        "reports": c.ASSESSMENT_DATE,
    }
    problems = []
    for name, col in required.items():
        frame = getattr(events, name)
        no_date = frame.loc[frame[col].isna(), c.PATIENT_ID]
        problems += dropped_for(name, f"rows without {col} (NOT NULL in the CDM)", no_date)
    long_ids = [p for p in _person_ids(events) if len(p) > _SOURCE_VALUE_LENGTH]
    problems += dropped_for(
        "persons",
        f"patient ids longer than person_source_value's {_SOURCE_VALUE_LENGTH} characters",
        long_ids,
    )
    if problems:
        raise ContractError(
            f"cannot write {events.source} as an OMOP CDM: " + "; ".join(map(str, problems))
        )


def _person_ids(events: ClinicalEvents) -> dict[str, int]:
    """patient_id -> person_id: the persons in order, then anyone only other frames name."""
    listed = list(dict.fromkeys(events.persons[c.PATIENT_ID].astype(str)))
    named = set().union(
        *(
            set(getattr(events, f)[c.PATIENT_ID].astype(str))
            for f in ("conditions", "drugs", "labs", "reports", "disease_status")
        )
    )
    ordered = listed + sorted(named - set(listed))
    return {pid: n for n, pid in enumerate(ordered, start=1)}


def _people(events: ClinicalEvents, ids: dict[str, int]) -> dict[str, pd.DataFrame]:
    """PERSON and OBSERVATION_PERIOD (first to last dated record of each person)."""
    dated = pd.concat(
        [
            pd.DataFrame({"pid": frame[c.PATIENT_ID].astype(str), "day": frame[col]})
            for frame, col in (
                (events.conditions, "condition_date"),
                (events.drugs, "start_date"),
                (events.drugs, "end_date"),
                (events.labs, "sample_date"),
                (events.reports, c.ASSESSMENT_DATE),
                (events.disease_status, "status_date"),
            )
        ]
    ).dropna()
    span = dated.groupby("pid")["day"].agg(["min", "max"]).reindex(list(ids))
    person_id = list(ids.values())
    # the birth year is not in the events: 65 years before the first record
    born = [1950 if pd.isna(d) else d.year - 65 for d in span["min"]]
    person = pd.DataFrame(
        {
            "person_id": person_id,
            "gender_concept_id": 0,
            "year_of_birth": born,
            "race_concept_id": 0,
            "ethnicity_concept_id": 0,
            "person_source_value": list(ids),
        }
    )
    known = span["min"].notna().to_numpy()
    period = pd.DataFrame(
        {
            "observation_period_id": [p for p, k in zip(person_id, known, strict=True) if k],
            "person_id": [p for p, k in zip(person_id, known, strict=True) if k],
            "observation_period_start_date": _dates(span["min"][known]),
            "observation_period_end_date": _dates(span["max"][known]),
            "period_type_concept_id": 0,
        }
    )
    return {"person": person, "observation_period": period}


def _event_table(
    frame: pd.DataFrame, ids: dict[str, int], table: str, kind: str, **columns: Any
) -> pd.DataFrame:
    """A CDM event table of ``frame``'s rows: ``<table>_id`` 1..n, ``person_id``, type 0."""
    return pd.DataFrame(
        {
            f"{table}_id": range(1, len(frame) + 1),
            "person_id": frame[c.PATIENT_ID].astype(str).map(ids).to_numpy(),
            f"{kind}_type_concept_id": 0,
            **columns,
        }
    )


def _condition_occurrence(
    conditions: pd.DataFrame, ids: dict[str, int], concepts: _Concepts
) -> pd.DataFrame:
    """SNOMED codes as the standard concept; the other vocabularies as the source concept."""
    from flare_ml.records.mappings import cancer_type_of

    standard, source = [], []
    for vocabulary, code in zip(conditions["vocabulary"], conditions["code"], strict=True):
        vocabulary, code = str(vocabulary), str(code)
        label = c.CANCER_NAMES.get(cancer_type_of(vocabulary, code) or "", "condition")
        concept_class, flag = _CONDITION_CLASS.get(vocabulary, ("Condition", None))
        concept = concepts.add(
            vocabulary, code, f"{label} ({vocabulary} {code})", "Condition", concept_class, flag
        )
        standard.append(concept if vocabulary == "SNOMED" else 0)
        source.append(0 if vocabulary == "SNOMED" else concept)
    return _event_table(
        conditions,
        ids,
        "condition_occurrence",
        "condition",
        condition_concept_id=standard,
        condition_start_date=_dates(conditions["condition_date"]),
        condition_source_value=conditions["code"].astype(str).str[:50].to_numpy(),
        condition_source_concept_id=source,
    )


def _drug_exposure(
    drugs: pd.DataFrame, ids: dict[str, int], concepts: _Concepts
) -> dict[str, pd.DataFrame]:
    """DRUG_EXPOSURE, CONCEPT_ANCESTOR (products) and the treatment-regimen EPISODEs.

    An unknown end date is written as the start date (the CDM requires one: the OHDSI
    convention without a days' supply), the true one in ``verbatim_end_date``.
    """
    regimen_id = concepts.add(
        "Episode", f"{SIM_VOCABULARY}-treatment-regimen", "Treatment Regimen", "Episode", "Episode"
    )
    drug_field = concepts.add(
        "CDM",
        f"{SIM_VOCABULARY}-drug_exposure.drug_exposure_id",
        "drug_exposure.drug_exposure_id",
        "Metadata",
        "Field",
    )
    person = drugs[c.PATIENT_ID].astype(str).map(ids).to_numpy()
    drug_ids, ancestors = [], []
    for pid, ingredient, code in zip(
        person, drugs["ingredient"], drugs["rxnorm_code"], strict=True
    ):
        ingredient, code = str(ingredient), str(code or "")
        vocabulary = "RxNorm" if code else SIM_VOCABULARY
        concept = concepts.add(
            vocabulary, code or ingredient.lower(), ingredient, "Drug", "Ingredient"
        )
        if pid % 2 == 0:  # a product, found through CONCEPT_ANCESTOR
            product = concepts.add(
                SIM_VOCABULARY,
                f"{ingredient.lower()} product",
                f"{ingredient} (simulated product)",
                "Drug",
                "Clinical Drug",
            )
            ancestors.append((concept, product))
            concept = product
        drug_ids.append(concept)
    start, end = drugs["start_date"], drugs["end_date"]
    exposure = _event_table(
        drugs,
        ids,
        "drug_exposure",
        "drug",
        drug_concept_id=drug_ids,
        drug_exposure_start_date=_dates(start),
        drug_exposure_end_date=_dates(end.where(end.notna(), start)),
        verbatim_end_date=_dates(end),
        drug_source_value=drugs["ingredient"].astype(str).str[:50].to_numpy(),
    )
    # the Oncology extension: one treatment-regimen episode per person and start date
    episodes, events = [], []
    groups = exposure.assign(_start=start.to_numpy(), _end=end.to_numpy())
    number: dict[int, int] = {}
    for n, ((pid, _), rows) in enumerate(groups.groupby(["person_id", "_start"]), start=1):
        names = list(dict.fromkeys(drugs["ingredient"].iloc[rows.index].astype(str)))
        ends = rows["_end"]
        episodes.append(
            {
                "episode_id": n,
                "person_id": pid,
                "episode_concept_id": regimen_id,
                "episode_start_date": rows["drug_exposure_start_date"].iloc[0],
                # an end only where every drug of the regimen has the same one
                "episode_end_date": (
                    _dates(ends.iloc[:1])[0]
                    if ends.notna().all() and (ends == ends.iloc[0]).all()
                    else None
                ),
                "episode_number": number.setdefault(pid, 0) + 1,
                "episode_object_concept_id": concepts.add(
                    SIM_VOCABULARY,
                    "+".join(x.lower() for x in names) + " regimen",
                    " and ".join(names) + " (simulated regimen)",
                    "Regimen",
                    "Regimen",
                ),
                "episode_type_concept_id": 0,
            }
        )
        number[pid] += 1
        events += [
            {"episode_id": n, "event_id": e, "episode_event_field_concept_id": drug_field}
            for e in rows["drug_exposure_id"]
        ]
    ancestor = pd.DataFrame(
        [
            {
                "ancestor_concept_id": a,
                "descendant_concept_id": d,
                "min_levels_of_separation": 1,
                "max_levels_of_separation": 1,
            }
            for a, d in dict.fromkeys(ancestors)
        ],
        columns=[col.name for col in cdm_metadata().tables["concept_ancestor"].c],
    )
    return {
        "concept_ancestor": ancestor,
        "drug_exposure": exposure,
        "episode": pd.DataFrame(episodes),
        "episode_event": pd.DataFrame(events),
    }


def _measurement(labs: pd.DataFrame, ids: dict[str, int], concepts: _Concepts) -> pd.DataFrame:
    """ALP results; a unit that is a UCUM code becomes a unit concept, any unit its source."""
    alp_id = concepts.add(
        "LOINC",
        ALP_LOINC,
        ALP_LOINC_NAME,
        "Measurement",
        "Lab Test",
        concept_id=ALP_CONCEPT_ID,
    )
    alp = labs[is_alp_test(labs["test"])]
    units = alp["unit"].astype(str).str.strip()
    unit_ids = [
        concepts.add("UCUM", u, _UCUM[u], "Unit", "Unit") if u in _UCUM else 0 for u in units
    ]
    value = pd.to_numeric(alp["value"], errors="coerce")
    return _event_table(
        alp,
        ids,
        "measurement",
        "measurement",
        measurement_concept_id=alp_id,
        measurement_date=_dates(alp["sample_date"]),
        value_as_number=[None if pd.isna(v) else float(v) for v in value],
        unit_concept_id=unit_ids,
        measurement_source_value=alp["test"].astype(str).str[:50].to_numpy(),
        unit_source_value=units.str[:50].to_numpy(),
    )


def _note(reports: pd.DataFrame, ids: dict[str, int], concepts: _Concepts) -> pd.DataFrame:
    """One radiology NOTE per report, the report id as ``note_source_value``."""
    note_class = concepts.add(*RADIOLOGY_NOTE_CLASS, "Meas Value", "Doc Type")
    modality = reports["modality"].fillna("").astype(str)
    return _event_table(
        reports,
        ids,
        "note",
        "note",
        note_date=_dates(reports[c.ASSESSMENT_DATE]),
        note_class_concept_id=note_class,
        note_title=[REPORT_TITLES.get(m, "Imaging report") for m in modality],
        note_text=reports["text"].fillna("").astype(str).to_numpy(),
        encoding_concept_id=0,
        language_concept_id=0,
        note_source_value=reports["report_id"].astype(str).str[:50].to_numpy(),
    )


def omop_frames(events: ClinicalEvents) -> dict[str, pd.DataFrame]:
    """The CDM tables of clinical events, as DataFrames (one per table).

    Parameters
    ----------
    events : ClinicalEvents
        Any events (:func:`flare_ml.simulate.records.cohort_events` for a simulated
        cohort). Every person gets a PERSON row; so does a ``patient_id`` only another
        frame names. Disease-status records and lab tests other than ALP have no table
        here and are left out (:func:`write_omop_events` warns).

    Returns
    -------
    dict of str to DataFrame
        Keyed by CDM table name; columns are a subset of :func:`cdm_metadata`'s.

    Raises
    ------
    ContractError
        A condition, drug, lab or report without its date (NOT NULL in the CDM), or a
        patient id longer than ``person_source_value``'s 50 characters.

    Examples
    --------
    >>> from flare_ml.simulate import simulate_cohort
    >>> from flare_ml.simulate.records import cohort_events
    >>> events = cohort_events(simulate_cohort(4, seed=2))
    >>> frames = omop_frames(events)
    >>> len(frames["person"]), len(frames["note"]) == len(events.reports)
    (4, True)
    >>> int(frames["concept"]["concept_id"].min()) == ALP_CONCEPT_ID
    True

    """
    _check(events)
    concepts = _Concepts()
    ids = _person_ids(events)
    frames = {
        **_people(events, ids),
        "condition_occurrence": _condition_occurrence(events.conditions, ids, concepts),
        **_drug_exposure(events.drugs, ids, concepts),
        "measurement": _measurement(events.labs, ids, concepts),
        "note": _note(events.reports, ids, concepts),
    }
    return {"concept": concepts.frame(), **frames}


def _not_written(events: ClinicalEvents) -> list[str]:
    """What :func:`omop_frames` leaves out, in words."""
    labs = events.labs
    other = ~is_alp_test(labs["test"])
    return [
        str(d)
        for d in dropped_for(
            "omop writer",
            "disease-status records (no CDM table the OMOP adapter reads)",
            events.disease_status[c.PATIENT_ID],
        )
        + dropped_for("omop writer", "lab results other than ALP", labs.loc[other, c.PATIENT_ID])
    ]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            k: (None if v is None or (isinstance(v, float) and pd.isna(v)) else v)
            for k, v in r.items()
        }
        for r in frame.astype(object).to_dict("records")
    ]


def _insert(conn: sa.Connection, meta: sa.MetaData, frames: dict[str, pd.DataFrame]) -> None:
    for name, frame in frames.items():
        if frame.empty:
            continue
        table = meta.tables[f"{meta.schema}.{name}" if meta.schema else name]
        rows = _records(frame)
        for at in range(0, len(rows), 5000):
            conn.execute(table.insert(), rows[at : at + 5000])


def _write_duckdb_file(frames: dict[str, pd.DataFrame], target: Path) -> None:
    import duckdb

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.unlink(tmp_name)  # DuckDB creates the file itself
    try:
        engine = sa.create_engine(f"duckdb:///{tmp_name}")
        meta = cdm_metadata()
        meta.create_all(engine)
        engine.dispose()
        con = duckdb.connect(tmp_name)
        try:
            for name, frame in frames.items():
                if frame.empty:
                    continue
                cols = ", ".join(frame.columns)
                con.register("frame_in", frame)
                con.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM frame_in")
                con.unregister("frame_in")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp_name, target)
    finally:
        for leftover in (Path(tmp_name), Path(tmp_name + ".wal")):
            leftover.unlink(missing_ok=True)


def _target(path_or_url: str | os.PathLike[str]) -> str:
    text = os.fspath(path_or_url)
    if "://" not in text:
        return f"duckdb:///{Path(text)}"
    return sa.make_url(text).render_as_string(hide_password=True)


def write_omop_events(
    events: ClinicalEvents,
    path_or_url: str | os.PathLike[str],
    *,
    schema: str | None = None,
) -> str:
    """Write clinical events as an OMOP CDM 5.4 database; :func:`read_omop` reads them back.

    The tables are :func:`omop_frames`'. Read back with
    :func:`flare_ml.records.omop.read_omop`, the events come back as written (persons,
    conditions, drugs by ingredient, ALP results, report texts, dates and modalities),
    except: a drug without an end date comes back ending on its start date (the CDM
    requires an end), report ids are the NOTE ids, and what the adapter does not read
    (a condition or ingredient the mapping tables do not know, a report without text)
    is reported by it as dropped.

    Parameters
    ----------
    events : ClinicalEvents
        The events (:func:`flare_ml.simulate.records.cohort_events`, or any).
    path_or_url : str or PathLike
        A DuckDB file path (written atomically: a temporary file beside it, then renamed;
        an existing file is replaced) or a SQLAlchemy URL (``postgresql+psycopg://...``)
        whose schema must not hold these tables yet.
    schema : str, optional
        With a URL: the database schema to write into (created when missing).

    Returns
    -------
    str
        What was written, for messages and for ``read_omop`` (``duckdb:///...`` or the
        URL without password).

    Raises
    ------
    ContractError
        The events hold a row the CDM cannot (see :func:`omop_frames`); nothing is written.
    FlareMLError
        The database already holds CDM tables, or cannot be reached.

    Warns
    -----
    UserWarning
        Disease-status records or non-ALP lab results were left out (no table for them).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import pandas as pd
    >>> from flare_ml.records.omop import read_omop
    >>> diagnosis = {"patient_id": ["A7"], "condition_date": ["2023-11-02"],
    ...              "vocabulary": ["SNOMED"], "code": ["399068003"]}
    >>> scan = {"patient_id": ["A7"], "assessment_date": ["2024-02-01"],
    ...         "modality": ["bone_scan"], "text": ["Bone scan: no new lesions."]}
    >>> events = ClinicalEvents.from_frames(persons=pd.DataFrame({"patient_id": ["A7"]}),
    ...     conditions=pd.DataFrame(diagnosis), reports=pd.DataFrame(scan))
    >>> back = read_omop(write_omop_events(events, pathlib.Path(tempfile.mkdtemp()) / "x.db"))
    >>> back.conditions[["vocabulary", "code"]].values.tolist(), back.reports["modality"][0]
    ([['SNOMED', '399068003']], 'bone_scan')

    """
    frames = omop_frames(events)
    left_out = _not_written(events)
    if left_out:
        warnings.warn("not written to OMOP: " + "; ".join(left_out), UserWarning, stacklevel=2)
    text = os.fspath(path_or_url)
    if "://" not in text:
        _write_duckdb_file(frames, Path(text))
        return _target(text)
    url = sa.make_url(text)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if schema:
                conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
            present = set(sa.inspect(conn).get_table_names(schema=schema))
            meta = cdm_metadata(schema)
            clash = sorted(present & {t.name for t in meta.tables.values()})
            if clash:
                raise FlareMLError(
                    f"{_target(text)} already holds the CDM tables "
                    f"{', '.join(clash)}; write into an empty database or schema"
                )
            meta.create_all(conn)
            _insert(conn, meta, frames)
    except sa.exc.OperationalError as exc:
        raise FlareMLError(f"cannot write to {_target(text)}: {exc.orig}") from None
    finally:
        engine.dispose()
    return _target(text)


def write_omop(
    cohort: SimulatedCohort,
    path_or_url: str | os.PathLike[str],
    *,
    bone_scan_share: float = DEFAULT_BONE_SCAN_SHARE,
    schema: str | None = None,
) -> str:
    """Write a simulated cohort's records as an OMOP CDM 5.4 database.

    The records are :func:`flare_ml.simulate.records.cohort_events` (the same the FHIR
    writer writes), written by :func:`write_omop_events`.

    Parameters
    ----------
    cohort : SimulatedCohort
        The simulated cohort (:func:`flare_ml.simulate.simulate_cohort`).
    path_or_url : str or PathLike
        See :func:`write_omop_events`.
    bone_scan_share : float, default 0.3
        Share of follow-up scans reported as bone scans (the reports become NOTE rows).
    schema : str, optional
        See :func:`write_omop_events`.

    Returns
    -------
    str
        What was written (``duckdb:///...`` or the URL without password).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from flare_ml.simulate import simulate_cohort
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "cdm.duckdb"
    >>> write_omop(simulate_cohort(3, seed=1), out).endswith("cdm.duckdb")
    True

    """
    events = cohort_events(cohort, bone_scan_share=bone_scan_share)
    return write_omop_events(events, path_or_url, schema=schema)
