"""Read the clinical events flare-ml needs from an OMOP CDM database (DuckDB or PostgreSQL).

:func:`read_omop` opens a CDM 5.4 (or 5.3) database through SQLAlchemy Core, one code path
for every engine: a plain path is a DuckDB file (opened read-only), anything with ``://`` a
SQLAlchemy URL (``postgresql+psycopg://...``). It reads PERSON (the site's id is
``person_source_value`` when set, else ``person_id``), CONDITION_OCCURRENCE (standard and
source concepts in SNOMED, ICD-10-CM, ICD-10 or ICD-O-3, matched through the CDM's own
CONCEPT table by ``vocabulary_id`` and ``concept_code``), DRUG_EXPOSURE (the RxNorm
ingredient of each exposure: the concept itself when it is an Ingredient, else its
Ingredient ancestors in CONCEPT_ANCESTOR), the Oncology extension's treatment-regimen
EPISODE rows when present (their linked drug exposures start at the regimen's start),
MEASUREMENT (ALP: concept 3035995 or any concept with LOINC code 6768-6) and NOTE
(radiology reports, recognised by note class, title or type). No concept id is hard-coded
except ALP's 3035995, a documented shortcut. What it leaves out is reported as
:class:`~flare_ml.records.events.Dropped` items with counts and example ids. Details and the
CDM 5.3 / 5.4 differences it tolerates are in ``docs/records_omop.md``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import sqlalchemy as sa

from flare_ml.data import contract as c
from flare_ml.errors import FlareMLError
from flare_ml.records.events import (
    ALP_LOINC,
    ClinicalEvents,
    Dropped,
    dropped_for,
    modality_of,
)

__all__ = [
    "ALP_CONCEPT_ID",
    "IMAGING_NOTE_CODES",
    "REQUIRED_TABLES",
    "OmopError",
    "modality_of",
    "omop_url",
    "read_omop",
]

STAGE: Final = "omop"
#: OMOP's standard concept for LOINC 6768-6 (alkaline phosphatase, serum or plasma): the
#: one concept id used directly, as a shortcut beside the LOINC match
ALP_CONCEPT_ID: Final = 3035995
#: tables without which nothing can be read
REQUIRED_TABLES: Final = ("person", "concept", "condition_occurrence", "drug_exposure")
#: tables read when present (a missing one is reported, not an error)
OPTIONAL_TABLES: Final = ("measurement", "note", "concept_ancestor", "episode", "episode_event")
#: the condition vocabularies of the cancer-type table (OMOP ``vocabulary_id`` spelling)
CONDITION_VOCABULARIES: Final = ("SNOMED", "ICD10CM", "ICD10", "ICDO3")
#: LOINC document-ontology codes of imaging reports used as NOTE.note_class_concept_id
IMAGING_NOTE_CODES: Final = ("18748-4", "18726-0", "18782-3")
_IMAGING_WORDS: Final = re.compile(
    r"radiolog|imaging|\bct\b|computed tomograph|\bpet\b|pet[-/ ]?ct|\bmri\b|magnetic resonance"
    r"|bone scan|scintigra|x-ray|radiograph|\bspect\b",
    re.IGNORECASE,
)
_ICD10_SHAPE: Final = re.compile(r"^[A-Z]\d{2}(\.?[0-9A-Z]{1,4})?$")


class OmopError(FlareMLError, ValueError):
    """The database cannot be reached, or it lacks the tables or columns the reader needs."""


def omop_url(url_or_path: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL of ``--db``: a plain path is a DuckDB file.

    Examples
    --------
    >>> omop_url("cdm.duckdb")
    'duckdb:///cdm.duckdb'
    >>> omop_url("postgresql+psycopg://me@localhost/cdm")
    'postgresql+psycopg://me@localhost/cdm'

    """
    text = os.fspath(url_or_path)
    return text if "://" in text else f"duckdb:///{text}"


