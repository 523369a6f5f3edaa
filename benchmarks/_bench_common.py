"""Shared pieces of the serving benchmarks: machine description, model, cohort files.

The benchmark model is the one ``make demo`` trains (the shipped training config on the
simulated training site), fitted once and cached as a JSON bundle; ``--model`` points a
benchmark at any model URI or bundle folder instead. Cohort files come from the
simulator (``flare_ml.simulate``) and are cached too, keyed by size and seed. Nothing
here is timed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CACHE_DIR = Path(
    os.environ.get("FLARE_ML_BENCH_CACHE", Path(tempfile.gettempdir()) / "flare-ml-bench")
)
PACKAGES = ("flare-ml", "pandas", "numpy", "pyarrow", "xgboost-cpu", "scikit-learn", "mlflow",
            "pyspark", "uvicorn", "fastapi")  # fmt: skip


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_rows() -> list[tuple[str, str]]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rows = [
        ("platform", platform.platform()),
        ("cpu", cpu_model()),
        ("cpu count (usable)", f"{os.cpu_count()} ({usable})"),
        ("memory", _memory()),
        ("python", platform.python_version()),
    ]
    for name in PACKAGES:
        try:
            rows.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    rows.append(("load average at start (1, 5, 15 min)", load_average()))
    return rows


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GB"
    except OSError:
        pass
    return "unknown"


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def machine_table() -> str:
    lines = ["| machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in machine_rows()]
    return "\n".join(lines)


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def peak_rss_image_gb() -> float:
    """Peak RSS of this process image (``VmHWM``), not counting a parent's pages.

    ``ru_maxrss`` of a child started by ``subprocess`` on Linux also counts the parent's
    resident pages at fork time, so a large parent inflates it; ``VmHWM`` is the high-water
    mark of the address space that exec created.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return peak_rss_gb()


def current_rss_gb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return float("nan")


def median(values: list[float]) -> float:
    return float(np.median(values))


def fmt_runs(values: list[float], digits: int = 2) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def write_result(name: str, text: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.md"
    path.write_text(text.rstrip() + "\n")
    print(text)
    print(f"\nwritten: {path}")
    return path


# --- the model ----------------------------------------------------------------------------
def bench_model_dir(model: str | None = None) -> Path:
    """A bundle folder: ``model`` resolved (URI or folder), or the cached demo-config model."""
    from flare_ml.bundle import MANIFEST

    if model:
        if (Path(model) / MANIFEST).exists():
            return Path(model)
        from flare_ml.serving.flavor import load_bundle

        folder = CACHE_DIR / ("model-" + hashlib.sha256(model.encode()).hexdigest()[:12])
        return load_bundle(model).save(folder)
    from flare_ml import __version__
    from flare_ml.train_config import load_train_config

    cfg = load_train_config(None)
    key = hashlib.sha256((cfg.model_dump_json() + __version__).encode()).hexdigest()[:12]
    folder = CACHE_DIR / f"demo-model-{key}"
    if (folder / MANIFEST).exists():
        return folder
    from flare_ml.simulate import simulate_cohort
    from flare_ml.training import fit_bundle

    spec = cfg.data.train
    print(f"training the benchmark model (shipped config, {spec.patients} patients) ...",
          flush=True)  # fmt: skip
    start = time.perf_counter()
    table = simulate_cohort(spec.patients, site=spec.site, seed=spec.seed).timepoints
    bundle = fit_bundle(table, cfg, outer_folds=cfg.model.outer_folds)
    bundle.save(folder)
    print(f"  trained in {time.perf_counter() - start:.0f} s -> {folder}", flush=True)
    return folder


def heavy_model_dir() -> Path:
    """A deliberately heavier reference model: up to 300 trees of depth 6 (cached).

    The cost note in docs/sources.md, TreeSHAP cost (0.3-0.45 ms a row for 200 trees of
    depth 6) describes such a model; it shows how the end-to-end / bare-model ratio
    behaves when XGBoost dominates.
    """
    from flare_ml.bundle import MANIFEST
    from flare_ml.simulate import simulate_cohort
    from flare_ml.train_config import load_train_config
    from flare_ml.training import fit_bundle

    folder = CACHE_DIR / "heavy-model-300x6"
    if (folder / MANIFEST).exists():
        return folder
    cfg = load_train_config(None)
    fixed = {"max_depth": [6], "learning_rate": [0.02], "min_child_weight": [1],
             "subsample": [0.85], "colsample_bytree": [0.8], "reg_lambda": [1.0]}  # fmt: skip
    model = cfg.model.model_copy(
        update={"search_space": fixed, "n_candidates": 1, "n_estimators_max": 300,
                "early_stopping_rounds": 300, "outer_folds": 2, "inner_folds": 2}
    )  # fmt: skip
    cfg = cfg.model_copy(update={"model": model})
    print("training the heavy reference model (up to 300 trees, depth 6) ...", flush=True)
    table = simulate_cohort(2000, seed=0).timepoints
    fit_bundle(table, cfg, outer_folds=2).save(folder)
    return folder


def model_description(folder: Path) -> str:
    manifest = json.loads((folder / "manifest.json").read_text())
    booster = json.loads((folder / "booster.json").read_text())
    trees = booster["learner"]["gradient_booster"]["model"]["trees"]
    nodes = np.mean([len(t["left_children"]) for t in trees])
    return (
        f"{len(trees)} trees, {nodes:.1f} nodes a tree on average, "
        f"{len(manifest['feature_names'])} features, top {manifest.get('top_reasons', 3)} "
        "reasons"
    )


# --- cohort files -------------------------------------------------------------------------
def rows_per_patient(site: str = "default") -> float:
    from flare_ml.simulate import simulate_cohort

    return len(simulate_cohort(2000, site=site, seed=12345).timepoints) / 2000


def cohort_file(rows: int, seed: int = 7, site: str = "default") -> Path:
    """A Parquet timepoint table of about ``rows`` rows from the simulator (cached).

    Sizes above one million rows repeat a one-million-row cohort under new patient ids
    (``<id>~r<k>``), which keeps the generator's memory small; rows stay grouped and
    sorted by patient.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from flare_ml.data import contract as c
    from flare_ml.data import write_table
    from flare_ml.simulate import simulate_cohort

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / f"cohort-{site}-{rows}-{seed}.parquet"
    if path.exists():
        return path
    base_rows = min(rows, 1_000_000)
    patients = int(np.ceil(base_rows / rows_per_patient(site)))
    table = simulate_cohort(patients, site=site, seed=seed).timepoints.drop(columns=[c.OUTCOME])
    repeats = max(1, round(rows / len(table)))
    if repeats == 1:
        write_table(table, path)
        return path
    tmp = path.with_suffix(".tmp")
    writer = None
    try:
        for k in range(repeats):
            part = table.assign(patient_id=table["patient_id"] + f"~r{k}")
            arrow = pa.Table.from_pandas(part, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, arrow.schema)
            writer.write_table(arrow)
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, path)
    return path


def describe_cohort(path: Path) -> dict[str, int]:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    ids = pq.read_table(path, columns=["patient_id"]).column(0).to_pandas()
    lesions = pq.read_table(path, columns=["new_bone_lesions", "row_type"]).to_pandas()
    index = int(
        ((lesions["new_bone_lesions"].fillna(0) > 0) & (lesions["row_type"] == "imaging")).sum()
    )
    return {
        "rows": meta.num_rows,
        "patients": int(ids.nunique()),
        "index_rows": index,
        "row_groups": meta.num_row_groups,
    }


def python() -> str:
    return sys.executable


def frame_md(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)
