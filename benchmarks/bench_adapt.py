"""Benchmark of site adaptation (``flare-ml adapt``) on a small labelled site.

Simulates a labelled site cohort (community site, 300 patients by default) and adapts the
shipped literature prior to it with :func:`flare_ml.adaptation.adapt_bundle`: the model-update
selection by repeated grouped cross-validation, the refit and the cross-conformal thresholds
(everything ``flare-ml adapt`` does except writing the folder). Each repeat runs in a fresh
subprocess; wall time and peak RSS are reported with their median. Target (issue 13): at most
60 s for 300 patients on the 2-core machine. Results go to stdout and to
``benchmarks/results/adapt.md``.

Usage::

    .venv/bin/python benchmarks/bench_adapt.py                # 300 patients, 3 repeats
    .venv/bin/python benchmarks/bench_adapt.py --patients 150 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench_common as common

TARGET_SECONDS = 60.0

_CHILD = """
import json, sys, time
from flare_ml.adaptation import adapt_bundle
from flare_ml.serving.flavor import load_bundle
from flare_ml.simulate import simulate_cohort
sys.path.insert(0, {here!r})
import _bench_common as common
table = simulate_cohort({patients}, site="community", seed={seed}).timepoints
prior = load_bundle("prior")
start = time.perf_counter()
result = adapt_bundle(prior, table, label="benchmark site")
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "chosen": result.chosen,
                   "peak_gb": common.peak_rss_gb()}}))
"""


def one_run(patients: int, seed: int) -> dict:
    code = _CHILD.format(here=str(Path(__file__).resolve().parent), patients=patients, seed=seed)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    runs = [one_run(args.patients, args.seed) for _ in range(args.repeats)]
    seconds = [r["seconds"] for r in runs]
    peaks = [r["peak_gb"] for r in runs]
    met = "met" if common.median(seconds) <= TARGET_SECONDS else "**missed**"
    text = "\n".join(
        [
            "## Site adaptation (`flare-ml adapt`)",
            "",
            common.machine_table(),
            "",
            f"Command: `{common.python()} benchmarks/bench_adapt.py --patients {args.patients} "
            f"--repeats {args.repeats}`; simulated site community, {args.patients} patients "
            f"(seed {args.seed}), the shipped literature prior; chosen update: "
            f"{', '.join(sorted({r['chosen'] for r in runs}))}.",
            "",
            "| measure | runs | median | target |",
            "|---|---|---|---|",
            f"| adapt wall time (s) | {common.fmt_runs(seconds, 1)} | "
            f"{common.median(seconds):.1f} | <= {TARGET_SECONDS:.0f} s: {met} |",
            f"| peak RSS (GB) | {common.fmt_runs(peaks)} | {common.median(peaks):.2f} | |",
            "",
            f"Benchmark wall time {time.perf_counter() - started:.0f} s (simulation and "
            "imports included).",
        ]
    )
    common.write_result("adapt", text)


if __name__ == "__main__":
    main()
