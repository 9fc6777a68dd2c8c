"""Benchmark: ``scaleml.insight.evaluate`` against a plain single-process loop and against
``mlflow.models.evaluate``.

* **plain** (reference): one process; pyarrow reads each block file, its columns become a
  float64 matrix, ``predict_proba`` and ``predict`` run on it, the labels, predictions and
  probabilities are appended to lists; then scikit-learn computes accuracy, F1, MCC, log loss,
  Brier score, ROC AUC and average precision on the concatenated arrays (which needs the
  memory: 3 float64/int64 values a row).
* **scaleml**: ``evaluate(model, Dataset(path, target="target"), split="all")`` on a
  LocalCluster of 2 worker processes (1 thread each, 1 GiB memory limit): every metric, the
  curves and the confusion matrix, from per-block sufficient statistics.
* **mlflow**: ``mlflow.models.evaluate`` (the default evaluator, classifier) on an in-memory
  sample of ``--mlflow-rows`` rows (it needs the whole frame in one process).

Timed: the evaluation (reading included); not data generation or cluster start-up. Runs
alternate plain / scaleml ``--pairs`` times after a warm-up of each; medians are reported.
Memory: the client's peak RSS (sampled by psutil every 10 ms) in each path, the workers' peak
RSS (``VmHWM``, over the whole run) against their limit, and the data's size in memory.

Run from the repository root (the acceptance run: 15 million rows, 2.5 GB in memory; the plain
loop's peak grows to about 3 GB, the Parquet files take about 2.5 GB under the temporary
directory)::

    .venv/bin/python benchmarks/evaluate.py --rows 15000000 --pairs 2 --out evaluate-15m.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import psutil
import pyarrow.parquet as pq
from distributed import Client, LocalCluster
from sklearn import metrics as skm
from sklearn.linear_model import SGDClassifier

from scaleml.data import Dataset, write_synthetic
from scaleml.insight import evaluate


class PeakRss:
    """The peak RSS of this process, sampled every 10 ms while the block runs."""

    def __enter__(self) -> PeakRss:
        self.peak = 0
        self._stop = threading.Event()
        process = psutil.Process()

        def sample() -> None:
            while not self._stop.is_set():
                self.peak = max(self.peak, process.memory_info().rss)
                time.sleep(0.01)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def plain(model: SGDClassifier, files: list[Path], features: list[str]) -> dict[str, float]:
    ys, preds, probas = [], [], []
    for path in files:
        table = pq.read_table(path)
        x = np.empty((table.num_rows, len(features)))
        for position, name in enumerate(features):
            x[:, position] = table.column(name).to_numpy()
        proba = model.predict_proba(x)[:, 1]
        ys.append(table.column("target").to_numpy())
        preds.append((proba > 0.5).astype(np.int64))
        probas.append(proba)
    y, pred, proba = np.concatenate(ys), np.concatenate(preds), np.concatenate(probas)
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "mcc": skm.matthews_corrcoef(y, pred),
        "log_loss": skm.log_loss(y, np.column_stack([1 - proba, proba])),
        "brier_score": skm.brier_score_loss(y, proba),
        "roc_auc": skm.roc_auc_score(y, proba),
        "average_precision": skm.average_precision_score(y, proba),
    }


def _peak_rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def mlflow_evaluate(model: SGDClassifier, dataset: Dataset, rows: int) -> float:
    import mlflow
    import pandas as pd

    frames, total = [], 0
    for frame in dataset.iter_blocks():
        frames.append(frame)
        total += len(frame)
        if total >= rows:
            break
    data = pd.concat(frames).head(rows)
    with tempfile.TemporaryDirectory() as store:
        mlflow.set_tracking_uri(f"sqlite:///{store}/mlflow.db")
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(model, name="model")
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mlflow.models.evaluate(
                    info.model_uri,
                    data,
                    targets="target",
                    model_type="classifier",
                    evaluators=["default"],
                    evaluator_config={"default": {"log_model_explainability": False}},
                )
            return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=15_000_000)
    parser.add_argument("--block-rows", type=int, default=250_000)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--mlflow-rows", type=int, default=200_000)
    parser.add_argument("--memory-limit", default="1GiB", help="each worker's memory limit")
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    parser.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.block_rows, args.pairs, args.mlflow_rows = 400_000, 100_000, 1, 20_000
    root = Path(tempfile.mkdtemp(prefix="scaleml-bench-evaluate-"))
    try:
        path = write_synthetic(
            root / "data", rows=args.rows, features=20, block_rows=args.block_rows
        )
        files = sorted(path.glob("*.parquet"))
        dataset = Dataset(str(path), target="target", validation_fraction=0.0)
        features = list(dataset.features)
        x, y = dataset.read_xy(0)
        model = SGDClassifier(loss="log_loss", random_state=0).fit(x, y)
        load_start = os.getloadavg()[0]
        print(f"load average {load_start:.1f}; {args.rows:,} rows in {len(files)} blocks")
        with (
            LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                memory_limit=args.memory_limit,
                dashboard_address=":0",
            ) as cluster,
            Client(cluster) as client,
        ):
            evaluate(model, dataset, split="all", client=client)  # warm-up
            plain(model, files[:2], features)
            plain_s, scaleml_s, plain_peak, client_peak = [], [], 0, 0
            for _ in range(args.pairs):
                with PeakRss() as rss:
                    started = time.perf_counter()
                    reference = plain(model, files, features)
                    plain_s.append(time.perf_counter() - started)
                plain_peak = max(plain_peak, rss.peak)
                with PeakRss() as rss:
                    started = time.perf_counter()
                    result = evaluate(model, dataset, split="all", client=client)
                    scaleml_s.append(time.perf_counter() - started)
                client_peak = max(client_peak, rss.peak)
            worker_peaks = client.run(_peak_rss_bytes)
            worker_limit = next(iter(cluster.workers.values())).memory_manager.memory_limit
        load_end = os.getloadavg()[0]
        for name in ("accuracy", "f1", "mcc", "log_loss", "brier_score"):
            assert abs(result.metrics[name] - reference[name]) < 1e-9, name
        mlflow_s = mlflow_evaluate(model, dataset, args.mlflow_rows)
        figures = {
            "rows": args.rows,
            "blocks": len(files),
            "data_in_memory_mib": args.rows * (len(features) + 1) * 8 / 2**20,
            "load_average_start_end": [load_start, load_end],
            "plain_seconds": plain_s,
            "scaleml_seconds": scaleml_s,
            "plain_rows_per_s": args.rows / statistics.median(plain_s),
            "scaleml_rows_per_s": args.rows / statistics.median(scaleml_s),
            "mlflow_rows": args.mlflow_rows,
            "mlflow_rows_per_s": args.mlflow_rows / mlflow_s,
            "plain_peak_rss_mib": plain_peak / 2**20,
            "scaleml_client_peak_rss_mib": client_peak / 2**20,
            "worker_peak_rss_mib": [v / 2**20 for v in worker_peaks.values()],
            "worker_memory_limit_mib": worker_limit / 2**20,
            "auc_difference": abs(result.metrics["roc_auc"] - reference["roc_auc"]),
            "auc_error_bound": result.metrics["roc_auc_error_bound"],
        }
        figures["ratio_scaleml_to_plain"] = (
            figures["scaleml_rows_per_s"] / figures["plain_rows_per_s"]
        )
        figures["ratio_scaleml_to_mlflow"] = (
            figures["scaleml_rows_per_s"] / figures["mlflow_rows_per_s"]
        )
        for key, value in figures.items():
            print(f"{key:32s} {value}")
        if args.out:
            Path(args.out).write_text(json.dumps(figures, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
