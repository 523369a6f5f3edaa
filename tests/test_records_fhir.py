"""FHIR R4 records: the simulator's writer, the adapter's reader and the round trip.

A simulated cohort (40 patients, site ``nordic``, seed 3; all synthetic) is written as bulk
NDJSON and as per-patient transaction Bundles, read back with
:func:`flare_ml.records.fhir.read_fhir` and assembled with
:func:`flare_ml.records.assemble.assemble_timepoints`. The events must equal what was
written; the assembled table must equal the simulated one per column, except where a step
loses information by design (docs/records_fhir.md, "Round trip"). Hand-built resources test
the mCODE disease-status fallback, malformed input and the drop report.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flare_ml.cli import app
from flare_ml.data import contract as c
from flare_ml.data import read_timepoints
from flare_ml.errors import ContractError
from flare_ml.records.assemble import STATUS_RESPONSES, assemble_timepoints
from flare_ml.records.fhir import read_fhir
from flare_ml.records.mappings import cancer_type_of, ingredient_role, therapy_class_of
from flare_ml.simulate import simulate_cohort
from flare_ml.simulate.fhir import RESPONSE_TO_STATUS, write_fhir, write_fhir_events
from flare_ml.simulate.reports import simulate_reports

KEY = [c.PATIENT_ID, c.ASSESSMENT_DATE]
SEED = 3


@pytest.fixture(scope="module")
def simulated() -> tuple[Any, Any]:
    cohort = simulate_cohort(40, site="nordic", seed=SEED)
    return cohort, simulate_reports(cohort.timepoints, seed=SEED)


@pytest.fixture(scope="module")
def exported(simulated: tuple[Any, Any], tmp_path_factory: pytest.TempPathFactory) -> dict:
    cohort, reports = simulated
    root = tmp_path_factory.mktemp("fhir")
    ndjson = write_fhir(cohort, reports, root / "ndjson", disease_status_share=0.3)
    bundle = write_fhir(cohort, reports, root / "bundle", layout="bundle", disease_status_share=0.3)
    return {"ndjson": ndjson, "bundle": bundle, "events": read_fhir(root / "ndjson")}


@pytest.fixture(scope="module")
def assembled(exported: dict) -> Any:
    return assemble_timepoints(exported["events"])


# --- the writer ------------------------------------------------------------------------------
def test_writer_writes_valid_r4_ndjson_per_resource_type(exported: dict) -> None:
    from fhir.resources.R4B import get_fhir_model_class

    export = exported["ndjson"]
    files = sorted(p.name for p in export.directory.iterdir())
    assert files == [
        "Condition.ndjson",
        "DiagnosticReport.ndjson",
        "Medication.ndjson",
        "MedicationAdministration.ndjson",
        "Observation.ndjson",
        "Patient.ndjson",
    ]
    for path in export.directory.iterdir():
        lines = path.read_text().splitlines()
        for line in lines:
            resource = json.loads(line)
            assert resource["resourceType"] == path.name.removesuffix(".ndjson")
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert export.counts["Patient"] == 40
    assert export.counts["Observation (disease status)"] > 0
    # both report encodings and both medication encodings are exercised
    reports = [json.loads(x) for x in (export.directory / "DiagnosticReport.ndjson").open()]
    assert any("conclusion" in r for r in reports) and any("presentedForm" in r for r in reports)
    meds = [json.loads(x) for x in (export.directory / "MedicationAdministration.ndjson").open()]
    assert any("medicationReference" in m for m in meds)
    assert any("medicationCodeableConcept" in m for m in meds)


def test_writer_refuses_a_directory_with_other_files(simulated: tuple, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ContractError, match="holds other files"):
        write_fhir(*simulated, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# --- the reader: events equal what was written --------------------------------------------------
def test_events_equal_the_simulated_records(simulated: tuple, exported: dict) -> None:
    cohort, reports = simulated
    events = exported["events"]
    truth = cohort.timepoints.groupby(c.PATIENT_ID).first()
    assert sorted(events.persons[c.PATIENT_ID]) == sorted(truth.index)
    # reports: same patient, date, modality and text, byte for byte
    got = events.reports.sort_values(KEY, ignore_index=True)[[*KEY, "modality", "text"]]
    want = reports.reports.sort_values(KEY, ignore_index=True)
    want[c.ASSESSMENT_DATE] = want[c.ASSESSMENT_DATE].astype("datetime64[ns]")
    pd.testing.assert_frame_equal(got, want[[*KEY, "modality", "text"]], check_dtype=False)
    # labs: every ALP sample, value and unit as the site wrote them (ukat/L at nordic)
    labs = events.labs.sort_values([c.PATIENT_ID, "sample_date"], ignore_index=True)
    sim = cohort.labs.sort_values([c.PATIENT_ID, "sample_date"], ignore_index=True)
    assert labs["value"].tolist() == pytest.approx(sim["value"].astype(float).tolist())
    assert set(labs["unit"]) == {"ukat/L"} and set(labs["test"]) == {"alp"}
    # conditions and drugs map back to each patient's cancer type and therapy class
    for pid, rows in events.conditions.groupby(c.PATIENT_ID):
        types = {
            cancer_type_of(v, code) for v, code in zip(rows.vocabulary, rows.code, strict=True)
        }
        assert types == {truth.loc[pid, c.CANCER_TYPE]}
    for pid, rows in events.drugs.groupby(c.PATIENT_ID):
        classes = {
            ingredient_role(i, code)[0]
            for i, code in zip(rows.ingredient, rows.rxnorm_code, strict=True)
        }
        assert therapy_class_of(classes) == truth.loc[pid, c.THERAPY_CLASS]
        assert (rows["start_date"] == truth.loc[pid, c.TREATMENT_START_DATE]).all()
    assert events.dropped == []


def test_bundles_read_as_the_ndjson_export(exported: dict) -> None:
    ndjson, bundle = exported["events"], read_fhir(exported["bundle"].directory)
    assert len(list(exported["bundle"].directory.glob("*.json"))) == 40
    text = next(exported["bundle"].directory.glob("*.json")).read_text()
    assert '"reference":"urn:uuid:' in text  # references go through fullUrls
    for name in ("persons", "conditions", "drugs", "labs", "reports", "disease_status"):
        a, b = getattr(ndjson, name), getattr(bundle, name)
        cols = [col for col in a.columns if col != "report_id"]
        a = a[cols].sort_values(cols, ignore_index=True)
        b = b[cols].sort_values(cols, ignore_index=True)
        pd.testing.assert_frame_equal(a, b, obj=name)


@pytest.mark.parametrize("layout", ["ndjson", "bundle"])
def test_any_events_survive_fhir_unchanged(simulated: tuple, tmp_path: Path, layout: str) -> None:
    """write_fhir_events then read_fhir is the identity on the events (all vocabularies)."""
    from flare_ml.simulate.records import cohort_events

    cohort, _ = simulated
    events = cohort_events(cohort)
    first = events.persons[c.PATIENT_ID].iloc[0]
    events.conditions = pd.concat(
        [
            events.conditions,
            pd.DataFrame(
                {
                    c.PATIENT_ID: [first] * 3,
                    "condition_date": pd.to_datetime(["2020-01-02"] * 3),
                    "vocabulary": ["SNOMED", "ICDO3", "ICD10"],
                    "code": ["399068003", "C61.9", "C61"],
                }
            ),
        ],
        ignore_index=True,
    )
    events.drugs.loc[0, "end_date"] = pd.Timestamp("2021-01-01")
    events.disease_status = pd.DataFrame(
        {
            c.PATIENT_ID: [first, first],
            "status_date": pd.to_datetime(["2020-02-01", "2020-05-01"]),
            "status": ["improved", "worsened"],
        }
    )
    write_fhir_events(events, tmp_path / "out", layout=layout)
    back = read_fhir(tmp_path / "out")
    assert back.dropped == []
    for name in ("persons", "conditions", "drugs", "labs", "reports", "disease_status"):
        a, b = getattr(events, name).copy(), getattr(back, name).copy()
        if name == "labs":
            a["test"] = a["test"].str.lower()
        cols = list(a.columns)
        a = a.sort_values(cols, ignore_index=True)
        b = b[cols].sort_values(cols, ignore_index=True)
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=name)


# --- the round trip ------------------------------------------------------------------------------
def _agreement(a: pd.Series, b: pd.Series) -> float:
    a, b = a.astype(object), b.astype(object)
    same = (a == b) | (a.isna() & b.isna())
    return float(same.mean())


def test_round_trip_agrees_with_the_simulated_table(
    simulated: tuple, exported: dict, assembled: Any
) -> None:
    cohort, reports = simulated
    truth, table = cohort.timepoints, assembled.timepoints
    assert assembled.counts["patients kept"] == 40
    img_t = truth[truth[c.ROW_TYPE] == "imaging"]
    img_r = table[table[c.ROW_TYPE] == "imaging"]
    # every scan comes back at its date, and nothing else is an imaging row
    assert sorted(map(tuple, img_t[KEY].values)) == sorted(map(tuple, img_r[KEY].values))
    both = img_t.merge(img_r, on=KEY, suffixes=("_t", "_r"))
    for col in (c.TREATMENT_START_DATE, c.CANCER_TYPE, c.THERAPY_CLASS):
        assert _agreement(both[f"{col}_t"], both[f"{col}_r"]) == 1.0, col
    alp_t, alp_r = both["alp_u_l_t"].to_numpy(), both["alp_u_l_r"].to_numpy()
    assert alp_r == pytest.approx(alp_t, abs=0.5, nan_ok=True)
    # the imaging columns equal what each report states (the reader's conventions) ...
    stated = reports.stated.merge(img_r, on=KEY, suffixes=("_s", "_r"))
    for col in (
        c.NEW_BONE_LESIONS,
        c.NEW_LESION_MORPHOLOGY,
        c.PROGRESSIVE_LYSIS,
        c.NEW_EXTRAOSSEOUS_LESION,
        c.KNOWN_LESION_SCLEROSIS,
    ):
        assert _agreement(stated[f"{col}_s"], stated[f"{col}_r"]) == 1.0, col
    # ... and the response is the stated one, else the disease status of the day, else NE
    status = exported["events"].disease_status.set_index([c.PATIENT_ID, "status_date"])["status"]
    expected = [
        s if isinstance(s, str) else STATUS_RESPONSES.get(status.get((pid, day), ""), "NE")
        for pid, day, s in zip(
            stated[c.PATIENT_ID],
            stated[c.ASSESSMENT_DATE],
            stated["extraosseous_response_s"],
            strict=True,
        )
    ]
    assert stated["extraosseous_response_r"].astype(str).tolist() == expected
    from_status = assembled.counts["responses taken from disease status (no report stated one)"]
    assert from_status > 0
    # lab rows: one per ALP sample date without a scan; ALP values carried exactly
    labs_r = table[table[c.ROW_TYPE] == "lab"]
    samples = set(
        zip(cohort.labs[c.PATIENT_ID], pd.to_datetime(cohort.labs["sample_date"]), strict=True)
    )
    assert set(zip(labs_r[c.PATIENT_ID], labs_r[c.ASSESSMENT_DATE], strict=True)) <= samples


def test_fhir_path_equals_the_in_memory_path(simulated: tuple, tmp_path: Path) -> None:
    """Records add no difference: FHIR -> table equals the core's events -> table."""
    from flare_ml.simulate.records import cohort_events

    cohort, _ = simulated
    direct = assemble_timepoints(cohort_events(cohort)).timepoints
    write_fhir(cohort, None, tmp_path / "records")
    via_fhir = assemble_timepoints(read_fhir(tmp_path / "records")).timepoints
    pd.testing.assert_frame_equal(via_fhir, direct)


