"""Benchmark: scaleml's incremental training against a plain single-process ``partial_fit`` loop.

Both paths train the same estimator over the same Parquet blocks, in the same order, for the same
number of epochs, so they do identical work and end with identical models (checked):

* **plain** - one Python process: pyarrow reads each block file, the columns are copied into a
  float64 NumPy matrix, ``partial_fit`` is called. Nothing overlaps.
* **scaleml** - ``scaleml.train.train_incremental`` on a ``scaleml.data.Dataset``, on the
  ``LocalCluster`` that ``scaleml.cluster.connect`` starts: worker processes, 1 thread each, an
  explicit memory limit per worker, the dashboard on a free port.

Only training is timed (not data generation, not cluster start-up); each path is warmed up
first; repetitions interleave the two paths (the machine is shared, timings are noisy) and the
median is reported. Peak memory: the client process and every worker are sampled with psutil
during each run, and each worker's lifetime peak RSS (``VmHWM`` in ``/proc/self/status``) is
read at the end (one fresh cluster per dataset size, so it covers that size only). Not
``getrusage``'s ``ru_maxrss``: it survives ``exec``, so a worker would report its parent's
peak when that is larger.

Run from the repository root::

    .venv/bin/python benchmarks/train_incremental.py            # full run (a few minutes)
    .venv/bin/python benchmarks/train_incremental.py --quick    # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow.parquet as pq
from dask.utils import format_bytes, parse_bytes
from distributed import Client
from sklearn.base import clone
from sklearn.linear_model import SGDClassifier

from scaleml.cluster import connect
from scaleml.config import get_settings
from scaleml.data import Dataset, ParquetBlock, write_synthetic
from scaleml.train import train_incremental

FEATURES = 20
BLOCK_ROWS = 100_000
CLASSES = np.array([0, 1])
BYTES_PER_ROW = (FEATURES + 1) * 8  # float64 features + an int64 target, in memory
ESTIMATORS: dict[str, Callable[[], Any]] = {
    "sgd-hinge": lambda: SGDClassifier(random_state=0),
    "sgd-log": lambda: SGDClassifier(loss="log_loss", random_state=0),
}
MiB = 2**20


def main(argv: list[str] | None = None) -> int:
    global PROFILE_DATA
    args = _parse_arguments(argv)
    PROFILE_DATA = args.profile_data
    memory_limit = parse_bytes(args.memory_limit)
    print(
        f"scaleml incremental training benchmark - {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"{args.workers} workers x 1 thread, memory limit {format_bytes(memory_limit)} per worker; "
        f"blocks of {BLOCK_ROWS:,} rows x {FEATURES} features; epochs {args.epochs}; "
        f"repeats {args.repeats} (median reported)"
        + ("; scaleml gathers the contract's statistics" if PROFILE_DATA else "")
    )
    data_root, temporary = _data_root(args.data_dir)
    results: list[dict[str, Any]] = []
    try:
        paths = {rows: _ensure_data(data_root, rows) for rows in args.sizes}
        for rows in args.sizes:
            results.extend(_bench_size(paths[rows], rows, args, memory_limit))
    finally:
        if temporary:
            shutil.rmtree(data_root, ignore_errors=True)
    _print_table(results, memory_limit)
    if args.out:
        report = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpu_count": os.cpu_count(),
            "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
            "workers": args.workers,
            "memory_limit": memory_limit,
            "epochs": args.epochs,
            "repeats": args.repeats,
            "results": results,
        }
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0 if all(r["identical"] for r in results) else 1


def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(float(part)) for part in text.split(",")],
        default=[3_000_000, 15_000_000],
        help="dataset sizes in rows, comma-separated (default 3e6,15e6: 0.5 and 2.5 GB in memory)",
    )
    parser.add_argument("--epochs", type=int, default=2, help="passes over the data (default 2)")
    parser.add_argument("--memory-limit", default="1GiB", help="per worker (default 1GiB)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per path (default 3)")
    parser.add_argument(
        "--estimators",
        type=lambda text: text.split(","),
        default=list(ESTIMATORS),
        help=f"comma-separated, from {', '.join(ESTIMATORS)} (default all)",
    )
    parser.add_argument(
        "--data-dir", help="where datasets are generated or reused (default: a temporary dir)"
    )
    parser.add_argument(
        "--profile-data",
        action="store_true",
        help="scaleml's path also gathers the contract's statistics in its first epoch",
    )
    parser.add_argument("--out", help="also write the figures to this JSON file")
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 epoch: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.epochs, args.repeats = [300_000, 600_000], 1, 1
    unknown = [name for name in args.estimators if name not in ESTIMATORS]
    if unknown:
        parser.error(f"unknown estimator(s) {unknown}; choose from {list(ESTIMATORS)}")
    return args


def _data_root(data_dir: str | None) -> tuple[Path, bool]:
    if data_dir:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        return Path(data_dir), False
    return Path(tempfile.mkdtemp(prefix="scaleml-bench-")), True


def _ensure_data(root: Path, rows: int) -> Path:
    path = root / f"synthetic-{rows}-f{FEATURES}-b{BLOCK_ROWS}"
    if path.exists():
        print(f"reusing {path}")
        return path
    started = time.perf_counter()
    write_synthetic(path, rows=rows, features=FEATURES, block_rows=BLOCK_ROWS, random_state=0)
    print(f"generated {path} ({rows:,} rows) in {time.perf_counter() - started:.1f} s")
    return path


# --- the two paths -----------------------------------------------------------------------------


def _plain_loop(estimator: Any, blocks: list[ParquetBlock], epochs: int) -> tuple[Any, int]:
    """The reference: read each block with pyarrow into a float64 matrix, then ``partial_fit``."""
    model = clone(estimator)
    names = [f"f{i:03d}" for i in range(FEATURES)]
    rows = 0
    for _ in range(epochs):
        for block in blocks:
            table = pq.ParquetFile(block.path).read_row_groups(
                list(block.row_groups), columns=[*names, "target"]
            )
            x = np.empty((table.num_rows, FEATURES), dtype=np.float64)
            for position, name in enumerate(names):
                x[:, position] = table.column(name).to_numpy()
            y = table.column("target").to_numpy()
            model.partial_fit(x, y, classes=CLASSES)
            rows += len(x)
    return model, rows


PROFILE_DATA = False
"""``--profile-data``: the scaleml path also gathers the contract's statistics (as
``train_and_log`` does)."""


def _scaleml(estimator: Any, dataset: Dataset, epochs: int, client: Client) -> tuple[Any, int]:
    result = train_incremental(
        estimator,
        dataset,
        epochs=epochs,
        client=client,
        classes=CLASSES,
        shuffle=False,
        profile_data=PROFILE_DATA,
    )
    return result.estimator, result.rows_trained


# --- one dataset size --------------------------------------------------------------------------


def _bench_size(
    path: Path, rows: int, args: argparse.Namespace, memory_limit: int
) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="scaleml-bench-dask-") as scratch:
        return _bench_cluster(path, rows, args, memory_limit, Path(scratch))


def _bench_cluster(
    path: Path, rows: int, args: argparse.Namespace, memory_limit: int, scratch: Path
) -> list[dict[str, Any]]:
    # All blocks train (no validation split), in file order: both paths do the same work.
    dataset = Dataset(
        str(path), target="target", validation_fraction=0.0, max_block_rows=BLOCK_ROWS
    )
    blocks = [dataset.blocks[i] for i in dataset.train_blocks]
    fits = len(blocks) * args.epochs
    warmup = Dataset(
        sorted(str(p) for p in path.glob("*.parquet"))[:4],
        target="target",
        validation_fraction=0.0,
        max_block_rows=BLOCK_ROWS,
    )
    warmup_blocks = [warmup.blocks[i] for i in warmup.train_blocks]
    print(
        f"\n== {rows:,} rows, {len(blocks)} blocks, {format_bytes(rows * BYTES_PER_ROW)} in memory"
    )
    results = []
    # scaleml's own LocalCluster (worker processes, 1 thread each, the memory limit), so the
    # benchmark measures what `scaleml train` deploys.
    settings = get_settings(
        scheduler=None,
        n_workers=args.workers,
        threads_per_worker=1,
        worker_memory_limit=str(memory_limit),
        dashboard_address=":0",
        cache_dir=scratch,
    )
    with connect(settings, announce=lambda line: print(f"  {line}")) as client:
        worker_pids = list(client.run(os.getpid).values())
        malloc = set(client.run(_malloc_environ).values())
        print(f"  workers' malloc environment: {'; '.join(sorted(malloc))}")
        idle_rss = [psutil.Process(pid).memory_info().rss for pid in worker_pids]
        client.get_task_stream(start=time.time())  # registers the scheduler's task-stream plugin
        for name in args.estimators:
            estimator = ESTIMATORS[name]()
            _plain_loop(estimator, warmup_blocks, 1)
            _scaleml(estimator, warmup, 1, client)
            runs: dict[str, list[dict[str, Any]]] = {"plain": [], "scaleml": []}
            identical = True
            for repeat in range(args.repeats):
                order = ["plain", "scaleml"] if repeat % 2 == 0 else ["scaleml", "plain"]
                models = {}
                for which in order:
                    pids = [os.getpid()] if which == "plain" else [os.getpid(), *worker_pids]
                    with _measure(pids) as usage, _task_stream(client, which) as stream:
                        started = time.perf_counter()
                        if which == "plain":
                            model, trained = _plain_loop(estimator, blocks, args.epochs)
                        else:
                            model, trained = _scaleml(estimator, dataset, args.epochs, client)
                        seconds = time.perf_counter() - started
                    assert trained == rows * args.epochs, (which, trained)
                    models[which] = model
                    runs[which].append(
                        {
                            "seconds": seconds,
                            "rows_per_s": trained / seconds,
                            "client_peak_rss": usage["peak_rss"][0],
                            "worker_peak_rss": usage["peak_rss"][1:],
                            "cpu_seconds": usage["cpu_seconds"],
                            "tasks": stream,
                        }
                    )
                    print(
                        f"  {name:9s} run {repeat + 1} {which:7s} {seconds:6.2f} s "
                        f"{trained / seconds / 1e6:5.2f} M rows/s "
                        f"CPU {usage['cpu_seconds'] / fits * 1e3:5.1f} ms/block"
                        + (f"  tasks: {_describe_stream(stream)}" if stream else "")
                    )
                same = np.array_equal(
                    models["plain"].coef_, models["scaleml"].coef_
                ) and np.array_equal(models["plain"].intercept_, models["scaleml"].intercept_)
                identical = identical and same
            print(f"  {name}: models identical (coef_, intercept_) in every run: {identical}")
            results.append(_summarise(rows, len(blocks), args.epochs, name, runs, identical))
        worker_hwm = list(client.run(_peak_rss_bytes).values())
        restarted = sorted(client.run(os.getpid).values()) != sorted(worker_pids)
        print(f"  workers restarted during this size: {'YES' if restarted else 'no'}")
        for result in results:
            result["worker_idle_rss"] = idle_rss
            result["worker_vm_hwm"] = worker_hwm
            result["workers_restarted"] = restarted
    return results


def _summarise(
    rows: int,
    n_blocks: int,
    epochs: int,
    name: str,
    runs: dict[str, list[dict[str, Any]]],
    identical: bool,
) -> dict[str, Any]:
    plain = statistics.median(r["rows_per_s"] for r in runs["plain"])
    scaleml = statistics.median(r["rows_per_s"] for r in runs["scaleml"])
    fits = n_blocks * epochs
    return {
        "rows": rows,
        "blocks": n_blocks,
        "bytes_in_memory": rows * BYTES_PER_ROW,
        "estimator": name,
        "plain_rows_per_s": plain,
        "scaleml_rows_per_s": scaleml,
        "ratio": scaleml / plain,
        "plain_cpu_ms_per_block": statistics.median(r["cpu_seconds"] for r in runs["plain"])
        / fits
        * 1e3,
        "scaleml_cpu_ms_per_block": statistics.median(r["cpu_seconds"] for r in runs["scaleml"])
        / fits
        * 1e3,
        "plain_client_peak_rss": max(r["client_peak_rss"] for r in runs["plain"]),
        "scaleml_client_peak_rss": max(r["client_peak_rss"] for r in runs["scaleml"]),
        "scaleml_worker_peak_rss": [
            max(w) for w in zip(*(r["worker_peak_rss"] for r in runs["scaleml"]), strict=True)
        ],
        "identical": identical,
        "runs": runs,
    }


# --- measuring ---------------------------------------------------------------------------------


def _peak_rss_bytes() -> int:
    """This process's peak resident memory since it started (``VmHWM``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _malloc_environ() -> str:
    names = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")
    return ", ".join(f"{name}={os.environ.get(name, '(unset)')}" for name in names)