def _engine(url_or_path: str | os.PathLike[str]) -> tuple[sa.Engine, str]:
    text = os.fspath(url_or_path)
    if "://" not in text:
        path = Path(text)
        if not path.is_file():
            raise OmopError(
                f"no DuckDB file at {path}; --db takes a DuckDB file path or a SQLAlchemy URL "
                "(postgresql+psycopg://user@host/db)"
            )
        label = f"duckdb:///{path}"
        return sa.create_engine(label, connect_args={"read_only": True}), label
    try:
        url = sa.make_url(text)
        args = {"read_only": True} if url.drivername.startswith("duckdb") else {}
        if url.drivername.startswith("duckdb") and not Path(url.database or "").is_file():
            raise OmopError(f"no DuckDB file at {url.database}")
        return sa.create_engine(url, connect_args=args), url.render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise OmopError(f"--db {text!r} is not a usable SQLAlchemy URL: {exc}") from None


class _Cdm:
    """The tables and columns one database holds, and quoting for its dialect."""

    def __init__(self, conn: sa.Connection, schema: str | None) -> None:
        # information_schema, not SQLAlchemy's inspector: the same query on every engine
        # (duckdb-engine's column reflection queries catalogs DuckDB 2 lacks)
        listing = _query(
            conn,
            """SELECT table_name AS t, column_name AS c FROM information_schema.columns
            WHERE table_schema = COALESCE(:schema, current_schema())
              AND table_catalog = current_database()""",
            schema=schema,
        )
        prep = conn.dialect.identifier_preparer
        self.prefix = f"{prep.quote_schema(schema)}." if schema else ""
        self.tables: dict[str, str] = {}
        self.columns: dict[str, set[str]] = {}
        for table, column in listing.itertuples(index=False):
            self.tables.setdefault(str(table).lower(), str(table))
            self.columns.setdefault(str(table).lower(), set()).add(str(column).lower())
        self._prep = prep

    def has(self, table: str) -> bool:
        return table in self.tables

    def t(self, table: str) -> str:
        """The quoted, schema-qualified name of a table."""
        return self.prefix + self._prep.quote(self.tables[table])

    def col(self, table: str, alias: str, column: str) -> str:
        """``alias.column`` when the table has the column, else ``NULL``."""
        return f"{alias}.{column}" if column in self.columns.get(table, set()) else "NULL"

    def missing(self, table: str, columns: Iterable[str]) -> list[str]:
        """The columns of ``columns`` the table lacks."""
        return sorted(set(columns) - self.columns.get(table, set()))

    def unreadable(self, conn: sa.Connection, table: str, columns: Iterable[str]) -> list[Dropped]:
        """An optional table without the CDM's columns: its rows, reported as not read."""
        missing = self.missing(table, columns)
        if not missing:
            return []
        count = int(conn.execute(sa.text(f"SELECT count(*) FROM {self.t(table)}")).scalar_one())
        reason = (
            f"rows of {table.upper()} not read: the table lacks the CDM column(s) "
            f"{', '.join(missing)} (found: {', '.join(sorted(self.columns[table])[:6])})"
        )
        return [Dropped(STAGE, reason, count)]

    def require(self, table: str, columns: Iterable[str]) -> None:
        missing = self.missing(table, columns)
        if missing:
            raise OmopError(
                f"table {table.upper()} lacks the column(s) {', '.join(missing)} that OMOP CDM "
                "5.3 and 5.4 require"
            )


def _query(conn: sa.Connection, sql: str, **params: Any) -> pd.DataFrame:
    statement = sa.text(sql)
    lists = [k for k, v in params.items() if isinstance(v, list | tuple)]
    if lists:
        statement = statement.bindparams(*(sa.bindparam(k, expanding=True) for k in lists))
    result = conn.execute(statement, params)
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _ids(values: Iterable[Any]) -> list[str]:
    return [str(int(v)) if isinstance(v, float) and v == int(v) else str(v) for v in values]


def _persons(conn: sa.Connection, cdm: _Cdm) -> tuple[pd.DataFrame, dict[Any, str], list[Dropped]]:
    cdm.require("person", ("person_id",))
    frame = _query(
        conn,
        f"SELECT p.person_id AS person_id, {cdm.col('person', 'p', 'person_source_value')} "
        f"AS source_value FROM {cdm.t('person')} p",
    )
    source = frame["source_value"].astype("string").str.strip()
    own = frame["person_id"].map(lambda v: _ids([v])[0])
    ids = source.where(source.notna() & (source != ""), own).astype(str)
    clash = ids.duplicated(keep=False) & (ids != own)
    dropped = dropped_for(
        STAGE,
        "persons whose person_source_value another person shares (identified by person_id)",
        own[clash],
    )
    ids = ids.where(~clash, own)
    mapping = dict(zip(frame["person_id"], ids, strict=True))
    return pd.DataFrame({c.PATIENT_ID: ids}), mapping, dropped


