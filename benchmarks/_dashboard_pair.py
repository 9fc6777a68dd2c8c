"""``benchmarks/search.py --dashboard``: what scaleml's dashboard pages cost a search.

Pairs of the same search on one LocalCluster (2 worker processes x 1 thread), alternating:

* **pages off** (the reference): the dashboard plugin unregistered from the scheduler and
  publishing turned off (``scaleml.dashboard._events.PUBLISHING``): nothing is sent.
* **pages on**: the plugin registered (as ``scaleml.cluster.connect()`` does), every trial's
  records published, and the searches page open: a poller fetches the page's three JSON
  routes (``lines``, ``best``, ``trials``) and the search list once a second, as BokehJS does
  in a browser tab. The poller is a process of its own, as a browser is (a thread of the
  benchmark's process would compete with the scheduler that process hosts). It also times each
  poll (the scheduler's cost per page refresh).

The search is ``HyperbandSearchCV(SGDClassifier, tutorial space, max_iter=27)`` on
``make_classification(n_samples, 20 features, chunks=100,000)``; only ``fit`` is timed.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The poller: GET the page's JSON routes once a second until killed, one duration per line.
_POLLER = """
import sys, time, httpx
base, out = sys.argv[1], sys.argv[2]
with httpx.Client(timeout=10) as http, open(out, "a") as times:
    while True:
        started = time.perf_counter()
        listing = http.get(base + "api/searches.json").json()
        if listing["id"]:
            for part in ("lines", "best", "trials"):
                http.get(base + "api/search/" + listing["id"][0] + "/" + part + ".json")
        times.write(f"{time.perf_counter() - started}\\n")
        times.flush()
        time.sleep(1.0)
"""


def run(n_samples: int, pairs: int, params: dict[str, Any], model: Any) -> dict[str, Any]:
    import httpx
    from dask_ml.datasets import make_classification
    from distributed import Client, LocalCluster

    from scaleml.dashboard import _events, install
    from scaleml.search import HyperbandSearchCV

    X, y = make_classification(n_samples=n_samples, n_features=20, chunks=100_000, random_state=0)
    rows: list[dict[str, Any]] = []
    polls: list[float] = []
    records = 0
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        X, y = client.persist([X, y])
        base = f"http://127.0.0.1:{cluster.scheduler.http_server.port}/scaleml/"
        for index in range(2 * pairs + 1):  # the first run warms up, not counted
            on = index % 2 == 1
            if on:
                install(client)
            elif index:
                client.unregister_scheduler_plugin("scaleml-dashboard")
            _events.PUBLISHING = on
            search = HyperbandSearchCV(model, params, max_iter=27, random_state=0)
            with tempfile.TemporaryDirectory() as scratch:
                times = Path(scratch) / "polls.txt"
                poller = None
                if on:
                    command = [sys.executable, "-c", _POLLER, base, str(times)]
                    poller = subprocess.Popen(command)
                cpu_before = _cpu_seconds(client)
                started = time.perf_counter()
                search.fit(X, y, classes=[0, 1])
                wall = time.perf_counter() - started
                cpu_main, cpu_workers = (
                    a - b for a, b in zip(_cpu_seconds(client), cpu_before, strict=True)
                )
                if poller is not None:
                    poller.kill()
                    poller.wait()
                    polls += [float(t) for t in times.read_text().split()] if times.exists() else []
                    records = httpx.get(f"{base}api/events/search.json").json()["count"]
            _events.PUBLISHING = True
            if index:
                row = {"pages": "on" if on else "off", "wall_s": wall}
                rows.append(row | {"cpu_main_s": cpu_main, "cpu_workers_s": cpu_workers})
                print(
                    f"  pages {'on ' if on else 'off'}: {wall:.2f} s wall, CPU {cpu_main:.2f} s "
                    f"client+scheduler, {cpu_workers:.2f} s workers",
                    flush=True,
                )
    off = [r["wall_s"] for r in rows if r["pages"] == "off"]
    on_ = [r["wall_s"] for r in rows if r["pages"] == "on"]
    ratios = [b / a for a, b in zip(off, on_, strict=True)]
    cpu = {
        f"{part}_{pages}": statistics.median(
            r[f"cpu_{part}_s"] for r in rows if r["pages"] == pages
        )
        for part in ("main", "workers")
        for pages in ("on", "off")
    }
    return {
        "n_samples": n_samples,
        "pairs": pairs,
        "cpu_median_s": cpu,
        "off_s": off,
        "on_s": on_,
        "ratios": ratios,
        "median_ratio": statistics.median(ratios),
        "poll_ms_median": 1000 * statistics.median(polls) if polls else None,
        "poll_ms_max": 1000 * max(polls) if polls else None,
        "records_published": records,
    }


def _cpu_seconds(client: Any) -> tuple[float, float]:
    """CPU seconds (user + system) used so far by this process, which hosts the client and the
    LocalCluster's scheduler, and by the worker processes together."""
    import psutil

    def used() -> float:
        times = psutil.Process().cpu_times()
        return times.user + times.system

    return used(), sum(client.run(used).values())


def report(result: dict[str, Any]) -> None:
    print(
        f"\npages off/on, {result['pairs']} pairs, n_samples={result['n_samples']:,}: "
        f"off {', '.join(f'{s:.2f}' for s in result['off_s'])} s; "
        f"on {', '.join(f'{s:.2f}' for s in result['on_s'])} s; "
        f"on/off ratios {', '.join(f'{r:.3f}' for r in result['ratios'])}, "
        f"median {result['median_ratio']:.3f}"
    )
    if result["poll_ms_median"] is not None:
        print(
            f"one page refresh (4 JSON routes): median {result['poll_ms_median']:.1f} ms, "
            f"max {result['poll_ms_max']:.1f} ms; search records published: "
            f"{result['records_published']:,} (the plugin's count after the last 'on' run)"
        )
    cpu = result["cpu_median_s"]
    print(
        f"median CPU per fit, pages on / off: client+scheduler {cpu['main_on']:.2f} / "
        f"{cpu['main_off']:.2f} s, workers {cpu['workers_on']:.2f} / {cpu['workers_off']:.2f} s"
    )
