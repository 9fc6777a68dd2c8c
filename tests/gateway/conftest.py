"""Gateway fixtures: models registered once per module in the session's SQLite MLflow store,
and real ``scaleml serve`` processes (uvicorn) on 127.0.0.1."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.linear_model import LogisticRegression

from scaleml.config import Settings
from scaleml.tracking import Tracker, register

FEATURES = [f"f{i}" for i in range(8)]
START_TIMEOUT_S = 90.0


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows of the 8 float features."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)


def train_sklearn(seed: int = 0) -> LogisticRegression:
    X = frame(400, seed)
    y = (X.f0 + X.f1 * (1 + seed) > 0).astype(int)
    return LogisticRegression().fit(X, y)


@pytest.fixture(scope="module")
def store(mlflow_uri: str) -> Settings:
    """Settings pointing at the session's MLflow store, with an experiment of this module."""
    return Settings(mlflow_tracking_uri=mlflow_uri, experiment=f"gw-{uuid.uuid4().hex[:8]}")


def log_and_register(store: Settings, model: object, name: str, flavor: str = "sklearn") -> str:
    """Log ``model`` through scaleml.tracking and register it as a new version of ``name``."""
    tracker = Tracker(store)
    with tracker.run(name) as run:
        if flavor == "sklearn":
            uri = run.log_sklearn_model(model, frame(5))
        else:
            uri = run.log_native_model(model, flavor, frame(5))
    return register(uri, name, tracker=tracker).version


@pytest.fixture(scope="module")
def models(store: Settings) -> dict[str, str]:
    """A scikit-learn model (``name@champion``) and an XGBoost model (``name/1``)."""
    suffix = uuid.uuid4().hex[:6]
    sk, xg = f"sk-{suffix}", f"xgb-{suffix}"
    log_and_register(store, train_sklearn(), sk)
    X = frame(400, 1)
    booster = xgboost.XGBClassifier(n_estimators=15, max_depth=3, n_jobs=1)
    booster.fit(X, (X.f2 - X.f3 > 0).astype(int))
    log_and_register(store, booster, xg, flavor="xgboost")
    return {"sklearn": sk, "xgboost": xg}


def pyfunc_predict(store: Settings, uri: str, X: pd.DataFrame) -> list:
    """The reference: ``mlflow.pyfunc.load_model(uri).predict(X)``."""
    mlflow.set_tracking_uri(store.mlflow_tracking_uri)
    mlflow.set_registry_uri(store.mlflow_tracking_uri)
    return np.asarray(mlflow.pyfunc.load_model(uri).predict(X)).tolist()


class GatewayProcess:
    """``python -m scaleml.cli serve ...`` on 127.0.0.1 and a free port."""

    def __init__(self, models: list[str], store: Settings, backend: str, **env: str) -> None:
        command = [sys.executable, "-m", "scaleml.cli", "serve", "--backend", backend]
        command += ["--host", "127.0.0.1", "--port", "0"]
        for model in models:
            command += ["--model", model]
        environment = {
            **os.environ,
            "SCALEML_MLFLOW_TRACKING_URI": str(store.mlflow_tracking_uri),
            "SCALEML_GATEWAY_POLL_INTERVAL_S": "0.3",
            **{f"SCALEML_{k.upper()}": v for k, v in env.items()},
        }
        self.lines: collections.deque[str] = collections.deque(maxlen=3000)
        self._listening = threading.Event()
        self.url = ""
        self.proc = subprocess.Popen(
            command,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._listening.wait(START_TIMEOUT_S):
            self.stop()
            raise RuntimeError("gateway did not start:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            if "gateway listening on " in line:
                self.url = line.split("gateway listening on ")[1].split()[0]
                self._listening.set()

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("gateway not ready:\n" + "\n".join(list(self.lines)[-40:]))

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


@pytest.fixture(scope="module")
def gateway_factory() -> Iterator:
    started: list[GatewayProcess] = []

    def start(models: list[str], store: Settings, backend: str, **env: str) -> GatewayProcess:
        process = GatewayProcess(models, store, backend, **env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


SLOW_MODEL = Path(__file__).with_name("slow_model.py")
