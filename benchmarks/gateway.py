"""Benchmark: the prediction gateway against ``mlflow models serve`` of the same registered model.

Three servers of one model registered in a fresh SQLite MLflow store, each a separate process
on 127.0.0.1, all started first, then measured in turn at every point (so that each ratio
compares figures taken within seconds of each other):

* **dask** - ``scaleml serve --backend dask`` with a 2-worker LocalCluster (batches go to the
  workers, one ``ModelHost`` actor per worker),
* **local** - ``scaleml serve --backend local`` (batches predicted in the gateway's thread),
* **mlflow** - ``mlflow models serve --env-manager local`` (MLflow's scoring server, defaults).

Load: ``wrk`` (one thread, keep-alive connections) when it is installed, else an aiohttp client
in this process; POST ``/invocations`` with ``dataframe_split`` bodies of 1 and 64 rows at
concurrency 1, 16, 64 and 256, for a bounded number of seconds per point, every request on
loopback. Reported: req/s, rows/s, p50 and p99 latency, errors (non-2xx, socket errors,
timeouts), the ratio of req/s to ``mlflow models serve`` at the same point, and the fraction of
the in-process limit (``pyfunc.predict`` on one large batch, rows/s, measured here first).

Access logs: the gateways write their structured access log (one JSON line per request) to a
file, as in production; MLflow's server logs as it does by default.

The machine is shared and has 2 cores: the load generator, the server, the Dask scheduler and
the workers compete for them, so figures vary by 10-20 % from run to run.

Run from the repository root::

    .venv/bin/python benchmarks/gateway.py            # full run (~4 minutes)
    .venv/bin/python benchmarks/gateway.py --quick    # smoke run (~1 minute)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from scaleml.config import Settings
from scaleml.monitor import contract_from_frame
from scaleml.tracking import Tracker, load_model, register

FEATURES = [f"f{i}" for i in range(8)]
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass
class Point:
    server: str
    rows: int
    concurrency: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    round: int = 0
    cpu_s: float = 0.0  # the server's CPU seconds (its processes, user + system) in the point

    @property
    def cpu_us_per_request(self) -> float:
        return 1e6 * self.cpu_s / self.requests if self.requests else float("nan")

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def rows_per_s(self) -> float:
        return self.rps * self.rows


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)


def register_model(settings: Settings) -> str:
    """Train a small classifier and register it as ``bench`` version 1 (alias champion), with
    the contract of its training data (as scaleml's trainings log it)."""
    X = frame(5000)
    y = (X.f0 + 0.5 * X.f1 - X.f2 > 0).astype(int)
    tracker = Tracker(settings)
    with tracker.run("gateway-benchmark") as run:
        model = LogisticRegression().fit(X, y)
        uri = run.log_sklearn_model(model, X.head(5))
        contract = contract_from_frame(X, FEATURES, predictions=model.predict(X))
        run.log_dict(contract.to_dict(), "contract.json")
    return register(uri, "bench", tracker=tracker).name


def in_process_limit(settings: Settings, rows: int) -> float:
    """rows/s of ``pyfunc.predict`` on one batch of ``rows`` rows (best of 3)."""
    model = load_model("models:/bench/1", settings=settings)
    X = frame(rows, seed=1)
    model.predict(X)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        model.predict(X)
        best = min(best, time.perf_counter() - start)
    return rows / best


def contract_overhead_us(settings: Settings) -> dict[str, float]:
    """Microseconds the contract check (per request) and the drift window (per batch) add, in
    this process, for requests of 1 and 64 rows (median and mean of 2,000 calls each)."""
    from scaleml.gateway._contract import Rows
    from scaleml.gateway._monitoring import VersionMonitor
    from scaleml.monitor import contract

    loaded = contract("models:/bench/1", settings=settings)
    out = {}
    for rows in (1, 64):
        X = frame(rows, seed=rows)
        request = Rows({c: X[c].to_numpy() for c in FEATURES}, rows)
        labels = np.zeros(rows, dtype=np.int64)
        monitor = VersionMonitor("bench", "1", loaded, "warn", settings)
        for name in ("check", "drift"):
            times = []
            for _ in range(2000):
                start = time.perf_counter()
                if name == "check":
                    monitor.check(request)
                else:
                    monitor.observe(request.columns, labels)
                times.append(time.perf_counter() - start)
            out[f"{name} {rows} row(s) median"] = float(np.median(times)) * 1e6
            out[f"{name} {rows} row(s) mean"] = float(np.mean(times)) * 1e6
    return out


class Server:
    """A server process in its own session (stopped with its whole process group)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [part.replace("{port}", str(self.port)) for part in command]
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=log.parent,
        )

    def wait_ready(self, path: str, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"{self.name} not ready in {timeout_s:g} s")

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) used so far by the server's processes."""
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            total = 0.0
            for process in [root, *root.children(recursive=True)]:
                times = process.cpu_times()
                total += times.user + times.system
            return total
        except psutil.Error:
            return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def body_for(rows: int) -> str:
    return json.dumps({"dataframe_split": frame(rows, seed=rows).to_dict(orient="split")})


# -- load generators ----------------------------------------------------------------------
def run_wrk(url: str, body: str, concurrency: int, seconds: float, workdir: Path) -> tuple:
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            f"{url}/invocations",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", done).group(1))
    elapsed = _duration(re.search(r"requests in ([\d.]+\w+),", done).group(1))
    p50 = _duration(re.search(r"50%\s+([\d.]+\w+)", done).group(1)) * 1000
    p99 = _duration(re.search(r"99%\s+([\d.]+\w+)", done).group(1)) * 1000
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", done))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", done)
    errors += int(non2xx.group(1)) if non2xx else 0
    return requests - errors, elapsed, p50, p99, errors


