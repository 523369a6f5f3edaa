"""Spark scoring in local[2]: identical answers to batch scoring of the same file.

One SparkSession (the session fixture ``spark`` of ``conftest.py``) serves the whole test
session (start-up takes seconds). The test is skipped, with the reason, only where no
Java runtime is found; ``make test`` installs pyspark.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flare_ml.data import write_table
from flare_ml.serving.batch import score_file
from serving_helpers import (
    SPARK_WARNINGS,
    bundle_copy,
    scoring_cohort,
    skip_without_spark,
    small_bundle,
)

skip_without_spark(module=True)

from flare_ml.spark import score_spark  # noqa: E402 - after the skip

pytestmark = SPARK_WARNINGS


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spark")
    table = scoring_cohort()
    source = write_table(table, folder / "cohort.parquet")
    csv = write_table(table, folder / "cohort.csv")
    batch = folder / "batch.parquet"
    score_file(small_bundle(), source, batch, chunk_rows=500)
    return {"parquet": source, "csv": csv, "batch": batch, "folder": folder}


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["assessment_date"] = pd.to_datetime(out["assessment_date"]).dt.strftime("%Y-%m-%d")
    out["patient_id"] = out["patient_id"].astype(str)
    return out.sort_values(["patient_id", "assessment_date"], ignore_index=True)


def _assert_same(got: pd.DataFrame, expected: pd.DataFrame, reasons: bool = True) -> None:
    got, expected = _normalised(got), _normalised(expected)
    assert got["patient_id"].tolist() == expected["patient_id"].tolist()
    assert got["assessment_date"].tolist() == expected["assessment_date"].tolist()
    np.testing.assert_array_equal(got["p_flare"].to_numpy(), expected["p_flare"].to_numpy())
    assert got["decision"].tolist() == expected["decision"].tolist()
    assert got["prediction_set"].tolist() == expected["prediction_set"].tolist()
    if reasons:
        assert got["reasons"].tolist() == expected["reasons"].tolist()


def test_spark_equals_batch_scoring(spark, files):
    rows = spark.read.parquet(str(files["parquet"]))
    result = score_spark(rows, small_bundle())
    assert result.schema.simpleString() == (
        "struct<patient_id:string,assessment_date:date,p_flare:double,decision:string,"
        "prediction_set:string,reasons:string>"
    )
    _assert_same(result.toPandas(), pd.read_parquet(files["batch"]))


def test_group_per_patient_and_text_columns_give_the_same(spark, files):
    # every column as text (as a CSV reads without schema inference), by patient_id groups
    rows = spark.read.option("header", True).csv(str(files["csv"]))
    assert {t for _, t in rows.dtypes} == {"string"}
    result = score_spark(rows, str(bundle_copy(files["folder"] / "bundle")), buckets=None)
    _assert_same(result.toPandas(), pd.read_parquet(files["batch"]))


def test_without_reasons(spark, files):
    rows = spark.read.parquet(str(files["parquet"]))
    result = score_spark(rows, small_bundle(), with_reasons=False, buckets=3).toPandas()
    _assert_same(result, pd.read_parquet(files["batch"]), reasons=False)
    assert set(result["reasons"]) == {""}


def test_missing_column_and_bad_rows(spark, files):
    rows = spark.read.parquet(str(files["parquet"]))
    with pytest.raises(ValueError, match="cancer_type"):
        score_spark(rows.drop("cancer_type"), small_bundle())
    from pyspark.sql import functions as F

    bad = rows.withColumn("cancer_type", F.lit("lung"))
    with pytest.raises(Exception, match="unknown category 'lung'"):
        score_spark(bad, small_bundle()).collect()
