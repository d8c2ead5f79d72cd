"""The HTTP API through a real ASGI client on a real SQLite store, and `serve` as a real server process."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from langsmith.utils import get_env_var
from prometheus_client import CollectorRegistry

from langchain_llmmonitor.config import FeedbackConfig, LangSmithConfig
from langchain_llmmonitor.core.records import InvocationRecord
from langchain_llmmonitor.feedback import FeedbackRecorder, RatingScale, api, serve
from langchain_llmmonitor.feedback.tokens import FeedbackTokens
from langchain_llmmonitor.langsmith.forwarder import Forwarder
from langchain_llmmonitor.storage.store import Store
from langchain_llmmonitor.testing.langsmith_server import FakeLangSmith, fast_client
from tests.conftest import LogRecorder, value

REPO_ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
FAR = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
RUN = "6f1c5d3e-8a4b-4c2d-9e0f-1a2b3c4d5e6f"
OTHER_RUN = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
REQUEST = "req-42"
SECRET = "k" * 32
NOW = 1_800_000_000.0


class Clock:
    """A settable Unix-seconds clock for the token signer."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def seed(store: Store) -> None:
    store.add_invocations(
        [
            InvocationRecord(
                run_id=run_id,
                trace_id=run_id,
                request_id=request_id,
                name="rag",
                status="success",
                started_at=T0,
                latency_s=1.5,
            )
            for run_id, request_id in ((RUN, REQUEST), (OTHER_RUN, "req-other"))
        ]
    )


@pytest.fixture(autouse=True)
def fresh_env_cache() -> Iterator[None]:
    yield
    get_env_var.cache_clear()


@pytest.fixture
def store(tmp_path: Path, registry: CollectorRegistry) -> Iterator[Store]:
    opened = Store(tmp_path / "monitor.db", registry=registry)
    seed(opened)
    yield opened
    opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens(clock: Clock) -> FeedbackTokens:
    return FeedbackTokens(SECRET, ttl=timedelta(hours=1), clock=clock)


@pytest.fixture
def make_client(store: Store, registry: CollectorRegistry, logs: LogRecorder) -> Iterator[Callable[..., TestClient]]:
    """Clients of apps built on the seeded store; `scale=` picks the rating scale, other options go to create_app."""
    opened: list[TestClient] = []

    def make(*, scale: RatingScale | None = None, **options: Any) -> TestClient:
        config = FeedbackConfig(scale=scale.name if scale else "thumbs")
        recorder = FeedbackRecorder(store, config=config, registry=registry, logger=logs.logger)
        client = TestClient(api.create_app(recorder=recorder, registry=registry, **options))
        client.__enter__()  # runs the lifespan
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.mark.parametrize(
    ("scale", "body", "rating"),
    [
        pytest.param(None, {"run_id": RUN, "rating": 1}, "positive", id="thumbs-up-by-run-id"),
        pytest.param(
            None, {"request_id": REQUEST, "rating": -1, "comment": "wrong"}, "negative", id="thumbs-down-by-request-id"
        ),
        pytest.param(RatingScale.five_point(), {"run_id": RUN.upper(), "rating": 4}, "4", id="five-point-by-run-id"),
        pytest.param(
            RatingScale.five_point(),
            {"request_id": REQUEST, "rating": 2.0, "source": "slack"},
            "2",
            id="five-point-float",
        ),
    ],
)
def test_good_ratings_are_created(
    make_client: Callable[..., TestClient],
    store: Store,
    registry: CollectorRegistry,
    scale: RatingScale | None,
    body: dict[str, Any],
    rating: str,
) -> None:
    """201 with the run, trace and label; the rating is stored with its outbox item and counted."""
    answer = make_client(scale=scale).post("/feedback", json=body)
    assert answer.status_code == 201, answer.text
    reply = answer.json()
    assert (reply["run_id"], reply["trace_id"], reply["rating"], reply["score"]) == (RUN, RUN, rating, body["rating"])
    [stored] = store.user_feedback(*FAR)
    assert (stored.id, stored.comment, stored.source) == (reply["id"], body.get("comment"), body.get("source", "api"))
    assert store.outbox_item(reply["id"]) is not None
    assert value(registry, "llm_user_feedback_total", rating=rating) == 1


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        pytest.param({"rating": 1}, 422, "exactly one of run_id or request_id", id="no-id"),
        pytest.param({"run_id": RUN, "request_id": REQUEST, "rating": 1}, 422, "exactly one of", id="both-ids"),
        pytest.param({"run_id": RUN, "rating": "up"}, 422, "valid number", id="non-numeric-rating"),
        pytest.param({"run_id": RUN, "rating": "1"}, 422, "valid number", id="numeric-string-rating"),
        pytest.param({"run_id": RUN, "rating": True}, 422, "valid number", id="boolean-rating"),
        pytest.param({"run_id": RUN}, 422, "Field required", id="no-rating"),
        pytest.param({"run_id": RUN, "rating": 0}, 422, "allowed -1 (thumbs down) or 1 (thumbs up)", id="off-scale"),
        pytest.param({"run_id": RUN, "rating": 1, "comment": "x" * 2001}, 422, "at most 2000", id="comment-too-long"),
        pytest.param({"run_id": RUN, "rating": 1, "ratting": 1}, 422, "Extra inputs", id="unknown-field"),
        pytest.param({"run_id": RUN, "rating": 1, "feedback_id": "abc"}, 422, "UUID", id="bad-feedback-id"),
        pytest.param({"run_id": "", "rating": 1}, 422, "at least 1 character", id="empty-id"),
        pytest.param({"request_id": "req-missing", "rating": 1}, 404, "'req-missing'", id="unknown-id"),
    ],
)
def test_bad_ratings_are_refused_with_a_reason(
    make_client: Callable[..., TestClient], store: Store, body: dict[str, Any], status: int, detail: str
) -> None:
    """Each kind of bad input gets its status and a detail that names the problem; nothing is stored."""
    answer = make_client().post("/feedback", json=body)
    assert answer.status_code == status, answer.text
    assert detail in answer.text
    assert list(store.user_feedback(*FAR)) == []