# --- the mCODE disease-status fallback -------------------------------------------------------
def _patient_records(follow_up_text: str, status_code: str | None) -> list[dict]:
    subject = {"reference": "Patient/p1"}
    records: list[dict] = [
        {"resourceType": "Patient", "id": "p1"},
        {
            "resourceType": "Condition",
            "id": "c1",
            "subject": subject,
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C61"}]},
            "onsetDateTime": "2023-12-01",
        },
        {
            "resourceType": "MedicationRequest",
            "id": "m1",
            "status": "active",
            "intent": "order",
            "subject": subject,
            "authoredOn": "2024-01-01",
            "medicationCodeableConcept": {
                "coding": [
                    {
                        "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                        "code": "1307298",
                        "display": "enzalutamide",
                    }
                ]
            },
        },
        _report("r0", "2023-12-20", "Staging CT. Sclerotic bone metastases in T7."),
        _report("r1", "2024-03-01", follow_up_text),
    ]
    if status_code is not None:
        records.append(_status("s1", "2024-03-01", status_code))
    return records


def _report(rid: str, day: str, text: str, **extra: Any) -> dict:
    return {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "status": "final",
        "code": {"text": "CT chest, abdomen and pelvis"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": day,
        "presentedForm": [
            {"contentType": "text/plain", "data": base64.b64encode(text.encode()).decode()}
        ],
        **extra,
    }


def _status(oid: str, day: str, code: str, loinc: str = "97509-4") -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": day,
        "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
    }


