"""Coordinator stage: a job service that runs trainings and searches on the Dask cluster.

Jobs are JSON specs (:mod:`scaleml.coordinator.specs`), kept in a database
(:mod:`scaleml.coordinator.store`), run by :class:`Coordinator` (bounded, cancellable, with
progress events) and served over HTTP by :func:`create_app` (``scaleml coordinator``).
"""

from scaleml.coordinator.api import create_app
from scaleml.coordinator.service import Coordinator
from scaleml.coordinator.specs import (
    BoostSpec,
    DatasetSpec,
    JobSpec,
    SearchSpec,
    TrainSpec,
    parse_spec,
)
from scaleml.coordinator.store import RESTARTED, JobStore

__all__ = [
    "RESTARTED",
    "BoostSpec",
    "Coordinator",
    "DatasetSpec",
    "JobSpec",
    "JobStore",
    "SearchSpec",
    "TrainSpec",
    "create_app",
    "parse_spec",
]