def test_non_json_body_is_refused(make_client: Callable[..., TestClient]) -> None:
    """A body that is not JSON is a 422, not a server error."""
    answer = make_client().post("/feedback", content=b"rating=1", headers={"content-type": "application/json"})
    assert answer.status_code == 422


def test_retry_with_the_same_feedback_id_gets_the_same_answer(
    make_client: Callable[..., TestClient], store: Store, registry: CollectorRegistry
) -> None:
    """A client that lost the response can resend: same 201 body, one stored rating, one count."""
    client = make_client()
    body = {"run_id": RUN, "rating": 1, "feedback_id": str(uuid.uuid4())}
    first, second = client.post("/feedback", json=body), client.post("/feedback", json=body)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and first.json()["id"] == body["feedback_id"]
    assert len(list(store.user_feedback(*FAR))) == 1
    assert value(registry, "llm_user_feedback_total", rating="positive") == 1


def test_feedback_id_reused_for_a_different_rating_is_409(make_client: Callable[..., TestClient]) -> None:
    """An idempotency key cannot edit a rating: the second, different use is a conflict."""
    client = make_client()
    feedback_id = str(uuid.uuid4())
    assert client.post("/feedback", json={"run_id": RUN, "rating": 1, "feedback_id": feedback_id}).status_code == 201
    answer = client.post("/feedback", json={"run_id": RUN, "rating": -1, "feedback_id": feedback_id})
    assert answer.status_code == 409 and feedback_id in answer.json()["detail"]


# Tokens ---------------------------------------------------------------------------------------------------------------


def forge(token: str) -> str:
    """The token with its last MAC character changed."""
    return token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]


INVALID = "invalid feedback token"


