"""Benchmark of Spark scoring (``flare_ml.spark.score_spark``) in ``local[2]``.

Scores the same simulated Parquet cohort as ``bench_scoring.py`` (about 1,000,000 rows)
with Spark in ``local[2]``: read Parquet, group patients into hash buckets, score each
bucket with ``applyInPandas`` through the JSON bundle, write Parquet; wall time per run
(median of repeats) and rows a second, with and without reasons. A smaller cohort is also
scored with one group per patient (``buckets=None``, a pandas call per patient) to show
why buckets are the default. Session start-up is reported separately. The answers are
checked against batch scoring of the same file. Results go to stdout and
``benchmarks/results/spark.md``.

Usage::

    .venv/bin/python benchmarks/bench_spark.py
    .venv/bin/python benchmarks/bench_spark.py --rows 200000 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench_common as common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--per-patient-rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shuffle-partitions", type=int, default=16)
    parser.add_argument("--model", default=None, help="model URI or bundle folder")
    args = parser.parse_args()

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    import warnings

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    warnings.filterwarnings("ignore", message="The copy keyword is deprecated")

    from flare_ml.bundle import FlareModelBundle
    from flare_ml.serving.batch import score_file
    from flare_ml.spark import score_spark

    machine = common.machine_table()
    model_dir = common.bench_model_dir(args.model)
    bundle = FlareModelBundle.load(model_dir)
    path = common.cohort_file(args.rows)
    cohort = common.describe_cohort(path)
    small_path = common.cohort_file(args.per_patient_rows)
    small = common.describe_cohort(small_path)

    start = time.perf_counter()
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("flare-ml-bench")
        .config("spark.sql.shuffle.partitions", str(args.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    startup = time.perf_counter() - start
    results: list[dict] = []
    try:
        with tempfile.TemporaryDirectory(prefix="flare-ml-bench-spark-") as tmp:
            batch = Path(tmp) / "batch.parquet"
            score_file(bundle, path, batch)

            def run(source: Path, reasons: bool, buckets: int | None, label: str) -> Path:
                times = []
                out = Path(tmp) / f"out-{len(results)}"
                for _ in range(args.repeats if buckets != 0 else 1):
                    t = time.perf_counter()
                    rows = spark.read.parquet(str(source))
                    scored = score_spark(rows, bundle, with_reasons=reasons, buckets=buckets)
                    scored.write.mode("overwrite").parquet(str(out))
                    times.append(time.perf_counter() - t)
                n = cohort["rows"] if source == path else small["rows"]
                results.append({"label": label, "rows": n, "times": times,
                                "median": common.median(times)})  # fmt: skip
                print(results[-1], flush=True)
                return out

            # warm-up (not reported): starts the Python workers and imports flare_ml there
            score_spark(spark.read.parquet(str(small_path)), bundle).write.format("noop").mode(
                "overwrite"
            ).save()
            out = run(path, True, -1, "buckets (default), with reasons")
            run(path, False, -1, "buckets (default), without reasons")
            run(small_path, True, -1, "buckets (default), with reasons, small cohort")
            run(small_path, True, None, "one group per patient, with reasons, small cohort")

            got = pd.read_parquet(out).sort_values(["patient_id", "assessment_date"])
            want = pd.read_parquet(batch).sort_values(["patient_id", "assessment_date"])
            same = (
                got["patient_id"].tolist() == want["patient_id"].tolist()
                and np.array_equal(got["p_flare"].to_numpy(), want["p_flare"].to_numpy())
                and got["reasons"].tolist() == want["reasons"].tolist()
            )
    finally:
        spark.stop()

    lines = [
        "# Spark scoring benchmark (`flare_ml.spark.score_spark`, local[2])",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_spark.py --rows {args.rows} "
        f"--per-patient-rows {args.per_patient_rows} --repeats {args.repeats} "
        f"--shuffle-partitions {args.shuffle_partitions}`",
        "",
        machine,
        f"| load average at end | {common.load_average()} |",
        "",
        f"Model: {common.model_description(model_dir)}. Cohort: {cohort['rows']:,} rows, "
        f"{cohort['patients']:,} patients, {cohort['index_rows']:,} index rows (the file of "
        f"`bench_scoring.py`); small cohort: {small['rows']:,} rows, {small['patients']:,} "
        f"patients. Spark `local[2]`, `spark.sql.shuffle.partitions={args.shuffle_partitions}` "
        f"(so {8 * args.shuffle_partitions} patient buckets by default), Arrow on. Each run "
        "reads Parquet, scores and writes Parquet; SparkSession start-up "
        f"({startup:.1f} s) excluded.",
        "",
        "| run | rows | median (s) | runs (s) | rows/s | rows/min |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['label']} | {r['rows']:,} | {r['median']:.1f} | "
            f"{common.fmt_runs(r['times'], 1)} | {r['rows'] / r['median']:,.0f} | "
            f"{r['rows'] / r['median'] * 60:,.0f} |"
        )
    lines += [
        "",
        f"Spark output identical to batch scoring of the same file (patients, dates, "
        f"p_flare bit for bit, reasons): {'yes' if same else 'NO'}.",
    ]
    common.write_result("spark", "\n".join(lines))


if __name__ == "__main__":
    main()
