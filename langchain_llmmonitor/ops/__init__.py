"""What operators deploy around the monitor: Prometheus alert rules, the Grafana dashboard, and `/metrics` serving."""

from .exposition import mark_worker_dead, metrics_app, serve_metrics

__all__ = ["mark_worker_dead", "metrics_app", "serve_metrics"]
