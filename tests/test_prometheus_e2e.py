"""End to end: a real Prometheus scrapes a process running a monitored chain, evaluates the generated rules, fires the
error-rate alert through its own rule evaluator, and answers every dashboard query."""

from __future__ import annotations

import json
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from langchain_llmmonitor.ops.alerts import AlertConfig, build_rules, render_rules
from langchain_llmmonitor.ops.dashboard import build_dashboard, dashboard_queries

from ._prom_tools import require_binary

pytestmark = pytest.mark.slow  # `pytest -m "not slow"` runs the quick rest

APP_SCRIPT = Path(__file__).with_name("_monitored_app.py")
MODEL = "gpt-4o-mini"
CHAIN_NAME = "support_bot"
# `for:` durations at 1% (LLMErrorRateHigh: 10m -> 6s). The threshold sits far above the background traffic's error
# share (a few percent) and far below the burst's (over half), so whether it fires does not hang on scrape timing.
ALERT_CONFIG = AlertConfig(error_rate=0.25, pending_scale=0.01)
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$model": ".*"}
# Metrics, and recording rules over them, that the demo chain fills (judge, feedback and tool panels stay empty).
CHAIN_METRICS = re.compile(
    r"llm_(requests|invocations|tokens|cost_usd|request_duration_seconds|time_to_first_token_seconds|retriever_)"
)
DEADLINE_SECONDS = 60.0

