"""Write a simulated cohort as an OMOP CDM 5.4 database (DuckDB file or any SQLAlchemy URL).

A site's records reach flare-ml as an OMOP Common Data Model, so the simulator can write its
cohorts as one: PERSON (the simulated ``patient_id`` as ``person_source_value``),
OBSERVATION_PERIOD, CONDITION_OCCURRENCE (a SNOMED standard concept and the ICD-10-CM source
code of the cancer type, from :func:`flare_ml.records.mappings.representative_condition`),
DRUG_EXPOSURE (the RxNorm ingredients of the therapy class, from
:func:`flare_ml.records.mappings.representative_drugs`; every second person gets a
clinical-drug concept linked to its ingredient through CONCEPT_ANCESTOR, so that both ways a
warehouse records a drug are exercised), MEASUREMENT (ALP as concept 3035995, LOINC 6768-6,
with UCUM units), NOTE (the simulated radiology report texts, note class LOINC 18748-4
"Diagnostic imaging study"), the Oncology extension's EPISODE (one treatment-regimen
episode per line) and EPISODE_EVENT (linking it to its drug exposures), and the CONCEPT and
CONCEPT_ANCESTOR rows for every concept it uses. Table and column names, types and NOT NULL
constraints follow the official CDM 5.4 DDL (OHDSI/CommonDataModel, ``inst/ddl/5.4``),
restricted to these tables; required concept fields the simulation cannot know (gender,
race, record type, encoding) hold 0, the CDM's "no matching concept". Concept ids are
site-local (>= 2,000,000,000, the CDM's range for local concepts) except ALP's 3035995;
vocabulary ids and concept codes are the real ones, which is what the reader matches
(the Episode and CDM-field concepts, matched by vocabulary and name, carry local codes).
Everything written is synthetic; see ``docs/records_omop.md``.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa

from flare_ml.data import contract as c
from flare_ml.errors import FlareMLError

__all__ = [
    "ALP_CONCEPT_ID",
    "LOCAL_CONCEPT_START",
    "NOTE_TITLES",
    "RADIOLOGY_NOTE_CLASS",
    "cdm_metadata",
    "omop_frames",
    "write_omop",
]

#: the first concept id of the site-local range (the CDM reserves ids >= 2,000,000,000)
LOCAL_CONCEPT_START: Final = 2_000_000_000
#: OMOP's standard concept for LOINC 6768-6, alkaline phosphatase in serum or plasma
ALP_CONCEPT_ID: Final = 3035995
#: the note class of radiology reports: LOINC document ontology "Diagnostic imaging study"
RADIOLOGY_NOTE_CLASS: Final = ("LOINC", "18748-4", "Diagnostic imaging study")
#: NOTE.note_title written for each report modality (the reader takes the modality from it)
NOTE_TITLES: Final = {
    "ct": "CT chest, abdomen and pelvis",
    "pet_ct": "FDG PET-CT",
    "bone_scan": "Bone scintigraphy",
    "mri": "MRI",
    "radiograph": "Radiograph",
}
#: the vocabulary of concepts that exist only in the simulation (clinical-drug products)
SIM_VOCABULARY: Final = "FLARE_ML_SIM"
#: UCUM spelling of the lab units the simulator's sites use
_UCUM: Final = {"u/l": ("U/L", "unit per liter"), "ukat/l": ("ukat/L", "microkatal per liter")}
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


def _day(value: Any) -> date:
    return pd.Timestamp(value).date()


def _report_frame(reports: Any) -> pd.DataFrame:
    frame = getattr(reports, "reports", reports)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError("reports must be a SimulatedReports or its report DataFrame")
    return frame


def omop_frames(cohort: Any, reports: Any) -> dict[str, pd.DataFrame]:
    """The CDM tables of a simulated cohort, as DataFrames (one per table).

    Parameters
    ----------
    cohort : SimulatedCohort
        From :func:`flare_ml.simulate.simulate_cohort` (its ``timepoints`` and ``labs``).
    reports : SimulatedReports or DataFrame
        From :func:`flare_ml.simulate.reports.simulate_reports` (``patient_id``,
        ``assessment_date``, ``modality``, ``text``).

    Returns
    -------
    dict of str to DataFrame
        Keyed by CDM table name; columns are a subset of :func:`cdm_metadata`'s.

    Examples
    --------
    >>> from flare_ml.simulate import simulate_cohort
    >>> from flare_ml.simulate.reports import simulate_reports
    >>> cohort = simulate_cohort(4, seed=2)
    >>> frames = omop_frames(cohort, simulate_reports(cohort.timepoints, seed=2))
    >>> n_scans = int((cohort.timepoints["row_type"] == "imaging").sum())
    >>> len(frames["person"]), len(frames["note"]) == n_scans
    (4, True)
    >>> int(frames["concept"]["concept_id"].min()) == ALP_CONCEPT_ID
    True

    """
    from flare_ml.records.mappings import representative_condition, representative_drugs

    table = cohort.timepoints
    concepts = _Concepts()
    alp_id = concepts.add(
        "LOINC",
        "6768-6",
        "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma",
        "Measurement",
        "Lab Test",
        concept_id=ALP_CONCEPT_ID,
    )
    note_class = concepts.add(*RADIOLOGY_NOTE_CLASS, "Meas Value", "Doc Type")
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
    persons, periods, conditions, drugs, ancestors = [], [], [], [], []
    episodes, episode_events = [], []
    person_ids: dict[str, int] = {}
    first = table.groupby(c.PATIENT_ID, sort=True).agg(
        start=(c.TREATMENT_START_DATE, "first"),
        first=(c.ASSESSMENT_DATE, "min"),
        last=(c.ASSESSMENT_DATE, "max"),
        cancer=(c.CANCER_TYPE, "first"),
        therapy=(c.THERAPY_CLASS, "first"),
    )
    for person_id, (pid, row) in enumerate(first.iterrows(), start=1):
        person_ids[str(pid)] = person_id
        start, last = _day(row["start"]), _day(row["last"])
        diagnosed = _day(min(row["start"], row["first"]) - pd.Timedelta(days=30))
        persons.append(
            {
                "person_id": person_id,
                "gender_concept_id": 0,
                "year_of_birth": start.year - 65,
                "race_concept_id": 0,
                "ethnicity_concept_id": 0,
                "person_source_value": str(pid),
            }
        )
        periods.append(
            {
                "observation_period_id": person_id,
                "person_id": person_id,
                "observation_period_start_date": diagnosed,
                "observation_period_end_date": max(last, start),
                "period_type_concept_id": 0,
            }
        )
        codes = representative_condition(str(row["cancer"]))
        snomed = codes.get("SNOMED")
        icd = codes.get("ICD10CM")
        label = c.CANCER_NAMES.get(str(row["cancer"]), "cancer")
        standard = (
            concepts.add("SNOMED", snomed, f"{label} (simulated)", "Condition", "Clinical Finding")
            if snomed
            else 0
        )
        source = (
            concepts.add("ICD10CM", icd, f"{label} (simulated)", "Condition", "ICD10 code", None)
            if icd
            else None
        )
        conditions.append(
            {
                "condition_occurrence_id": len(conditions) + 1,
                "person_id": person_id,
                "condition_concept_id": standard,
                "condition_start_date": diagnosed,
                "condition_type_concept_id": 0,
                "condition_source_value": icd,
                "condition_source_concept_id": source,
            }
        )
        regimen = representative_drugs(str(row["therapy"]))
        if regimen:  # the Oncology extension: one treatment-regimen episode per line
            episodes.append(
                {
                    "episode_id": person_id,
                    "person_id": person_id,
                    "episode_concept_id": regimen_id,
                    "episode_start_date": start,
                    "episode_number": 1,
                    "episode_object_concept_id": concepts.add(
                        SIM_VOCABULARY,
                        "+".join(name for name, _ in regimen) + " regimen",
                        " and ".join(name for name, _ in regimen) + " (simulated regimen)",
                        "Regimen",
                        "Regimen",
                    ),
                    "episode_type_concept_id": 0,
                }
            )
        for ingredient, code in regimen:
            vocabulary = "RxNorm" if code else SIM_VOCABULARY
            ingredient_id = concepts.add(
                vocabulary, code or ingredient, ingredient, "Drug", "Ingredient"
            )
            drug_id = ingredient_id
            if person_id % 2 == 0:  # a product, found through CONCEPT_ANCESTOR
                drug_id = concepts.add(
                    SIM_VOCABULARY,
                    f"{ingredient} product",
                    f"{ingredient} (simulated product)",
                    "Drug",
                    "Clinical Drug",
                )
                ancestors.append((ingredient_id, drug_id))
            drugs.append(
                {
                    "drug_exposure_id": len(drugs) + 1,
                    "person_id": person_id,
                    "drug_concept_id": drug_id,
                    "drug_exposure_start_date": start,
                    "drug_exposure_end_date": max(last, start),
                    "drug_type_concept_id": 0,
                    "drug_source_value": ingredient[:50],
                }
            )
            episode_events.append(
                {
                    "episode_id": person_id,
                    "event_id": len(drugs),
                    "episode_event_field_concept_id": drug_field,
                }
            )
    measurements = []
    labs = cohort.labs
    alp = labs[labs["test"].astype(str).str.strip().str.lower() == "alp"]
    for pid, day, value, unit in zip(
        alp[c.PATIENT_ID], alp["sample_date"], alp["value"], alp["unit"], strict=True
    ):
        key = str(unit).strip().lower().replace("µ", "u").replace(" ", "")
        ucum, name = _UCUM.get(key, (str(unit), str(unit)))
        measurements.append(
            {
                "measurement_id": len(measurements) + 1,
                "person_id": person_ids[str(pid)],
                "measurement_concept_id": alp_id,
                "measurement_date": _day(day),
                "measurement_type_concept_id": 0,
                "value_as_number": None if pd.isna(value) else float(value),
                "unit_concept_id": concepts.add("UCUM", ucum, name, "Unit", "Unit"),
                "measurement_source_value": "ALP",
                "unit_source_value": str(unit),
            }
        )
    notes = []
    for pid, day, modality, text in zip(
        *(
            _report_frame(reports)[col]
            for col in (c.PATIENT_ID, c.ASSESSMENT_DATE, "modality", "text")
        ),
        strict=True,
    ):
        notes.append(
            {
                "note_id": len(notes) + 1,
                "person_id": person_ids[str(pid)],
                "note_date": _day(day),
                "note_type_concept_id": 0,
                "note_class_concept_id": note_class,
                "note_title": NOTE_TITLES.get(str(modality), "Imaging report"),
                "note_text": str(text),
                "encoding_concept_id": 0,
                "language_concept_id": 0,
                "note_source_value": "radiology",
            }
        )
    ancestor_rows = [
        {
            "ancestor_concept_id": a,
            "descendant_concept_id": d,
            "min_levels_of_separation": 1,
            "max_levels_of_separation": 1,
        }
        for a, d in dict.fromkeys(ancestors)
    ]
    return {
        "concept": concepts.frame(),
        "concept_ancestor": pd.DataFrame(
            ancestor_rows, columns=[col.name for col in cdm_metadata().tables["concept_ancestor"].c]
        ),
        "person": pd.DataFrame(persons),
        "observation_period": pd.DataFrame(periods),
        "condition_occurrence": pd.DataFrame(conditions),
        "drug_exposure": pd.DataFrame(drugs),
        "episode": pd.DataFrame(episodes),
        "episode_event": pd.DataFrame(episode_events),
        "measurement": pd.DataFrame(measurements),
        "note": pd.DataFrame(notes),
    }


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


def write_omop(
    cohort: Any, reports: Any, path: str | os.PathLike[str], *, schema: str | None = None
) -> str:
    """Write a simulated cohort as an OMOP CDM 5.4 database.

    Parameters
    ----------
    cohort : SimulatedCohort
        The simulated cohort (:func:`flare_ml.simulate.simulate_cohort`).
    reports : SimulatedReports or DataFrame
        Its radiology reports (:func:`flare_ml.simulate.reports.simulate_reports`); each
        becomes a NOTE row.
    path : str or PathLike
        A DuckDB file path (written atomically: a temporary file beside it, then renamed;
        an existing file is replaced) or a SQLAlchemy URL (``postgresql+psycopg://...``)
        whose schema must not hold these tables yet.
    schema : str, optional
        With a URL: the database schema to write into (created when missing).

    Returns
    -------
    str
        What was written, for messages (``duckdb:///...`` or the URL without password).

    Raises
    ------
    FlareMLError
        The database already holds CDM tables, or cannot be reached.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from flare_ml.simulate import simulate_cohort
    >>> from flare_ml.simulate.reports import simulate_reports
    >>> cohort = simulate_cohort(3, seed=1)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "cdm.duckdb"
    >>> write_omop(cohort, simulate_reports(cohort.timepoints, seed=1), out).endswith("cdm.duckdb")
    True

    """
    frames = omop_frames(cohort, reports)
    text = os.fspath(path)
    if "://" not in text:
        target = Path(text)
        _write_duckdb_file(frames, target)
        return f"duckdb:///{target}"
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
                    f"{url.render_as_string(hide_password=True)} already holds the CDM tables "
                    f"{', '.join(clash)}; write into an empty database or schema"
                )
            meta.create_all(conn)
            _insert(conn, meta, frames)
    except sa.exc.OperationalError as exc:
        raise FlareMLError(
            f"cannot write to {url.render_as_string(hide_password=True)}: {exc.orig}"
        ) from None
    finally:
        engine.dispose()
    return url.render_as_string(hide_password=True)
