"""Score a Spark DataFrame of timepoint rows with the same model, grouped by patient.

Features of an index assessment use the patient's earlier rows, so scoring must see each
patient's whole timeline at once; MLflow's ``spark_udf`` works row by row and cannot.
:func:`score_spark` therefore groups the rows by patient and scores each group with
``applyInPandas``, through the very :class:`~flare_ml.bundle.FlareModelBundle` that batch
scoring and the served model use, so the answers are identical. The bundle's JSON files
travel to the executors as bytes in a broadcast variable (no shared file system and no
pickled model needed) and are loaded once per Python worker. By default patients are
grouped into hash buckets of whole patients (``buckets``), so that one pandas call scores
many patients: a group per patient costs a Python call per patient, which dominates on
cohorts of short timelines. Executors need ``flare-ml`` installed (``pip install
flare-ml[spark]``), like any library a pandas UDF imports. :func:`read_reports_spark`
reads a table of radiology reports into findings (:func:`flare_ml.reports.read_reports`)
partition by partition with ``mapInPandas``, one reader per Python worker.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pandas as pd

from flare_ml.bundle import OUTPUT_COLUMNS, FlareModelBundle
from flare_ml.data import contract as c
from flare_ml.data import validate_timepoints

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["OUTPUT_SCHEMA", "REPORT_FINDINGS_SCHEMA", "read_reports_spark", "score_spark"]

#: the output schema of :func:`score_spark` (Spark DDL)
OUTPUT_SCHEMA = (
    "patient_id string, assessment_date date, p_flare double, decision string, "
    "prediction_set string, reasons string"
)
_GROUP = "__flare_ml_group"

#: bundles loaded in this Python worker, by content digest
_LOADED: dict[str, FlareModelBundle] = {}


def _bundle_of(digest: str, files: Callable[[], dict[str, bytes]]) -> FlareModelBundle:
    """Load a bundle once per Python process (Spark reuses its Python workers)."""
    bundle = _LOADED.get(digest)
    if bundle is None:
        bundle = FlareModelBundle.from_files(files())
        _LOADED.clear()  # keep one model per worker
        _LOADED[digest] = bundle
    return bundle


def _digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode())
        h.update(len(files[name]).to_bytes(8, "little"))
        h.update(files[name])
    return h.hexdigest()


def _score_frame(bundle: FlareModelBundle, rows: pd.DataFrame, with_reasons: bool) -> pd.DataFrame:
    rows = rows.drop(columns=[_GROUP], errors="ignore")
    predictions = bundle.predict(validate_timepoints(rows, source="Spark group"), with_reasons)
    out = predictions.loc[:, list(OUTPUT_COLUMNS)].reset_index(drop=True)
    out[c.ASSESSMENT_DATE] = pd.Series(
        [ts.date() for ts in pd.to_datetime(out[c.ASSESSMENT_DATE])], dtype=object
    )
    out[c.PATIENT_ID] = out[c.PATIENT_ID].astype(object)
    return out


def score_spark(
    df: DataFrame,
    model_uri_or_bundle: FlareModelBundle | str | os.PathLike[str],
    with_reasons: bool = True,
    *,
    buckets: int | None = -1,
    partitions: int | None = None,
) -> DataFrame:
    """Score every index row of a Spark DataFrame of timepoint rows, patient by patient.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        Timepoint rows in the data contract (column names matched like validation:
        case and surrounding spaces do not matter; other columns are ignored). Any
        Spark types validation can read: dates or ISO text, booleans or yes/no text,
        numbers or numeric text.
    model_uri_or_bundle : FlareModelBundle, str or path
        The model: a bundle, ``models:/flare-classifier/latest``, ``runs:/<id>/model``,
        an MLflow model folder or a bundle folder. It is loaded on the driver and its
        JSON files are broadcast to the executors.
    with_reasons : bool, default True
        Compute the top reasons (SHAP); False leaves ``reasons`` empty and is faster.
    buckets : int or None, default -1
        How patients are grouped for ``applyInPandas``: ``-1`` (default) puts them in
        ``8 x spark.sql.shuffle.partitions`` hash buckets of whole patients (one pandas
        call scores many patients); a positive number sets the bucket count; ``None``
        groups by ``patient_id`` itself (one call per patient, slow on many patients).
        The result does not depend on it.
    partitions : int, optional
        Spark partitions (tasks) of the scoring step; default
        ``spark.sql.shuffle.partitions``. The rows are repartitioned by the group key
        explicitly, so adaptive query execution keeps this number instead of coalescing
        the small shuffle into a few tasks.

    Returns
    -------
    pyspark.sql.DataFrame
        One row per index row, schema :data:`OUTPUT_SCHEMA`: ``patient_id``,
        ``assessment_date`` (date), ``p_flare``, ``decision``, ``prediction_set``,
        ``reasons``. Lazy, like any Spark transformation; unordered.

    Raises
    ------
    ValueError
        When a required contract column is missing (at once, on the driver).
    flare_ml.errors.ContractError
        Raised in a task (and surfaced by Spark as a Python worker error) when a
        patient's rows break the data contract.

    Examples
    --------
    >>> from pyspark.sql import SparkSession  # doctest: +SKIP
    >>> spark = SparkSession.builder.master("local[2]").getOrCreate()  # doctest: +SKIP
    >>> rows = spark.read.parquet("cohort.parquet")  # doctest: +SKIP
    >>> scores = score_spark(rows, "models:/flare-classifier/latest")  # doctest: +SKIP
    >>> scores.write.parquet("scores.parquet")  # doctest: +SKIP

    """
    from pyspark.sql import functions as F

    by_name: dict[str, str] = {}
    for name in df.columns:
        key = name.strip().lower()
        if key in c.CONTRACT_COLUMNS and key not in by_name:
            by_name[key] = name
    missing = [col for col in c.REQUIRED_COLUMNS if col not in by_name]
    if missing:
        raise ValueError(
            f"the Spark DataFrame lacks required contract columns {missing} "
            f"(columns found: {df.columns[:12]})"
        )
    rows = df.select([F.col(f"`{name}`").alias(key) for key, name in by_name.items()])

    # Executors unpickle this module's functions, so it stays free of MLflow at import
    # (about 2 s less per Python worker); only the driver resolves a model URI.
    from flare_ml.serving.flavor import resolve_bundle

    bundle = resolve_bundle(model_uri_or_bundle)
    files = bundle.to_files()
    digest = _digest(files)
    spark = rows.sparkSession
    try:
        shipped = spark.sparkContext.broadcast(files)

        def get_files() -> dict[str, bytes]:
            return shipped.value

    except Exception:  # Spark Connect has no SparkContext: ship the files in the closure

        def get_files() -> dict[str, bytes]:
            return files

    reasons = bool(with_reasons)

    def score_group(pdf: pd.DataFrame) -> pd.DataFrame:
        return _score_frame(_bundle_of(digest, get_files), pdf, reasons)

    # the patient key as validation reads it (text, trimmed), so that " P1" and "P1",
    # one patient after validation, always land in the same group
    key = F.trim(F.col(c.PATIENT_ID).cast("string"))
    shuffle = int(spark.conf.get("spark.sql.shuffle.partitions", "200"))
    n_partitions = shuffle if partitions is None else int(partitions)
    if n_partitions < 1:
        raise ValueError(f"partitions must be a positive number, got {partitions!r}")
    if buckets is None:
        keyed = rows.withColumn(_GROUP, key)
    else:
        n = 8 * shuffle if buckets == -1 else int(buckets)
        if n < 1:
            raise ValueError(f"buckets must be -1, None or a positive number, got {buckets!r}")
        keyed = rows.withColumn(_GROUP, F.pmod(F.xxhash64(key), F.lit(n)))
    # an explicit repartition by the group key: the grouping reuses it (no second
    # shuffle) and adaptive execution does not coalesce it by bytes, which would leave
    # this CPU-bound step on a few cores (the rows are small, the work per row is not)
    keyed = keyed.repartition(n_partitions, F.col(_GROUP))
    return keyed.groupBy(_GROUP).applyInPandas(score_group, schema=OUTPUT_SCHEMA)


# --- radiology reports -------------------------------------------------------------------
#: the findings columns :func:`read_reports_spark` adds (Spark DDL), in output order
REPORT_FINDINGS_SCHEMA = (
    "extraosseous_response string, new_extraosseous_lesion boolean, new_bone_lesions long, "
    "new_lesion_morphology string, progressive_lysis boolean, known_lesion_sclerosis boolean, "
    "baseline_marrow_involvement boolean, findings_uncertain boolean, evidence string"
)

#: the report reader of this Python worker (built on first use, then reused)
_READERS: list[object] = []


def _report_reader() -> object:
    if not _READERS:
        from flare_ml.reports import ReportReader

        _READERS.append(ReportReader())
    return _READERS[0]


def read_reports_spark(df: DataFrame, *, partitions: int | None = None) -> DataFrame:
    """Read a Spark DataFrame of radiology reports into findings, partition by partition.

    Each partition goes through :func:`flare_ml.reports.read_reports` with
    ``mapInPandas``, in Arrow batches; the medspaCy reader is built once per Python
    worker and reused for every batch it reads. The rows are what ``read_reports`` gives
    for the same table (tested in ``local[2]``), one per report.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        ``patient_id``, ``assessment_date`` (a date or ISO text), ``text``, optional
        ``modality``; other columns are kept with their types.
    partitions : int, optional
        Repartition to this many tasks first (a report table read from few files may
        come as one partition; the reading is CPU-bound).

    Returns
    -------
    pyspark.sql.DataFrame
        ``patient_id``, ``assessment_date`` (date), ``modality`` (if given), the columns
        of :data:`REPORT_FINDINGS_SCHEMA`, the other input columns, ``text``. Lazy;
        unordered.

    Raises
    ------
    flare_ml.errors.ContractError
        A required column missing (at once, on the driver). A report row that breaks the
        report contract (empty text, an unparseable date) fails its task, and Spark
        surfaces the ContractError's message in its Python worker error.

    Examples
    --------
    >>> reports = spark.read.parquet("reports.parquet")  # doctest: +SKIP
    >>> found = read_reports_spark(reports, partitions=64)  # doctest: +SKIP
    >>> found.write.parquet("findings.parquet")  # doctest: +SKIP

    """
    from pyspark.sql.types import DateType, StringType, StructField, StructType

    from flare_ml.errors import ContractError, Violation

    text, modality = "text", "modality"  # flare_ml.reports.findings, not imported here
    missing = [x for x in (c.PATIENT_ID, c.ASSESSMENT_DATE, text) if x not in df.columns]
    if missing:
        raise ContractError(
            "the report table breaks the data contract:",
            [
                Violation(name, "missing_column", message=f"required column '{name}' is missing",
                          hint=f"add a '{name}' column")
                for name in missing
            ],
        )  # fmt: skip
    if partitions is not None:
        if int(partitions) < 1:
            raise ValueError(f"partitions must be a positive number, got {partitions!r}")
        df = df.repartition(int(partitions))
    by_name = {f.name: f for f in df.schema.fields}
    found = StructType.fromDDL(REPORT_FINDINGS_SCHEMA).fields
    fields = [by_name[c.PATIENT_ID], StructField(c.ASSESSMENT_DATE, DateType())]
    if modality in by_name:
        fields.append(StructField(modality, StringType()))
    fields += found
    taken = {f.name for f in fields} | {text}
    fields += [f for f in df.schema.fields if f.name not in taken]
    fields.append(StructField(text, StringType()))
    schema = StructType(fields)
    names = [f.name for f in fields]

    def read_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from flare_ml.reports import read_reports

        reader = _report_reader()
        for batch in batches:
            out = read_reports(batch, reader, source="Spark partition")  # type: ignore[arg-type]
            out[c.ASSESSMENT_DATE] = pd.Series(
                [ts.date() for ts in pd.to_datetime(out[c.ASSESSMENT_DATE])], dtype=object
            )
            yield out.loc[:, names].reset_index(drop=True)

    return df.mapInPandas(read_batches, schema=schema)
