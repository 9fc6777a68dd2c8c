"""Prometheus metrics of one gateway, in a registry of its own (served at ``/metrics``)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from scaleml.dashboard._serving import ServingEvents

_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class GatewayMetrics:
    """Requests by model and status, latency, batch sizes, queue depth, in-flight batches and
    the model version served."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.dashboard = ServingEvents()
        """The same work, counted per second for the Dask dashboard's serving page."""
        self.requests = Counter(
            "scaleml_gateway_requests",
            "Prediction requests by model, protocol and HTTP status.",
            ["model", "protocol", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "scaleml_gateway_request_seconds",
            "Prediction request latency in the gateway (parse, queue, predict, encode).",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "scaleml_gateway_batch_rows",
            "Rows per predict call.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "scaleml_gateway_batch_requests",
            "Requests per predict call.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "scaleml_gateway_queue_depth",
            "Requests waiting to be batched.",
            ["model"],
            registry=self.registry,
        )
        self.inflight = Gauge(
            "scaleml_gateway_inflight_batches",
            "Batches being predicted.",
            ["model"],
            registry=self.registry,
        )
        self.inprocess_batches = Counter(
            "scaleml_gateway_inprocess_batches",
            "Batches the dask backend predicted on the gateway's own copy of the model (a "
            "small batch with nothing else in flight); the rest went to the workers.",
            ["model"],
            registry=self.registry,
        )
        self.explain_requests = Counter(
            "scaleml_gateway_explain_requests",
            "Explanation requests by model, route and HTTP status.",
            ["model", "route", "status"],
            registry=self.registry,
        )
        self.explain_latency = Histogram(
            "scaleml_gateway_explain_seconds",
            "Explanation request latency in the gateway, by model and route.",
            ["model", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.explain_batch_rows = Histogram(
            "scaleml_gateway_explain_batch_rows",
            "Rows per explain call.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.explain_batch_requests = Histogram(
            "scaleml_gateway_explain_batch_requests",
            "Requests per explain call.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.served_version = Gauge(
            "scaleml_gateway_model_version",
            "1 for the model version being served.",
            ["model", "version"],
            registry=self.registry,
        )

    def track_model(
        self, model: str, queue_depth: Callable[[], float], inflight: Callable[[], float]
    ) -> None:
        """Report ``model``'s queue depth and in-flight batches from the given callables."""
        self.queue_depth.labels(model).set_function(queue_depth)
        self.inflight.labels(model).set_function(inflight)

    def batch_recorder(self, model: str) -> Callable[[int, int], None]:
        """A callback for the batcher that records the rows and requests of each batch."""
        rows = self.batch_rows.labels(model)
        requests = self.batch_requests.labels(model)

        def record(n_rows: int, n_requests: int) -> None:
            rows.observe(n_rows)
            requests.observe(n_requests)
            self.dashboard.batch(model, n_rows, n_requests)

        return record

    def explain_batch_recorder(self, model: str) -> Callable[[int, int], None]:
        """A callback for the explanation batcher: rows and requests of each batch."""
        rows = self.explain_batch_rows.labels(model)
        requests = self.explain_batch_requests.labels(model)

        def record(n_rows: int, n_requests: int) -> None:
            rows.observe(n_rows)
            requests.observe(n_requests)

        return record

    def serving(self, model: str, version: str, previous: str | None) -> None:
        """Record that ``model`` now serves ``version``."""
        if previous is not None:
            self.served_version.remove(model, previous)
        self.served_version.labels(model, version).set(1)
        self.dashboard.serving(model, version)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