def _conditions(conn: sa.Connection, cdm: _Cdm, person: dict[Any, str]) -> pd.DataFrame:
    from flare_ml.records.mappings import cancer_type_of

    cdm.require(
        "condition_occurrence", ("person_id", "condition_concept_id", "condition_start_date")
    )
    co = "condition_occurrence"
    frame = _query(
        conn,
        f"""SELECT co.person_id AS person_id, co.condition_start_date AS condition_date,
            sc.vocabulary_id AS vocabulary, sc.concept_code AS code,
            xc.vocabulary_id AS source_vocabulary, xc.concept_code AS source_code,
            {cdm.col(co, "co", "condition_source_value")} AS source_value
        FROM {cdm.t(co)} co
        LEFT JOIN {cdm.t("concept")} sc ON sc.concept_id = co.condition_concept_id
        LEFT JOIN {cdm.t("concept")} xc
            ON xc.concept_id = {cdm.col(co, "co", "condition_source_concept_id")}""",
    )
    rows = []
    for pid, day, vocab, code, s_vocab, s_code, s_value in frame.itertuples(index=False):
        pairs = [(vocab, code), (s_vocab, s_code)]
        if not isinstance(s_vocab, str) and isinstance(s_value, str):
            value = s_value.strip().upper()
            if _ICD10_SHAPE.match(value):  # an unmapped ICD-10 source code, documented
                pairs.append(("ICD10CM", value))
        for v, k in pairs:
            if not isinstance(v, str) or v not in CONDITION_VOCABULARIES or k is None:
                continue
            k = str(k)
            if v == "ICDO3" and "-" in k:  # histology/behaviour-topography: the topography
                k = k.split("-", 1)[1]
            if cancer_type_of(v, k) is not None:
                rows.append((person.get(pid, _ids([pid])[0]), day, v, k))
    return pd.DataFrame(rows, columns=[c.PATIENT_ID, "condition_date", "vocabulary", "code"])


def _drugs(
    conn: sa.Connection, cdm: _Cdm, person: dict[Any, str]
) -> tuple[pd.DataFrame, list[Dropped]]:
    from flare_ml.records.mappings import therapy_classes_table

    de = "drug_exposure"
    cdm.require(
        de, ("drug_exposure_id", "person_id", "drug_concept_id", "drug_exposure_start_date")
    )
    table = therapy_classes_table()
    names = sorted(set(table["ingredient"]))
    codes = sorted(set(table.loc[table["rxnorm_code"] != "", "rxnorm_code"])) or ["-"]
    end = cdm.col(de, "d", "drug_exposure_end_date")
    select = (
        f"d.drug_exposure_id AS drug_exposure_id, d.person_id AS person_id, "
        f"d.drug_exposure_start_date AS start_date, {end} AS end_date, "
        "i.concept_name AS ingredient, i.vocabulary_id AS vocabulary, i.concept_code AS code"
    )
    parts = [
        f"""SELECT {select} FROM {cdm.t(de)} d
        JOIN {cdm.t("concept")} i ON i.concept_id = d.drug_concept_id
        WHERE i.concept_class_id = 'Ingredient'"""
    ]
    if cdm.has("concept_ancestor"):
        parts.append(
            f"""SELECT {select} FROM {cdm.t(de)} d
            JOIN {cdm.t("concept_ancestor")} ca ON ca.descendant_concept_id = d.drug_concept_id
            JOIN {cdm.t("concept")} i ON i.concept_id = ca.ancestor_concept_id
            WHERE i.concept_class_id = 'Ingredient'
              AND ca.ancestor_concept_id <> ca.descendant_concept_id"""
        )
    mapped = (
        f"SELECT * FROM ({' UNION ALL '.join(parts)}) x WHERE lower(x.ingredient) IN :names "
        "OR (x.vocabulary IN ('RxNorm', 'RxNorm Extension') AND x.code IN :codes)"
    )
    frame = _query(conn, mapped, names=names, codes=codes).drop_duplicates(
        ["drug_exposure_id", "ingredient"]
    )
    unmapped = _query(
        conn,
        f"""SELECT d.drug_exposure_id AS id FROM {cdm.t(de)} d
        WHERE d.drug_exposure_id NOT IN (SELECT m.drug_exposure_id FROM ({mapped}) m)""",
        names=names,
        codes=codes,
    )
    dropped = dropped_for(
        STAGE,
        "drug exposures with no ingredient in the therapy-class table (not anticancer "
        "therapy flare-ml knows)",
        _ids(unmapped["id"]),
    )
    frame, more = _episodes(conn, cdm, frame)
    dropped += more
    no_start = frame["start_date"].isna()
    dropped += dropped_for(
        STAGE,
        "anticancer drug exposures without a start date",
        _ids(frame.loc[no_start, "drug_exposure_id"]),
    )
    frame = frame[~no_start]
    code = (
        frame["code"]
        .astype(str)
        .where(frame["vocabulary"].isin(["RxNorm", "RxNorm Extension"]), "")
    )
    return (
        pd.DataFrame(
            {
                c.PATIENT_ID: [person.get(p, _ids([p])[0]) for p in frame["person_id"]],
                "start_date": frame["start_date"],
                "end_date": frame["end_date"],
                "ingredient": frame["ingredient"].astype(str).str.lower(),
                "rxnorm_code": code,
            }
        ),
        dropped,
    )


