"""Ending the MLflow runs a job's attempt left RUNNING when its coordinator died."""

from __future__ import annotations

from scaleml.config import Settings


def end_orphaned_runs(
    settings: Settings,
    job_id: str,
    experiment_id: str | None,
    attempt: int | None = None,
    reason: str = "coordinator restarted",
) -> int:
    """End FAILED the MLflow runs (parent and nested) a job's attempt left RUNNING when its
    coordinator died, found by their ``scaleml.job_id`` and ``scaleml.attempt`` tags (a run
    without the attempt tag is of attempt 1; ``attempt=None``: every attempt); return how
    many were ended."""
    if experiment_id is None:
        return 0
    from scaleml.tracking import configure

    client = configure(settings)
    query = f"tags.`scaleml.job_id` = '{job_id}' and attributes.status = 'RUNNING'"
    ended, token = 0, None
    while True:
        page = client.search_runs([experiment_id], filter_string=query, page_token=token)
        for run in page:
            if attempt is not None and run.data.tags.get("scaleml.attempt", "1") != str(attempt):
                continue  # a later attempt's run, running now
            client.set_tag(run.info.run_id, "scaleml.error", reason)
            client.set_terminated(run.info.run_id, status="FAILED")
            ended += 1
        token = page.token
        if not token:
            return ended
