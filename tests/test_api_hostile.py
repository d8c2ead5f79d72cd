"""`POST /feedback` faces end users: huge and hostile bodies, text no database takes, replays, stuffing, anonymous
ratings. A real uvicorn server for the size limits, real SQLite and PostgreSQL stores, the real LangSmith client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from langchain_llmmonitor import Monitor, metrics_app
from langchain_llmmonitor.config import FeedbackConfig, LangSmithConfig
from langchain_llmmonitor.core.records import InvocationRecord
from langchain_llmmonitor.feedback import FeedbackRecorder, api, serve
from langchain_llmmonitor.feedback.tokens import FeedbackTokens
from langchain_llmmonitor.langsmith.forwarder import Forwarder
from langchain_llmmonitor.storage.schema import metadata
from langchain_llmmonitor.storage.store import Store
from langchain_llmmonitor.testing.langsmith_server import FakeLangSmith, fast_client
from tests._postgres import postgres_url  # noqa: F401 - the fixture

RUN = "6f1c5d3e-8a4b-4c2d-9e0f-1a2b3c4d5e6f"
REQUEST = "req-42"
SECRET = "k" * 32
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
MIB = 1024 * 1024


def _seeded(url: str) -> Store:
    store = Store(url)
    store.add_invocations(
        [
            InvocationRecord(
                run_id=RUN,
                trace_id=RUN,
                request_id=REQUEST,
                name="rag",
                status="success",
                started_at=datetime(2026, 11, 30, tzinfo=UTC),
                latency_s=1.0,
            )
        ]
    )
    return store


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres")])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store holding one run, on a SQLite file or on PostgreSQL (its tables dropped afterwards)."""
    url = str(tmp_path / "monitor.db") if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    opened = _seeded(url)
    yield opened
    if request.param == "postgres":
        metadata.drop_all(opened.engine)
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = _seeded(str(tmp_path / "monitor.db"))
    yield opened
    opened.close()


def _client(store: Store, **options: Any) -> TestClient:
    recorder = FeedbackRecorder(store, config=options.pop("config", FeedbackConfig()), registry=CollectorRegistry())
    return TestClient(api.create_app(recorder=recorder, registry=CollectorRegistry(), **options))


@pytest.fixture
def server(sqlite_store: Store) -> Iterator[str]:
    """The feedback app under a real uvicorn on 127.0.0.1 (the size limits are about bytes on a socket)."""
    recorder = FeedbackRecorder(sqlite_store, registry=CollectorRegistry())
    app = api.create_app(recorder=recorder, registry=CollectorRegistry(), require_token=False)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.01)
    port = running.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(10)


# Size ----------------------------------------------------------------------------------------------------------------


def test_a_16_mib_body_is_refused_before_it_is_read(server: str) -> None:
    """413 from the Content-Length alone, in well under a second, with a short answer."""
    started = time.monotonic()
    answer = httpx.post(f"{server}/feedback", content=b"x" * (16 * MIB), headers={"content-type": "application/json"})
    assert answer.status_code == 413 and time.monotonic() - started < 1.0
    assert len(answer.content) < 200


