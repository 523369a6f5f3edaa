"""Benchmark of the report reader: reports a second on one core, memory flat in the count.

Builds a few hundred varied radiology report texts (3-8 sentences each: findings and
impression sections, negations, hedges, count words, site lists, comparisons; phrase pools
written here, independent of the reader's rules and of the simulator) and measures

* throughput: :meth:`flare_ml.reports.ReportReader.read_many` and
  :func:`flare_ml.reports.read_reports` (the table path: checks, columns, evidence JSON)
  over the texts repeated to ``--reports`` reports, pinned to one CPU core, in a fresh
  subprocess per repeat (the reader built once, before the clock starts); the median of
  the repeats is reported. Target (issue 14): at least 1,000 reports a second;
* memory: a report file of 2,000 and of 20,000 reports streamed in chunks through
  ``read_reports`` (read chunk, read reports, append to the output file), each size in its
  own subprocess; the peak RSS must not grow with the number of reports.

Results go to stdout and to ``benchmarks/results/reports.md``.

Usage::

    .venv/bin/python benchmarks/bench_reports.py                   # 5 repeats, 2,000 reports
    .venv/bin/python benchmarks/bench_reports.py --repeats 1 --sizes 500 2000
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench_common as common

TARGET_PER_SECOND = 1000.0

_HEADERS = ["CT chest, abdomen and pelvis with contrast.", "Whole-body bone scintigraphy.",
            "PET-CT skull base to mid-thigh.", "MRI of the whole spine.",
            "CT CAP. Comparison: prior CT of 3 months ago.", "FINDINGS:"]  # fmt: skip
_BONE = [
    "No new lytic or blastic lesions.",
    "No new osseous lesions.",
    "No new bone metastases are identified.",
    "Numerous new blastic bone lesions in the spine, ribs and sternum.",
    "Two new sclerotic lesions in T7 and T9.",
    "A new lytic lesion in the right iliac bone.",
    "New sclerotic foci in T7, T9 and the left iliac bone, likely flare.",
    "Possible new focus of increased uptake in the left 6th rib.",
    "3 new osteoblastic mets in the L-spine.",
    "Several new mixed lytic-sclerotic lesions in the pelvis.",
    "Known sclerotic lesions in L1 and L3 are unchanged.",
    "Stable appearance of the previously described vertebral metastases.",
    "No evidence of new osseous metastatic disease.",
    "Equivocal new lucency in the left femoral neck, cannot exclude a new lesion.",
]
_KNOWN = [
    "Increased sclerosis of the known lytic L2 lesion, likely treatment response.",
    "Progressive lytic destruction of the known T11 lesion with cortical breach.",
    "Sclerotic rim around the known lytic lesion of the sacrum, consistent with healing.",
    "Increased tracer uptake in the known lesions.",
    "The known lytic lesion in the left ischium has enlarged.",
    "",
]
_SOFT = [
    "Liver metastases decreased in size.",
    "New 9 mm nodule in the right lower lobe.",
    "Progression of the hepatic metastases.",
    "Mediastinal lymph nodes are stable.",
    "No new hepatic lesions. Adrenal glands unremarkable.",
    "Small right pleural effusion, unchanged.",
    "Diffuse heterogeneous marrow uptake throughout the axial skeleton.",
]
_IMPRESSION = [
    "IMPRESSION: 1. New blastic mets T-spine. 2. PR liver.",
    "IMPRESSION: Stable disease. No new bone lesions.",
    "IMPRESSION: Partial response of the liver metastases; new sclerotic foci, likely flare.",
    "IMPRESSION: Progressive disease with new lytic lesions.",
    "IMPRESSION: Overall stable disease.",
    "IMPRESSION: Complete response of nodal disease. Bones stable.",
]


def report_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` varied reports of 3-8 sentences."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        parts = [rng.choice(_HEADERS), *rng.sample(_BONE, rng.randint(1, 2)), rng.choice(_KNOWN)]
        parts += [*rng.sample(_SOFT, rng.randint(1, 2)), rng.choice(_IMPRESSION)]
        texts.append(" ".join(p for p in parts if p))
    return texts


def report_table(n: int, seed: int = 0):
    import pandas as pd

    texts = report_texts(300, seed)
    dates = pd.date_range("2020-01-01", periods=400, freq="7D").strftime("%Y-%m-%d")
    return pd.DataFrame(
        {
            "patient_id": [f"P{i // 8:06d}" for i in range(n)],
            "assessment_date": [dates[i % 8 * 40 + i // 8 % 40] for i in range(n)],
            "modality": ["ct"] * n,
            "text": [texts[i % len(texts)] for i in range(n)],
        }
    )


_SPEED = """
import json, os, sys, time
sys.path.insert(0, {here!r})
os.sched_setaffinity(0, {{min(os.sched_getaffinity(0))}})
from bench_reports import report_table
from flare_ml.reports import ReportReader, read_reports
table = report_table({n})
texts = table["text"].tolist()
reader = ReportReader()
list(reader.read_many(texts[:50]))  # warm up
start = time.perf_counter()
for _ in reader.read_many(texts):
    pass
