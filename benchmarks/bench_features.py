"""Benchmark of the vectorised featurizer (flare_ml.features) on a large synthetic cohort.

Builds a cohort of about 1,000,000 timepoint rows (100,000 patients, imaging every third
visit and lab-only ALP draws between, missing values in the optional columns) with a fast
vectorised generator kept here, writes it to a temporary Parquet file, and featurises it in
fresh subprocesses (one per repeat, for a fair peak-memory reading): wall time, peak RSS
of the process (``resource.getrusage``) and the traced allocation peak of the
transform alone (``tracemalloc``, a separate run). A straightforward per-patient
``groupby().apply`` reference implementation (kept only here) runs on a smaller cohort;
its values are checked against the vectorised features and the per-row throughputs are
compared. Results go to stdout and to ``benchmarks/results/features.md`` as Markdown.

Usage::

    .venv/bin/python benchmarks/bench_features.py               # full run, 3 repeats
    .venv/bin/python benchmarks/bench_features.py --patients 10000 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn

from flare_ml.data import contract as c
from flare_ml.features import RESPONSE_ORDINAL, TimepointFeaturizer

RESULTS = Path(__file__).resolve().parent / "results" / "features.md"
TARGET_SECONDS = 20.0
TARGET_GB = 2.0


# --- synthetic cohort (vectorised; not a calibrated simulator) -----------------------------


def _optional_flag(
    rng: np.random.Generator, p_true: float, p_missing: float, n: int
) -> pd.arrays.BooleanArray:
    values = rng.random(n) < p_true
    return pd.array(np.where(rng.random(n) < p_missing, pd.NA, values), dtype="boolean")


def synthetic_cohort(n_patients: int, seed: int = 0) -> pd.DataFrame:
    """Return a timepoint table of ``n_patients`` with 6-14 visits each (about 10)."""
    rng = np.random.default_rng(seed)
    visits = rng.integers(6, 15, n_patients)
    n = int(visits.sum())
    patient = np.repeat(np.arange(n_patients), visits)
    first = np.repeat(np.cumsum(visits) - visits, visits)
    k = np.arange(n) - first  # visit number within the patient, 0 = baseline
    start = np.datetime64("2015-01-05") + rng.integers(0, 3000, n_patients).astype("m8[D]")
    jitter = np.where(k == 0, 0, rng.integers(-3, 4, n))
    date = start[patient] + (k * 28 + jitter).astype("m8[D]")
    imaging = k % 3 == 0
    baseline = k == 0
    follow_up = imaging & ~baseline

    flare = rng.random(n_patients) < 0.4
    lesions = np.where(follow_up & (rng.random(n) < 0.3), rng.integers(1, 6, n), 0)
    response_pool = np.array(["CR", "PR", "SD", "PD", "NE"])
    response = np.where(
        flare[patient],
        response_pool[rng.choice(5, n, p=[0.1, 0.45, 0.35, 0.05, 0.05])],
        response_pool[rng.choice(5, n, p=[0.02, 0.1, 0.3, 0.53, 0.05])],
    )
    response = np.where(baseline, "baseline", response)
    morphology = np.array(["blastic", "lytic", "mixed"])[rng.integers(0, 3, n)]
    morphology = np.where(lesions > 0, morphology, "none")
    alp = 150 * np.exp(rng.normal(0, 0.3, n_patients))[patient] * np.exp(rng.normal(0, 0.1, n))
    alp = np.where(rng.random(n) < 0.1, np.nan, np.round(alp, 1))
    sld = 20 + 80 * rng.random(n_patients)
    sld = sld[patient] * np.exp(rng.normal(0, 0.15, n))
    sld = np.where(imaging & (rng.random(n) > 0.15), np.round(sld, 1), np.nan)

    def on_imaging(values: np.ndarray) -> np.ndarray:
        return np.where(imaging, values, None)

    table = pd.DataFrame(
        {
            c.PATIENT_ID: pd.array(np.char.add("P", np.char.zfill(patient.astype(str), 6))),
            c.TREATMENT_START_DATE: start[patient].astype("datetime64[us]"),
            c.ASSESSMENT_DATE: date.astype("datetime64[us]"),
            c.ROW_TYPE: np.where(imaging, "imaging", "lab"),
            c.CANCER_TYPE: np.array(c.CANCER_TYPES)[rng.integers(0, 4, n_patients)][patient],
            c.THERAPY_CLASS: np.array(c.THERAPY_CLASSES)[rng.integers(0, 11, n_patients)][patient],
            c.EXTRAOSSEOUS_RESPONSE: on_imaging(response),
            c.NEW_EXTRAOSSEOUS_LESION: _optional_flag(rng, 0.1, 0.2, n),
            c.SLD_MM: sld,
            c.NEW_BONE_LESIONS: pd.array(np.where(imaging, lesions, pd.NA), dtype="Int64"),
            c.NEW_LESION_MORPHOLOGY: on_imaging(morphology),
            c.PROGRESSIVE_LYSIS: _optional_flag(rng, 0.1, 0.3, n),
            c.KNOWN_LESION_SCLEROSIS: _optional_flag(rng, 0.2, 0.3, n),
            c.ALP_U_L: alp,
            c.BASELINE_MARROW_INVOLVEMENT: _optional_flag(rng, 0.2, 0.5, n_patients)[patient],
            c.CLINICAL_DETERIORATION: _optional_flag(rng, 0.1, 0.2, n),
            c.OUTCOME: np.where(
                lesions > 0, np.where(flare[patient], "flare", "progression"), None
            ),
        }
    )
    for col in (c.NEW_EXTRAOSSEOUS_LESION, c.PROGRESSIVE_LYSIS, c.KNOWN_LESION_SCLEROSIS):
        table[col] = table[col].where(imaging)
    for col, vocabulary in c.VOCABULARIES.items():
        table[col] = table[col].astype(pd.CategoricalDtype(list(vocabulary)))
    return table


def as_text(table: pd.DataFrame) -> pd.DataFrame:
    """The same table with its category columns as plain text (as read from a file)."""
    out = table.copy()
    for col in c.VOCABULARIES:
        out[col] = out[col].astype("str").where(out[col].notna())
    return out


# --- reference implementation: one Python function per patient -----------------------------


def _reference_patient(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows.sort_values(c.ASSESSMENT_DATE)
    start = rows[c.TREATMENT_START_DATE].iloc[0]
    out = []
    for i in range(len(rows)):
        row = rows.iloc[i]
        imaging = row[c.ROW_TYPE] != "lab"
        if not (imaging and pd.notna(row[c.NEW_BONE_LESIONS]) and row[c.NEW_BONE_LESIONS] > 0):
            continue
        t = row[c.ASSESSMENT_DATE]
        history = rows.iloc[: i + 1]
        scans = history[history[c.ROW_TYPE] != "lab"]
        responses = scans[c.EXTRAOSSEOUS_RESPONSE].astype(object).map(RESPONSE_ORDINAL).dropna()
        sld_before = scans[c.SLD_MM].iloc[:-1].dropna()
        alp = history.dropna(subset=[c.ALP_U_L])
        pre = alp[alp[c.ASSESSMENT_DATE] <= start]
        baseline = (
            pre[c.ALP_U_L].iloc[-1]
            if len(pre)
            else (alp[c.ALP_U_L].iloc[0] if len(alp) else np.nan)
        )
        current = alp[c.ALP_U_L].iloc[-1] if len(alp) else np.nan
        window = alp[alp[c.ASSESSMENT_DATE] > t - pd.Timedelta(days=90)]
        slope = np.nan
        if len(window) >= 2:
            x = (window[c.ASSESSMENT_DATE] - start).dt.days.to_numpy(dtype=float)
            slope = 30 * np.polyfit(x, window[c.ALP_U_L].to_numpy(), 1)[0]
        since_start = alp[alp[c.ASSESSMENT_DATE] >= start][c.ALP_U_L]
        peak = since_start.max() if len(since_start) else np.nan
        nadir = sld_before.min() if len(sld_before) else np.nan
        earlier_index = (scans[c.NEW_BONE_LESIONS].iloc[:-1].fillna(0) > 0).sum()
        deterioration = history[c.CLINICAL_DETERIORATION].dropna()
        out.append(
            {
                c.ASSESSMENT_DATE: t,
                "days_since_treatment_start": float((t - start).days),
                "imaging_assessment_number": float((scans[c.ASSESSMENT_DATE] > start).sum()),
                "best_extraosseous_response_ordinal": responses.max() if len(responses) else np.nan,
                "sld_percent_change_from_nadir": 100 * (row[c.SLD_MM] - nadir) / nadir,
                "alp_u_l": current,
                "alp_baseline_u_l": baseline,
                "alp_change_from_baseline_u_l": current - baseline,
                "alp_slope_u_l_per_30_days": slope,
                "alp_max_rise_above_baseline_u_l": max(peak - baseline, 0.0)
                if pd.notna(peak)
                else np.nan,
                "new_bone_lesion_count_cumulative": float(
                    scans[c.NEW_BONE_LESIONS].fillna(0).sum()
                ),
                "previous_index_events": float(earlier_index),
                "clinical_deterioration_ever": float(deterioration.any())
                if len(deterioration)
                else np.nan,
            }
        )
    return pd.DataFrame(out)


def reference_features(table: pd.DataFrame) -> pd.DataFrame:
    """Per-patient ``groupby().apply`` reference for a subset of the features."""
    out = table.groupby(c.PATIENT_ID, observed=True).apply(_reference_patient)
    out = out.reset_index(level=0).set_index([c.PATIENT_ID, c.ASSESSMENT_DATE])
    return out.sort_index()


# --- measurements -----------------------------------------------------------------------


def _child(path: str, mode: str) -> None:
    """Featurise the Parquet table at ``path`` in this fresh process; print JSON."""
    table = pd.read_parquet(path)
    if mode == "text":
        table = as_text(table)
    featurizer = TimepointFeaturizer()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if mode == "tracemalloc":
        tracemalloc.start()
        began = time.perf_counter()
        features = featurizer.fit_transform(table)
        seconds = time.perf_counter() - began
        traced_peak = tracemalloc.get_traced_memory()[1] / 2**30
        tracemalloc.stop()
    else:
        began = time.perf_counter()
        features = featurizer.fit_transform(table)
        seconds = time.perf_counter() - began
        traced_peak = None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        json.dumps(
            {
                "rows": len(table),
                "patients": int(table[c.PATIENT_ID].nunique()),
                "index_rows": len(features),
                "seconds": seconds,
                "rss_after_load_gb": rss_before,
                "peak_rss_gb": peak,
                "traced_peak_gb": traced_peak,
            }
        )
    )


def _run_child(path: Path, mode: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--mode", mode],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def compare_with_reference(n_patients: int) -> dict[str, float]:
    """Time both implementations on a small cohort and check that they agree."""
    table = synthetic_cohort(n_patients, seed=1)
    began = time.perf_counter()
    vectorised = TimepointFeaturizer().fit_transform(table)
    vector_seconds = time.perf_counter() - began
    began = time.perf_counter()
    reference = reference_features(table)
    reference_seconds = time.perf_counter() - began
    assert reference.index.equals(vectorised.index), "index rows differ"
    for column in reference.columns:
        np.testing.assert_allclose(
            vectorised[column].to_numpy(),
            reference[column].to_numpy(dtype=float),
            rtol=1e-7,
            atol=1e-9,
            equal_nan=True,
            err_msg=column,
        )
    return {
        "rows": len(table),
        "index_rows": len(vectorised),
        "columns_checked": len(reference.columns),
        "vector_seconds": vector_seconds,
        "reference_seconds": reference_seconds,
    }


def machine() -> dict[str, str]:
    """Describe the machine and the library versions."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu count (usable)": f"{os.cpu_count()} ({usable})",
        "python": platform.python_version(),
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-patients", type=int, default=2_000)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="canonical", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.mode)
        return

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cohort.parquet"
        began = time.perf_counter()
        synthetic_cohort(args.patients).to_parquet(path, index=False)
        print(f"generated and wrote the cohort in {time.perf_counter() - began:.1f} s")
        runs = [_run_child(path, "canonical") for _ in range(args.repeats)]
        text_run = _run_child(path, "text")
        traced = _run_child(path, "tracemalloc")
    ref = compare_with_reference(args.reference_patients)

    seconds = [run["seconds"] for run in runs]
    median = statistics.median(seconds)
    peak = max(run["peak_rss_gb"] for run in runs)
    rows = runs[0]["rows"]
    vector_rate = rows / median
    ref_rate = ref["rows"] / ref["reference_seconds"]
    small_rate = ref["rows"] / ref["vector_seconds"]
    ok = median <= TARGET_SECONDS and peak <= TARGET_GB

    lines = [
        "# Featurizer benchmark",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_features.py --patients {args.patients} "
        f"--repeats {args.repeats} --reference-patients {args.reference_patients}`",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in machine().items()),
        "",
        f"## Full cohort: {rows:,} rows, {runs[0]['patients']:,} patients, "
        f"{runs[0]['index_rows']:,} index rows",
        "",
        "Each run is a fresh subprocess that loads the cohort from Parquet and calls "
        "`TimepointFeaturizer().fit_transform(table)`; peak RSS is the whole process "
        "(interpreter, libraries and the input table included).",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| wall time, median of {len(seconds)} (s) | {median:.2f} "
        f"(runs: {', '.join(f'{s:.2f}' for s in seconds)}) | <= {TARGET_SECONDS:.0f} |",
        f"| throughput (rows/s) | {vector_rate:,.0f} | |",
        f"| peak RSS of the process (GB) | {peak:.2f} | <= {TARGET_GB:.0f} |",
        f"| RSS after loading the input, before featurising (GB) | "
        f"{runs[0]['rss_after_load_gb']:.2f} | |",
        f"| traced allocation peak of the transform alone (GB, tracemalloc) | "
        f"{traced['traced_peak_gb']:.2f} | |",
        f"| wall time with text (not category) columns (s) | {text_run['seconds']:.2f} | |",
        f"| within target | {'yes' if ok else 'NO'} | |",
        "",
        f"## Reference: per-patient `groupby().apply` on {ref['rows']:,} rows "
        f"({args.reference_patients:,} patients, {ref['index_rows']:,} index rows)",
        "",
        f"Values agree on {ref['columns_checked']} feature columns (relative tolerance 1e-7).",
        "",
        "| implementation | rows | seconds | rows/s |",
        "|---|---|---|---|",
        f"| reference, groupby().apply | {ref['rows']:,} | {ref['reference_seconds']:.2f} | "
        f"{ref_rate:,.0f} |",
        f"| vectorised, same cohort | {ref['rows']:,} | {ref['vector_seconds']:.3f} | "
        f"{small_rate:,.0f} |",
        f"| vectorised, full cohort (median) | {rows:,} | {median:.2f} | {vector_rate:,.0f} |",
        "",
        f"Speed ratio (per-row throughput, vectorised full cohort / reference): "
        f"**{vector_rate / ref_rate:,.0f}x**; on the same small cohort: "
        f"{small_rate / ref_rate:,.0f}x.",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
