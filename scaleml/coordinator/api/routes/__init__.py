"""One router per resource: jobs (with their events) and health."""
