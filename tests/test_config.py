from pathlib import Path

import pytest

from scaleml.config import Settings, get_settings
from scaleml.errors import ConfigError

_VARIABLES = [
    "SCALEML_SCHEDULER",
    "SCALEML_N_WORKERS",
    "SCALEML_THREADS_PER_WORKER",
    "SCALEML_WORKER_MEMORY_LIMIT",
    "SCALEML_DASHBOARD_ADDRESS",
    "SCALEML_MLFLOW_TRACKING_URI",
    "SCALEML_EXPERIMENT",
    "SCALEML_DATA_DIR",
    "SCALEML_CACHE_DIR",
    "SCALEML_PREFETCH_BLOCKS",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_start_a_local_cluster_and_keep_mlflow_default() -> None:
    settings = get_settings()
    assert settings.scheduler is None
    assert settings.mlflow_tracking_uri is None
    assert settings.experiment == "scaleml"
    assert settings.worker_memory_limit == "auto"
    assert settings.threads_per_worker == 1
    assert settings.local_workers() >= 1
    assert settings.prefetch_blocks == 2


def test_every_setting_is_read_from_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SCALEML_SCHEDULER", "tcp://10.1.2.3:8786")
    monkeypatch.setenv("SCALEML_N_WORKERS", "3")
    monkeypatch.setenv("SCALEML_THREADS_PER_WORKER", "2")
    monkeypatch.setenv("SCALEML_WORKER_MEMORY_LIMIT", "1.5GiB")
    monkeypatch.setenv("SCALEML_DASHBOARD_ADDRESS", ":0")
    monkeypatch.setenv("SCALEML_MLFLOW_TRACKING_URI", "postgresql://db/mlflow")
    monkeypatch.setenv("SCALEML_EXPERIMENT", "churn")
    monkeypatch.setenv("SCALEML_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("SCALEML_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("SCALEML_PREFETCH_BLOCKS", "3")
    settings = get_settings()
    assert settings.scheduler == "tcp://10.1.2.3:8786"
    assert settings.local_workers() == 3
    assert settings.threads_per_worker == 2
    assert settings.worker_memory_limit == "1.5GiB"
    assert settings.dashboard_address == ":0"
    assert settings.mlflow_tracking_uri == "postgresql://db/mlflow"
    assert settings.experiment == "churn"
    assert settings.data_dir == tmp_path / "d"
    assert settings.cache_dir == tmp_path / "c"
    assert settings.prefetch_blocks == 3


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`SCALEML_{name.upper()}`" in readme, name


def test_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALEML_SCHEDULER", "")
    monkeypatch.setenv("SCALEML_MLFLOW_TRACKING_URI", "")
    settings = get_settings()
    assert settings.scheduler is None
    assert settings.mlflow_tracking_uri is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SCALEML_N_WORKERS", "zero"),
        ("SCALEML_N_WORKERS", "0"),
        ("SCALEML_WORKER_MEMORY_LIMIT", "lots"),
        ("SCALEML_PREFETCH_BLOCKS", "0"),
    ],
)
def test_invalid_values_raise_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        get_settings()


def test_explicit_overrides_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALEML_EXPERIMENT", "from-env")
    assert get_settings(experiment="explicit").experiment == "explicit"