@pytest.mark.parametrize(
    ("make_body", "status", "detail"),
    [
        pytest.param(lambda t: {"run_id": RUN, "token": t.issue(RUN)}, 201, None, id="valid-for-run-id"),
        pytest.param(
            lambda t: {"request_id": REQUEST, "token": t.issue(REQUEST)}, 201, None, id="valid-for-request-id"
        ),
        pytest.param(
            lambda t: {"request_id": REQUEST, "token": t.issue(RUN)}, 201, None, id="run-token-with-request-id"
        ),
        pytest.param(lambda t: {"run_id": RUN, "token": forge(t.issue(RUN))}, 403, INVALID, id="forged-signature"),
        pytest.param(lambda t: {"run_id": RUN, "token": t.issue(OTHER_RUN)}, 403, INVALID, id="other-runs-token"),
        pytest.param(
            lambda t: {"request_id": REQUEST, "token": t.issue("req-other")}, 403, INVALID, id="other-requests-token"
        ),
        pytest.param(lambda t: {"run_id": RUN, "token": "garbage"}, 403, INVALID, id="garbage"),
        pytest.param(lambda t: {"run_id": RUN}, 403, "a feedback token is required", id="missing"),
        pytest.param(
            lambda t: {"request_id": "req-missing", "token": t.issue(RUN)},
            403,
            INVALID,
            id="unknown-id-hides-existence",
        ),
        pytest.param(
            lambda t: {"request_id": "req-missing", "token": t.issue("req-missing")},
            404,
            "req-missing",
            id="valid-token-unknown-id",
        ),
    ],
)
def test_required_tokens(
    make_client: Callable[..., TestClient],
    tokens: FeedbackTokens,
    store: Store,
    make_body: Callable[[FeedbackTokens], dict[str, Any]],
    status: int,
    detail: str | None,
) -> None:
    """Only a genuine token for the rated run (or its run id, when posting its request id) lets a rating in."""
    answer = make_client(tokens=tokens, require_token=True).post("/feedback", json={"rating": -1, **make_body(tokens)})
    assert answer.status_code == status, answer.text
    if detail is not None:
        assert detail in answer.json()["detail"]
    assert len(list(store.user_feedback(*FAR))) == (1 if status == 201 else 0)


@pytest.mark.parametrize(
    "make_body",
    [
        pytest.param(lambda t: {"run_id": RUN, "token": t.issue(RUN)}, id="run-id"),
        pytest.param(lambda t: {"request_id": REQUEST, "token": t.issue(RUN)}, id="request-id-with-run-token"),
    ],
)
def test_expired_token_is_403_expired(
    make_client: Callable[..., TestClient],
    tokens: FeedbackTokens,
    clock: Clock,
    make_body: Callable[[FeedbackTokens], dict[str, Any]],
) -> None:
    """A genuine token past its ttl is refused, and the detail says expired (so the UI can ask to reload)."""
    body = {"rating": 1, **make_body(tokens)}
    clock.now = NOW + 3600
    answer = make_client(tokens=tokens, require_token=True).post("/feedback", json=body)
    assert answer.status_code == 403 and answer.json()["detail"].startswith("expired feedback token")


def test_with_a_secret_tokens_are_required_by_default(
    make_client: Callable[..., TestClient], tokens: FeedbackTokens
) -> None:
    """Anonymous ratings are an explicit choice: with tokens configured, a rating without one is refused."""
    client = make_client(tokens=tokens)
    answer = client.post("/feedback", json={"request_id": REQUEST, "rating": -1})
    assert answer.status_code == 403 and answer.json()["detail"] == "a feedback token is required"
    assert client.post("/feedback", json={"run_id": RUN, "rating": 1, "token": tokens.issue(RUN)}).status_code == 201


def test_optional_tokens_are_checked_when_present(
    make_client: Callable[..., TestClient], tokens: FeedbackTokens
) -> None:
    """With require_token=False a rating may come without a token, but a token that is sent must be valid."""
    client = make_client(tokens=tokens, require_token=False)
    assert client.post("/feedback", json={"run_id": RUN, "rating": 1}).status_code == 201
    other_runs = {"run_id": RUN, "rating": 1, "token": tokens.issue(OTHER_RUN)}
    assert client.post("/feedback", json=other_runs).status_code == 403


def test_require_token_without_tokens_is_a_configuration_error(store: Store, registry: CollectorRegistry) -> None:
    """Requiring tokens that cannot be checked would refuse everything: refused when the router is built."""
    recorder = FeedbackRecorder(store, registry=registry)
    with pytest.raises(ValueError, match="tokens=FeedbackTokens"):
        api.feedback_router(recorder, require_token=True)


# Metrics, health, readiness, forwarding -------------------------------------------------------------------------------


def test_metrics_endpoint_shows_user_feedback(make_client: Callable[..., TestClient]) -> None:
    """After a rating, a Prometheus scrape of /metrics (no redirect) shows it by label."""
    client = make_client()
    client.post("/feedback", json={"run_id": RUN, "rating": -1})
    answer = client.get("/metrics", follow_redirects=False)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    assert 'llm_user_feedback_total{rating="negative"} 1.0' in answer.text
    assert "llm_feedback_outbox_pending 1.0" in answer.text


