"""The patient timeline: what the figure shows, and the ``flare-ml timeline`` command.

A constructed patient (baseline scan, lab draws, two index scans with different
morphologies and outcomes, a scan without new lesions) is drawn with and without
predictions; the figure's artists and texts are checked against the rows: one scan marker
per imaging row, one ALP point per row with ALP, one P(flare) point per scored index scan,
the decision, reasons and outcome in its text. The command is run on a simulated cohort
with the session's small model (``serving_helpers.small_bundle``): PNG and HTML written,
P(flare) as :meth:`~flare_ml.bundle.FlareModelBundle.predict` gives it, and every bad
input (unknown patient, bad extension, invalid table) exits 2 and writes nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.text import Text
from typer.testing import CliRunner

from flare_ml import timeline as tl
from flare_ml.cases import seed_case_timeline
from flare_ml.cli import app
from flare_ml.data import validate_timepoints, write_table
from flare_ml.errors import FlareMLError
from serving_helpers import bundle_copy, scoring_cohort, small_bundle, small_training

START = pd.Timestamp("2021-03-01")


def _row(day: int, row_type: str = "imaging", **values: object) -> dict[str, object]:
    base: dict[str, object] = {
        "patient_id": "P-1",
        "treatment_start_date": START,
        "assessment_date": START + pd.Timedelta(days=day),
        "row_type": row_type,
        "cancer_type": "prostate",
        "therapy_class": "ar_pathway",
    }
    if row_type == "imaging":
        base |= {"new_bone_lesions": 0, "new_lesion_morphology": "none"}
    return base | values


def constructed_patient(**extra_columns: list[object]) -> pd.DataFrame:
    """6 rows: 4 scans (2 index: blastic flare, lytic progression), 2 lab draws; 5 ALP."""
    rows = [
        _row(0, extraosseous_response="baseline", sld_mm=50.0, alp_u_l=180.0),
        _row(20, "lab", alp_u_l=210.0),
        _row(56, extraosseous_response="PR", sld_mm=35.0, alp_u_l=150.0, new_bone_lesions=7,
             new_lesion_morphology="blastic", known_lesion_sclerosis=True, outcome="flare"),
        _row(80, "lab"),
        _row(112, extraosseous_response="SD", sld_mm=36.0, alp_u_l=120.0),
        _row(168, extraosseous_response="PD", sld_mm=52.0, alp_u_l=260.0, new_bone_lesions=3,
             new_lesion_morphology="lytic", progressive_lysis=True, outcome="progression"),
    ]  # fmt: skip
    table = pd.DataFrame(rows)
    for name, values in extra_columns.items():
        table[name] = values
    return validate_timepoints(table)


def predictions_for(table: pd.DataFrame) -> pd.DataFrame:
    index = table[table["new_bone_lesions"].fillna(0) > 0]
    return pd.DataFrame(
        {
            "patient_id": index["patient_id"].to_numpy(),
            "assessment_date": index["assessment_date"].to_numpy(),
            "p_flare": [0.91, 0.08],
            "decision": ["flare", "progression"],
            "prediction_set": ["flare", "progression"],
            "reasons": [
                "ALP fell 60 U/L from its peak: toward flare; partial response: toward flare",
                "extraosseous progressive disease: toward progression",
            ],
        }
    )


def texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(lambda a: isinstance(a, Text)))


def by_gid(fig, gid: str) -> list:
    return fig.findobj(lambda a: a.get_gid() == gid)


def test_one_scan_marker_per_imaging_row_and_one_alp_point_per_value():
    table = constructed_patient()
    fig = tl.plot_patient_timeline(table)
    (scans,) = by_gid(fig, tl.GID_SCANS)
    assert len(scans.get_offsets()) == int((table["row_type"] == "imaging").sum()) == 4
    (alp,) = by_gid(fig, tl.GID_ALP)
    assert len(alp.get_xdata()) == int(table["alp_u_l"].notna().sum()) == 5
    # x is weeks since treatment start: the last scan at day 168 is week 24
    assert scans.get_offsets()[:, 0].tolist() == pytest.approx([0, 8, 16, 24])


def test_scans_show_their_response_and_index_scans_their_outcome():
    fig = tl.plot_patient_timeline(constructed_patient())
    shown = texts(fig)
    for response in ("baseline", "PR", "SD", "PD"):
        assert re.search(rf"^{response}$", shown, flags=re.M), response
    assert "sclerosis" in shown and "lysis ↑" in shown
    marks = [a.get_text() for a in by_gid(fig, tl.GID_INDEX)]
    assert marks == ["#1 index scan\noutcome: flare", "#2 index scan\noutcome: progression"]
    assert "Patient P-1: prostate cancer, AR-pathway inhibitor (started 2021-03-01)" in shown


def test_new_bone_lesions_are_bars_by_morphology():
    fig = tl.plot_patient_timeline(constructed_patient())
    bars = {bar.get_label(): list(bar.datavalues) for bar in fig.axes[2].containers}
    assert bars == {"blastic": [7], "lytic": [3]}
    colors = {bar.get_label(): bar.patches[0].get_facecolor() for bar in fig.axes[2].containers}
    assert colors["blastic"] != colors["lytic"]


def test_unknown_morphology_is_a_bar_named_in_the_legend_only_when_present():
    def legend(fig) -> list[str]:
        return [t.get_text() for lg in fig.legends for t in lg.get_texts()]

    plain = tl.plot_patient_timeline(constructed_patient())
    assert not any("unknown" in name for name in legend(plain))
    table = constructed_patient()
    table["new_lesion_morphology"] = table["new_lesion_morphology"].astype(object)
    table.loc[table["new_bone_lesions"] == 3, "new_lesion_morphology"] = "unknown"
    fig = tl.plot_patient_timeline(validate_timepoints(table))
    bars = {bar.get_label(): list(bar.datavalues) for bar in fig.axes[2].containers}
    assert bars == {"blastic": [7], "unknown": [3]}
    assert "new bone lesions, morphology unknown (bone scan)" in legend(fig)
    assert "3 new bone lesions (morphology unknown)" in texts(fig)


def test_without_predictions_there_is_no_p_flare():
    fig = tl.plot_patient_timeline(constructed_patient())
    assert by_gid(fig, tl.GID_P_FLARE) == []
    assert len(fig.axes) == 4  # ALP, scans, bone, text (plus the date axis child)
    shown = texts(fig)
    assert "no model given: no P(flare)" in shown
    assert "decision" not in shown.lower().replace("decision flare", "")


def test_predictions_put_p_flare_decision_and_reasons_on_the_index_scans():
    table = constructed_patient()
    fig = tl.plot_patient_timeline(table, predictions_for(table))
    (points,) = by_gid(fig, tl.GID_P_FLARE)
    assert points.get_offsets().ravel().tolist() == pytest.approx([8, 0.91, 24, 0.08])
    shown = texts(fig)
    assert "0.91 flare" in shown and "0.08 progression" in shown
    assert "P(flare) 0.91, decision FLARE" in shown
    assert "P(flare) 0.08, decision PROGRESSION" in shown
    assert "•  ALP fell 60 U/L from its peak: toward flare" in shown
    assert "•  extraosseous progressive disease: toward progression" in shown
    assert "recorded outcome: progression" in shown


def test_predictions_of_other_patients_and_dates_are_ignored():
    table = constructed_patient()
    other = predictions_for(table).assign(patient_id="P-2")
    fig = tl.plot_patient_timeline(table, other)
    assert len(by_gid(fig, tl.GID_P_FLARE)[0].get_offsets()) == 0
    assert "not scored" in texts(fig)


def test_label_columns_are_shown_when_present():
    table = constructed_patient(
        label_reason=[None, None, "sclerosis on follow-up", None, None, "new lesions on CT"],
        label_confirm_date=[None, None, "2021-07-20", None, None, None],
    )
    fig = tl.plot_patient_timeline(table)
    shown = texts(fig)
    assert "(sclerosis on follow-up, confirmed 2021-07-20)" in shown
    assert "(new lesions on CT)" in shown
    assert "label confirmed" in shown
    index = tl.index_table(table)
    assert index["label reason"].tolist() == ["sclerosis on follow-up", "new lesions on CT"]
    assert index["label confirmed"].tolist() == ["2021-07-20", ""]
    assert "label reason" not in tl.index_table(constructed_patient())


def test_upper_limit_of_normal_follows_the_argument():
    fig = tl.plot_patient_timeline(constructed_patient(), alp_upper_limit_normal=120.0)
    assert "ULN 120 U/L" in texts(fig)
    assert "ULN" not in texts(tl.plot_patient_timeline(constructed_patient(), None,
                                                       alp_upper_limit_normal=None))  # fmt: skip


def test_a_patient_without_index_scans_is_drawn_with_a_note():
    table = constructed_patient()
    table = table[table["new_bone_lesions"].fillna(0) == 0]
    fig = tl.plot_patient_timeline(table)
    assert by_gid(fig, tl.GID_INDEX) == []
    assert "No index scan" in texts(fig)


def test_unknown_patient_names_some_known_ids():
    table = pd.concat([constructed_patient(), constructed_patient().assign(patient_id="P-2")])
    with pytest.raises(tl.UnknownPatientError, match=r"'P-9' is not in the table \(2 patients\)"):
        tl.patient_timepoints(table, "P-9")
    with pytest.raises(FlareMLError, match="Some ids: P-1, P-2"):
        tl.plot_patient_timeline(validate_timepoints(table), patient_id="P-9")
    with pytest.raises(FlareMLError, match="holds 2 patients; pass patient_id"):
        tl.plot_patient_timeline(validate_timepoints(table))
    fig = tl.plot_patient_timeline(validate_timepoints(table), patient_id="P-2")
    assert "Patient P-2:" in texts(fig) and "Patient P-1:" not in texts(fig)


def test_index_table_and_html_page():
    table = constructed_patient()
    index = tl.index_table(table, predictions_for(table))
    assert index["date"].tolist() == ["2021-04-26", "2021-08-16"]
    assert index["P(flare)"].tolist() == ["0.91", "0.08"]
    assert index["decision"].tolist() == ["flare", "progression"]
    assert index["recorded outcome"].tolist() == ["flare", "progression"]
    page = tl.timeline_html(tl.plot_patient_timeline(table), index, "P-1 <timeline>")
    assert "<title>P-1 &lt;timeline&gt;</title>" in page
    assert '<td class="progression">progression</td>' in page
    assert "extraosseous progressive disease: toward progression" in page
    assert re.search(r"src='data:image/png;base64,iVBORw0K[A-Za-z0-9+/=]+'", page)


def test_seed_case_reads_as_a_flare_with_the_model():
    bundle = small_bundle()
    case = seed_case_timeline()
    predictions = bundle.predict(case)
    fig = tl.plot_patient_timeline(case, predictions)
    shown = texts(fig)
    assert "Patient DeBondt2020-L1: NSCLC, EGFR TKI (started 2019-01-07)" in shown
    (points,) = by_gid(fig, tl.GID_P_FLARE)
    assert points.get_offsets()[:, 1].tolist() == pytest.approx(predictions["p_flare"].tolist())
    assert f"decision {predictions['decision'].iloc[0].upper()}" in shown


def test_worked_patient_timelines_one_per_decision():
    result = small_training()
    cohort = result.externals[0]
    figures = tl.worked_patient_timelines(result.bundle, cohort)
    scores = result.bundle.predict_features(cohort.features, with_reasons=False)
    expected = [d for d in ("flare", "progression") if (scores["decision"] == d).any()]
    assert [name.split("_")[1] for name in figures] == expected
    for name, fig in figures.items():
        decision, pid = name.removesuffix(".png").split("_", 2)[1:]
        assert f"Patient {pid}:" in texts(fig)
        assert cohort.label in texts(fig)
        assert len(by_gid(fig, tl.GID_P_FLARE)[0].get_offsets()) >= 1
        assert f"decision {decision.upper()}" in texts(fig)


# --- the command ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def cohort_file(tmp_path_factory) -> Path:
    return write_table(scoring_cohort(), tmp_path_factory.mktemp("tl") / "cohort.csv")


def _index_patient(path: Path) -> str:
    table = pd.read_csv(path)
    return str(table.loc[table["new_bone_lesions"].fillna(0) > 0, "patient_id"].iloc[0])


def _run(*args: str):
    return CliRunner().invoke(app, ["timeline", *args])


def test_cli_writes_png_without_a_model(cohort_file, tmp_path):
    pid = _index_patient(cohort_file)
    out = tmp_path / "figs" / "p.png"
    result = _run("--input", str(cohort_file), "--patient", pid, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data only, no --model" in result.output
    assert [p.name for p in out.parent.iterdir()] == ["p.png"]  # no staging file left


def test_cli_writes_html_with_the_models_p_flare(cohort_file, tmp_path):
    pid = _index_patient(cohort_file)
    model = bundle_copy(tmp_path / "model")
    out = tmp_path / "p.html"
    result = _run(
        "--input", str(cohort_file), "--patient", pid, "--model", str(model), "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "with P(flare) and decisions" in result.output
    page = out.read_text()
    table = scoring_cohort()
    expected = small_bundle().predict(table[table["patient_id"] == pid])
    for p, decision in zip(expected["p_flare"], expected["decision"], strict=True):
        assert f'<td>{p:.2f}</td><td class="{decision}">{decision}</td>' in page
    assert "data:image/png;base64," in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--patient", "NOPE-1"], r"patient 'NOPE-1' is not in cohort\.csv \(\d+ patients\)"),
        (["--out-suffix", ".pdf"], r"write a \.png .* or an \.html page"),
        (["--out-suffix", ""], r"not 'a file without extension'"),
    ],
)
def test_cli_bad_patient_or_extension_exits_2_and_writes_nothing(
    cohort_file, tmp_path, args, message
):
    pid = _index_patient(cohort_file)
    suffix = args[1] if args[0] == "--out-suffix" else ".png"
    patient = args[1] if args[0] == "--patient" else pid
    out = tmp_path / f"p{suffix}"
    result = _run("--input", str(cohort_file), "--patient", patient, "--out", str(out))
    assert result.exit_code == 2, result.output
    assert re.search(message, " ".join(result.output.split())), result.output
    assert list(tmp_path.iterdir()) == []


def test_cli_unknown_patient_lists_available_ids(cohort_file, tmp_path):
    result = _run("--input", str(cohort_file), "--patient", "x", "--out", str(tmp_path / "a.png"))
    assert result.exit_code == 2
    first = sorted(pd.read_csv(cohort_file)["patient_id"].unique())[:2]
    assert all(pid in result.output for pid in first)


def test_cli_invalid_table_is_the_contracts_error(tmp_path):
    table = scoring_cohort(5, seed=1).astype({"new_lesion_morphology": "str"})
    table.loc[0, "new_lesion_morphology"] = "sclerotic"
    path = write_table(table, tmp_path / "bad.csv")
    out = tmp_path / "p.png"
    result = _run("--input", str(path), "--patient", str(table["patient_id"].iloc[0]),
                  "--out", str(out))  # fmt: skip
    assert result.exit_code == 2
    assert "new_lesion_morphology" in result.output and "sclerotic" in result.output
    assert not out.exists()


def test_cli_missing_input_exits_2(tmp_path):
    result = _run("--input", str(tmp_path / "no.csv"), "--patient", "P", "--out",
                  str(tmp_path / "a.png"))  # fmt: skip
    assert result.exit_code == 2
    assert "input file not found" in result.output


def test_cli_help_renders_at_80_columns_and_says_the_model_is_optional():
    result = CliRunner().invoke(app, ["timeline", "-h"], terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    assert "…" not in result.output
    flat = " ".join(result.output.replace("│", " ").split())
    assert "Default: none, the figure shows the data only." in flat


def test_adjudicated_label_rule_reason_and_confirmation_scan_are_shown():
    from flare_ml.cases import seed_case_timeline
    from flare_ml.labels import adjudicate

    labelled = adjudicate(seed_case_timeline(), overwrite=True).table
    fig = tl.plot_patient_timeline(labelled)
    shown = texts(fig)
    row = labelled.dropna(subset=[tl.LABEL_RULE]).iloc[0]
    outcome = str(row["outcome"]) if not pd.isna(row["outcome"]) else "indeterminate"
    assert f"label: {outcome}" in shown
    assert f"label {row[tl.LABEL_RULE]}: {row[tl.LABEL_REASON].split(':')[0]}" in shown
    assert f"confirmed {row[tl.LABEL_CONFIRM_DATE]:%Y-%m-%d}" in shown
    assert "#1 label confirmed" in shown and "label confirmation scan" in shown
    index = tl.index_table(labelled)
    assert index["label rule"].tolist() == [row[tl.LABEL_RULE]]
    # an indeterminate label says so
    undecided = labelled.copy()
    undecided["outcome"] = None
    assert "outcome: indeterminate" in texts(tl.plot_patient_timeline(undecided))