_T = TypeVar("_T")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _poll(what: str, check: Callable[[], _T | None], *, timeout: float = DEADLINE_SECONDS, every: float = 0.2) -> _T:
    """`check()`'s first truthy result, polled until `timeout`; fails saying what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


class MonitoredApp:
    """`tests/_monitored_app.py` in a subprocess, driven one command at a time over stdin."""

    def __init__(self, workdir: Path) -> None:
        self.log = workdir / "app.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(APP_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                bufsize=0,  # unbuffered, so select() sees every byte the app wrote
                cwd=APP_SCRIPT.parents[1],
            )
        self.metrics_port: int = self._reply(timeout=30)["metrics_port"]

    def _reply(self, *, timeout: float) -> dict[str, Any]:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            pytest.fail(f"the app did not answer within {timeout:g}s; its log ends with:\n{_tail(self.log)}")
        return json.loads(line)

    def run(self, command: str, count: int) -> dict[str, int]:
        """Do `count` calls of one kind; returns the app's running tally of everything it did so far."""
        self.process.stdin.write(f"{command} {count}\n".encode())
        return self._reply(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write(b"exit\n")
                self.process.stdin.close()
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        _stop(self.process)


class Prometheus:
    """A real `prometheus` server scraping one target every second and evaluating `rules` every second."""

    def __init__(self, binary: str, workdir: Path, *, target_port: int, rules: str) -> None:
        (workdir / "rules.yml").write_text(rules)
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
            "rule_files": [str(workdir / "rules.yml")],
            "scrape_configs": [{"job_name": "app", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = workdir / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.http = httpx.Client(base_url=self.url, timeout=10)
        _poll("Prometheus to be ready", self._ready, timeout=30)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"prometheus exited with {self.process.returncode}:\n{_tail(self.log)}")
        try:
            return self.http.get("/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def api(self, path: str, **params: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/{path}", params=params)
        body = response.json()
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", f"{expr}: {data}"
        return data["result"]

    def vector(self, expr: str, *labels: str) -> dict[tuple[str, ...], float]:
        """An instant query's samples keyed by the values of `labels`."""
        return {
            tuple(sample["metric"].get(label, "") for label in labels): float(sample["value"][1])
            for sample in self.query(expr)
        }

    def scraped_after(self, moment: float) -> float:
        """Wait until a scrape that started after `moment` (a Unix time) is stored; returns when it was seen.

        `up` is appended and committed together with the scraped samples, stamped with the scrape's start.
        """

        def done() -> bool:
            stamps = self.vector('timestamp(up{job="app"})')
            return bool(stamps) and min(stamps.values()) > moment

        _poll("a scrape after the traffic", done, timeout=15)
        return time.time()

    def evaluated_after(self, moment: float) -> None:
        """Wait until every rule group has finished an evaluation that started after `moment`."""

        def done() -> bool:
            groups = self.api("rules")["groups"]
            return bool(groups) and all(_unix(group["lastEvaluation"]) > moment for group in groups)

        _poll("a rule evaluation after the scrape", done, timeout=15)

    def alerts(self) -> list[dict[str, Any]]:
        return self.api("alerts")["alerts"]

    def stop(self) -> None:
        self.http.close()
        _stop(self.process)


def _unix(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def _send_measurable(app: MonitoredApp, prometheus: Prometheus, *commands: tuple[str, int]) -> float:
    """Run `commands` so that rate() sees all of them; returns when Prometheus had scraped their effect.

    rate() cannot count what happened before a series' first sample, so one call of each kind is scraped first.
    """
    for kind in ("traffic", "stream", "errors"):
        app.run(kind, 1)
    prometheus.scraped_after(time.time())
    for command, count in commands:
        app.run(command, count)
    return prometheus.scraped_after(time.time())


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    return require_binary("prometheus")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitoredApp]:
    workdir = tmp_path_factory.mktemp("monitored_app")
    running = None
    try:
        running = MonitoredApp(workdir)
        yield running
    finally:
        if running is not None:
            running.stop()


@pytest.fixture(scope="module")
def prometheus(
    prometheus_binary: str, app: MonitoredApp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    server = None
    try:
        server = Prometheus(
            prometheus_binary,
            tmp_path_factory.mktemp("prometheus"),
            target_port=app.metrics_port,
            rules=render_rules(ALERT_CONFIG),
        )
        yield server
    finally:
        if server is not None:
            server.stop()


def test_scraped_metrics_equal_what_the_app_did(app: MonitoredApp, prometheus: Prometheus) -> None:
    """After known traffic, Prometheus holds exactly the app's own tally of calls, outcomes and tokens."""
    after_invokes = app.run("traffic", 30)
    tally = app.run("stream", 10)
    assert tally["completion_tokens"] > after_invokes["completion_tokens"], "streamed calls reported no usage"
    tally = app.run("errors", 2)
    prometheus.scraped_after(time.time())

    (target,) = prometheus.api("targets", state="active")["activeTargets"]
    assert target["health"] == "up" and target["scrapeUrl"] == f"http://127.0.0.1:{app.metrics_port}/metrics"
    succeeded, failed = tally["succeeded"], tally["failed"]
    assert prometheus.vector("llm_requests_total", "model", "status") == {
        (MODEL, "success"): succeeded,
        (MODEL, "error"): failed,
    }
    assert prometheus.vector("llm_invocations_total", "name", "status") == {
        (CHAIN_NAME, "success"): succeeded,
        (CHAIN_NAME, "error"): failed,
    }
    assert prometheus.vector("llm_tokens_total", "model", "type") == {
        (MODEL, "prompt"): tally["prompt_tokens"],
        (MODEL, "completion"): tally["completion_tokens"],
    }
    assert prometheus.vector("sum by (status) (llm_retriever_requests_total)", "status") == {
        ("success",): succeeded + failed
    }
    assert prometheus.vector("llm_request_duration_seconds_count", "model") == {(MODEL,): succeeded + failed}
    assert prometheus.vector("llm_active_requests") == {(): 0}


def test_every_dashboard_query_evaluates(app: MonitoredApp, prometheus: Prometheus) -> None:
    """Each dashboard PromQL expression, Grafana variables filled in, runs without error; traffic panels show data."""
    prometheus.evaluated_after(_send_measurable(app, prometheus, ("traffic", 5), ("stream", 5)))
    empty = []
    for query in dashboard_queries(build_dashboard(alert_config=ALERT_CONFIG)):
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        assert "$" not in query, f"unsubstituted Grafana variable in {query!r}"
        if not prometheus.query(query):
            empty.append(query)
    assert not [query for query in empty if CHAIN_METRICS.search(query)], "no data for the chain's own traffic"


def test_error_burst_fires_only_the_error_alerts(app: MonitoredApp, prometheus: Prometheus) -> None:
    """Mostly healthy traffic leaves LLMErrorRateHigh quiet; a burst of failures makes it pending, then firing."""
    prometheus.evaluated_after(_send_measurable(app, prometheus, ("traffic", 30), ("errors", 2)))
    ratio = prometheus.vector("model:llm_requests:error_ratio_rate5m", "model")
    assert 0 <= ratio[(MODEL,)] < ALERT_CONFIG.error_rate
    assert "LLMErrorRateHigh" not in {alert["labels"]["alertname"] for alert in prometheus.alerts()}

    app.run("errors", 60)
    states: list[str] = []
    active: dict[str, dict[str, str]] = {}

    def error_alert_firing() -> dict[str, Any] | None:
        firing = None
        for alert in prometheus.alerts():
            labels = alert["labels"]
            active[labels["alertname"]] = labels
            if labels["alertname"] == "LLMErrorRateHigh":
                if not states or states[-1] != alert["state"]:
                    states.append(alert["state"])
                firing = alert if alert["state"] == "firing" else None
        return firing

    alert = _poll("LLMErrorRateHigh to fire", error_alert_firing, every=0.25)
    assert states == ["pending", "firing"]
    assert alert["labels"] == {
        "alertname": "LLMErrorRateHigh",
        "model": MODEL,
        "severity": "critical",
        "route": "page",
        "family": "errors",
    }
    assert float(alert["value"]) > ALERT_CONFIG.error_rate
    assert {labels["family"] for labels in active.values()} == {"errors"}, sorted(active)


def test_every_rule_evaluates_without_error(app: MonitoredApp, prometheus: Prometheus) -> None:
    """Prometheus loaded every generated rule, and each one's last evaluation succeeded."""
    app.run("traffic", 5)
    prometheus.evaluated_after(prometheus.scraped_after(time.time()))
    loaded = {rule["name"]: rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]}
    generated = {
        rule.get("alert") or rule["record"] for group in build_rules(ALERT_CONFIG)["groups"] for rule in group["rules"]
    }
    assert set(loaded) == generated
    assert {name: (rule["health"], rule.get("lastError", "")) for name, rule in loaded.items()} == dict.fromkeys(
        generated, ("ok", "")
    )