def _episodes(
    conn: sa.Connection, cdm: _Cdm, drugs: pd.DataFrame
) -> tuple[pd.DataFrame, list[Dropped]]:
    """Date the drug exposures linked to a treatment-regimen EPISODE by the regimen."""
    if not cdm.has("episode"):
        return drugs, []
    bad = cdm.unreadable(
        conn, "episode", ("episode_id", "episode_concept_id", "episode_start_date")
    )
    if bad:
        return drugs, bad
    episodes = _query(
        conn,
        f"""SELECT e.episode_id AS episode_id, e.episode_start_date AS start_date,
            {cdm.col("episode", "e", "episode_end_date")} AS end_date
        FROM {cdm.t("episode")} e JOIN {cdm.t("concept")} k ON k.concept_id = e.episode_concept_id
        WHERE k.vocabulary_id = 'Episode' AND lower(k.concept_name) = 'treatment regimen'""",
    )
    if episodes.empty:
        return drugs, []
    links = pd.DataFrame(columns=["episode_id", "event_id"])
    event_columns = ("episode_id", "event_id", "episode_event_field_concept_id")
    if cdm.has("episode_event") and not cdm.missing("episode_event", event_columns):
        links = _query(
            conn,
            f"""SELECT ee.episode_id AS episode_id, ee.event_id AS event_id
            FROM {cdm.t("episode_event")} ee
            JOIN {cdm.t("concept")} f ON f.concept_id = ee.episode_event_field_concept_id
            WHERE f.vocabulary_id = 'CDM'
              AND lower(f.concept_name) = 'drug_exposure.drug_exposure_id'""",
        )
    linked = links.merge(episodes, on="episode_id").drop_duplicates("event_id")
    dropped = dropped_for(
        STAGE,
        "treatment-regimen episodes without a linked drug exposure (regimen concepts are not "
        "expanded to ingredients)",
        _ids(sorted(set(episodes["episode_id"]) - set(links["episode_id"]))),
    )
    if linked.empty:
        return drugs, dropped
    by_event = linked.set_index("event_id")
    hit = drugs["drug_exposure_id"].isin(by_event.index)
    out = drugs.copy()
    out.loc[hit, "start_date"] = out.loc[hit, "drug_exposure_id"].map(by_event["start_date"])
    ends = out.loc[hit, "drug_exposure_id"].map(by_event["end_date"])
    out.loc[hit, "end_date"] = ends.where(ends.notna(), out.loc[hit, "end_date"])
    return out, dropped