def _alp(oid: str, day: str, value: float = 110.0, unit: str = "U/L") -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "6768-6"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": day,
        "valueQuantity": {"value": value, "unit": unit},
    }


def _write_ndjson(path: Path, records: list[dict], extra_lines: tuple[str, ...] = ()) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) for r in records] + list(extra_lines)
    (path / "export.ndjson").write_text("\n".join(lines) + "\n")
    return path


NO_RESPONSE = "Two new sclerotic lesions in T9 and L2. Known lesions unchanged."


@pytest.mark.parametrize(
    ("code", "status", "response"),
    [
        ("268910001", "improved", "SD"),  # a clinician's judgement, not a measured PR
        ("359746009", "stable", "SD"),
        ("271299001", "worsened", "PD"),
        ("709137006", "undetermined", "NE"),
        (None, None, "NE"),
    ],
)
def test_disease_status_fills_a_response_no_report_states(
    tmp_path: Path, code: str | None, status: str | None, response: str
) -> None:
    events = read_fhir(_write_ndjson(tmp_path, _patient_records(NO_RESPONSE, code)))
    assert events.disease_status["status"].tolist() == ([status] if status else [])
    table = assemble_timepoints(events).timepoints
    follow_up = table[table[c.ASSESSMENT_DATE] == pd.Timestamp("2024-03-01")].iloc[0]
    assert follow_up[c.EXTRAOSSEOUS_RESPONSE] == response
    assert follow_up[c.NEW_BONE_LESIONS] == 2


