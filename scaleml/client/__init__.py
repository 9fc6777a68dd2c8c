"""Python client of the coordinator: submit jobs, follow them, get their results.

::

    from scaleml import Client
    from sklearn.linear_model import SGDClassifier

    client = Client("http://coordinator:8800", token="...")
    job = client.search(
        SGDClassifier(tol=None),
        {"alpha": {"distribution": "loguniform", "low": 1e-5, "high": 1e-1}},
        "s3://bucket/data/*.parquet",
        target="label",
        method="hyperband",
        max_iter=27,
        register_as="churn",
    )
    job.wait()               # a progress bar in terminals and notebooks
    job.result().model_uri

Network errors are retried with exponential backoff (a job submission only when the request
cannot have reached the server). HTTP errors become :class:`CoordinatorError` subclasses
carrying the server's message.
"""

from scaleml.client._client import Client
from scaleml.client._errors import (
    AuthenticationError,
    CoordinatorError,
    CoordinatorUnavailable,
    JobCancelledError,
    JobFailed,
    JobNotFound,
    JobStateError,
    SpecError,
)
from scaleml.client._job import TERMINAL_STATES, Job, JobEvent, JobInfo, JobResult

__all__ = [
    "TERMINAL_STATES",
    "AuthenticationError",
    "Client",
    "CoordinatorError",
    "CoordinatorUnavailable",
    "Job",
    "JobCancelledError",
    "JobEvent",
    "JobFailed",
    "JobInfo",
    "JobNotFound",
    "JobResult",
    "JobStateError",
    "SpecError",
]
