"""Serving the metrics: a standalone `/metrics` endpoint, an ASGI app to mount, and multiprocess mode.

With several worker processes (gunicorn, `uvicorn --workers`), set `PROMETHEUS_MULTIPROC_DIR` to an empty directory before
the workers start: every process then writes its samples there and the endpoint merges them (in-flight gauges are summed
over live processes). Call `mark_worker_dead(pid)` from the process manager when a worker exits.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, make_asgi_app, multiprocess, start_http_server

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The multiprocess directory when multiprocess mode is on."""
    return os.environ.get(MULTIPROC_ENV) or None


def exposition_registry(source: Any = None) -> CollectorRegistry:
    """The registry to expose: in multiprocess mode a collector over every process's files, else the Monitor's own
    (`source` is a Monitor, or anything with a `registry`, or a registry)."""
    if multiprocess_dir() is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    registry = getattr(source, "registry", source)
    if isinstance(registry, CollectorRegistry):
        return registry
    raise TypeError("pass the Monitor (or its registry) whose metrics to serve")


@dataclass
class MetricsServer:
    """A running `/metrics` endpoint; `stop()` shuts it down."""

    url: str
    port: int
    _server: Any
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(source: Any = None, *, port: int = 9464, addr: str = "127.0.0.1") -> MetricsServer:
    """Serve `/metrics` from a daemon thread (prometheus-client's own server). `port=0` picks a free port.

    Binds to loopback by default: expose it deliberately (`addr="0.0.0.0"`) when Prometheus scrapes from elsewhere.
    """
    server, thread = start_http_server(port, addr=addr, registry=exposition_registry(source))
    bound_port = server.server_address[1]
    host = addr if ":" not in addr else f"[{addr}]"
    return MetricsServer(url=f"http://{host}:{bound_port}/metrics", port=bound_port, _server=server, _thread=thread)


class MetricsApp:
    """An ASGI app answering Prometheus scrapes. Add it as a route, `app.add_route("/metrics", metrics_app(m))`, which
    answers `/metrics` itself: mounted (`app.mount("/metrics", ...)`) Starlette answers `/metrics` with a redirect to
    `/metrics/`. A class, not a function, so that Starlette hands it the raw ASGI call rather than a Request."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._app = make_asgi_app(registry)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)


def metrics_app(source: Any = None) -> MetricsApp:
    """The ASGI app for `/metrics` (see `MetricsApp`): `app.add_route("/metrics", metrics_app(monitor))`."""
    return MetricsApp(exposition_registry(source))


def mark_worker_dead(pid: int) -> None:
    """Drop a dead worker's live gauges in multiprocess mode (e.g. from gunicorn's `child_exit` hook)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)
