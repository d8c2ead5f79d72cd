"""Serving metrics: the standalone endpoint over HTTP, the ASGI app, and multiprocess mode across real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from langchain_llmmonitor.ops.exposition import metrics_app, serve_metrics

from .conftest import fake_model

ROOT = Path(__file__).resolve().parent.parent


def parse(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_endpoint_serves_what_the_monitor_counted(monitor):
    """A scrape over HTTP, parsed with prometheus-client's parser, shows the exact counts; stop() closes the port."""
    for _ in range(3):
        fake_model().invoke("x", config={"callbacks": [monitor]})
    server = serve_metrics(monitor, port=0)
    try:
        with urllib.request.urlopen(server.url, timeout=5) as response:
            assert response.status == 200
            samples = parse(response.read().decode())
    finally:
        server.stop()
    assert samples[("llm_requests_total", (("model", "gpt-4o-mini"), ("status", "success")))] == 3
    assert samples[("llm_tokens_total", (("model", "gpt-4o-mini"), ("type", "prompt")))] == 360
    assert samples[("llm_active_requests", ())] == 0
    assert server.url.startswith("http://127.0.0.1:")
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url, timeout=2)


async def test_asgi_app_answers_scrapes(monitor):
    """The ASGI app mounts anywhere and answers a scrape with the monitor's metrics."""
    fake_model().invoke("x", config={"callbacks": [monitor]})
    transport = httpx.ASGITransport(app=metrics_app(monitor))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert parse(response.text)[("llm_requests_total", (("model", "gpt-4o-mini"), ("status", "success")))] == 1


def test_metrics_app_needs_a_source_outside_multiprocess_mode(monkeypatch):
    """Without multiprocess mode there is nothing to serve unless a monitor or registry is given."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with pytest.raises(TypeError, match="pass the Monitor"):
        metrics_app()


def test_multiprocess_mode_sums_workers_and_drops_dead_ones(tmp_path):
    """Two worker processes: counters add up, the in-flight gauge sums live workers, a killed worker's share is dropped."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests._mp_worker", str(n)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for n in (3, 5)
    ]
    try:
        for worker in workers:  # the default structlog configuration logs to stdout too
            assert any(line.strip() == "in-flight" for line in iter(worker.stdout.readline, "")), "worker exited early"

        def collect(*dead: int) -> dict[str, float]:
            out = subprocess.run(
                [sys.executable, "-m", "tests._mp_collect", *map(str, dead)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            return json.loads(out.stdout)

        samples = collect()
        assert samples['llm_requests_total{"model": "gpt-4o-mini", "status": "success"}'] == 8
        assert samples['llm_tokens_total{"model": "gpt-4o-mini", "type": "prompt"}'] == 8 * 120
        assert samples["llm_active_requests{}"] == 2

        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=10)
        samples = collect(workers[0].pid)
        assert samples["llm_active_requests{}"] == 1
        assert samples['llm_requests_total{"model": "gpt-4o-mini", "status": "success"}'] == 8
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(timeout=10)