def test_a_streamed_body_is_cut_off_at_the_limit_and_health_answers_meanwhile(server: str) -> None:
    """A chunked body without a length is refused once it passes 64 KiB; /healthz answers while it trickles in."""
    health: list[float] = []

    def trickle() -> Iterator[bytes]:
        for _ in range(20):
            started = time.monotonic()
            assert httpx.get(f"{server}/healthz").status_code == 200
            health.append(time.monotonic() - started)
            yield b" " * 8192

    answer = httpx.post(f"{server}/feedback", content=trickle(), headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert len(health) >= 8 and max(health) < 0.5


def test_a_million_unknown_keys_get_a_fast_small_answer(server: str) -> None:
    """The 16.8 MB body of a million keys: 413 at once; 3,500 keys under the limit: 422 fast, the answer stays small
    and echoes none of them."""
    huge = json.dumps({f"k{index}": 1 for index in range(1_000_000)}).encode()
    started = time.monotonic()
    assert httpx.post(f"{server}/feedback", content=huge).status_code == 413
    assert time.monotonic() - started < 1.0
    many = json.dumps({"run_id": RUN, "rating": 1, **{f"key{index}": index for index in range(3_500)}}).encode()
    assert len(many) < 65_536
    started = time.monotonic()
    answer = httpx.post(f"{server}/feedback", content=many)
    assert answer.status_code == 422 and time.monotonic() - started < 1.0
    assert len(answer.content) < 2_000 and "key3499" not in answer.text
    assert answer.json()["detail"]["error_count"] == 3_500


# Text no database takes, and JSON types -------------------------------------------------------------------------------

FIELDS = ("comment", "source", "request_id", "run_id", "token")


@pytest.mark.parametrize(
    "text, refusal",
    [
        pytest.param(b"a\\ud800b", "Invalid JSON", id="escaped-lone-surrogate"),
        pytest.param(b"a\\udfffb", "Invalid JSON", id="escaped-lone-low-surrogate"),
        pytest.param(b"a\xed\xa0\x80b", "Invalid JSON", id="raw-surrogate-bytes"),
        pytest.param(b"a\xffb", "Invalid JSON", id="not-utf8"),
        pytest.param(b"a\\u0000b", "contains a control character (U+0000", id="nul"),
        pytest.param(b"a\\u001bb", "contains a control character (U+001B", id="escape-character"),
    ],
)
@pytest.mark.parametrize("field", [pytest.param(field, id=field) for field in FIELDS])
def test_text_that_is_not_clean_unicode_is_a_422(store: Store, field: str, text: bytes, refusal: str) -> None:
    """A lone surrogate, invalid UTF-8 or a control character in any text field: a 422 that says why (never a 500
    or a 503), nothing stored, on SQLite and PostgreSQL."""
    body = {"rating": -1, "run_id": RUN} if field != "request_id" else {"rating": -1}
    raw = json.dumps(body).encode()[:-1] + b', "' + field.encode() + b'": "' + text + b'"}'
    with _client(store, require_token=False) as client:
        answer = client.post("/feedback", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert refusal in answer.text
    if "control" in refusal:
        assert answer.json()["detail"]["errors"][0]["loc"] == [field]
    assert list(store.user_feedback(*EVER)) == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"run_id": RUN, "rating": "1"}, id="rating-as-string"),
        pytest.param({"run_id": RUN, "rating": True}, id="rating-as-boolean"),
        pytest.param({"run_id": 42, "rating": 1}, id="id-as-number"),
        pytest.param({"run_id": RUN, "rating": 1, "comment": ["a"]}, id="comment-as-list"),
        pytest.param([{"run_id": RUN, "rating": 1}], id="array-body"),
        pytest.param({"run_id": RUN, "rating": 1e400}, id="rating-overflow"),
    ],
)
def test_json_types_are_strict(sqlite_store: Store, body: Any) -> None:
    """A rating is a JSON number and text a JSON string: no coercion, 422."""
    with _client(sqlite_store, require_token=False) as client:
        answer = client.post("/feedback", content=json.dumps(body), headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text


# Replays and stuffing --------------------------------------------------------------------------------------------------


def test_one_token_posted_twenty_times_is_one_rating_and_a_change_replaces_it(sqlite_store: Store) -> None:
    """A token rates its run once: 20 posts store one rating, counted once; posting it with another rating changes
    that rating (in the store and, through the forwarder, in LangSmith)."""
    tokens = FeedbackTokens(SECRET)
    token = tokens.issue(RUN)
    registry = CollectorRegistry()
    recorder = FeedbackRecorder(sqlite_store, registry=registry)
    with FakeLangSmith() as langsmith:
        client_ls = fast_client(langsmith.url, auto_batch_tracing=False)
        forwarder = Forwarder(sqlite_store, client=client_ls, config=LangSmithConfig(poll_interval_seconds=0.01))
        app = api.create_app(recorder=recorder, registry=registry, tokens=tokens, forwarder=forwarder)
        with TestClient(app) as client:
            answers = [client.post("/feedback", json={"run_id": RUN, "rating": 1, "token": token}) for _ in range(20)]
            assert {answer.status_code for answer in answers} == {201}
            assert len({answer.json()["id"] for answer in answers}) == 1
            assert langsmith.wait_until(lambda: len(langsmith.feedback) == 1, timeout=10)
            changed = client.post("/feedback", json={"request_id": REQUEST, "rating": -1, "token": token})
            assert changed.status_code == 201 and changed.json()["id"] == answers[0].json()["id"]
            assert langsmith.wait_until(lambda: langsmith.feedback[0]["score"] == -1, timeout=10)
        client_ls.close(timeout=5)
    (stored,) = list(sqlite_store.user_feedback(*EVER))
    assert (stored.score, stored.rating) == (-1, "negative")
    assert registry.get_sample_value("llm_user_feedback_total", {"rating": "positive"}) == 1
    assert len(langsmith.feedback) == 1 and langsmith.feedback[0]["value"] == "negative"


def test_an_idempotency_key_makes_an_untokened_retry_one_rating(sqlite_store: Store) -> None:
    """The same rating posted twice with one Idempotency-Key is stored once; another rating under it is a 409."""
    with _client(sqlite_store, require_token=False) as client:
        headers = {"Idempotency-Key": "click-7f3a"}
        first = client.post("/feedback", json={"run_id": RUN, "rating": 1}, headers=headers)
        again = client.post("/feedback", json={"run_id": RUN, "rating": 1}, headers=headers)
        other = client.post("/feedback", json={"run_id": RUN, "rating": -1}, headers=headers)
    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 409)
    assert first.json() == again.json() and len(list(sqlite_store.user_feedback(*EVER))) == 1