def test_healthz_and_readyz_report_the_outbox(make_client: Callable[..., TestClient]) -> None:
    """/healthz is liveness only; /readyz reads the store and reports pending and parked outbox items."""
    client = make_client()
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["outbox"] == {"pending": 0, "dead": 0}
    client.post("/feedback", json={"run_id": RUN, "rating": 1})
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "outbox": {"pending": 1, "dead": 0}, "forwarding": False}


def test_readyz_and_feedback_are_503_when_the_store_is_gone(
    tmp_path: Path, registry: CollectorRegistry, logs: LogRecorder
) -> None:
    """An unreadable store makes the instance unready and ratings retryable 503s (logged), while it stays alive."""
    database = tmp_path / "gone" / "monitor.db"
    broken = Store(database, registry=registry)
    recorder = FeedbackRecorder(broken, registry=registry, logger=logs.logger)
    broken.close()
    for path in database.parent.iterdir():
        path.unlink()
    database.parent.rmdir()
    with TestClient(api.create_app(recorder=recorder, registry=registry)) as client:
        ready = client.get("/readyz")
        rating = client.post("/feedback", json={"run_id": RUN, "rating": 1})
        alive = client.get("/healthz")
    assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
    assert rating.status_code == 503 and "retry with the same feedback_id" in rating.json()["detail"]
    assert alive.status_code == 200
    assert logs.named("user_feedback_store_unavailable")


def test_rating_reaches_langsmith_through_the_apps_forwarder(
    make_client: Callable[..., TestClient], store: Store, registry: CollectorRegistry
) -> None:
    """The app's lifespan runs the forwarder: a posted rating lands on the run in LangSmith with the record's id."""
    with FakeLangSmith() as server:
        langsmith = fast_client(server.url, auto_batch_tracing=False)
        forwarder = Forwarder(
            store, client=langsmith, config=LangSmithConfig(poll_interval_seconds=0.01), registry=registry
        )
        client = make_client(forwarder=forwarder)
        reply = client.post("/feedback", json={"request_id": REQUEST, "rating": -1, "comment": "stale"}).json()
        assert server.wait_until(lambda: len(server.feedback) == 1, timeout=10)
        client.__exit__(None, None, None)  # shuts the app down: the lifespan stops the forwarder
        [feedback] = server.feedback
        langsmith.close(timeout=5)
    assert (feedback["id"], feedback["run_id"], feedback["trace_id"]) == (reply["id"], RUN, RUN)
    assert (feedback["key"], feedback["score"], feedback["value"]) == ("user_rating", -1, "negative")
    assert feedback["comment"] == "stale"
    assert not [thread for thread in threading.enumerate() if thread.name == "llmmonitor-outbox"]
    assert store.pending_count() == 0


