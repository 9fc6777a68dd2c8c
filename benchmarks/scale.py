"""Benchmark: what the adaptive searches and incremental training move as workers grow.

For each workload, implementation and worker count, a fresh cluster is started from the
implementation's own environment (``dask scheduler`` and ``dask worker --nworkers N
--nthreads 1`` processes, so the scheduler's CPU is its own process's), and
``benchmarks/_scale_workload.py`` runs the workload against it with the same environment's
Python and prints its counters (see that file): bytes moved between workers, bytes read,
tasks, scheduler CPU, wall time.

Workloads (smaller than the tutorial's 5,000,000 rows so that one configuration runs in
about a minute on this loaded machine; the per-call figures do not depend on the row count,
only on the block size):

* ``incremental``: the tutorial's IncrementalSearchCV (10 models x 100 calls, elasticnet
  ``SGDClassifier``, the tutorial's space) on ``make_classification(n_samples, 20 features,
  chunks=chunk_rows)``.
* ``hyperband``: the tutorial's HyperbandSearchCV on the same data (``--max-iter``, 81 in the
  tutorial).
* ``train``: incremental training of an ``SGDClassifier`` over Parquet blocks (``epochs``
  passes): scaleml's ``train_incremental`` on a ``Dataset``; dask-ml's ``Incremental`` on
  ``dd.read_parquet``.

Implementations: ``scaleml`` (this checkout's ``.venv``) and ``dask-ml`` 2025.1 (the venv
``benchmarks/out/daskml-venv`` that ``benchmarks/search.py`` creates, created here if
missing the same way).

Run from the repository root::

    .venv/bin/python benchmarks/scale.py                       # 2, 4, 8 workers, both
    .venv/bin/python benchmarks/scale.py --workers 8 --impl scaleml --workload incremental
    .venv/bin/python benchmarks/scale.py --quick --impl scaleml   # a check that it runs (~1 min)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
WORKLOAD = ROOT / "benchmarks" / "_scale_workload.py"
PYTHONS = {
    "scaleml": ROOT / ".venv" / "bin" / "python",
    "dask-ml": OUT / "daskml-venv" / "bin" / "python",
}


def main(argv: list[str] | None = None) -> int:
    args = _parse_arguments(argv)
    if args.quick:  # small enough to check the script in a minute; blocks still 3.1 MiB
        args.n_samples = args.train_rows = 60_000
        args.incremental_iter, args.max_iter = 4, 3
    args.workers = args.workers or ([2] if args.quick else [2, 4, 8])
    OUT.mkdir(exist_ok=True)
    print(
        f"scaleml scale benchmark - {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"{os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"search data: make_classification({args.n_samples:,} rows, 20 features, blocks of "
        f"{args.chunk_rows:,} rows = {args.chunk_rows * 20 * 8 / 2**20:.1f} MiB of X); Hyperband "
        f"max_iter={args.max_iter}; training: {args.train_rows:,} rows in Parquet blocks of "
        f"{args.chunk_rows:,}, {args.epochs} epochs\n"
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=OUT) as directory:
        data = Path(directory) / "train"
        if "train" in args.workload:
            from scaleml.data import write_synthetic

            write_synthetic(
                data, rows=args.train_rows, features=20, block_rows=args.chunk_rows, random_state=0
            )
        for workload in args.workload:
            for impl in args.impl:
                if impl == "dask-ml":
                    _daskml_venv()
                for workers in args.workers:
                    row = _run(args, impl, workload, workers, data, Path(directory))
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    _print_table(rows)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


def _run(
    args: argparse.Namespace, impl: str, workload: str, workers: int, data: Path, tmp: Path
) -> dict[str, Any]:
    python = str(PYTHONS[impl])
    name = f"{impl} ({args.label})" if impl == "scaleml" and args.label else impl
    scheduler_file = tmp / f"scheduler-{impl}-{workload}-{workers}.json"
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536", "DASK_DISTRIBUTED__WORKER__DAEMON": "0"}
    if impl == "scaleml" and args.source:  # another checkout's scaleml, e.g. the code before
        env["PYTHONPATH"] = args.source
    common = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": tmp}
    scheduler = subprocess.Popen(
        [python, "-m", "distributed.cli.dask_scheduler", "--port", "0",
         "--dashboard-address", ":0", "--scheduler-file", str(scheduler_file)],
        **common,
    )  # fmt: skip
    worker = None
    try:
        _wait_for(scheduler_file)
        worker = subprocess.Popen(
            [python, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file),
             "--nworkers", str(workers), "--nthreads", "1", "--memory-limit", args.memory_limit,
             "--no-dashboard"],
            **common,
        )  # fmt: skip
        _wait_for_workers(python, scheduler_file, workers)
        command = [
            python, str(WORKLOAD), "--impl", impl, "--workload", workload,
            "--scheduler-file", str(scheduler_file), "--n-samples", str(args.n_samples),
            "--chunk-rows", str(args.chunk_rows), "--max-iter", str(args.max_iter),
            "--incremental-iter", str(args.incremental_iter),
            "--data", str(data), "--epochs", str(args.epochs),
        ]  # fmt: skip
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=args.timeout,
            check=False,
            env=env,
        )
        if done.returncode != 0:
            return {"impl": name, "workload": workload, "workers": workers,
                    "error": done.stderr.strip().splitlines()[-1:]}  # fmt: skip
        result = json.loads(done.stdout.strip().splitlines()[-1])
        return {"impl": name, "workload": workload, **result}
    except subprocess.TimeoutExpired:
        return {"impl": name, "workload": workload, "workers": workers, "error": "timeout"}
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"the scheduler did not start ({path} missing)")
        time.sleep(0.2)


def _wait_for_workers(python: str, scheduler_file: Path, n: int) -> None:
    code = (
        "import sys; from distributed import Client\n"
        f"with Client(scheduler_file={str(scheduler_file)!r}) as c: c.wait_for_workers({n}, "
        "timeout=120)"
    )
    subprocess.run([python, "-c", code], check=True, timeout=180, capture_output=True)


def _daskml_venv() -> None:
    python = PYTHONS["dask-ml"]
    if python.exists():
        return
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from search import VENV, VENV_PACKAGES  # the pinned environment of benchmarks/search.py

    print(f"creating {VENV} ({', '.join(VENV_PACKAGES)}) ...", flush=True)
    subprocess.run(["python3.11", "-m", "venv", str(VENV)], check=True)
    packages = [*VENV_PACKAGES, "pyarrow"]  # pyarrow: dd.read_parquet in the train workload
    subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)


def _mib(value: float) -> str:
    return f"{value / 2**20:,.1f}"


def _print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"\n{'workload':<12} {'impl':<8} {'workers':>7} {'moved MiB':>10} {'transfers':>9} "
        f"{'read MiB':>9} {'tasks':>6} {'calls':>6} {'sched ms/call':>13} {'wall s':>7} "
        f"{'best':>8}"
    )
    for row in rows:
        if "error" in row:
            print(f"{row['workload']:<12} {row['impl']:<8} {row['workers']:>7} {row['error']}")
            continue
        per_call = 1000 * row["scheduler_cpu_s"] / max(row["calls"], 1)
        best = "-" if row["best_score"] is None else f"{row['best_score']:.5f}"
        print(
            f"{row['workload']:<12} {row['impl']:<8} {row['workers']:>7} "
            f"{_mib(row['moved_bytes']):>10} {row['moved']:>9.0f} {_mib(row['read_bytes']):>9} "
            f"{row['tasks']:>6} {row['calls']:>6} {per_call:>13.2f} {row['wall_s']:>7.1f} "
            f"{best:>8}"
        )


def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", help="worker counts (2 4 8)")
    parser.add_argument("--impl", nargs="+", default=["scaleml", "dask-ml"])
    parser.add_argument("--workload", nargs="+", default=["incremental", "hyperband", "train"])
    parser.add_argument("--n-samples", type=int, default=400_000)
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    parser.add_argument("--max-iter", type=int, default=27)
    parser.add_argument(
        "--incremental-iter", type=int, default=100, help="IncrementalSearchCV max_iter (100)"
    )
    parser.add_argument("--train-rows", type=int, default=400_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--memory-limit", default="1GiB")
    parser.add_argument("--timeout", type=float, default=240)
    parser.add_argument("--out", help="also write the rows to this JSON file")
    parser.add_argument(
        "--source", help="run scaleml from this directory (PYTHONPATH), e.g. an older checkout"
    )
    parser.add_argument("--label", default="", help="a label for the scaleml rows")
    parser.add_argument(
        "--quick", action="store_true", help="tiny workloads on 2 workers: checks the script runs"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
