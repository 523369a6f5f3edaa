"""Reading reports with Spark in local[2]: the same findings as read_reports on the table.

Uses the session fixture ``spark`` of ``conftest.py``; skipped, with the reason, where no
Java runtime is found.
"""

from __future__ import annotations

import datetime

import pandas as pd
import pytest

from flare_ml.errors import ContractError
from flare_ml.reports import read_reports
from serving_helpers import SPARK_WARNINGS, skip_without_spark

skip_without_spark(module=True)

from flare_ml.spark import read_reports_spark  # noqa: E402 - after the skip

pytestmark = SPARK_WARNINGS

TEXTS = [
    "IMPRESSION: Two new sclerotic lesions in T7 and T9. Partial response of the liver.",
    "No new lytic or blastic lesions. Stable disease.",
    "Possible new focus of increased uptake in the left 6th rib.",
    "Numerous new blastic bone lesions in the spine, ribs and sternum. New liver lesion.",
    "Increased sclerosis of the known lytic L2 lesion, likely treatment response.",
    "Progressive lytic destruction of the known T11 lesion. Progression of disease.",
    "Staging PET-CT. Diffuse marrow infiltration.",
]


@pytest.fixture(scope="module")
def reports() -> pd.DataFrame:
    n = 42
    return pd.DataFrame(
        {
            "patient_id": [f"P{i // 3}" for i in range(n)],
            "assessment_date": [
                datetime.date(2024, 1, 1) + datetime.timedelta(days=30 * (i % 3)) for i in range(n)
            ],
            "modality": [["ct", "bone_scan", None][i % 3] for i in range(n)],
            "text": [TEXTS[i % len(TEXTS)] + f" Report {i}." for i in range(n)],
            "accession": list(range(n)),
        }
    )


def test_spark_gives_the_findings_read_reports_gives(spark, reports):
    df = spark.createDataFrame(reports).repartition(3)
    got = read_reports_spark(df, partitions=3).toPandas().sort_values("accession")
    want = read_reports(reports)
    want["assessment_date"] = [ts.date() for ts in pd.to_datetime(want["assessment_date"])]
    assert list(got.columns) == list(want.columns)
    got = got.reset_index(drop=True).astype(object)
    want = want.reset_index(drop=True).astype(object)
    pd.testing.assert_frame_equal(got.where(got.notna(), None), want.where(want.notna(), None))
    assert got["new_bone_lesions"].astype(int).sum() > 0  # the texts do state findings


def test_a_missing_text_column_is_refused_on_the_driver(spark, reports):
    df = spark.createDataFrame(reports.drop(columns=["text"]))
    with pytest.raises(ContractError, match="text"):
        read_reports_spark(df)
