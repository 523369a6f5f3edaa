"""Benchmark of the patient-level bootstrap (``flare_ml.evaluation``) on a cohort-sized sample.

Times :func:`flare_ml.evaluation.bootstrap_metrics` with every metric (including the two
Newton recalibration fits per resample) for 1,000 resamples of 1,500 index rows from 1,000
patients (500 with two rows, 500 with one), the size the unit test
``test_bootstrap_in_chunks_equals_one_block`` checks for correctness; then
:func:`flare_ml.evaluation.evaluate` of four scorers (one probability scorer, three ranking
scores) with a reference, on the same rows. Scores are drawn calibrated (``p =
expit(N(0, 1.5))``, ``y ~ Bernoulli(p)``). Each measurement is repeated after one warm-up
run; the medians are compared with the targets: the bootstrap of one scorer within 5 s on
two cores (the bound the test suite used to assert) and the evaluation within 1 s a scorer.
Nothing fails on a missed target: the result is recorded. Results go to stdout and
``benchmarks/results/bootstrap.md``.

Usage::

    .venv/bin/python benchmarks/bench_bootstrap.py                # 5 repeats
    .venv/bin/python benchmarks/bench_bootstrap.py --repeats 1 --resamples 200
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.special import expit, logit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench_common as common

from flare_ml.evaluation import METRICS, bootstrap_metrics, evaluate

#: median wall time of the bootstrap of one scorer, every metric (seconds, two cores)
TARGET_BOOTSTRAP_SECONDS = 5.0
#: median wall time of evaluate() per scorer (seconds, two cores)
TARGET_EVALUATE_SECONDS_PER_SCORER = 1.0


def cohort(rows: int, patients: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated scores and outcomes; the first patients have two rows, the rest one."""
    if not patients <= rows <= 2 * patients:
        raise SystemExit("--rows must lie between --patients and twice --patients")
    rng = np.random.default_rng(seed)
    p = expit(rng.normal(0.0, 1.5, rows))
    y = (rng.uniform(size=rows) < p).astype(int)
    doubled = rows - patients
    ids = np.repeat(np.arange(patients), [2] * doubled + [1] * (patients - doubled))
    return y, p, ids


def timed(run: Callable[[], object], repeats: int) -> list[float]:
    """Wall times of ``repeats`` calls after one warm-up call."""
    run()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()

    y, p, ids = cohort(args.rows, args.patients, args.seed)
    boot = timed(
        lambda: bootstrap_metrics(y, p, ids, 0.5, n_resamples=args.resamples, seed=0),
        args.repeats,
    )
    auroc = timed(
        lambda: bootstrap_metrics(
            y, p, ids, None, n_resamples=args.resamples, seed=0, metrics=("auroc",)
        ),
        args.repeats,
    )
    noise = np.random.default_rng(args.seed + 1).normal(0.0, 1.0, (3, len(y)))
    scores = {"model": p, **{f"ranking_{k}": logit(p) + noise[k] for k in range(3)}}
    thresholds = {"model": 0.5, **dict.fromkeys(list(scores)[1:], 0.0)}
    ev = timed(
        lambda: evaluate(
            y,
            scores,
            ids,
            thresholds=thresholds,
            n_resamples=args.resamples,
            seed=0,
            reference="model",
            probability_scorers=["model"],
        ),
        args.repeats,
    )

    med_boot, med_auroc, med_ev = (common.median(x) for x in (boot, auroc, ev))
    per_scorer = med_ev / len(scores)
    ok_boot = med_boot <= TARGET_BOOTSTRAP_SECONDS
    ok_ev = per_scorer <= TARGET_EVALUATE_SECONDS_PER_SCORER
    command = (
        f"`.venv/bin/python benchmarks/bench_bootstrap.py --rows {args.rows} --patients "
        f"{args.patients} --resamples {args.resamples} --repeats {args.repeats}`"
    )
    text = "\n".join(
        [
            "# Patient-level bootstrap benchmark (`flare_ml.evaluation`)",
            "",
            f"Command: {command}",
            "",
            common.machine_table(),
            "",
            f"{args.rows:,} index rows of {args.patients:,} patients, {int(y.sum()):,} flares; "
            f"{args.resamples:,} patient-level resamples; medians of {args.repeats} runs after "
            "one warm-up run, in seconds.",
            "",
            "| measurement | median (s) | runs (s) | target | met |",
            "|---|---|---|---|---|",
            f"| `bootstrap_metrics`, all {len(METRICS)} metrics, one scorer | {med_boot:.3f} | "
            f"{common.fmt_runs(boot, 3)} | <= {TARGET_BOOTSTRAP_SECONDS:.0f} | "
            f"{'yes' if ok_boot else 'NO'} |",
            f"| `bootstrap_metrics`, AUROC only, one scorer | {med_auroc:.3f} | "
            f"{common.fmt_runs(auroc, 3)} | | |",
            f"| `evaluate`, {len(scores)} scorers (1 probability, {len(scores) - 1} ranking), "
            f"reference, all metrics | {med_ev:.3f} ({per_scorer:.3f} a scorer) | "
            f"{common.fmt_runs(ev, 3)} | <= {TARGET_EVALUATE_SECONDS_PER_SCORER:.0f} a scorer | "
            f"{'yes' if ok_ev else 'NO'} |",
            "",
            "Ranking scorers skip the probability metrics, and with them the two Newton "
            "recalibration fits per resample. The machine may be shared: see the load average "
            "at start in the table above.",
        ]
    )
    common.write_result("bootstrap", text)


if __name__ == "__main__":
    main()
