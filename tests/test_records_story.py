"""``flare-ml demo --from-records``: simulated OMOP records to an adapted, evaluated model."""

from __future__ import annotations

import pandas as pd

from flare_ml.workflows import records_story


def test_records_story_reports_every_step(tmp_path):
    story = records_story(
        tmp_path, site="default", patients=120, seed=3, heldout_patients=300, n_resamples=10
    )
    steps = dict(story.steps)
    assert list(steps) == ["records", "ingest", "label", "adapt", "evaluate"]
    assert "patients read: 120" in steps["ingest"]
    assert any(line.startswith("patients kept: ") for line in steps["ingest"])
    agreement = next(line for line in steps["label"] if line.startswith("labels agree"))
    share = float(agreement.split(" on ")[1].split("%")[0]) / 100
    assert 0.5 < share <= 1.0
    labelled = pd.read_parquet(story.folder / "labelled.parquet")
    assert labelled["label_rule"].dropna().str.startswith("pcwg3/").all()
    assert (story.folder / "adapted-model").is_dir()
    assert any("left indeterminate by flare-ml label" in line for line in steps["adapt"])
    assert list(story.table["scorer"]) == [
        "literature prior, out of the box",
        "prior adapted on the ingested, adjudicated records",
    ]
    auroc = story.table["AUROC"].str.split().str[0].astype(float)
    assert auroc.between(0.5, 1.0).all()
