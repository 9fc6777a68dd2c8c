"""Dashboard stage: scaleml's pages inside the Dask dashboard, fed by bounded events.

The work publishes small records on the scheduler (:func:`publish`, :func:`activity`, which
also runs the work inside ``distributed.span("scaleml", kind, id)``); a scheduler plugin
(:class:`DashboardPlugin`) keeps the last records of each kind and serves the pages under
``/scaleml/`` on the scheduler's HTTP server: searches, trainings, jobs, serving.

Installed by ``scaleml.cluster.connect()`` (:func:`install`), or on a scheduler started with
``dask scheduler --preload scaleml.dashboard`` (this module's ``dask_setup``).
"""

from scaleml.dashboard._events import activity, mlflow_run, note, publish
from scaleml.dashboard._install import dask_setup, install, pages_url
from scaleml.dashboard._serving import ServingEvents
from scaleml.dashboard._store import DashboardPlugin

__all__ = [
    "DashboardPlugin",
    "ServingEvents",
    "activity",
    "dask_setup",
    "install",
    "mlflow_run",
    "note",
    "pages_url",
    "publish",
]