def test_a_stated_response_wins_over_disease_status(tmp_path: Path) -> None:
    text = NO_RESPONSE + " Partial response of the prostatic primary."
    events = read_fhir(_write_ndjson(tmp_path, _patient_records(text, "271299001")))
    table = assemble_timepoints(events).timepoints
    assert table[c.EXTRAOSSEOUS_RESPONSE].tolist() == ["baseline", "PR"]


def test_mcode_stu1_code_and_the_writer_mapping(tmp_path: Path) -> None:
    records = [
        *_patient_records(NO_RESPONSE, None),
        _status("s1", "2024-03-01", "271299001", "88040-1"),
    ]
    events = read_fhir(_write_ndjson(tmp_path, records))
    assert events.disease_status["status"].tolist() == ["worsened"]
    # the writer records what the reader maps back: PD -> worsened -> PD
    assert STATUS_RESPONSES[RESPONSE_TO_STATUS["PD"]] == "PD"
    assert STATUS_RESPONSES[RESPONSE_TO_STATUS["PR"]] == "SD"  # loses PR by design


# --- malformed input and the drop report ---------------------------------------------------
def _reasons(events: Any) -> dict[str, Any]:
    return {d.reason: d for d in events.dropped}


def test_malformed_resources_are_skipped_and_reported(tmp_path: Path) -> None:
    bad_date = _status("bad1", "2024-13-45", "271299001")
    records = [*_patient_records(NO_RESPONSE, None), bad_date]
    events = read_fhir(_write_ndjson(tmp_path, records, extra_lines=("{not json",)))
    reasons = _reasons(events)
    invalid = reasons["invalid FHIR R4 resource (skipped)"]
    assert invalid.count == 1
    assert "Observation/bad1" in invalid.examples[0]
    assert "export.ndjson line 6" in invalid.examples[0]
    assert "effectiveDateTime" in invalid.examples[0]
    assert reasons["line is not JSON"].examples[0].startswith("export.ndjson line 7")
    assert len(events.reports) == 2  # the rest is read
    with pytest.raises(ContractError, match="bad1"):
        read_fhir(tmp_path, strict=True)


