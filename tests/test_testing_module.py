"""`langchain_llmmonitor.testing`: the helpers an application's own tests use to check a Monitor on its chain."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from prometheus_client import CollectorRegistry

from langchain_llmmonitor import Monitor
from langchain_llmmonitor.testing import FakeLangSmith, LogCapture, fast_client, metric_value

from .conftest import fake_model

QUESTION = {"question": "What is the capital of France?"}
RUN_ID = uuid.UUID("6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f")
OPTIONAL_EXTRAS = ("sqlalchemy", "psycopg", "fastapi", "uvicorn", "numpy", "scipy", "matplotlib")

Run = Callable[[Runnable, dict[str, Any]], Any]


def qa_chain() -> Runnable:
    """prompt | chat model | parser, the shape of a typical application chain, named "qa"."""
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    return (prompt | fake_model() | StrOutputParser()).with_config(run_name="qa")


@pytest.mark.parametrize(
    "run",
    [
        pytest.param(lambda chain, config: chain.invoke(QUESTION, config=config), id="invoke"),
        pytest.param(lambda chain, config: list(chain.stream(QUESTION, config=config)), id="stream"),
        pytest.param(lambda chain, config: chain.batch([QUESTION], config=config), id="batch"),
    ],
)
def test_log_capture_sees_the_llm_call_then_the_invocation(run: Run) -> None:
    """A Monitor logging to a LogCapture leaves one `llm_call` and one `invocation` event per question, in order."""
    logs = LogCapture()
    with Monitor(logger=logs.logger, sample_rate=0.0) as monitor:
        run(qa_chain(), {"callbacks": [monitor]})
    assert [event["event"] for event in logs.events] == ["llm_call", "invocation"]
    (call,) = logs.named("llm_call")
    (invocation,) = logs.named("invocation")
    assert call["model"] == "gpt-4o-mini" and call["status"] == "success"
    assert invocation["name"] == "qa" and invocation["status"] == "success"
    assert call["trace_id"] == invocation["run_id"]
    assert logs.named("quality_eval") == []


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(lambda monitor: monitor, id="monitor"),
        pytest.param(lambda monitor: monitor.registry, id="registry"),
    ],
)
def test_metric_value_reads_what_the_monitor_counted(source: Callable[[Monitor], Any]) -> None:
    """`metric_value` reads a Monitor's samples (a label may be called `name`), and 0 for a series never recorded."""
    with Monitor(registry=CollectorRegistry(), logger=LogCapture().logger, sample_rate=0.0) as monitor:
        for _ in range(2):
            qa_chain().invoke(QUESTION, config={"callbacks": [monitor]})
    metrics = source(monitor)
    assert metric_value(metrics, "llm_requests_total", model="gpt-4o-mini", status="success") == 2
    assert metric_value(metrics, "llm_invocations_total", name="qa", status="success") == 2
    assert metric_value(metrics, "llm_requests_total", model="gpt-4o-mini", status="error") == 0


@pytest.fixture
def server() -> Iterator[FakeLangSmith]:
    with FakeLangSmith() as fake:
        yield fake


@pytest.mark.parametrize(
    ("trace_id", "endpoint"),
    [
        pytest.param(None, "POST /feedback", id="synchronous"),
        pytest.param(RUN_ID, "POST /runs/multipart", id="background-sender"),
    ],
)
def test_fake_langsmith_stores_feedback_from_the_real_client(
    server: FakeLangSmith, trace_id: uuid.UUID | None, endpoint: str
) -> None:
    """Feedback sent by a real `langsmith.Client`, at once or queued with a trace id, is stored once by the fake."""
    client = fast_client(server.url)
    project_id = uuid.uuid4()  # feedback without a project is deprecated by the SDK
    client.create_feedback(
        RUN_ID, "user_rating", score=1, trace_id=trace_id, session_id=project_id, stop_after_attempt=1
    )
    client.flush()
    assert server.wait_until(lambda: len(server.feedback) == 1)
    client.close(timeout=5)
    (feedback,) = server.feedback
    assert (feedback["run_id"], feedback["key"], feedback["score"]) == (str(RUN_ID), "user_rating", 1)
    assert server.count(endpoint) == 1 and server.duplicates == []


def test_importing_the_testing_helpers_loads_no_optional_extra() -> None:
    """Every public name of `langchain_llmmonitor.testing` resolves without loading the store, API or review extras."""
    script = (
        "import sys\n"
        "from langchain_llmmonitor.testing import *\n"
        f"print(','.join(sorted(name for name in {OPTIONAL_EXTRAS!r} if name in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_server_module_runs_once_under_python_dash_m(tmp_path: Path) -> None:
    """`python -m langchain_llmmonitor.testing.langsmith_server` works from any directory, without runpy's warning."""
    command = [sys.executable, "-W", "error", "-m", "langchain_llmmonitor.testing.langsmith_server", "--help"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--port" in result.stdout