@contextmanager
def _measure(pids: list[int], interval: float = 0.01) -> Iterator[dict[str, Any]]:
    """Sample the RSS of ``pids`` every ``interval`` seconds. Yields a dict that holds, on exit,
    ``peak_rss`` (one per pid) and ``cpu_seconds`` (user + system, all pids together; this
    process includes the LocalCluster's scheduler)."""
    processes = [psutil.Process(pid) for pid in pids]
    peaks = [p.memory_info().rss for p in processes]
    usage: dict[str, Any] = {"peak_rss": peaks}
    cpu_before = sum(sum(p.cpu_times()[:2]) for p in processes)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval):
            for position, process in enumerate(processes):
                peaks[position] = max(peaks[position], process.memory_info().rss)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield usage
    finally:
        done.set()
        thread.join()
        for position, process in enumerate(processes):
            peaks[position] = max(peaks[position], process.memory_info().rss)
        usage["cpu_seconds"] = sum(sum(p.cpu_times()[:2]) for p in processes) - cpu_before


@contextmanager
def _task_stream(client: Client, which: str) -> Iterator[dict[str, Any]]:
    """For the scaleml path: per task prefix, the count and total compute seconds, plus the
    count and seconds of worker-to-worker transfers, from the scheduler's task stream."""
    summary: dict[str, Any] = {}
    if which != "scaleml":
        yield summary
        return
    started = time.time()
    yield summary
    records = client.get_task_stream(start=started, stop=time.time())
    compute: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    transfer_seconds = 0.0
    transfers = 0
    for task in records:
        prefix = task["key"].split("-", 1)[0] if isinstance(task["key"], str) else "other"
        for span in task.get("startstops", ()):
            if span["action"] == "compute":
                compute[prefix][0] += 1
                compute[prefix][1] += span["stop"] - span["start"]
            elif span["action"] == "transfer":
                transfers += 1
                transfer_seconds += span["stop"] - span["start"]
    summary["compute"] = {k: {"count": v[0], "seconds": v[1]} for k, v in compute.items()}
    summary["transfers"] = {"count": transfers, "seconds": transfer_seconds}