def test_every_drop_is_reported_with_count_and_example_ids(tmp_path: Path) -> None:
    pdf = _report("pdf1", "2024-04-01", "x")
    pdf["presentedForm"] = [{"contentType": "application/pdf", "data": "JVBERi0="}]
    records = [
        *_patient_records(NO_RESPONSE, None),
        {**_report("nosubj", "2024-04-01", "text"), "subject": None},
        pdf,
        _report(
            "lab1",
            "2024-04-01",
            "Hb 12",
            category=[
                {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}
                    ]
                }
            ],
        ),
        {**_report("month", "2024-04", "CT text")},
        _status("odd", "2024-03-01", "550991000124107"),
        {
            "resourceType": "Observation",
            "id": "alp0",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "6768-6"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2024-02-01",
        },
        {
            "resourceType": "Observation",
            "id": "hb",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "subject": {"reference": "Patient/p1"},
        },
        {
            "resourceType": "Condition",
            "id": "icd9",
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-9-cm", "code": "185"}]},
        },
        {
            "resourceType": "MedicationAdministration",
            "id": "ma-missing",
            "status": "completed",
            "subject": {"reference": "Patient/p1"},
            "medicationReference": {"reference": "Medication/absent"},
            "effectiveDateTime": "2024-01-01",
        },
        {"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "AMB"}},
        {**_status("gone", "2024-03-01", "271299001"), "status": "entered-in-error"},
    ]
    records = [{k: v for k, v in r.items() if v is not None} for r in records]
    events = read_fhir(_write_ndjson(tmp_path, records))
    expected = {
        "DiagnosticReport without a subject": "DiagnosticReport/nosubj",
        "DiagnosticReport without text (presentedForm is application/pdf, not text/plain)": (
            "DiagnosticReport/pdf1"
        ),
        "DiagnosticReport not an imaging report (category)": "DiagnosticReport/lab1",
        "DiagnosticReport with a date less precise than a day": "DiagnosticReport/month (2024-04)",
        "disease-status value not in mCODE ConditionStatusTrendVS": (
            "Observation/odd (550991000124107)"
        ),
        "ALP Observation without a valueQuantity": "Observation/alp0",
        "Observation not read (not ALP 6768-6 or disease status)": "Observation/hb",
        "Condition without an ICD-10-CM, ICD-10, ICD-O-3 or SNOMED coding": "Condition/icd9",
        "MedicationAdministration medicationReference not found": (
            "MedicationAdministration/ma-missing"
        ),
        "resource type not read: Encounter": "Encounter/e1",
        "disease-status Observation with status entered-in-error": "Observation/gone",
    }
    reasons = _reasons(events)
    for reason, example in expected.items():
        assert reason in reasons, reason
        assert reasons[reason].count == 1 and reasons[reason].examples == (example,), reason
    assert {d.stage for d in events.dropped} == {"fhir"}
    # the extraction drops reach the assembled result's report
    result = assemble_timepoints(events)
    assert set(events.dropped) <= set(result.dropped)


