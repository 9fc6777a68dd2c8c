"""The ``/scaleml/`` routes on the scheduler's HTTP server (the Dask dashboard's server).

:func:`add_routes` adds them to a running scheduler with Tornado's ``add_handlers``, which is
how the :class:`~scaleml.dashboard.DashboardPlugin` installs them wherever it is registered
(a preload, ``Client.register_plugin``). Distributed's own route extension, the
``distributed.scheduler.http.routes`` setting, is read only when a scheduler is created, so it
could not serve a scheduler that was started elsewhere; one way for every case is simpler.
Handlers find the plugin (and its records) through ``scheduler.plugins`` at each request.

Routes: ``/scaleml/`` (index), ``searches``, ``trainings``, ``jobs``, ``serving`` (pages);
``api/<kind>.json`` and the per-search ``api/search/<id>/{lines,best,trials}.json`` (views
the pages poll); ``api/events/<kind>.json?since=N`` (the stored records after the N-th);
``static/`` (BokehJS).
"""

from __future__ import annotations

import json
import math
from typing import Any

from bokeh.util.paths import static_path
from tornado import web

from scaleml.dashboard import _pages, _views
from scaleml.dashboard._events import KINDS
from scaleml.dashboard._store import Store, plugin_of

PREFIX = "/scaleml"
_MARK = "_scaleml_dashboard_routes"


