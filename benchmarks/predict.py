"""Benchmark: ``scaleml.predict.predict_dataset`` against a single-process pyarrow loop.

Both paths score the same Parquet files with the same fitted ``LogisticRegression`` (labels
and class probabilities) and write one Parquet file per input file, so they do identical work
(their outputs are checked equal):

* **pyarrow loop** - one Python process: read a file with pyarrow, predict, write, next file.
* **scaleml** - ``predict_dataset`` on a ``LocalCluster`` of worker processes (1 thread each):
  one task per block reads, predicts and writes on a worker.

Only scoring is timed (not data generation, model fitting or cluster start-up); both paths
are warmed up; repetitions alternate the two paths (pairs), and the ratio of each pair and
their median are printed. The machine may be shared: keep runs short and repeat them.

Run from the repository root::

    .venv/bin/python benchmarks/predict.py            # 2M rows x 20 features, 3 pairs
    .venv/bin/python benchmarks/predict.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from distributed import Client, LocalCluster
from sklearn.linear_model import LogisticRegression

from scaleml.data import Dataset, write_synthetic
from scaleml.predict import predict_dataset


def pyarrow_loop(
    model: LogisticRegression, files: list[Path], features: list[str], out: Path
) -> int:
    out.mkdir()
    rows = 0
    for index, file in enumerate(files):
        table = pq.read_table(file, columns=features)
        x = pd.DataFrame({name: table.column(name).to_numpy() for name in features})
        proba = model.predict_proba(x)
        output = {"prediction": model.predict(x)}
        for position, label in enumerate(model.classes_):
            output[f"probability_{label}"] = proba[:, position]
        pq.write_table(pa.table(output), out / f"part-{index:05d}.parquet")
        rows += table.num_rows
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--block-rows", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.block_rows, args.pairs = 200_000, 50_000, 1
    scratch = Path(tempfile.mkdtemp(prefix="scaleml-bench-predict-"))
    try:
        data = write_synthetic(
            scratch / "data", rows=args.rows, features=args.features, block_rows=args.block_rows
        )
        files = sorted(data.glob("*.parquet"))
        sample = pd.read_parquet(files[0])
        features = [c for c in sample.columns if c != "target"]
        model = LogisticRegression().fit(sample[features], sample["target"])
        dataset = Dataset(str(data), target=None, features=features)
        print(
            f"{args.rows:,} rows x {args.features} features, {len(files)} files; "
            f"{args.workers} workers x 1 thread; load {os.getloadavg()[0]:.1f} at start"
        )
        with (
            LocalCluster(
                n_workers=args.workers, threads_per_worker=1, dashboard_address=":0"
            ) as cluster,
            Client(cluster) as client,
        ):
            predict_dataset(model, dataset, scratch / "warm", client=client)
            pyarrow_loop(model, files[:1], features, scratch / "warm-loop")
            ratios = []
            for pair in range(args.pairs):
                started = time.perf_counter()
                rows = pyarrow_loop(model, files, features, scratch / f"loop-{pair}")
                loop_rate = rows / (time.perf_counter() - started)
                result = predict_dataset(model, dataset, scratch / f"scaleml-{pair}", client=client)
                rate = result.rows_per_second
                ratios.append(rate / loop_rate)
                print(
                    f"pair {pair + 1}: pyarrow loop {loop_rate:,.0f} rows/s, "
                    f"scaleml {rate:,.0f} rows/s, ratio {rate / loop_rate:.2f}x"
                )
            expected = pd.read_parquet(scratch / "loop-0")
            written = pd.read_parquet(scratch / "scaleml-0")
            np.testing.assert_array_equal(written["prediction"], expected["prediction"])
        print(f"median ratio scaleml / pyarrow loop: {statistics.median(ratios):.2f}x")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
