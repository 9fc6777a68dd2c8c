"""The one settings object of scaleml, read from ``SCALEML_*`` environment variables.

Every setting is documented in the README's "Settings" table; keep the two in step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from scaleml.errors import ConfigError


class Settings(BaseSettings):
    """scaleml's settings; each field ``name`` is read from ``SCALEML_NAME``."""

    model_config = SettingsConfigDict(env_prefix="SCALEML_", extra="ignore")

    scheduler: str | None = Field(
        default=None,
        description="Address of a running Dask scheduler (e.g. tcp://10.0.0.5:8786). "
        "Unset: start a LocalCluster with worker processes.",
    )
    n_workers: int | None = Field(
        default=None, ge=1, description="LocalCluster worker processes; unset: one per core."
    )
    threads_per_worker: int = Field(default=1, ge=1, description="LocalCluster threads per worker.")
    worker_memory_limit: str = Field(
        default="auto",
        description="LocalCluster memory limit per worker ('auto' = system memory / workers, "
        "or a size such as '2GiB').",
    )
    dashboard_address: str | None = Field(
        default=":8787",
        description="Where the LocalCluster serves the Dask dashboard (':0' for any free port); "
        "a bare ':PORT' binds 127.0.0.1, 'HOST:PORT' (e.g. '0.0.0.0:8787') exposes it.",
    )
    dashboard_pages: bool = Field(
        default=True,
        description="Serve scaleml's pages under /scaleml/ on the Dask dashboard of the "
        "LocalCluster connect() starts (or install them on SCALEML_SCHEDULER at connect).",
    )
    dashboard_max_records: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="Records of each kind (search, training, job, serving) the scheduler "
        "keeps for the scaleml pages; older ones are dropped.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI. Unset: MLflow's own default (MLFLOW_TRACKING_URI, "
        "else the SQLite file mlflow.db in the working directory).",
    )
    mlflow_artifact_location: str | None = Field(
        default=None,
        description="Where experiments scaleml creates keep their artifacts (a directory, or a "
        "URI such as s3://bucket/prefix). Unset: the tracking store's default (./mlruns in the "
        "working directory for a SQLite store, the server's artifact root for a server).",
    )
    experiment: str = Field(default="scaleml", min_length=1, description="MLflow experiment name.")
    data_dir: Path = Field(
        default=Path("scaleml-data"), description="Where generated datasets are written."
    )
    cache_dir: Path = Field(
        default=Path("scaleml-data/cache"),
        description="Scratch space: Dask worker spill files and temporary files.",
    )
    prefetch_blocks: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Training blocks loaded ahead of the partial_fit that consumes them.",
    )
    auto_evaluate: bool = Field(
        default=True,
        description="Evaluate the final model of every training, boosting and search (job or "
        "command) on the dataset's validation blocks and log the report to its MLflow run.",
    )
    explain_sample: int = Field(
        default=200,
        ge=0,
        le=100_000,
        description="Training, searches and boosting explain their final model with SHAP and "
        "log it with the model: the rows of the sample kept for the plots; 0 turns it off.",
    )
    explain_plots: bool = Field(
        default=True,
        description="Log shap's PNG plots and the HTML report with those automatic "
        "explanations (importances, summary and background are always logged).",
    )
    # -- local stack (scaleml cluster up) ---------------------------------------------------
    stack_dir: Path = Field(
        default=Path("scaleml-stack"),
        description="State directory of `scaleml cluster up`: logs, PID records, stores.",
    )
    mlflow_backend_store_uri: str | None = Field(
        default=None,
        description="Backend store of the MLflow server `scaleml cluster up` starts (a "
        "postgresql:// URL); unset: a SQLite file in the stack's state directory.",
    )

    # -- gateway (scaleml serve) ----------------------------------------------------------
    gateway_host: str = Field(default="127.0.0.1", description="Address the gateway binds.")
    gateway_port: int = Field(default=8000, ge=0, le=65535, description="Gateway HTTP port.")
    gateway_token: str | None = Field(
        default=None,
        description="Bearer token the gateway requires (health endpoints exempt); unset: none.",
    )
    gateway_backend: Literal["auto", "local", "dask"] = Field(
        default="auto",
        description="Where batches are predicted: 'local' (thread pool in the gateway), 'dask' "
        "(workers holding the model), 'auto' (dask when SCALEML_SCHEDULER is set, else local).",
    )
    gateway_max_batch_size: int = Field(
        default=1024, ge=1, le=100_000, description="Rows per predict call, at most."
    )
    gateway_max_wait_ms: float = Field(
        default=2.0,
        ge=0,
        le=10_000,
        description="How long the oldest queued request may wait for a fuller batch while "
        "another batch is in flight (an idle model predicts at once).",
    )
    gateway_max_queue: int = Field(
        default=2048, ge=1, description="Queued requests per model before 503 + Retry-After."
    )
    gateway_request_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A request not answered within this time gets 504; a body not received "
        "within it 408.",
    )
    gateway_max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Larger request bodies get 413."
    )
    gateway_poll_interval_s: float = Field(
        default=5.0, gt=0, description="How often the registry alias of each model is checked."
    )
    gateway_inflight_batches_per_worker: int = Field(
        default=2, ge=1, le=64, description="Batches of one model in flight per Dask worker."
    )
    gateway_local_threads: int = Field(
        default=1, ge=1, le=64, description="Prediction threads of the local backend."
    )
    gateway_predict_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="OpenMP/BLAS threads one prediction may use (XGBoost, LightGBM, numpy).",
    )
    gateway_inprocess_max_rows: int = Field(
        default=64,
        ge=0,
        le=100_000,
        description="dask backend: a batch of at most this many rows, with nothing else in "
        "flight, is predicted on the gateway's own copy of the model (no round trip to a "
        "worker); under load batches go to the workers. 0: always to the workers.",
    )
    gateway_fast_lane: bool = Field(
        default=True,
        description="Answer prediction requests in a thin ASGI lane in front of FastAPI (same "
        "behaviour, ~1.5x the requests/s on 2 cores); false: through the FastAPI routes.",
    )
    # -- end gateway ------------------------------------------------------------------------

    # -- coordinator (scaleml coordinator, scaleml jobs) ------------------------------------
    coordinator_url: str = Field(
        default="http://127.0.0.1:8800", description="Where clients and the CLI reach it."
    )
    coordinator_db: str = Field(
        default="sqlite:///scaleml-coordinator.db",
        description="SQLAlchemy URL of the job store (SQLite file or PostgreSQL).",
    )
    coordinator_token: str | None = Field(
        default=None, description="Bearer token the coordinator requires; unset: none."
    )
    coordinator_host: str = Field(default="127.0.0.1", description="Address the coordinator binds.")
    coordinator_port: int = Field(
        default=8800, ge=0, le=65535, description="Coordinator HTTP port."
    )
    coordinator_max_running_jobs: int = Field(
        default=2, ge=1, le=1000, description="Jobs one coordinator runs at once; the rest queue."
    )
    coordinator_heartbeat_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="Seconds between a coordinator's heartbeats on its running jobs (and its "
        "polls for queued jobs and cancel requests). A RUNNING job whose holder missed three "
        "heartbeats is retried (coordinator_max_attempts) or FAILED 'coordinator restarted'.",
    )
    coordinator_max_attempts: int = Field(
        default=2,
        ge=1,
        le=100,
        description="Default max_attempts of a job: a job whose coordinator died is re-queued "
        "until it has run this many attempts, then FAILED.",
    )
    coordinator_data_roots: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated locations job specs may read data from (directories or "
        "URL prefixes such as s3://bucket/prefix); unset: only under SCALEML_DATA_DIR.",
    )
    coordinator_allow_insecure: bool = Field(
        default=False,
        description="Let the coordinator bind a non-loopback address without a token.",
    )
    coordinator_register_models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="Comma-separated model names or glob patterns jobs may register "
        "(register_as); '*' = any, empty = none.",
    )
    coordinator_force_tokens: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated bearer tokens whose jobs may force alias moves "
        "(promote: always); they are also accepted wherever SCALEML_COORDINATOR_TOKEN is.",
    )
    coordinator_max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Larger request bodies get 413."
    )
    coordinator_body_timeout_s: float = Field(
        default=10.0, gt=0, le=3600, description="A request body not received in time gets 408."
    )
    # -- end coordinator --------------------------------------------------------------------

    # -- monitor (contracts and drift at serving; scaleml validate) --------------------------
    contract_mode: Literal["off", "warn", "enforce"] = Field(
        default="warn",
        description="What the gateway does with a request outside the model's contract: off "
        "(no checks, no drift), warn (answer, count it in /metrics) or enforce (400 naming the "
        "row, column, value and bound). A model's 'scaleml.contract_mode' tag overrides it.",
    )
    contract_pass: Literal["training", "separate"] = Field(
        default="separate",
        description="Where an incremental training's contract comes from: separate (one more "
        "pass after training, every worker in parallel) or training (its own tasks profile "
        "the blocks they read: no second read of the data, but the profiling runs on the "
        "training's one worker and made SGD's epoch ~4x slower). Searches and boosting always "
        "take the separate pass.",
    )
    contract_modes: str = Field(
        default="",
        description="Per model, overriding tags and contract_mode: 'NAME=MODE,NAME=MODE'.",
    )
    drift_window_rows: int = Field(
        default=10_000,
        ge=100,
        le=100_000_000,
        description="Rows of live requests each model version's drift histograms cover (a "
        "sliding window moved in tenths).",
    )
    drift_psi_thresholds: tuple[float, float] = Field(
        default=(0.1, 0.25), description="PSI: moderate, significant."
    )
    drift_wasserstein_thresholds: tuple[float, float] = Field(
        default=(0.1, 0.2),
        description="Wasserstein distance in training standard deviations: moderate, significant.",
    )
    drift_js_thresholds: tuple[float, float] = Field(
        default=(0.1, 0.2), description="Jensen-Shannon distance (base 2): moderate, significant."
    )
    # -- end monitor ------------------------------------------------------------------------

    @field_validator("worker_memory_limit")
    @classmethod
    def _check_memory_limit(cls, value: str) -> str:
        from dask.utils import parse_bytes

        if value != "auto":
            try:
                parse_bytes(value)
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"expected 'auto' or a size such as '2GiB', got {value!r}"
                ) from exc
        return value

    @field_validator(
        "scheduler",
        "mlflow_tracking_uri",
        "dashboard_address",
        "gateway_token",
        "coordinator_token",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator(
        "coordinator_data_roots",
        "coordinator_register_models",
        "coordinator_force_tokens",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    def local_workers(self) -> int:
        """The number of worker processes a LocalCluster gets."""
        return self.n_workers or os.cpu_count() or 1


def get_settings(**overrides: object) -> Settings:
    """Read the settings from the environment, with explicit ``overrides`` taking precedence.

    Raises:
        ConfigError: a value is invalid; the message names the environment variable.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"SCALEML_{str(err['loc'][0]).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
