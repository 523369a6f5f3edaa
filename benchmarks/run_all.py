"""Run every benchmark (``benchmarks/bench_*.py``) and collect the results in one file.

Each benchmark runs in its own subprocess with the same Python (so one's memory or
threads cannot skew another's) and writes ``benchmarks/results/<name>.md``; this script
then concatenates those files, under a description of the machine, into
``benchmarks/results.md``. ``make bench`` calls it. A benchmark that fails is reported in
the summary with its exit status and the others still run. Extra arguments are passed to
every benchmark only with ``--args`` (for a quick smoke run, for example).

Usage::

    .venv/bin/python benchmarks/run_all.py
    .venv/bin/python benchmarks/run_all.py --only scoring rest
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench_common as common

HERE = Path(__file__).resolve().parent

#: results file written by each benchmark script (bench_<name>.py -> results/<name>.md)
RESULT_NAMES = {"bench_features": "features"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="names, e.g. scoring rest")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per benchmark")
    args = parser.parse_args()

    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only]
    machine = common.machine_table()
    summary = []
    sections = []
    for script in scripts:
        name = RESULT_NAMES.get(script.stem, script.stem.removeprefix("bench_"))
        print(f"=== {script.name}", flush=True)
        start = time.perf_counter()
        try:
            code = subprocess.run([sys.executable, str(script)], timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
        seconds = time.perf_counter() - start
        summary.append(f"| {script.name} | {code} | {seconds:.0f} |")
        result = common.RESULTS_DIR / f"{name}.md"
        if code == 0 and result.exists():
            text = result.read_text().strip()
            # demote the file's headings one level under this document's title
            sections.append("\n".join("#" + line if line.startswith("#") else line
                                      for line in text.splitlines()))  # fmt: skip
        else:
            sections.append(f"## {script.name}\n\nFAILED (exit status {code}); see its output.")
    text = "\n\n".join(
        [
            "# flare-ml benchmarks",
            "Produced by `make bench` (`benchmarks/run_all.py`): every `benchmarks/bench_*.py` "
            "in its own subprocess, on this machine:",
            machine,
            "| benchmark | exit status | seconds |\n|---|---|---|\n" + "\n".join(summary),
            *sections,
        ]
    )
    out = HERE / "results.md"
    out.write_text(text + "\n")
    print(f"written: {out}")
    if any(not line.split("|")[2].strip() == "0" for line in summary):
        sys.exit(1)


if __name__ == "__main__":
    main()