class _Handler(web.RequestHandler):
    def initialize(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    @property
    def store(self) -> Store:
        plugin = plugin_of(self.scheduler)
        if plugin is None:
            raise web.HTTPError(503, reason="the scaleml dashboard plugin is not installed")
        return plugin.store

    def send_json(self, value: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(json.dumps(_finite(value), separators=(",", ":")))

    def send_html(self, text: str) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.write(text)


class _Index(_Handler):
    def get(self) -> None:
        store = self.store
        searches = _search_list(store)
        trainings = store.view("training", "list", _views.training_list)
        jobs = store.view("job", "list", _views.job_list)
        serving = store.view("serving", "table", _views.serving_table)
        counts = {
            "searches": _count(searches["status"], "search"),
            "trainings": _count(trainings["status"], "training"),
            "jobs": _count(jobs["state"], "job"),
            "serving": f"{len(serving['model'])} model versions reported",
        }
        self.send_html(_pages.index(counts))


class _Searches(_Handler):
    def get(self) -> None:
        store = self.store
        listing = _search_list(store)
        data = {
            search_id: {
                "lines": _search_view(store, "lines", search_id),
                "points": _search_view(store, "points", search_id),
                "best": _search_view(store, "best", search_id),
                "trials": _search_view(store, "trials", search_id),
                "scoring": _views_scoring(store, search_id),
                "x_label": _views_field(store, search_id, "x_label", "partial_fit calls"),
            }
            for search_id in listing["id"][: _views.RECENT]
        }
        self.send_html(_pages.searches(listing, data))


class _Trainings(_Handler):
    def get(self) -> None:
        store = self.store
        lines = store.view("training", "lines", _views.training_lines)
        listing = store.view("training", "list", _views.training_list)
        dots = (_views.points(lines), _views.points(lines, "rates"))
        self.send_html(_pages.trainings(listing, lines, dots))


class _Jobs(_Handler):
    def get(self) -> None:
        self.send_html(_pages.jobs(self.store.view("job", "list", _views.job_list)))


class _Serving(_Handler):
    def get(self) -> None:
        store = self.store
        self.send_html(
            _pages.serving(
                store.view("serving", "lines", _views.serving_lines),
                store.view("serving", "table", _views.serving_table),
            )
        )


_LISTS = {
    "trainings": ("training", "list", _views.training_list),
    "trainings/lines": ("training", "lines", _views.training_lines),
    "trainings/points": ("training", "points", lambda r: _views.points(_views.training_lines(r))),
    "trainings/rates": (
        "training",
        "rates",
        lambda r: _views.points(_views.training_lines(r), "rates"),
    ),
    "jobs": ("job", "list", _views.job_list),
    "serving": ("serving", "table", _views.serving_table),
    "serving/lines": ("serving", "lines", _views.serving_lines),
}


class _ListJson(_Handler):
    def get(self, name: str) -> None:
        if name == "searches":
            self.send_json(_search_list(self.store))
            return
        if name not in _LISTS:
            raise web.HTTPError(404, reason=f"no view {name!r}; views: {', '.join(_LISTS)}")
        self.send_json(self.store.view(*_LISTS[name]))


class _SearchJson(_Handler):
    def get(self, search_id: str, part: str) -> None:
        self.send_json(_search_view(self.store, part, search_id))


class _EventsJson(_Handler):
    def get(self, kind: str) -> None:
        if kind not in KINDS:
            raise web.HTTPError(404, reason=f"kind must be one of {', '.join(KINDS)}")
        try:
            since = int(self.get_query_argument("since", "0"))
        except ValueError:
            raise web.HTTPError(400, reason="since must be an integer") from None
        count, records = self.store.records(kind, max(since, 0))
        self.send_json({"count": count, "records": records})


class _Redirect(web.RequestHandler):
    def get(self) -> None:
        self.redirect(f"{self.request.path}/")


_SEARCH_PARTS = {
    "lines": _views.search_lines,
    "points": lambda state: _views.points(_views.search_lines(state)),
    "best": _views.search_best,
    "trials": _views.search_trials,
}


def _search_view(store: Store, part: str, search_id: str) -> Any:
    build, state = _SEARCH_PARTS[part], store.states("search").get(search_id)
    return store.view("search", f"{part}:{search_id}", lambda _: build(state))


def _search_list(store: Store) -> dict[str, Any]:
    states = store.states("search")
    return store.view("search", "list", lambda _: _views.search_list(states))


def _views_scoring(store: Store, search_id: str) -> str:
    return _views_field(store, search_id, "scoring", "score")


def _views_field(store: Store, search_id: str, name: str, default: str) -> str:
    return str((store.states("search").get(search_id) or {}).get(name) or default)


def _count(statuses: list[str], noun: str) -> str:
    running = sum(1 for s in statuses if s == "running")
    return f"{len(statuses)} {noun}{'' if len(statuses) == 1 else 's'}, {running} running"


def _finite(value: Any) -> Any:
    """JSON has no NaN: None (null) in its place, which Bokeh draws as a gap."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def handlers(scheduler: Any) -> list[tuple[str, Any, dict[str, Any]]]:
    """The Tornado handlers of the ``/scaleml/`` routes for ``scheduler``."""
    kwargs = {"scheduler": scheduler}
    return [
        (PREFIX, _Redirect, {}),
        (f"{PREFIX}/", _Index, kwargs),
        (f"{PREFIX}/searches", _Searches, kwargs),
        (f"{PREFIX}/trainings", _Trainings, kwargs),
        (f"{PREFIX}/jobs", _Jobs, kwargs),
        (f"{PREFIX}/serving", _Serving, kwargs),
        (f"{PREFIX}/api/events/([a-z]+)\\.json", _EventsJson, kwargs),
        (
            f"{PREFIX}/api/search/([0-9a-zA-Z_-]+)/(lines|points|best|trials)\\.json",
            _SearchJson,
            kwargs,
        ),
        (f"{PREFIX}/api/([a-z/]+)\\.json", _ListJson, kwargs),
        (f"{PREFIX}/static/(.*)", web.StaticFileHandler, {"path": static_path()}),
    ]


def add_routes(scheduler: Any) -> bool:
    """Add the ``/scaleml/`` routes to ``scheduler``'s HTTP server (once); False when it has
    none (started without a dashboard)."""
    application = getattr(scheduler, "http_application", None)
    if application is None:
        return False
    if not getattr(application, _MARK, False):
        application.add_handlers(r".*", handlers(scheduler))
        setattr(application, _MARK, True)
    return True
