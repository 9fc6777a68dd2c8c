"""Contracts and drift at serving: one :class:`VersionMonitor` per loaded model version.

The contract is read with the version (``contract.json`` of the run that logged it). Each
request's columns are checked against it before batching (a few NumPy comparisons per
column): ``enforce`` refuses the request with a 400 naming the row, the column, the value and
the bound; ``warn`` answers and counts the rows in ``scaleml_contract_violations``. Each batch's
columns and predictions go into the version's :class:`~scaleml.monitor.DriftWindow`; the drift
gauges are computed from the windows when ``/metrics`` is scraped. A hot swap brings a new
monitor: the new version's contract and fresh windows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily

from scaleml.config import Settings
from scaleml.gateway._contract import RequestError, Rows

log = logging.getLogger("scaleml.gateway")
MODES = ("off", "warn", "enforce")
MODE_TAG = "scaleml.contract_mode"


class VersionMonitor:
    """A model version's contract, mode and drift window (none when the mode is off or the
    version has no contract)."""

    def __init__(
        self, model: str, version: str, contract: Any, mode: str, settings: Settings
    ) -> None:
        from scaleml.monitor import DriftWindow, Thresholds

        self.model = model
        self.version = version
        self.contract = contract
        self.mode = mode if contract is not None else "off"
        self.window = None
        if self.mode != "off":
            thresholds = Thresholds(
                tuple(settings.drift_psi_thresholds),
                tuple(settings.drift_wasserstein_thresholds),
                tuple(settings.drift_js_thresholds),
            )
            self.window = DriftWindow(
                contract, window_rows=settings.drift_window_rows, thresholds=thresholds
            )
        self.violations: Counter | None = None
        self._counters: dict[str, Any] = {}

    def check(self, rows: Rows) -> None:
        """Check a request; raise a 400 (:class:`RequestError`) in enforce mode, count it in
        warn mode."""
        if self.mode == "off":
            return
        found = self.contract.violations(rows.columns)
        if not found:
            return
        if self.mode == "enforce":
            name, (count, row, value, bound) = min(found.items(), key=lambda i: i[1][1])
            more = f"; {count} rows break it" if count > 1 else ""
            raise RequestError(
                f"row {row}, column {name!r}: value {value!r} is outside the contract of "
                f"{self.model} version {self.version} ({bound}){more}",
                name,
            )
        if self.violations is None:
            return
        for name, (count, *_rest) in found.items():
            counter = self._counters.get(name)
            if counter is None:
                counter = self.violations.labels(self.model, self.version, name)
                self._counters[name] = counter
            counter.inc(count)

    def observe(self, columns: dict[str, Any], predictions: Any) -> None:
        """Add a predicted batch to the drift window."""
        if self.window is not None:
            self.window.observe(columns, predictions)

    def report(self) -> dict[str, Any]:
        """The drift report (``GET /models/NAME/drift``)."""
        out: dict[str, Any] = {
            "model": self.model,
            "version": self.version,
            "contract_mode": self.mode,
            "contract": self.contract is not None,
        }
        if self.window is not None:
            out.update(self.window.report())
        return out


def load_monitor(
    model: str, version: str, settings: Settings, violations: Counter | None = None
) -> VersionMonitor:
    """Read the contract and mode of ``model`` ``version`` (blocking: MLflow calls). A version
    without a contract is served with contracts off, and a warning in the log. Violations in
    warn mode are counted in ``violations``."""
    monitor = _load(model, version, settings)
    monitor.violations = violations
    return monitor


def _load(model: str, version: str, settings: Settings) -> VersionMonitor:
    from scaleml.errors import ScalemlError
    from scaleml.monitor import ContractError, contract

    mode = _mode(model, version, settings)
    if mode == "off":
        return VersionMonitor(model, version, None, "off", settings)
    try:
        loaded = contract(f"models:/{model}/{version}", settings=settings)
    except ContractError as exc:
        log.warning("%s version %s is served with contracts off: %s", model, version, exc)
        return VersionMonitor(model, version, None, "off", settings)
    except ScalemlError as exc:
        log.warning("%s version %s: cannot read its contract (%s): contracts off", model, version,
                    exc)  # fmt: skip
        return VersionMonitor(model, version, None, "off", settings)
    log.info("%s version %s: contract %s", model, version, mode)
    return VersionMonitor(model, version, loaded, mode, settings)


def _mode(model: str, version: str, settings: Settings) -> str:
    """The per-model setting, else the version's tag, else the registered model's tag, else
    ``contract_mode``."""
    for item in settings.contract_modes.split(","):
        name, _, mode = item.partition("=")
        if name.strip() == model and mode.strip():
            return _checked(mode.strip(), f"contract_modes for {model}")
    from scaleml.tracking import configure

    client = configure(settings)
    try:
        tags = dict(client.get_model_version(model, version).tags or {})
        if MODE_TAG not in tags:
            tags = dict(client.get_registered_model(model).tags or {})
    except Exception:  # the version was readable a moment ago; fall back to the setting
        tags = {}
    if MODE_TAG in tags:
        return _checked(tags[MODE_TAG], f"tag {MODE_TAG} of {model}")
    return settings.contract_mode


def _checked(mode: str, where: str) -> str:
    if mode not in MODES:
        log.warning("%s is %r, not one of %s: contracts warn", where, mode, MODES)
        return "warn"
    return mode


class DriftCollector:
    """Prometheus collector of the drift gauges of every monitored version, computed from
    the windows at each scrape (nothing per request)."""

    def __init__(self, monitors: Any) -> None:
        self._monitors = monitors

    def collect(self) -> Iterator[GaugeMetricFamily]:
        features = GaugeMetricFamily(
            "scaleml_feature_drift",
            "Drift of a feature's live values from the training data (psi, wasserstein in "
            "training sds, jensen_shannon), over the sliding window.",
            labels=["model", "version", "feature", "metric"],
        )
        predictions = GaugeMetricFamily(
            "scaleml_prediction_drift",
            "Drift of the predictions from the model's outputs on its validation data.",
            labels=["model", "version", "metric"],
        )
        for monitor in list(self._monitors()):
            if monitor.window is None or monitor.window.rows_seen == 0:
                continue
            report = monitor.window.report()
            for name, entry in report["features"].items():
                for metric, value in entry["scores"].items():
                    features.add_metric([monitor.model, monitor.version, name, metric], value)
            for metric, value in report.get("prediction", {}).get("scores", {}).items():
                predictions.add_metric([monitor.model, monitor.version, metric], value)
            for label, shares in report.get("prediction", {}).get("class_balance", {}).items():
                delta = shares["live"] - shares["reference"]
                predictions.add_metric(
                    [monitor.model, monitor.version, f"class_share_delta:{label}"], delta
                )
        yield features
        yield predictions


def register_metrics(registry: CollectorRegistry, monitors: Any) -> Counter:
    """Add the drift collector and the violations counter to ``registry``; return the
    counter."""
    registry.register(DriftCollector(monitors))
    return Counter(
        "scaleml_contract_violations",
        "Rows outside the model's contract answered in warn mode, by column.",
        ["model", "version", "column"],
        registry=registry,
    )