def test_missing_fastapi_names_the_extra(
    store: Store, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the api extra, building the router says which pip command fixes it."""
    monkeypatch.setitem(sys.modules, "fastapi", None)
    recorder = FeedbackRecorder(store, registry=registry)
    with pytest.raises(ImportError, match=r"pip install 'langchain-llmmonitor\[api\]'"):
        api.feedback_router(recorder)


# `serve` --------------------------------------------------------------------------------------------------------------


def serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="llmmonitor")
    serve.add_cli(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["serve", *argv])


@pytest.mark.parametrize(
    ("argv", "environ", "forwarding", "outbox"),
    [
        pytest.param((), {"LANGSMITH_API_KEY": "test"}, True, True, id="key-set"),
        pytest.param((), {"LANGCHAIN_API_KEY": "test"}, True, True, id="legacy-key-set"),
        pytest.param((), {}, False, False, id="no-key"),
        pytest.param(("--no-forward",), {"LANGSMITH_API_KEY": "test"}, False, False, id="no-forward"),
        pytest.param(("--outbox",), {}, False, True, id="another-process-forwards"),
    ],
)
def test_serve_forwards_only_with_an_api_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: tuple[str, ...],
    environ: dict[str, str],
    forwarding: bool,
    outbox: bool,
) -> None:
    """`serve` sends to LangSmith only when a key is configured and --no-forward is absent, and queues ratings for
    LangSmith only when something will send them."""
    for name in ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, setting in environ.items():
        monkeypatch.setenv(name, setting)
    get_env_var.cache_clear()
    app = serve.app_from_args(serve_args("--store", str(tmp_path / "m.db"), *argv), environ={})
    try:
        assert (app.state.forwarder is not None) is forwarding
        assert app.state.store.outbox is outbox
    finally:
        app.state.store.close()


def test_serve_require_token_without_secret_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requiring tokens without a secret is refused before anything listens, naming the variable."""
    monkeypatch.delenv(serve.SECRET_ENV, raising=False)
    args = serve_args("--store", str(tmp_path / "m.db"), "--require-token")
    assert args.func is serve.run_cli
    assert serve.run_cli(args) == 2
    assert serve.SECRET_ENV in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SERVE_SCRIPT = """
import argparse, sys
from langchain_llmmonitor.feedback import serve
parser = argparse.ArgumentParser(prog="llmmonitor")
serve.add_cli(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def test_serve_process_takes_a_tokened_rating_and_forwards_it(tmp_path: Path) -> None:
    """The real server process: a five-point rating with a token is stored and forwarded; SIGTERM shuts it down."""
    database = tmp_path / "monitor.db"
    seeded = Store(database)
    seed(seeded)
    seeded.close()
    port = free_port()
    with FakeLangSmith() as server:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_"))},
            "LANGSMITH_ENDPOINT": server.url,
            "LANGSMITH_API_KEY": "test",
            serve.SECRET_ENV: SECRET,
        }
        argv = ["serve", "--store", str(database), "--port", str(port), "--scale", "five", "--require-token"]
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE_SCRIPT, *argv],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=5, trust_env=False) as http:
                wait_for_health(http, process)
                refused = http.post("/feedback", json={"run_id": RUN, "rating": 2})
                token = FeedbackTokens(SECRET).issue(RUN)
                created = http.post("/feedback", json={"run_id": RUN, "rating": 2, "comment": "meh", "token": token})
                assert server.wait_until(lambda: len(server.feedback) == 1, timeout=15)
                ready = http.get("/readyz").json()
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        [feedback] = server.feedback
    assert refused.status_code == 403
    assert created.status_code == 201, created.text
    assert created.json()["rating"] == "2"
    assert (feedback["id"], feedback["run_id"]) == (created.json()["id"], RUN)
    assert (feedback["score"], feedback["value"], feedback["comment"]) == (2, "2", "meh")
    assert ready["forwarding"] is True
    # uvicorn shuts down gracefully (lifespan included), then re-raises SIGTERM so the exit status tells the truth.
    assert process.returncode == -signal.SIGTERM, stderr
    assert "Application shutdown complete" in stderr and "LangSmith forwarding on" in stderr
    reopened = Store(database)
    try:
        assert [record.id for record in reopened.user_feedback(*FAR)] == [created.json()["id"]]
        assert reopened.pending_count() == 0
    finally:
        reopened.close()


def wait_for_health(http: httpx.Client, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Poll /healthz until the server answers; fail with its stderr if it exits first."""
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    while datetime.now(UTC) < deadline:
        if process.poll() is not None:
            errors = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"serve exited with {process.returncode}: {errors}")
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        threading.Event().wait(0.05)
    raise AssertionError("serve did not become healthy")


def test_openapi_documents_the_feedback_route(make_client: Callable[..., TestClient]) -> None:
    """Frontend developers read /openapi.json: POST /feedback is there with its body and its refusals."""
    schema = make_client().get("/openapi.json").json()
    operation = schema["paths"]["/feedback"]["post"]
    assert {"201", "403", "404", "409", "413", "422", "429"} <= set(operation["responses"])
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert {"run_id", "request_id", "rating", "comment", "token", "feedback_id"} <= set(body["properties"])
    assert body["required"] == ["rating"]
    assert {"/healthz", "/readyz"} <= set(schema["paths"])


def test_cli_without_fastapi_exits_2_with_the_install_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve` is registered without FastAPI (so `llmmonitor --help` works) and says how to install it when run."""
    monkeypatch.setitem(sys.modules, "fastapi", None)
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    args = serve_args("--store", str(tmp_path / "m.db"))
    assert serve.run_cli(args) == 2
    assert "pip install 'langchain-llmmonitor[api]'" in capsys.readouterr().err
    assert not (tmp_path / "m.db").exists()


def test_importing_the_api_module_does_not_need_fastapi() -> None:
    """cli.py imports this module for every command: importing it must not pull in FastAPI or uvicorn."""
    code = (
        "import sys; import langchain_llmmonitor.feedback.serve; "
        "print(sorted(m for m in ('fastapi', 'uvicorn') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