def test_examples_are_capped_at_five_and_counted(tmp_path: Path) -> None:
    extra = [
        {"resourceType": "Encounter", "id": f"e{i}", "status": "finished", "class": {"code": "AMB"}}
        for i in range(8)
    ]
    events = read_fhir(_write_ndjson(tmp_path, _patient_records(NO_RESPONSE, None) + extra))
    drop = _reasons(events)["resource type not read: Encounter"]
    assert drop.count == 8 and len(drop.examples) == 5


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_mangled_resource_never_crashes_the_reader(tmp_path: Path, data: st.DataObject) -> None:
    """Any element of any resource replaced by any JSON: read, skip or a ContractError."""
    records = [*_patient_records(NO_RESPONSE, "268910001"), _alp("a1", "2024-02-01")]
    i = data.draw(st.integers(0, len(records) - 1), label="resource")
    key = data.draw(st.sampled_from(sorted(records[i])), label="element")
    sub = records[i][key]
    if isinstance(sub, dict) and sub and data.draw(st.booleans(), label="nested"):
        inner = data.draw(st.sampled_from(sorted(sub)), label="inner element")
        records[i] = {**records[i], key: {**sub, inner: data.draw(_JSON, label="value")}}
    else:
        records[i] = {**records[i], key: data.draw(_JSON, label="value")}
    folder = tmp_path / f"fuzz{data.draw(st.integers(0, 10**9))}"
    try:
        events = read_fhir(_write_ndjson(folder, records))
    except ContractError:
        return
    assert len(events.persons) <= 1
    kept = sum(len(getattr(events, n)) for n in ("labs", "reports", "disease_status"))
    assert kept + sum(d.count for d in events.dropped) >= 1


def test_missing_or_empty_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="does not exist"):
        read_fhir(tmp_path / "absent")
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(ContractError, match="no FHIR files"):
        read_fhir(tmp_path)


# --- the command line ----------------------------------------------------------------------------
def test_cli_simulate_fhir_then_ingest(tmp_path: Path) -> None:
    runner = CliRunner()
    records, out = tmp_path / "records", tmp_path / "tp.csv"
    result = runner.invoke(
        app,
        ["simulate", "--patients", "30", "--seed", "5", "--format", "fhir", "--out", str(records)],
    )
    assert result.exit_code == 0, result.output
    assert "DiagnosticReport" in result.output and (records / "Patient.ndjson").exists()
    result = runner.invoke(app, ["ingest", "fhir", "--input", str(records), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "patients kept: " in result.output
    table = read_timepoints(out).table
    assert table[c.PATIENT_ID].nunique() >= 25  # therapy class 'other' has no RxNorm drug


def test_cli_ingest_bad_input_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "tp.csv"
    result = runner.invoke(
        app, ["ingest", "fhir", "--input", str(tmp_path / "no"), "--out", str(out)]
    )
    assert result.exit_code == 2 and "does not exist" in result.output
    records = _write_ndjson(tmp_path / "r", [_status("bad1", "2024-13-45", "271299001")])
    result = runner.invoke(
        app, ["ingest", "fhir", "--input", str(records), "--out", str(out), "--strict"]
    )
    assert result.exit_code == 2 and "bad1" in result.output
    assert "Traceback" not in result.output and not out.exists()
    result = runner.invoke(app, ["ingest", "fhir", "--input", str(records), "--out", str(out)])
    assert result.exit_code == 2 and not out.exists()  # nothing left to assemble


def test_cli_simulate_refuses_an_unknown_format(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--patients", "5", "--format", "csv", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2 and "is not one of table, omop, fhir" in result.output
    assert not (tmp_path / "x").exists()