def _describe_stream(stream: dict[str, Any]) -> str:
    parts = [
        f"{prefix} {v['count']}x{v['seconds'] / max(v['count'], 1) * 1e3:.1f}ms"
        for prefix, v in sorted(stream["compute"].items())
    ]
    t = stream["transfers"]
    parts.append(f"transfers {t['count']} ({t['seconds']:.2f} s)")
    return ", ".join(parts)


def _print_table(results: list[dict[str, Any]], memory_limit: int) -> None:
    header = (
        f"{'rows':>11} {'in memory':>10} {'estimator':9} {'plain rows/s':>13} "
        f"{'scaleml rows/s':>15} {'ratio':>6} {'CPU ms/block':>13} {'client MiB':>10} "
        f"{'worker MiB':>12} {'identical':>9}"
    )
    print(f"\nMedians; worker memory limit {format_bytes(memory_limit)}; target ratio >= 0.90")
    print(header)
    print("-" * len(header))
    for r in results:
        workers = (
            f"{max(r['worker_idle_rss']) / MiB:.0f}/{max(r['scaleml_worker_peak_rss']) / MiB:.0f}"
            f"/{max(r['worker_vm_hwm']) / MiB:.0f}"
        )
        client = f"{r['plain_client_peak_rss'] / MiB:.0f}/{r['scaleml_client_peak_rss'] / MiB:.0f}"
        cpu = f"{r['plain_cpu_ms_per_block']:.0f}/{r['scaleml_cpu_ms_per_block']:.0f}"
        print(
            f"{r['rows']:>11,} {format_bytes(r['bytes_in_memory']):>10} {r['estimator']:9} "
            f"{r['plain_rows_per_s']:>13,.0f} {r['scaleml_rows_per_s']:>15,.0f} "
            f"{r['ratio']:>5.2f}x {cpu:>13} {client:>10} {workers:>12} "
            f"{'yes' if r['identical'] else 'NO':>9}"
        )
    print(
        "CPU ms/block: user+system CPU per partial_fit block, plain / scaleml (client process, "
        "which hosts the scheduler, plus workers); client MiB: peak RSS of this process "
        "(psutil, 10 ms samples) during the plain / scaleml runs; worker MiB (largest worker): "
        "RSS after start-up / peak RSS sampled during the scaleml runs / VmHWM (peak RSS) over "
        "that size's whole run, warm-ups included (a fresh cluster per size)"
    )


if __name__ == "__main__":
    sys.exit(main())
