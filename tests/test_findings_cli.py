"""``flare-ml findings``: reports to findings, filling a timepoint table, bad input, review.

A small simulated cohort gets its imaging columns blanked and one report per imaging
row, written here from the row's values with a few hand-written phrasings (independent of
the simulator's report writer); ``findings --timepoints`` must fill the table back so that
``flare-ml validate`` accepts it and the imaging columns match the simulated ones.
"""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from flare_ml.cli import app
from flare_ml.data import contract as c
from flare_ml.data import read_table, write_table
from flare_ml.reports.findings import IMAGING_FINDINGS
from flare_ml.simulate import simulate_cohort

_WORDS = {1: "A new", 2: "Two new", 3: "Three new", 4: "Four new"}
_MORPHOLOGY = {"blastic": "sclerotic", "lytic": "lytic", "mixed": "mixed lytic and sclerotic"}
_RESPONSE = {
    "baseline": "Baseline staging examination.",
    "CR": "Complete response of the nodal disease.",
    "PR": "Partial response of the liver metastases.",
    "SD": "Stable disease of the lung primary.",
    "PD": "Progression of the hepatic metastases.",
    "NE": "Extraosseous disease not evaluable.",
}


def report_of(row: pd.Series, i: int) -> str:
    """One hand-phrased report stating the row's imaging findings."""
    n = int(row[c.NEW_BONE_LESIONS])
    lines = ["FINDINGS:" if i % 2 else "CT chest, abdomen and pelvis."]
    if n == 0:
        lines.append("No new lytic or blastic lesions." if i % 3 else "No new osseous lesions.")
    else:
        words = "Numerous new" if n >= 10 else _WORDS.get(n, f"{n} new")
        kind = _MORPHOLOGY[str(row[c.NEW_LESION_MORPHOLOGY])]
        noun = "lesion" if n == 1 else "lesions"
        lines.append(f"{words} {kind} {noun} in the thoracic spine.")
    if row[c.PROGRESSIVE_LYSIS] is True:
        lines.append("Progressive lytic destruction of the known L2 lesion.")
    if row[c.KNOWN_LESION_SCLEROSIS] is True:
        lines.append("Increased sclerosis of the known lytic lesions, likely treatment response.")
    if row[c.NEW_EXTRAOSSEOUS_LESION] is True:
        lines.append("New hepatic metastasis.")
    if row[c.BASELINE_MARROW_INVOLVEMENT] is True and row[c.EXTRAOSSEOUS_RESPONSE] == "baseline":
        lines.append("Diffuse marrow infiltration.")
    lines.append(("IMPRESSION: " if i % 2 else "") + _RESPONSE[str(row[c.EXTRAOSSEOUS_RESPONSE])])
    return " ".join(lines)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A cohort, its reports, and its timepoint table with the imaging columns blank."""
    folder = tmp_path_factory.mktemp("findings")
    cohort = simulate_cohort(6, seed=11).timepoints
    cohort[c.NEW_BONE_LESIONS] = cohort[c.NEW_BONE_LESIONS].clip(upper=10)
    cohort[c.NEW_LESION_MORPHOLOGY] = (
        cohort[c.NEW_LESION_MORPHOLOGY]
        .where(cohort[c.NEW_BONE_LESIONS].fillna(0).astype(int) > 0, "none")
        .where(cohort[c.ROW_TYPE] == "imaging")
    )
    imaging = cohort[cohort[c.ROW_TYPE] == "imaging"].reset_index(drop=True)
    reports = pd.DataFrame(
        {
            c.PATIENT_ID: imaging[c.PATIENT_ID],
            c.ASSESSMENT_DATE: imaging[c.ASSESSMENT_DATE].dt.strftime("%Y-%m-%d"),
            "modality": "ct",
            "text": [report_of(row, i) for i, row in imaging.iterrows()],
            "accession": [f"ACC{i:04d}" for i in range(len(imaging))],
        }
    )
    blank = cohort.copy()
    for name in IMAGING_FINDINGS:
        if name != c.BASELINE_MARROW_INVOLVEMENT:
            blank[name] = blank[name].astype(object).where(blank[c.ROW_TYPE] != "imaging", None)
    write_table(reports, folder / "reports.csv")
    write_table(blank, folder / "timepoints.csv")
    return folder, cohort, reports


def run(*args: str):
    result = CliRunner().invoke(app, ["findings", *args])
    assert "Traceback" not in result.output
    return result


def _imaging(table: pd.DataFrame) -> pd.DataFrame:
    rows = table[table[c.ROW_TYPE].astype(str) == "imaging"]
    out = rows[[c.PATIENT_ID, c.ASSESSMENT_DATE, *IMAGING_FINDINGS]].astype(object)
    out[c.ASSESSMENT_DATE] = pd.to_datetime(out[c.ASSESSMENT_DATE]).dt.strftime("%Y-%m-%d")
    # an optional finding left empty in the simulation is what a report not stating it gives
    return out.map(lambda v: "False" if pd.isna(v) else str(v)).reset_index(drop=True)


def test_fill_a_timepoint_table_that_validate_accepts(site, tmp_path):
    folder, cohort, reports = site
    out = tmp_path / "filled.parquet"
    result = run("--reports", str(folder / "reports.csv"), "--timepoints",
                 str(folder / "timepoints.csv"), "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{len(reports)} reports read" in result.output
    assert f"{len(reports)} rows filled" in result.output and "0 rows added" in result.output
    assert "0 conflicts" in result.output
    checked = CliRunner().invoke(app, ["validate", str(out)])
    assert checked.exit_code == 0, checked.output
    filled = read_table(out)
    pd.testing.assert_frame_equal(_imaging(filled), _imaging(cohort))


def test_reports_alone_give_one_row_per_report_and_a_review_page(site, tmp_path):
    folder, _, reports = site
    out, page = tmp_path / "findings.csv", tmp_path / "review.html"
    result = run("--reports", str(folder / "reports.csv"), "--out", str(out),
                 "--review", str(page))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "accession" in result.output  # the extra column is reported as kept
    found = read_table(out)
    assert (
        len(found) == len(reports) and found["accession"].tolist() == reports["accession"].tolist()
    )
    assert {*IMAGING_FINDINGS, "findings_uncertain", "evidence"} <= set(found.columns)
    html = page.read_text()
    assert html.count('<section class="card') == len(reports)


def test_a_report_without_a_row_adds_one_and_a_stranger_is_dropped(site, tmp_path):
    folder, cohort, reports = site
    table = read_table(folder / "timepoints.csv")
    gone = table.index[table[c.ROW_TYPE] == "imaging"][2]
    write_table(table.drop(index=gone).assign(site_note="x"), tmp_path / "fewer.csv")
    stranger = reports.iloc[[0]].assign(patient_id="ELSEWHERE-1")
    write_table(pd.concat([reports, stranger]), tmp_path / "reports.csv")
    out = tmp_path / "filled.csv"
    result = run("--reports", str(tmp_path / "reports.csv"), "--timepoints",
                 str(tmp_path / "fewer.csv"), "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 row added" in result.output and "1 report dropped" in result.output
    assert "ELSEWHERE-1" in result.output
    assert "site_note" in result.output  # a column outside the contract is reported
    assert CliRunner().invoke(app, ["validate", str(out)]).exit_code == 0
    pd.testing.assert_frame_equal(_imaging(read_table(out)), _imaging(cohort))


def test_a_conflict_is_an_error_unless_prefer_reports(site, tmp_path):
    folder, cohort, _ = site
    table = cohort.copy()
    row = table.index[(table[c.ROW_TYPE] == "imaging") & (table[c.NEW_BONE_LESIONS] == 0)][1]
    table.loc[row, c.NEW_BONE_LESIONS] = 3
    table.loc[row, c.NEW_LESION_MORPHOLOGY] = "lytic"
    write_table(table, tmp_path / "timepoints.csv")
    out = tmp_path / "filled.csv"
    args = ["--reports", str(folder / "reports.csv"), "--timepoints",
            str(tmp_path / "timepoints.csv"), "--out", str(out)]  # fmt: skip
    result = run(*args)
    assert result.exit_code == 2 and not out.exists()
    assert "new_bone_lesions" in result.output and "new_lesion_morphology" in result.output
    assert str(table.loc[row, c.PATIENT_ID]) in result.output
    assert list(tmp_path.glob(".*")) == []  # no staged file left behind
    result = run(*args, "--prefer", "reports")
    assert result.exit_code == 0 and "2 conflicts (kept the reports' values)" in result.output
    assert _imaging(read_table(out)).equals(_imaging(cohort))
    assert run(*args, "--prefer", "mine").exit_code == 2


@pytest.mark.parametrize(
    ("change", "column", "rule"),
    [
        (lambda r: r.drop(columns=["text"]), "text", "missing"),
        (lambda r: r.assign(text=r["text"].where(r.index != 1, "  ")), "text", "empty"),
        (lambda r: r.assign(assessment_date=r["assessment_date"].where(r.index != 2, "3/4/21")),
         "assessment_date", "3/4/21"),
    ],
)  # fmt: skip
def test_bad_report_tables_exit_2_and_write_nothing(site, tmp_path, change, column, rule):
    folder, _, reports = site
    write_table(change(reports), tmp_path / "bad.csv")
    out, page = tmp_path / "out.csv", tmp_path / "review.html"
    for extra in ([], ["--timepoints", str(folder / "timepoints.csv")]):
        result = run("--reports", str(tmp_path / "bad.csv"), "--out", str(out),
                     "--review", str(page), *extra)  # fmt: skip
        assert result.exit_code == 2, result.output
        assert column in result.output and rule in result.output
        assert not out.exists() and not page.exists()
    if column != "text" or rule == "empty":
        assert str(reports.loc[1 if rule == "empty" else 2, c.PATIENT_ID]) in result.output


def test_simulate_reports_then_findings_then_validate(tmp_path):
    """The issue's path: simulate --reports, blank the bone findings, fill them back."""
    runner = CliRunner()
    cohort = tmp_path / "cohort.csv"
    done = runner.invoke(app, ["simulate", "--patients", "8", "--seed", "5", "--out",
                               str(cohort), "--reports"])  # fmt: skip
    assert done.exit_code == 0, done.output
    truth = read_table(cohort)
    blank = truth.copy()
    imaging = blank[c.ROW_TYPE] == "imaging"
    # the bone findings live in the reports; the RECIST response stays in the table
    for name in IMAGING_FINDINGS:
        if name not in (c.EXTRAOSSEOUS_RESPONSE, c.BASELINE_MARROW_INVOLVEMENT):
            blank.loc[imaging, name] = None
    write_table(blank.drop(columns=[c.BASELINE_MARROW_INVOLVEMENT]), tmp_path / "blank.csv")
    out = tmp_path / "filled.csv"
    result = run("--reports", str(tmp_path / "cohort.reports.csv"), "--timepoints",
                 str(tmp_path / "blank.csv"), "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{int(imaging.sum())} rows filled" in result.output
    checked = runner.invoke(app, ["validate", str(out)])
    assert checked.exit_code == 0, checked.output
    filled = read_table(out)
    got = filled.loc[filled[c.ROW_TYPE] == "imaging", c.NEW_BONE_LESIONS].astype(int)
    want = truth.loc[imaging, c.NEW_BONE_LESIONS].astype(int)
    assert (got.to_numpy() == want.to_numpy()).mean() > 0.8  # read from the report texts