def _duration(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_aiohttp(url: str, body: str, concurrency: int, seconds: float, _: Path) -> tuple:
    import aiohttp

    async def main() -> tuple:
        latencies: list[float] = []
        errors = 0
        deadline = time.perf_counter() + seconds
        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=10)
        headers = {"Content-Type": "application/json"}
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

            async def user() -> None:
                nonlocal errors
                while time.perf_counter() < deadline:
                    start = time.perf_counter()
                    try:
                        async with http.post(f"{url}/invocations", data=body, headers=headers) as r:
                            await r.read()
                            ok = r.status == 200
                    except (aiohttp.ClientError, TimeoutError):
                        ok = False
                    if ok:
                        latencies.append(time.perf_counter() - start)
                    else:
                        errors += 1

            start = time.perf_counter()
            await asyncio.gather(*(user() for _ in range(concurrency)))
            elapsed = time.perf_counter() - start
        ms = np.asarray(latencies) * 1000 if latencies else np.asarray([np.nan])
        return len(latencies), elapsed, *np.percentile(ms, [50, 99]), errors

    return asyncio.run(main())


# -- the run ----------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer points, 2 s each")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per point")
    parser.add_argument(
        "--servers",
        default="dask,local,mlflow",
        help="comma-separated subset of dask, dask-workers (every batch on the workers: "
        "in-process path off), local, local-off, local-warn, local-enforce (the local backend "
        "with contracts off / warn / enforce), mlflow",
    )
    parser.add_argument("--concurrency", default=None, help="comma-separated, e.g. 1,64")
    parser.add_argument("--rounds", type=int, default=1, help="measure every point N times")
    parser.add_argument("--ready-timeout", type=float, default=180.0, help="seconds per server")
    parser.add_argument("--json", type=Path, default=None, help="also write the points here")
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    concurrencies = [1, 64] if args.quick else [1, 16, 64, 256]
    if args.concurrency:
        concurrencies = [int(c) for c in args.concurrency.split(",")]
    row_counts = [1, 64]
    load = run_wrk if shutil.which("wrk") else run_aiohttp
    workdir = Path(tempfile.mkdtemp(prefix="scaleml-gateway-bench-"))
    os.chdir(workdir)  # MLflow's default artifact root (./mlruns) goes to the scratch dir too
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    settings = Settings(mlflow_tracking_uri=uri, experiment="gateway-benchmark")
    print(f"load generator: {'wrk' if load is run_wrk else 'aiohttp'}; {seconds:g} s per point")
    print(f"machine: {os.cpu_count()} cores; MLflow store {uri}")
    register_model(settings)
    limit = in_process_limit(settings, 200_000)
    print(f"in-process limit: pyfunc.predict on 200,000 rows = {limit:,.0f} rows/s\n")
    if any(name.startswith("local-") for name in args.servers.split(",")):
        overhead = contract_overhead_us(settings)
        costs = ", ".join(f"{k} {v:.1f}" for k, v in overhead.items())
        print(f"contracts in warn mode, in process (us per call; drift means include flushes): "
              f"{costs}\n")  # fmt: skip

    env = {
        "SCALEML_MLFLOW_TRACKING_URI": uri,
        "MLFLOW_TRACKING_URI": uri,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # mlflow runs `uvicorn`
    }
    serve = [str(BIN / "scaleml"), "serve", "--model", "bench", "--port", "{port}"]
    commands = {
        "dask": ([*serve, "--backend", "dask"], {"SCALEML_N_WORKERS": "2"}, "/v2/health/ready"),
        "dask-workers": (
            [*serve, "--backend", "dask"],
            {"SCALEML_N_WORKERS": "2", "SCALEML_GATEWAY_INPROCESS_MAX_ROWS": "0"},
            "/v2/health/ready",
        ),
        "local": ([*serve, "--backend", "local"], {}, "/v2/health/ready"),
        **{
            f"local-{mode}": (
                [*serve, "--backend", "local"],
                {"SCALEML_CONTRACT_MODE": mode},
                "/v2/health/ready",
            )
            for mode in ("off", "warn", "enforce")
        },
        "mlflow": (
            [
                str(BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                "models:/bench/1",
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "-p",
                "{port}",
            ],
            {},
            "/ping",
        ),
    }
    points: list[Point] = []
    servers: list[Server] = []
    try:
        for name in args.servers.split(","):
            command, extra, ready_path = commands[name]
            server = Server(name, command, {**env, **extra}, workdir / f"{name}.log")
            servers.append(server)
            server.wait_ready(ready_path, args.ready_timeout)
            load(server.url, body_for(1), 8, 1.0, workdir)  # warm-up
        # Points interleave the servers (idle ones wait), so each ratio compares figures
        # taken within seconds of each other on this shared machine.
        for rows, concurrency, round_ in itertools.product(
            row_counts, concurrencies, range(args.rounds)
        ):
            body = body_for(rows)
            shift = round_ % len(servers)  # each round starts with another server
            for server in servers[shift:] + servers[:shift]:
                cpu_before = server.cpu_seconds()
                done = load(server.url, body, concurrency, seconds, workdir)
                cpu = server.cpu_seconds() - cpu_before
                point = Point(server.name, rows, concurrency, *done, round=round_, cpu_s=cpu)
                points.append(point)
                print(_line(point, limit), flush=True)
    finally:
        for server in servers:
            server.stop()
    points.sort(key=lambda p: (list(commands).index(p.server), p.rows, p.concurrency, p.round))
    print("\n" + _table(points, limit))
    print("\n" + _targets(points))
    if any(p.server.startswith("local-") for p in points):
        print("\n" + _contract_ratios(points))
    if args.json:
        args.json.write_text(json.dumps([p.__dict__ for p in points], indent=1))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _line(point: Point, limit: float) -> str:
    return (
        f"{point.server:6} rows={point.rows:<3} c={point.concurrency:<4} "
        f"{point.rps:9,.0f} req/s {point.rows_per_s:11,.0f} rows/s "
        f"p50 {point.p50_ms:7.1f} ms  p99 {point.p99_ms:7.1f} ms  errors {point.errors:<5} "
        f"of limit {point.rows_per_s / limit:6.1%}"
    )


def _targets(points: list[Point]) -> str:
    """The issue's targets, each marked met or missed."""
    at = {(p.server, p.rows, p.concurrency): p for p in points}
    checks = [  # server, rows, concurrency, min ratio to mlflow, max p99 ms
        ("local", 1, 64, 20.0, 30.0),
        ("dask", 1, 64, 8.0, 60.0),
        ("local", 64, 16, 5.0, None),
        ("dask", 64, 16, 5.0, None),
    ]
    lines = ["targets (issue 4):"]
    for server, rows, concurrency, ratio, p99 in checks:
        point, ref = at.get((server, rows, concurrency)), at.get(("mlflow", rows, concurrency))
        if point is None or ref is None or not ref.rps:
            continue
        got = point.rps / ref.rps
        met = got >= ratio and (p99 is None or point.p99_ms <= p99)
        bound = f", p99 {point.p99_ms:.1f} ms (<= {p99:g})" if p99 else ""
        lines.append(
            f"  {server:5} {rows:>2}-row c={concurrency:<3} {got:5.1f}x mlflow serve "
            f"(>= {ratio:g}){bound}: {'met' if met else 'MISSED'}"
        )
    return "\n".join(lines)


def _contract_ratios(points: list[Point]) -> str:
    """req/s with contracts warn and enforce over off, per point: the median of the per-round
    ratios (and their range)."""
    at = {(p.server, p.rows, p.concurrency, p.round): p for p in points}
    lines = [
        "| rows/req | c | off req/s | warn / off | enforce / off | errors (off, warn, enforce) "
        "| server CPU us/req off | CPU/req warn / off | CPU/req enforce / off |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for rows, concurrency in sorted({(p.rows, p.concurrency) for p in points}):
        rounds = sorted({p.round for p in points if (p.rows, p.concurrency) == (rows, concurrency)})
        ratios: dict[str, list[float]] = {"warn": [], "enforce": []}
        cpu_ratios: dict[str, list[float]] = {"warn": [], "enforce": []}
        offs, off_cpu, errors = [], [], {"off": 0, "warn": 0, "enforce": 0}
        for r in rounds:
            off = at.get(("local-off", rows, concurrency, r))
            if off is None or not off.rps:
                continue
            offs.append(off.rps)
            off_cpu.append(off.cpu_us_per_request)
            errors["off"] += off.errors
            for mode in ratios:
                point = at.get((f"local-{mode}", rows, concurrency, r))
                if point is not None:
                    ratios[mode].append(point.rps / off.rps)
                    cpu_ratios[mode].append(point.cpu_us_per_request / off.cpu_us_per_request)
                    errors[mode] += point.errors
        if not offs:
            continue
        cells = [
            f"{np.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" if v else "-"
            for v in [*ratios.values(), *cpu_ratios.values()]
        ]
        lines.append(
            f"| {rows} | {concurrency} | {np.median(offs):,.0f} | {cells[0]} | {cells[1]} "
            f"| {errors['off']}, {errors['warn']}, {errors['enforce']} "
            f"| {np.median(off_cpu):,.0f} | {cells[2]} | {cells[3]} |"
        )
    return "\n".join(lines)


def _table(points: list[Point], limit: float) -> str:
    reference = {(p.rows, p.concurrency, p.round): p for p in points if p.server == "mlflow"}
    header = (
        "| server | rows/req | concurrency | req/s | rows/s | p50 ms | p99 ms | errors "
        "| × mlflow serve | of in-process limit |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [header]
    for p in points:
        ref = reference.get((p.rows, p.concurrency, p.round))
        ratio = f"{p.rps / ref.rps:.1f}×" if ref and ref.rps and p.server != "mlflow" else "-"
        lines.append(
            f"| {p.server} | {p.rows} | {p.concurrency} | {p.rps:,.0f} | {p.rows_per_s:,.0f} "
            f"| {p.p50_ms:.1f} | {p.p99_ms:.1f} | {p.errors} | {ratio} "
            f"| {p.rows_per_s / limit:.1%} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
