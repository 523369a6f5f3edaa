"""Benchmark of REST latency: ``mlflow models serve`` answering one patient's timeline.

Registers the benchmark model (see ``_bench_common``) as ``flare-classifier`` in a
throw-away sqlite store, serves it exactly as the README says (``mlflow models serve -m
models:/flare-classifier/latest --env-manager local``) on a free port of 127.0.0.1 only,
and times ``POST /invocations`` of one simulated patient of about ten rows with one index
row: 1,000 sequential requests, then 1,000 requests from 8 concurrent clients (125
each), with reasons (the default) and without. Latency is the client's wall time per
request over a kept-alive connection. Target (issue 6): p50 at most 15 ms and p99 at
most 40 ms. The server is started and stopped here (process group, bounded waits).
Results go to stdout and ``benchmarks/results/rest.md``.

Usage::

    .venv/bin/python benchmarks/bench_rest.py
    .venv/bin/python benchmarks/bench_rest.py --requests 200 --workers 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench_common as common

TARGET_P50_MS = 15.0
TARGET_P99_MS = 40.0
STARTUP_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _register(model_dir: Path, root: Path) -> str:
    import mlflow

    from flare_ml.serving.flavor import log_model

    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("bench-rest", artifact_location=(root / "a").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        log_model(model_dir, "flare-classifier")
    return uri


@contextlib.contextmanager
def _server(tracking_uri: str, workers: int, log: Path):
    import requests

    port = _free_port()
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    command = [
        str(bin_dir / "mlflow"), "models", "serve", "-m", "models:/flare-classifier/latest",
        "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", str(workers),
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/ping", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no /ping after {STARTUP_TIMEOUT_S} s")
            time.sleep(0.25)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)


def _patient_payload(rows: int = 10) -> tuple[str, int]:
    from flare_ml.data import contract as c
    from flare_ml.serving.schema import to_wire_format
    from flare_ml.simulate import simulate_cohort

    table = simulate_cohort(500, seed=99).timepoints.drop(columns=[c.OUTCOME])
    index = table["new_bone_lesions"].fillna(0) > 0
    counts = table[index].groupby("patient_id").size()
    single = counts[counts == 1].index
    sizes = table[table["patient_id"].isin(single)].groupby("patient_id").size()
    patient = (sizes - rows).abs().idxmin()
    timeline = table[table["patient_id"] == patient]
    records = json.loads(to_wire_format(timeline).to_json(orient="records"))
    return json.dumps({"dataframe_records": records}), len(timeline)


def _time_requests(base: str, body: str, n: int, clients: int) -> tuple[np.ndarray, float]:
    import requests

    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []
    per_client = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
    barrier = threading.Barrier(clients)

    def client(count: int) -> None:
        session = requests.Session()
        headers = {"Content-Type": "application/json"}
        mine = []
        barrier.wait()
        for _ in range(count):
            start = time.perf_counter()
            response = session.post(f"{base}/invocations", data=body, headers=headers, timeout=30)
            mine.append(time.perf_counter() - start)
            if response.status_code != 200:
                errors.append(response.text[:300])
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in per_client]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return np.asarray(latencies) * 1000.0, wall


def _ping_ms(base: str, n: int = 100) -> float:
    """Median latency of ``GET /ping`` on a kept-alive connection (no model work)."""
    import requests

    session = requests.Session()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        session.get(f"{base}/ping", timeout=10)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--model", default=None, help="model URI or bundle folder")
    args = parser.parse_args()

    machine = common.machine_table()
    model_dir = common.bench_model_dir(args.model)
    body, n_rows = _patient_payload()
    results = []
    ping: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="flare-ml-bench-rest-") as tmp:
        uri = _register(model_dir, Path(tmp))
        for workers in args.workers:
            with _server(uri, workers, Path(tmp) / f"server-{workers}.log") as base:
                quick = json.dumps(dict(json.loads(body), params={"with_reasons": False}))
                _time_requests(base, body, 50, 1)  # warm-up
                ping[workers] = _ping_ms(base)
                for label, payload in (("with reasons", body), ("without reasons", quick)):
                    for clients in (1, args.clients):
                        ms, wall = _time_requests(base, payload, args.requests, clients)
                        row = {
                            "workers": workers, "payload": label, "clients": clients,
                            "p50": float(np.percentile(ms, 50)),
                            "p99": float(np.percentile(ms, 99)),
                            "mean": float(ms.mean()), "rps": len(ms) / wall,
                        }  # fmt: skip
                        results.append(row)
                        print(row, flush=True)

    def verdict(r: dict) -> str:
        ok = r["p50"] <= TARGET_P50_MS and r["p99"] <= TARGET_P99_MS
        return "met" if ok else "MISSED"

    lines = [
        "# REST latency benchmark (`mlflow models serve`)",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_rest.py --requests {args.requests} "
        f"--clients {args.clients} --workers {' '.join(map(str, args.workers))}`",
        "",
        machine,
        f"| load average at end | {common.load_average()} |",
        "",
        f"Model: {common.model_description(model_dir)}. Request: one simulated patient, "
        f"{n_rows} timepoint rows, one index row, `dataframe_records` JSON "
        f"({len(body):,} bytes). Server: `mlflow models serve --env-manager local` on "
        "127.0.0.1 with the given uvicorn workers; client: `requests` sessions "
        "(keep-alive) in threads of one process on the same machine, so client and server "
        "share the CPUs. Latency is per request, as the client sees it.",
        "",
        f"Target: p50 <= {TARGET_P50_MS:.0f} ms and p99 <= {TARGET_P99_MS:.0f} ms.",
        "",
        "| server workers | payload | concurrent clients | requests | p50 (ms) | p99 (ms) | "
        "mean (ms) | requests/s | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['workers']} | {r['payload']} | {r['clients']} | {args.requests} | "
            f"{r['p50']:.1f} | {r['p99']:.1f} | {r['mean']:.1f} | {r['rps']:.0f} | "
            f"{verdict(r)} |"
        )
    lines += [
        "",
        "Median `GET /ping` (no model work) on a kept-alive connection: "
        + ", ".join(f"{w} worker(s) {ms:.1f} ms" for w, ms in ping.items())
        + ". With more than one uvicorn worker every kept-alive response waits for the "
        "client's delayed ACK (~40 ms on Linux): the multiprocess supervisor hands the "
        "workers a listening socket whose `proto` is 0, so asyncio never sets "
        "`TCP_NODELAY` (uvicorn issue Kludex/uvicorn#3149). Multi-worker rows measure that "
        "stall, not the model; to use more cores, run several single-worker servers "
        "behind a load balancer.",
    ]
    common.write_result("rest", "\n".join(lines))


if __name__ == "__main__":
    main()