def test_a_run_takes_at_most_its_share_of_ratings(sqlite_store: Store) -> None:
    """Ratings beyond `max_ratings_per_run` are a 429; what was stored stays."""
    config = FeedbackConfig(max_ratings_per_run=3)
    with _client(sqlite_store, require_token=False, config=config) as client:
        statuses = [client.post("/feedback", json={"run_id": RUN, "rating": -1}).status_code for _ in range(5)]
    assert statuses == [201, 201, 201, 429, 429]
    assert len(list(sqlite_store.user_feedback(*EVER))) == 3


# Anonymous ratings are a choice ----------------------------------------------------------------------------------------


def test_a_token_the_server_cannot_check_is_refused(sqlite_store: Store) -> None:
    """Without a secret a token proves nothing: a forged one is a 403, not a silent 201."""
    with _client(sqlite_store) as client:
        answer = client.post("/feedback", json={"run_id": RUN, "rating": 1, "token": "A" * 43})
    assert answer.status_code == 403 and "no secret" in answer.json()["detail"]


@pytest.mark.parametrize(
    "host, argv, secret, outcome",
    [
        pytest.param("0.0.0.0", (), None, "refused", id="public-without-secret"),
        pytest.param("0.0.0.0", ("--allow-anonymous",), None, "anonymous", id="public-anonymous-by-choice"),
        pytest.param("127.0.0.1", (), None, "anonymous", id="loopback-without-secret"),
        pytest.param("::1", (), None, "anonymous", id="ipv6-loopback-without-secret"),
        pytest.param("0.0.0.0", (), SECRET, "tokens", id="public-with-secret"),
        pytest.param("0.0.0.0", ("--allow-anonymous",), SECRET, "anonymous", id="secret-and-anonymous"),
    ],
)
def test_serve_accepts_anonymous_ratings_only_when_told_or_on_loopback(
    tmp_path: Path, host: str, argv: tuple[str, ...], secret: str | None, outcome: str
) -> None:
    """`llmmonitor serve` without a secret refuses to listen beyond loopback unless --allow-anonymous; with one,
    every rating needs a token."""
    parser = _serve_parser()
    args = parser.parse_args(["serve", "--store", str(tmp_path / "m.db"), "--host", host, *argv])
    environ = {serve.SECRET_ENV: secret} if secret else {}
    if outcome == "refused":
        with pytest.raises(ValueError, match="--allow-anonymous"):
            serve.app_from_args(args, environ=environ)
        return
    app = serve.app_from_args(args, environ=environ)
    try:
        assert app.state.tokens_required is (outcome == "tokens")
    finally:
        app.state.store.close()


def _serve_parser() -> Any:
    import argparse

    parser = argparse.ArgumentParser(prog="llmmonitor")
    serve.add_cli(parser.add_subparsers(dest="command", required=True))
    return parser


# /metrics as the README shows it ----------------------------------------------------------------------------------------


def test_the_readme_metrics_route_answers_metrics_without_a_redirect(registry: CollectorRegistry) -> None:
    """`app.add_route("/metrics", metrics_app(monitor))` answers /metrics itself with the monitor's series."""
    monitor = Monitor(registry=registry)
    app = FastAPI()
    app.add_route("/metrics", metrics_app(monitor))
    with TestClient(app) as client:
        answer = client.get("/metrics", follow_redirects=False)
    assert answer.status_code == 200 and "llm_active_requests" in answer.text
    monitor.close()