bare = time.perf_counter() - start
start = time.perf_counter()
read_reports(table, reader)
tabled = time.perf_counter() - start
print(json.dumps({{"bare": bare, "table": tabled}}))
"""

_MEMORY = """
import json, os, sys, time
sys.path.insert(0, {here!r})
import pyarrow.parquet as pq
from bench_reports import report_table
import _bench_common as common
from flare_ml.reports import ReportReader, read_reports
path = {path!r}
report_table({n}).to_parquet(path, row_group_size=1000)
import gc; gc.collect()
reader = ReportReader()
base = common.current_rss_gb()
start = time.perf_counter()
rows = 0
with open(path + ".out.csv", "w") as out:
    for i, batch in enumerate(pq.ParquetFile(path).iter_batches(batch_size=1000)):
        found = read_reports(batch.to_pandas(), reader)
        found.to_csv(out, header=i == 0, index=False)
        rows += len(found)
print(json.dumps({{"rows": rows, "seconds": time.perf_counter() - start,
                  "peak_gb": common.peak_rss_image_gb(), "start_gb": base}}))
"""


_PROFILE = """
import json, os, sys, time
sys.path.insert(0, {here!r})
os.sched_setaffinity(0, {{min(os.sched_getaffinity(0))}})
from bench_reports import report_texts
from flare_ml.reports import ReportReader
texts = report_texts(300)
reader = ReportReader()
nlp = reader.nlp
list(reader.read_many(texts[:50]))

def best(run, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) * 1000 / len(texts)

steps = {{"tokenizer": best(lambda: [nlp.make_doc(t) for t in texts])}}
done = steps["tokenizer"]
used = []
for name, component in nlp.pipeline:
    used.append(component)
    def run(used=tuple(used)):
        for text in texts:
            doc = nlp.make_doc(text)
            for step in used:
                doc = step(doc)
    total = best(run)
    steps[name] = total - done
    done = total
whole = best(lambda: list(reader.read_many(texts)))
steps["the reader's conventions (read_many minus the pipeline)"] = whole - done
print(json.dumps({{"steps": steps, "whole": whole}}))
"""


def _child(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000, help="reports per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs=2, default=[2000, 20000])
    args = parser.parse_args()
    started = time.perf_counter()
    here = str(Path(__file__).resolve().parent)
    load = common.load_average()
    runs = [_child(_SPEED.format(here=here, n=args.reports)) for _ in range(args.repeats)]
    bare = [args.reports / r["bare"] for r in runs]
    tabled = [args.reports / r["table"] for r in runs]
    profile = _child(_PROFILE.format(here=here))
    memory = []
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            path = str(Path(folder) / f"reports-{n}.parquet")
            memory.append((n, _child(_MEMORY.format(here=here, n=n, path=path))))
    met = "met" if common.median(tabled) >= TARGET_PER_SECOND else "**missed**"
    sentences = [len(re.findall(r"[.!?](?:\s|$)", t)) for t in report_texts(300)]
    lines = [
        "# Report reader (`flare_ml.reports`)",
        "",
        common.machine_table(),
        "",
        f"Command: `{common.python()} benchmarks/bench_reports.py --reports {args.reports} "
        f"--repeats {args.repeats} --sizes {args.sizes[0]} {args.sizes[1]}`; 300 varied "
        f"report texts written for the benchmark (simulated, {min(sentences)}-"
        f"{max(sentences)} sentences, median {common.median(sentences):.0f}), repeated to "
        f"{args.reports} reports; one CPU core (affinity), a fresh process per repeat, the "
        f"reader built before the clock starts. Load average before the runs: {load}.",
        "",
        "| measure | runs | median | target |",
        "|---|---|---|---|",
        f"| `ReportReader.read_many` (reports/s) | {common.fmt_runs(bare, 0)} | "
        f"{common.median(bare):.0f} | |",
        f"| `read_reports` table (reports/s) | {common.fmt_runs(tabled, 0)} | "
        f"{common.median(tabled):.0f} | >= {TARGET_PER_SECOND:.0f}: {met} |",
        "",
        "Memory: a Parquet file of reports streamed in chunks of 1,000 through "
        "`read_reports`, the findings appended to a CSV file (one process per size):",
        "",
        "| reports | seconds | reports/s | RSS before reading (GB) | peak RSS (GB) |",
        "|---|---|---|---|---|",
    ]
    for n, m in memory:
        lines.append(f"| {n:,} | {m['seconds']:.1f} | {n / m['seconds']:.0f} | "
                     f"{m['start_gb']:.2f} | {m['peak_gb']:.2f} |")  # fmt: skip
    lines += [
        "",
        "Where the time goes (300 reports, one core, best of 3 per step; the pipeline's "
        "components added one at a time):",
        "",
        "| step | ms per report | share |",
        "|---|---|---|",
    ]
    for step, ms in profile["steps"].items():
        lines.append(f"| {step} | {ms:.2f} | {ms / profile['whole']:.0%} |")
    lines.append(f"| total (`read_many`) | {profile['whole']:.2f} | 100% |")
    lines += ["", f"Benchmark wall time {time.perf_counter() - started:.0f} s."]
    common.write_result("reports", "\n".join(lines))


if __name__ == "__main__":
    main()
