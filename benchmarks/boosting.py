"""Benchmark: ``scaleml.train.train_boosting`` against the libraries' own Dask estimators.

For XGBoost and LightGBM, three ways to train the same model (same parameters, same training
and validation rows, one file per block):

* **raw** - ``xgboost.dask.DaskXGBClassifier`` / ``lightgbm.DaskLGBMClassifier`` fitted on
  ``dask.dataframe.read_parquet`` collections of the training and validation files, with the
  validation set as ``eval_set``.
* **scaleml** - ``train_boosting`` on a ``scaleml.data.Dataset`` with the same split.
* **single** - ``XGBClassifier`` / ``LGBMClassifier`` in this process on every training row
  in memory, with as many threads as the cluster has: the limit a cluster of this size on one
  machine is measured against.

Timed: the fit (data reading included, since each path reads its own way); not cluster
start-up or data generation. Each library runs ``--pairs`` rounds of raw then scaleml, after a
warm-up of each; ratios per pair and their median are printed. Keep runs short on a shared
machine and repeat them.

Run from the repository root::

    .venv/bin/python benchmarks/boosting.py --rows 400000 --pairs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import dask.dataframe as dd
import lightgbm
import pandas as pd
import xgboost
import xgboost.dask
from distributed import Client, LocalCluster

from scaleml.data import Dataset, write_synthetic
from scaleml.train import train_boosting

PARAMS = {"n_estimators": 50, "max_depth": 6, "learning_rate": 0.1}


def raw_fit(library: str, client: Client, train: list[str], valid: list[str]) -> float:
    started = time.perf_counter()
    # Persisted so that X's and y's partitions line up (LightGBM zips them).
    frame, valid_frame = client.persist([dd.read_parquet(train), dd.read_parquet(valid)])
    features = [c for c in frame.columns if c != "target"]
    if library == "xgboost":
        model = xgboost.dask.DaskXGBClassifier(**PARAMS, n_jobs=1)
        model.client = client
        model.fit(
            frame[features],
            frame["target"],
            eval_set=[(valid_frame[features], valid_frame["target"])],
            verbose=False,
        )
    else:
        model = lightgbm.DaskLGBMClassifier(**PARAMS, client=client, verbose=-1)
        model.fit(
            frame[features],
            frame["target"],
            eval_set=[(valid_frame[features], valid_frame["target"])],
        )
    return time.perf_counter() - started


def scaleml_fit(library: str, client: Client, dataset: Dataset) -> float:
    name = "XGBClassifier" if library == "xgboost" else "LGBMClassifier"
    return train_boosting({"estimator": name, "params": PARAMS}, dataset, client=client).seconds


def single_fit(library: str, train: list[str], valid: list[str], threads: int) -> float:
    frame = pd.concat([pd.read_parquet(p) for p in train])
    valid_frame = pd.concat([pd.read_parquet(p) for p in valid])
    features = [c for c in frame.columns if c != "target"]
    started = time.perf_counter()
    if library == "xgboost":
        model = xgboost.XGBClassifier(**PARAMS, n_jobs=threads)
        model.fit(
            frame[features],
            frame["target"],
            eval_set=[(valid_frame[features], valid_frame["target"])],
            verbose=False,
        )
    else:
        model = lightgbm.LGBMClassifier(**PARAMS, n_jobs=threads, verbose=-1)
        model.fit(
            frame[features],
            frame["target"],
            eval_set=[(valid_frame[features], valid_frame["target"])],
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--block-rows", type=int, default=50_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--libraries", default="xgboost,lightgbm")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    scratch = Path(tempfile.mkdtemp(prefix="scaleml-bench-boost-"))
    try:
        data = write_synthetic(
            scratch / "data", rows=args.rows, features=args.features, block_rows=args.block_rows
        )
        dataset = Dataset(str(data), target="target", max_block_rows=args.block_rows)
        train = [dataset.blocks[i].path for i in dataset.train_blocks]
        valid = [dataset.blocks[i].path for i in dataset.validation_blocks]
        print(
            f"{args.rows:,} rows x {args.features} features ({len(train)} training, "
            f"{len(valid)} validation files); {args.workers} workers x 1 thread; {PARAMS}; "
            f"load {os.getloadavg()[0]:.1f} at start"
        )
        with (
            LocalCluster(
                n_workers=args.workers, threads_per_worker=1, dashboard_address=":0"
            ) as cluster,
            Client(cluster) as client,
        ):
            for library in args.libraries.split(","):
                raw_fit(library, client, train, valid)
                scaleml_fit(library, client, dataset)
                ratios, singles = [], []
                for pair in range(args.pairs):
                    raw = raw_fit(library, client, train, valid)
                    ours = scaleml_fit(library, client, dataset)
                    single = single_fit(library, train, valid, args.workers)
                    ratios.append(raw / ours)
                    singles.append(single / ours)
                    print(
                        f"{library} pair {pair + 1}: raw {raw:.2f}s, scaleml {ours:.2f}s "
                        f"(speed {raw / ours:.2f}x raw), single process {single:.2f}s "
                        f"({single / ours:.2f}x)"
                    )
                print(
                    f"{library}: median speed of scaleml = {statistics.median(ratios):.2f}x raw, "
                    f"{statistics.median(singles):.2f}x single process"
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
