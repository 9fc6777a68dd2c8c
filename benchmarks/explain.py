"""Benchmark: ``scaleml.insight.explain`` of an XGBoost model on the cluster against XGBoost's
own ``Booster.predict(pred_contribs=True)`` in one process, and the gateway's ``/explain``
requests/s at concurrency 16 against an in-process loop of the same explainer.

1. Data: ``--rows`` rows x ``--features`` float features in Parquet blocks of ``--block-rows``
   rows; an ``XGBClassifier`` (``--trees`` trees of depth ``--depth``) fitted on the first
   block's first 200,000 rows.
2. Reference: one process reads every block with pyarrow and calls
   ``Booster.predict(DMatrix, pred_contribs=True)`` on it with every core (the whole dataset
   through one process; read time included, as the cluster path includes it).
3. scaleml: ``explain(model, dataset, sample=1000)`` on a LocalCluster of ``--workers``
   workers x 1 thread (the sums of |SHAP| per feature over every row, and a 1,000-row sample).
4. Gateway: the model registered in a fresh SQLite MLflow store, ``scaleml serve --backend
   local``, 16 concurrent clients posting one-row ``/explain`` requests for ``--seconds``;
   reference: a loop in this process calling the same explainer on one row at a time.

Prints rows/s and requests/s with the ratios. The machine is shared: run it when it is quiet.
``--quick`` checks the script end to end in a minute (200,000 rows, a small model, 2 s per
gateway point); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import xgboost
from distributed import Client, LocalCluster

from scaleml.config import Settings
from scaleml.data import Dataset, write_synthetic
from scaleml.insight import explain
from scaleml.insight._explain_select import make_explainer
from scaleml.tracking import Tracker, register

BIN = Path(sys.executable).parent


def _reset_peak_rss() -> int:
    """Reset this process's peak resident memory (``VmHWM``) to its current size; return it."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return _peak_rss()


def _peak_rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reference_rows_per_s(model: xgboost.XGBClassifier, dataset: Dataset) -> float:
    booster = model.get_booster()
    booster.set_param({"nthread": os.cpu_count() or 1})
    started = time.perf_counter()
    rows = 0
    for block in dataset.blocks:
        table = pq.ParquetFile(block.path).read_row_groups(list(block.row_groups))
        x = table.select(dataset.features).to_pandas()
        booster.predict(xgboost.DMatrix(x, nthread=os.cpu_count()), pred_contribs=True)
        rows += len(x)
    return rows / (time.perf_counter() - started)


def gateway_rps(model: xgboost.XGBClassifier, dataset: Dataset, seconds: float, work: Path):
    store = Settings(mlflow_tracking_uri=f"sqlite:///{work / 'mlflow.db'}", experiment="bench")
    tracker = Tracker(store)
    with tracker.run("bench-explain") as run:
        uri = run.log_native_model(model, "xgboost", dataset.input_example())
    register(uri, "bench-explain", tracker=tracker)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "SCALEML_MLFLOW_TRACKING_URI": str(store.mlflow_tracking_uri),
        "SCALEML_MLFLOW_ARTIFACT_LOCATION": str(work / "artifacts"),
    }
    command = [str(BIN / "scaleml"), "serve", "--model", "bench-explain", "--backend", "local"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with open(work / "gateway.log", "wb") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start: {work / 'gateway.log'}")
            time.sleep(0.3)
        row = dataset.input_example(1)
        body = json.dumps({"dataframe_split": row.to_dict(orient="split")})
        _load(f"{url}/explain", body, 4, 1.0)  # warm-up (builds the explainer)
        served = _load(f"{url}/explain", body, 16, seconds)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    explainer = make_explainer(model, list(dataset.features), None)
    started, calls = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        explainer.contributions(row)
        calls += 1
    return served, calls / (time.perf_counter() - started)


def _load(url: str, body: str, concurrency: int, seconds: float) -> float:
    async def main() -> float:
        done = 0
        deadline = time.monotonic() + seconds
        headers = {"Content-Type": "application/json"}
        async with httpx.AsyncClient(timeout=30) as http:

            async def user() -> None:
                nonlocal done
                while time.monotonic() < deadline:
                    answer = await http.post(url, content=body, headers=headers)
                    answer.raise_for_status()
                    done += 1

            started = time.monotonic()
            await asyncio.gather(*(user() for _ in range(concurrency)))
            return done / (time.monotonic() - started)

    return asyncio.run(main())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--block-rows", type=int, default=250_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--trees", type=int, default=20)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0, help="per gateway point")
    parser.add_argument("--skip-gateway", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a small run to check the script")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.block_rows, args.trees, args.depth = 200_000, 50_000, 10, 3
        args.seconds = 2.0
    with tempfile.TemporaryDirectory(prefix="scaleml-bench-explain-") as scratch:
        work = Path(scratch)
        path = write_synthetic(work / "data", rows=args.rows, features=args.features,
                               block_rows=args.block_rows, random_state=0)  # fmt: skip
        dataset = Dataset(str(path), target="target")
        head = dataset.read_block(0).head(200_000)
        model = xgboost.XGBClassifier(
            n_estimators=args.trees, max_depth=args.depth, n_jobs=os.cpu_count()
        )
        model.fit(head[dataset.features], head["target"])
        print(f"{dataset.n_rows:,} rows x {args.features} features, {dataset.n_blocks} blocks; "
              f"XGBoost {args.trees} trees of depth {args.depth}", flush=True)  # fmt: skip
        reference = reference_rows_per_s(model, dataset)
        print(f"one process, Booster.predict(pred_contribs=True): {reference:,.0f} rows/s",
              flush=True)  # fmt: skip
        with (
            LocalCluster(
                n_workers=args.workers, threads_per_worker=1, dashboard_address=":0"
            ) as cluster,  # fmt: skip
            Client(cluster) as client,
        ):
            explain(model, dataset, sample=10, part="validation", client=client)  # warm-up
            before = client.run(_reset_peak_rss)
            result = explain(model, dataset, sample=1000, client=client)
            growth = {w: peak - before[w] for w, peak in client.run(_peak_rss).items()}
        in_memory = dataset.n_rows * (args.features + 1) * 8
        print(f"workers' peak memory growth during explain: "
              f"{', '.join(f'{g / 2**20:,.0f} MiB' for g in growth.values())} "
              f"(the dataset in memory: {in_memory / 2**20:,.0f} MiB)", flush=True)  # fmt: skip
        rate = result.rows_per_second
        print(f"scaleml explain on {args.workers} workers: {rate:,.0f} rows/s "
              f"({rate / reference:.2f}x the single process; additivity error "
              f"{result.additivity_max_error:.2g})", flush=True)  # fmt: skip
        if not args.skip_gateway:
            served, loop = gateway_rps(model, dataset, args.seconds, work)
            print(f"gateway /explain at c=16: {served:,.0f} req/s; in-process loop: "
                  f"{loop:,.0f} calls/s ({served / loop:.2f}x)", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
