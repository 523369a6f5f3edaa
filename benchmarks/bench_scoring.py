"""Benchmark of batch scoring (``flare_ml.serving.batch.score_file``) on simulated cohorts.

Scores a Parquet cohort of about 1,000,000 timepoint rows from the simulator end to end
(read, validate, features, calibrated P(flare), conformal decision, reasons, write) with
and without reasons, and measures in the same process the bare model cost: XGBoost
``predict`` plus ``pred_contribs`` on the same index rows, features precomputed. Targets
(issue 6): at least 1,000,000 rows a minute without reasons on 2 cores, and end to end
with reasons within 1.5x of the bare model cost. A stage breakdown of one in-memory pass
shows where the time goes. Peak memory is read (``ru_maxrss``) in a fresh subprocess per
size, for 1M and 4M rows (target at most 2 GB and flat). Results go to stdout and
``benchmarks/results/scoring.md``.

Usage::

    .venv/bin/python benchmarks/bench_scoring.py                  # full run, 3 repeats
    .venv/bin/python benchmarks/bench_scoring.py --rows 200000 --repeats 1 --no-memory
    .venv/bin/python benchmarks/bench_scoring.py --model models:/flare-classifier/latest
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench_common as common

TARGET_ROWS_PER_MIN = 1_000_000
TARGET_RATIO = 1.5
TARGET_GB = 2.0


def _child(args: argparse.Namespace) -> None:
    """One scoring run in this fresh process; print wall time and memory as JSON."""
    from flare_ml.bundle import FlareModelBundle
    from flare_ml.serving.batch import score_file

    bundle = FlareModelBundle.load(args.model_dir)
    ready_gb = common.current_rss_gb()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = score_file(
            bundle, args.child, Path(tmp) / "scores.parquet", chunk_rows=args.chunk_rows,
            with_reasons=not args.no_reasons,
        )  # fmt: skip
        seconds = time.perf_counter() - start
    print(json.dumps({
        "seconds": seconds, "peak_gb": common.peak_rss_image_gb(),
        "ru_maxrss_gb": common.peak_rss_gb(), "ready_gb": ready_gb,
        "rows": summary.rows, "index_rows": summary.index_rows, "chunks": summary.chunks,
    }))  # fmt: skip


def _run_child(path: Path, model_dir: Path, chunk_rows: int, reasons: bool) -> dict:
    command = [
        sys.executable, __file__, "--child", str(path), "--model-dir", str(model_dir),
        "--chunk-rows", str(chunk_rows),
    ] + ([] if reasons else ["--no-reasons"])  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _bare_model(bundle, features) -> float:
    """XGBoost predict plus contributions on the index rows (the floor of any scorer)."""
    import xgboost as xgb

    start = time.perf_counter()
    matrix = xgb.DMatrix(
        features[bundle.feature_names].to_numpy(dtype=np.float32),
        feature_names=bundle.feature_names,
        missing=np.nan,
    )
    bundle.booster.predict(matrix)
    bundle.booster.predict(matrix, pred_contribs=True)
    return time.perf_counter() - start


def _stages(bundle, path: Path) -> list[tuple[str, float]]:
    """One in-memory pass, stage by stage (what the chunked scorer does, unchunked)."""
    import pandas as pd

    from flare_ml.bundle import _joined_reasons
    from flare_ml.data import validate_timepoints
    from flare_ml.explain import shap_contributions, signal_contributions

    times: list[tuple[str, float]] = []

    def lap(name: str, start: float) -> float:
        now = time.perf_counter()
        times.append((name, now - start))
        return now

    t = time.perf_counter()
    raw = pd.read_parquet(path)
    t = lap("read Parquet", t)
    table = validate_timepoints(raw)
    t = lap("validate (data contract)", t)
    features = bundle.features(table)
    t = lap("features", t)
    p = bundle.proba_from_features(features)
    bundle.decide(p)
    t = lap("XGBoost predict + calibration + conformal decision", t)
    contrib, _ = shap_contributions(bundle.booster, features)
    signals = signal_contributions(contrib)
    t = lap("XGBoost pred_contribs + signal sums", t)
    _joined_reasons(features, signals, bundle.top_reasons)
    t = lap("reasons text", t)
    out = bundle.predict(table, with_reasons=False)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        out.to_parquet(Path(tmp) / "o.parquet", index=False)
        lap("write Parquet (no reasons)", t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory-rows", type=int, nargs="*", default=[1_000_000, 4_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    parser.add_argument("--model", default=None, help="model URI or bundle folder")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-heavy", action="store_true", help="skip the heavy reference model")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-reasons", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return

    import pandas as pd

    from flare_ml.bundle import FlareModelBundle
    from flare_ml.data import validate_timepoints
    from flare_ml.serving.batch import score_file

    machine = common.machine_table()
    model_dir = common.bench_model_dir(args.model)
    bundle = FlareModelBundle.load(model_dir)
    path = common.cohort_file(args.rows)
    cohort = common.describe_cohort(path)
    print(f"cohort {path}: {cohort}", flush=True)

    with_reasons: list[float] = []
    without: list[float] = []
    bare: list[float] = []
    features = bundle.features(validate_timepoints(pd.read_parquet(path)))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scores.parquet"
        for r in range(args.repeats):
            start = time.perf_counter()
            score_file(bundle, path, out, chunk_rows=args.chunk_rows, with_reasons=True)
            with_reasons.append(time.perf_counter() - start)
            start = time.perf_counter()
            score_file(bundle, path, out, chunk_rows=args.chunk_rows, with_reasons=False)
            without.append(time.perf_counter() - start)
            bare.append(_bare_model(bundle, features))
            print(f"repeat {r + 1}: with reasons {with_reasons[-1]:.2f} s, without "
                  f"{without[-1]:.2f} s, bare model {bare[-1]:.2f} s", flush=True)  # fmt: skip
    stages = _stages(bundle, path)

    heavy: dict[str, list[float]] = {"with": [], "bare": []}
    heavy_dir = None
    if not args.no_heavy:
        heavy_dir = common.heavy_model_dir()
        heavy_bundle = FlareModelBundle.load(heavy_dir)
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeats):
                start = time.perf_counter()
                score_file(heavy_bundle, path, Path(tmp) / "s.parquet", chunk_rows=args.chunk_rows)
                heavy["with"].append(time.perf_counter() - start)
                heavy["bare"].append(_bare_model(heavy_bundle, features))
        print(f"heavy reference: {heavy}", flush=True)

    memory = []
    if not args.no_memory:
        for rows in args.memory_rows:
            mpath = common.cohort_file(rows)
            for reasons in (True, False):
                result = _run_child(mpath, model_dir, args.chunk_rows, reasons)
                memory.append((rows, reasons, result))
                print(f"memory {rows} rows, reasons={reasons}: {result}", flush=True)

    rows = cohort["rows"]
    med_with, med_without, med_bare = (common.median(x) for x in (with_reasons, without, bare))
    per_min = rows / med_without * 60
    ratio = med_with / med_bare
    lines = [
        "# Batch scoring benchmark (`flare-ml score` / `score_file`)",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_scoring.py --rows {args.rows} "
        f"--repeats {args.repeats} --chunk-rows {args.chunk_rows}`",
        "",
        machine,
        f"| load average at end | {common.load_average()} |",
        "",
        f"Model: {common.model_description(model_dir)} "
        f"({'given: ' + args.model if args.model else 'the shipped training config, as `make demo` trains it'}).",  # noqa: E501
        "",
        f"## Throughput: {rows:,} rows, {cohort['patients']:,} patients, "
        f"{cohort['index_rows']:,} index rows",
        "",
        f"Input: Parquet written by `write_table` ({cohort['row_groups']} row group(s)); "
        f"output Parquet; chunks of {args.chunk_rows:,} rows; medians of {args.repeats} runs "
        "in one process (end to end includes reading, validation, features, writing).",
        "",
        "| measure | median (s) | runs (s) | rows/min | target |",
        "|---|---|---|---|---|",
        f"| end to end, without reasons | {med_without:.2f} | {common.fmt_runs(without)} | "
        f"{per_min:,.0f} | >= {TARGET_ROWS_PER_MIN:,} rows/min: "
        f"{'met' if per_min >= TARGET_ROWS_PER_MIN else 'MISSED'} |",
        f"| end to end, with reasons | {med_with:.2f} | {common.fmt_runs(with_reasons)} | "
        f"{rows / med_with * 60:,.0f} | <= {TARGET_RATIO}x bare model |",
        f"| bare model: XGBoost predict + pred_contribs on the {cohort['index_rows']:,} index "
        f"rows | {med_bare:.2f} | {common.fmt_runs(bare)} | | |",
        "",
        f"End to end with reasons / bare model cost: **{ratio:.2f}x** (target <= "
        f"{TARGET_RATIO}x: {'met' if ratio <= TARGET_RATIO else 'MISSED'}).",
        "",
    ]
    if heavy_dir is not None:
        h_with, h_bare = common.median(heavy["with"]), common.median(heavy["bare"])
        lines += [
            f"Reference, a heavier model ({common.model_description(heavy_dir)}; the kind "
            "the TreeSHAP cost note in docs/sources.md describes), same file and runs: end "
            f"to end with reasons {h_with:.2f} s (runs {common.fmt_runs(heavy['with'])}), "
            f"bare model {h_bare:.2f} s (runs {common.fmt_runs(heavy['bare'])}): "
            f"**{h_with / h_bare:.2f}x**.",
            "",
        ]
    lines += [
        "## Where the time goes (one in-memory pass over the same file, unchunked)",
        "",
        "| stage | seconds | share |",
        "|---|---|---|",
    ]
    total = sum(s for _, s in stages)
    lines += [f"| {name} | {s:.2f} | {s / total:.0%} |" for name, s in stages]
    if memory:
        lines += [
            "",
            "## Peak memory (fresh subprocess per run)",
            "",
            "Peak RSS is the process's high-water mark (`VmHWM`), interpreter, libraries and "
            "model included; `ru_maxrss` is shown too, but on Linux a child started by "
            "`subprocess` also counts the parent's resident pages at fork time in it (the "
            "parent here holds the 1M-row table), so it overstates the child's peak. The "
            "input files hold row groups of up to 1,048,576 rows (pyarrow's default), and "
            "Parquet is decoded a row group at a time; smaller row groups lower the peak "
            "further.",
            "",
            "| rows | reasons | peak RSS, VmHWM (GB) | ru_maxrss (GB) | RSS with model "
            "loaded, before scoring (GB) | seconds | chunks |",
            "|---|---|---|---|---|---|---|",
        ]
        for _, reasons, result in memory:
            lines.append(
                f"| {result['rows']:,} | {'yes' if reasons else 'no'} | "
                f"{result['peak_gb']:.2f} | {result['ru_maxrss_gb']:.2f} | "
                f"{result['ready_gb']:.2f} | "
                f"{result['seconds']:.1f} | {result['chunks']} |"
            )
        peaks = [r["peak_gb"] for _, _, r in memory]
        flat = max(peaks) - min(peaks)
        lines += [
            "",
            f"Largest peak {max(peaks):.2f} GB (target <= {TARGET_GB} GB: "
            f"{'met' if max(peaks) <= TARGET_GB else 'MISSED'}); spread across sizes "
            f"{flat:.2f} GB.",
        ]
    common.write_result("scoring", "\n".join(lines))


if __name__ == "__main__":
    main()