def _labs(
    conn: sa.Connection, cdm: _Cdm, person: dict[Any, str]
) -> tuple[pd.DataFrame, list[Dropped]]:
    columns = [c.PATIENT_ID, "sample_date", "test", "value", "unit"]
    if not cdm.has("measurement"):
        return pd.DataFrame(columns=columns), []  # no MEASUREMENT table: no ALP
    m = "measurement"
    bad = cdm.unreadable(
        conn, m, ("measurement_id", "person_id", "measurement_concept_id", "measurement_date")
    )
    if bad:
        return pd.DataFrame(columns=columns), bad
    frame = _query(
        conn,
        f"""SELECT m.measurement_id AS id, m.person_id AS person_id,
            m.measurement_date AS sample_date, {cdm.col(m, "m", "value_as_number")} AS value,
            u.concept_code AS unit_code, {cdm.col(m, "m", "unit_source_value")} AS unit_source
        FROM {cdm.t(m)} m
        LEFT JOIN {cdm.t("concept")} k ON k.concept_id = m.measurement_concept_id
        LEFT JOIN {cdm.t("concept")} u ON u.concept_id = {cdm.col(m, "m", "unit_concept_id")}
        WHERE m.measurement_concept_id = :alp
           OR (k.vocabulary_id = 'LOINC' AND k.concept_code = :loinc)""",
        alp=ALP_CONCEPT_ID,
        loinc=ALP_LOINC,
    )
    value = pd.to_numeric(frame["value"].astype(object), errors="coerce")
    unit = frame["unit_code"].astype("string").str.strip()
    fallback = frame["unit_source"].astype("string").str.strip()
    unit = unit.where(unit.notna() & (unit != ""), fallback)
    ids = np.asarray(_ids(frame["id"]), dtype=object)
    no_date = frame["sample_date"].isna().to_numpy()
    no_value = value.isna().to_numpy() & ~no_date
    no_unit = (unit.isna() | (unit == "")).to_numpy() & ~no_date & ~no_value
    dropped = (
        dropped_for(
            STAGE,
            "ALP measurements without a date",
            ids[no_date],
        )
        + dropped_for(
            STAGE,
            "ALP measurements without a numeric value",
            ids[no_value],
        )
        + dropped_for(
            STAGE,
            "ALP measurements without a unit (no unit concept, no unit_source_value)",
            ids[no_unit],
        )
    )
    keep = ~(no_date | no_value | no_unit)
    labs = pd.DataFrame(
        {
            c.PATIENT_ID: [person.get(p, _ids([p])[0]) for p in frame["person_id"][keep]],
            "sample_date": frame["sample_date"][keep].to_numpy(),
            "test": "alp",
            "value": value[keep].to_numpy(dtype=float),
            "unit": unit[keep].astype(str).to_numpy(),
        }
    )
    return labs, dropped


def _reports(
    conn: sa.Connection, cdm: _Cdm, person: dict[Any, str]
) -> tuple[pd.DataFrame, list[Dropped]]:
    columns = [c.PATIENT_ID, c.ASSESSMENT_DATE, "modality", "text", "report_id"]
    if not cdm.has("note"):
        return pd.DataFrame(columns=columns), []  # no NOTE table: no report
    n = "note"
    bad = cdm.unreadable(conn, n, ("note_id", "person_id", "note_date", "note_text"))
    if bad:
        return pd.DataFrame(columns=columns), bad
    note_class, note_type = "note_class_concept_id", "note_type_concept_id"
    frame = _query(
        conn,
        f"""SELECT n.note_id AS id, n.person_id AS person_id, n.note_date AS note_date,
            {cdm.col(n, "n", "note_title")} AS title, n.note_text AS text,
            k.vocabulary_id AS class_vocabulary, k.concept_code AS class_code,
            k.concept_name AS class_name, t.concept_name AS type_name
        FROM {cdm.t(n)} n
        LEFT JOIN {cdm.t("concept")} k ON k.concept_id = {cdm.col(n, "n", note_class)}
        LEFT JOIN {cdm.t("concept")} t ON t.concept_id = {cdm.col(n, "n", note_type)}""",
    )
    ids = np.asarray(_ids(frame["id"]), dtype=object)
    by_class = (frame["class_vocabulary"] == "LOINC") & frame["class_code"].isin(IMAGING_NOTE_CODES)

    def words(col: str) -> pd.Series:
        return frame[col].astype("string").fillna("").str.contains(_IMAGING_WORDS)

    radiology = (by_class | words("class_name") | words("title") | words("type_name")).to_numpy()
    text = frame["text"].astype("string").fillna("").str.strip()
    no_date = frame["note_date"].isna().to_numpy() & radiology
    no_text = (text == "").to_numpy() & radiology & ~no_date
    dropped = (
        dropped_for(
            STAGE,
            "notes that are not radiology reports (by note class, title or type)",
            ids[~radiology],
        )
        + dropped_for(
            STAGE,
            "radiology notes without a date",
            ids[no_date],
        )
        + dropped_for(
            STAGE,
            "radiology notes without text",
            ids[no_text],
        )
    )
    keep = radiology & ~no_date & ~no_text
    kept = frame[keep]
    modality = [modality_of(t, x) for t, x in zip(kept["title"], kept["text"], strict=True)]
    return (
        pd.DataFrame(
            {
                c.PATIENT_ID: [person.get(p, _ids([p])[0]) for p in kept["person_id"]],
                c.ASSESSMENT_DATE: kept["note_date"].to_numpy(),
                "modality": modality,
                "text": text[keep].astype(str).to_numpy(),
                "report_id": ids[keep],
            },
            columns=columns,
        ),
        dropped,
    )


def read_omop(url_or_path: str | os.PathLike[str], *, schema: str | None = None) -> ClinicalEvents:
    """Read the clinical events of an OMOP CDM 5.4 (or 5.3) database.

    Parameters
    ----------
    url_or_path : str or PathLike
        A DuckDB file path (opened read-only) or a SQLAlchemy URL
        (``postgresql+psycopg://user@host:5432/db``, ``duckdb:///path``).
    schema : str, optional
        The database schema holding the CDM tables (default: the connection's own).

    Returns
    -------
    ClinicalEvents
        Persons, cancer conditions, anticancer drug exposures (by RxNorm ingredient), ALP
        results, radiology reports; ``dropped`` lists what was left out and why.

    Raises
    ------
    OmopError
        The database cannot be reached, or lacks a required table or column.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from flare_ml.simulate import simulate_cohort
    >>> from flare_ml.simulate.omop import write_omop
    >>> cohort = simulate_cohort(3, seed=4)
    >>> db = pathlib.Path(tempfile.mkdtemp()) / "cdm.duckdb"
    >>> _ = write_omop(cohort, db)
    >>> events = read_omop(db)
    >>> sorted(events.persons["patient_id"]) == sorted(cohort.timepoints["patient_id"].unique())
    True
    >>> set(events.labs["test"])
    {'alp'}

    """
    engine, label = _engine(url_or_path)
    try:
        with engine.connect() as conn:
            cdm = _Cdm(conn, schema)
            missing = [t for t in REQUIRED_TABLES if not cdm.has(t)]
            if missing:
                where = f"schema {schema!r}" if schema else "the default schema"
                found = ", ".join(sorted(cdm.tables)[:12]) or "no tables"
                raise OmopError(
                    f"{label} is not an OMOP CDM: {where} lacks the table(s) "
                    f"{', '.join(t.upper() for t in missing)} (found: {found}); "
                    "pass --schema when the CDM lives in another schema"
                )
            persons, person, dropped = _persons(conn, cdm)
            conditions = _conditions(conn, cdm, person)
            drugs, more = _drugs(conn, cdm, person)
            dropped += more
            labs, more = _labs(conn, cdm, person)
            dropped += more
            reports, more = _reports(conn, cdm, person)
            dropped += more
    except sa.exc.SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        raise OmopError(f"cannot read the OMOP CDM at {label}: {str(detail).strip()}") from None
    finally:
        engine.dispose()
    return ClinicalEvents.from_frames(
        persons=persons,
        conditions=conditions,
        drugs=drugs,
        labs=labs,
        reports=reports,
        dropped=dropped,
        source=f"omop {label}",
    )
