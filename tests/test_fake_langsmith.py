"""The fake LangSmith server is faithful enough: the real SDK and LangChainTracer talk to it over real HTTP."""

from __future__ import annotations

import datetime
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
import requests
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tracers.langchain import LangChainTracer
from langsmith import Client
from langsmith.schemas import FeedbackSourceType
from langsmith.utils import (
    LangSmithAuthError,
    LangSmithConflictError,
    LangSmithConnectionError,
    LangSmithError,
    LangSmithNotFoundError,
)

from langchain_llmmonitor.testing.langsmith_server import FakeLangSmith, FakeLangSmithProcess, fast_client

ANSWER = "Paris is the capital of France."
PROJECT = "fake-langsmith-tests"


@pytest.fixture
def server() -> Iterator[FakeLangSmith]:
    with FakeLangSmith() as fake:
        yield fake


@pytest.fixture
def client(server: FakeLangSmith) -> Iterator[Client]:
    sdk_client = fast_client(server.url)
    yield sdk_client
    sdk_client.close(timeout=5)


class RootRunRecorder(BaseCallbackHandler):
    """Remembers the callback run_id of each root chain, as the monitor sees it."""

    def __init__(self) -> None:
        self.root_run_ids: list[UUID] = []

    def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        if parent_run_id is None:
            self.root_run_ids.append(run_id)


def trace_chain(client: Client) -> str:
    """Run prompt | chat model | parser under a LangChainTracer, wait until sent, return the root run id."""
    chain = (
        ChatPromptTemplate.from_messages([("human", "{question}")])
        | GenericFakeChatModel(messages=iter([AIMessage(content=ANSWER)]))
        | StrOutputParser()
    )
    tracer = LangChainTracer(client=client, project_name=PROJECT)
    recorder = RootRunRecorder()
    assert chain.invoke({"question": "Capital of France?"}, config={"callbacks": [tracer, recorder]}) == ANSWER
    tracer.wait_for_futures()
    client.flush()
    [root_run_id] = recorder.root_run_ids
    return str(root_run_id)


def wait_for_zstd_sender(client: Client) -> None:
    """Runs traced before the SDK's sender thread has read /info go out uncompressed; wait for it to pick zstd."""
    deadline = time.monotonic() + 5
    while client.compressed_traces is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.compressed_traces is not None


def new_feedback(client: Client, run_id: str | UUID, key: str = "thumbs", **kwargs: Any) -> None:
    """create_feedback with a project id, so the SDK does not warn, and without its 10 slow attempts."""
    kwargs.setdefault("session_id", uuid.uuid4())
    client.create_feedback(run_id, key, stop_after_attempt=1, **kwargs)


@pytest.mark.parametrize(
    ("server_options", "client_options", "ingestion"),
    [
        pytest.param({}, {}, {("POST /runs/multipart", "zstd")}, id="multipart-zstd"),
        pytest.param({"zstd": False}, {}, {("POST /runs/multipart", "")}, id="multipart-plain"),
        pytest.param({"multipart": False}, {}, {("POST /runs/batch", "")}, id="batch"),
        pytest.param({}, {"auto_batch_tracing": False}, {("POST /runs", ""), ("PATCH /runs/{id}", "")}, id="unbatched"),
    ],
)
def test_tracer_run_tree_lands_with_callback_ids(
    server_options: dict[str, bool], client_options: dict[str, bool], ingestion: set[tuple[str, str]]
) -> None:
    """The root run id is the callback run_id and children carry its trace_id and parent id, in every ingest format."""
    with FakeLangSmith(**server_options) as server:
        client = fast_client(server.url, **client_options)
        if ("POST /runs/multipart", "zstd") in ingestion:
            wait_for_zstd_sender(client)
        root_id = trace_chain(client)
        runs = server.runs
        root = runs[root_id]
        children = [run for run_id, run in runs.items() if run_id != root_id]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # read_run is deprecated in 0.15 but still what GET /runs/{id} serves
            read_back = client.read_run(root_id)
        project = client.read_project(project_name=PROJECT)
        client.close(timeout=5)

    assert (root["trace_id"], root.get("parent_run_id"), root["name"]) == (root_id, None, "RunnableSequence")
    assert root["inputs"] == {"question": "Capital of France?"}
    assert root["outputs"] == {"output": ANSWER}
    assert root["end_time"]
    assert sorted(child["name"] for child in children) == [
        "ChatPromptTemplate",
        "GenericFakeChatModel",
        "StrOutputParser",
    ]
    assert all(child["trace_id"] == root_id and child["parent_run_id"] == root_id for child in children)
    assert all(child["dotted_order"].startswith(root["dotted_order"] + ".") for child in children)
    assert (str(read_back.id), read_back.outputs, str(read_back.session_id)) == (
        root_id,
        {"output": ANSWER},
        root["session_id"],
    )
    assert sorted(str(child_id) for child_id in read_back.child_run_ids) == sorted(child["id"] for child in children)
    assert str(project.id) == root["session_id"]
    writes = {
        (record.endpoint, record.encoding) for record in server.request_log if not record.endpoint.startswith("GET")
    }
    assert writes == ingestion
    assert server.errors == []


@pytest.mark.parametrize(
    ("queued", "endpoint"),
    [
        pytest.param(True, "POST /runs/multipart", id="queued-with-trace-id"),
        pytest.param(False, "POST /feedback", id="synchronous"),
    ],
)
def test_create_feedback_lands_with_every_field(
    server: FakeLangSmith, client: Client, queued: bool, endpoint: str
) -> None:
    """Feedback keeps id, run, trace, key, score, value, comment, correction and its source, on both SDK paths."""
    run_id, feedback_id, project_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    new_feedback(
        client,
        run_id,
        "faithfulness",
        score=0.75,
        value="mostly grounded",
        comment="one unsupported claim",
        correction={"answer": "Paris"},
        trace_id=run_id if queued else None,
        feedback_id=feedback_id,
        feedback_source_type=FeedbackSourceType.MODEL,
        source_info={"judge_model": "offline", "prompt_version": "v1"},
        session_id=project_id,
    )
    client.flush()

    [stored] = server.feedback
    assert stored["id"] == str(feedback_id)
    assert (stored["run_id"], stored["trace_id"], stored["session_id"]) == (
        str(run_id),
        str(run_id) if queued else None,
        str(project_id),
    )
    assert (stored["key"], stored["score"], stored["value"], stored["comment"], stored["correction"]) == (
        "faithfulness",
        0.75,
        "mostly grounded",
        "one unsupported claim",
        {"answer": "Paris"},
    )
    assert stored["feedback_source"]["type"] == "model"
    assert stored["feedback_source"]["metadata"] == {"judge_model": "offline", "prompt_version": "v1"}
    assert server.count(endpoint) == 1
    assert server.count("POST /feedback") == (0 if queued else 1)


def test_sync_feedback_gets_trace_id_from_a_known_run(server: FakeLangSmith, client: Client) -> None:
    """Like LangSmith, feedback posted without trace_id is linked to the trace of the run it scores."""
    root_id = trace_chain(client)
    child_id = next(run_id for run_id in server.runs if run_id != root_id)
    new_feedback(client, child_id)
    assert server.feedback[0]["trace_id"] == root_id


@pytest.mark.parametrize(
    ("queued", "endpoint"),
    [
        pytest.param(True, "POST /runs/multipart", id="queued-with-trace-id"),
        pytest.param(False, "POST /feedback", id="synchronous"),
    ],
)
def test_same_feedback_id_twice_is_stored_once(
    server: FakeLangSmith, client: Client, queued: bool, endpoint: str
) -> None:
    """A re-sent feedback id is not duplicated; the attempt is visible, and the SDK sees success (safe retries)."""
    run_id, feedback_id = uuid.uuid4(), uuid.uuid4()
    for score in (1, 0):
        new_feedback(client, run_id, score=score, feedback_id=feedback_id, trace_id=run_id if queued else None)
        client.flush()

    assert [(f["id"], f["score"]) for f in server.feedback] == [(str(feedback_id), 1)]
    assert server.duplicates == [{"kind": "feedback", "id": str(feedback_id), "endpoint": endpoint}]


def test_conflict_mode_answers_duplicates_with_409() -> None:
    """With duplicate_feedback_status=409 the synchronous SDK path raises LangSmithConflictError on a re-send."""
    with FakeLangSmith(duplicate_feedback_status=409) as server:
        client = fast_client(server.url)
        run_id, feedback_id = uuid.uuid4(), uuid.uuid4()
        new_feedback(client, run_id, feedback_id=feedback_id)
        with pytest.raises(LangSmithConflictError):
            new_feedback(client, run_id, feedback_id=feedback_id)
        client.close(timeout=5)
    assert len(server.feedback) == 1
    assert server.count("POST /feedback", status=409) == 1


def test_list_feedback_filters_by_run_key_and_source(server: FakeLangSmith, client: Client) -> None:
    """list_feedback's run, key and source filters select what LangSmith would return, in arrival order."""
    run_a, run_b = uuid.uuid4(), uuid.uuid4()
    new_feedback(client, run_a, "helpful", score=1)
    new_feedback(client, run_a, "faithfulness", score=0.5, feedback_source_type=FeedbackSourceType.MODEL)
    new_feedback(client, run_b, "helpful", score=0)

    assert [(f.key, f.score) for f in client.list_feedback(run_ids=[run_a])] == [("helpful", 1), ("faithfulness", 0.5)]
    assert [f.run_id for f in client.list_feedback(run_ids=[run_a, run_b], feedback_key=["helpful"])] == [run_a, run_b]
    assert [f.key for f in client.list_feedback(feedback_source_type=[FeedbackSourceType.MODEL])] == ["faithfulness"]


def test_list_feedback_pages_like_the_sdk_expects(server: FakeLangSmith, client: Client) -> None:
    """More than one page (100) comes back whole via limit/offset, and `limit` caps the result."""
    run_id = uuid.uuid4()
    for index in range(105):
        new_feedback(client, run_id, score=index)

    assert [f.score for f in client.list_feedback(run_ids=[run_id])] == list(range(105))
    assert server.count("GET /feedback") == 2
    assert [f.score for f in client.list_feedback(run_ids=[run_id], limit=3)] == [0, 1, 2]


def test_read_update_and_delete_feedback(server: FakeLangSmith, client: Client) -> None:
    """PATCH changes only the fields passed; GET and DELETE by id behave like LangSmith's."""
    run_id, feedback_id = uuid.uuid4(), uuid.uuid4()
    new_feedback(client, run_id, score=1, comment="great", feedback_id=feedback_id)

    client.update_feedback(feedback_id, score=0, comment="changed")  # (SDKs before 0.15 do not send comment=None)
    updated = client.read_feedback(feedback_id)
    assert (updated.score, updated.comment, updated.key) == (0, "changed", "thumbs")
    client.delete_feedback(feedback_id)
    assert server.feedback == []
    with pytest.raises(LangSmithError):
        client.read_feedback(feedback_id)


def test_presigned_token_submitted_by_url_lands_on_its_run() -> None:
    """A browser POSTing to the token URL (no API key) creates feedback on the token's run; re-submits upsert it."""
    with FakeLangSmith(api_key="secret") as server:
        client = fast_client(server.url, api_key="secret")
        run_id = uuid.uuid4()
        token = client.create_presigned_feedback_token(run_id, "thumbs")
        response = requests.post(token.url, json={"score": 1, "comment": "helpful"}, timeout=5)
        first = server.feedback
        client.create_feedback_from_token(token.url, score=0, comment="changed my mind")
        client.close(timeout=5)

    assert token.url == f"{server.url}/feedback/tokens/{token.id}"
    assert token.expires_at > datetime.datetime.now(datetime.UTC)
    assert response.status_code == 200
    assert [(f["run_id"], f["key"], f["score"], f["comment"]) for f in first] == [(str(run_id), "thumbs", 1, "helpful")]
    assert [(f["id"], f["score"], f["comment"]) for f in server.feedback] == [(first[0]["id"], 0, "changed my mind")]


def test_bulk_presigned_tokens_accept_get_submissions(server: FakeLangSmith, client: Client) -> None:
    """create_presigned_feedback_tokens parses the list reply; a GET on a token URL with ?score= records feedback."""
    run_id = uuid.uuid4()
    tokens = client.create_presigned_feedback_tokens(run_id, ["accuracy", "tone"])
    assert requests.get(tokens[0].url, params={"score": "1"}, timeout=5).status_code == 200

    assert [(f["run_id"], f["key"], f["score"]) for f in server.feedback] == [(str(run_id), "accuracy", 1.0)]
    assert {token.id for token in client.list_presigned_feedback_tokens(run_id)} == {token.id for token in tokens}


def test_expired_presigned_token_is_refused(server: FakeLangSmith, client: Client) -> None:
    """A token past its expiry stores nothing."""
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    token = client.create_presigned_feedback_token(uuid.uuid4(), "thumbs", expiration=past)
    assert requests.post(token.url, json={"score": 1}, timeout=5).status_code == 400
    assert server.feedback == []


def test_projects_are_created_once_and_looked_up_by_name(server: FakeLangSmith, client: Client) -> None:
    """POST /sessions conflicts on an existing name unless upserting; GET /sessions finds it by name."""
    created = client.create_project("weekly-review")
    with pytest.raises(LangSmithConflictError):
        client.create_project("weekly-review")
    assert client.create_project("weekly-review", upsert=True).id == created.id
    assert client.read_project(project_name="weekly-review").id == created.id
    assert not client.has_project("never-created")


def test_datasets_are_created_once_and_read_by_name_or_id(server: FakeLangSmith, client: Client) -> None:
    """POST /datasets conflicts on a taken name; GET /datasets finds it by name, GET /datasets/{id} by id, else 404."""
    created = client.create_dataset("regressions", description="worst answers")
    with pytest.raises(LangSmithConflictError):
        client.create_dataset("regressions")
    assert client.read_dataset(dataset_name="regressions").id == created.id
    assert client.read_dataset(dataset_id=created.id).description == "worst answers"
    assert not client.has_dataset(dataset_name="never-created")
    with pytest.raises(LangSmithNotFoundError):
        client.read_dataset(dataset_id=uuid.uuid4())
    assert [(d["name"], d["example_count"]) for d in server.datasets] == [("regressions", 0)]


@pytest.mark.parametrize(
    ("multipart", "endpoint"),
    [
        pytest.param(True, "POST /v1/platform/datasets/{id}/examples", id="multipart"),
        pytest.param(False, "POST /examples/bulk", id="bulk"),
    ],
)
def test_examples_land_whole_or_not_at_all(multipart: bool, endpoint: str) -> None:
    """create_examples takes the endpoint /info offers; an unknown dataset is 404 and a repeated id 409, storing none."""
    with FakeLangSmith(dataset_examples_multipart=multipart) as server:
        client = fast_client(server.url, auto_batch_tracing=False)
        dataset = client.create_dataset("regressions")
        first, second = uuid.uuid4(), uuid.uuid4()
        client.create_examples(
            dataset_id=dataset.id,
            examples=[{"id": first, "inputs": {"question": "q1"}, "metadata": {"run_id": "r1"}}],
        )
        with pytest.raises(LangSmithConflictError):
            client.create_examples(
                dataset_id=dataset.id,
                examples=[{"id": second, "inputs": {"question": "q2"}}, {"id": first, "inputs": {"question": "q1"}}],
            )
        with pytest.raises(LangSmithNotFoundError):
            client.create_examples(dataset_id=uuid.uuid4(), examples=[{"inputs": {"question": "q3"}}])
        assert [(e["id"], e["inputs"], e["metadata"]) for e in server.examples] == [
            (str(first), {"question": "q1"}, {"run_id": "r1"})
        ]
        assert (server.count(endpoint, status=201 if multipart else 200), server.count(endpoint, status=409)) == (1, 1)
        assert server.count(endpoint, status=404) == 1 and server.errors == []
        client.close(timeout=5)


def test_list_examples_filters_by_dataset_ids_and_metadata(server: FakeLangSmith, client: Client) -> None:
    """GET /examples answers the SDK's dataset, id and metadata filters; an unknown dataset is 404."""
    dataset, other = client.create_dataset("a"), client.create_dataset("b")
    ids = [uuid.uuid4() for _ in range(3)]
    client.create_examples(
        dataset_id=dataset.id,
        examples=[{"id": i, "inputs": {"n": n}, "metadata": {"odd": n % 2 == 1}} for n, i in enumerate(ids)],
    )
    client.create_examples(dataset_id=other.id, examples=[{"inputs": {"n": 9}}])
    assert {e.id for e in client.list_examples(dataset_id=dataset.id)} == set(ids)
    assert [e.id for e in client.list_examples(dataset_id=dataset.id, example_ids=ids[1:])] == ids[1:]
    assert [e.inputs for e in client.list_examples(dataset_id=dataset.id, metadata={"odd": True})] == [{"n": 1}]
    assert list(client.list_examples(dataset_id=other.id, example_ids=ids)) == []
    with pytest.raises(LangSmithNotFoundError):
        list(client.list_examples(dataset_id=uuid.uuid4()))


def test_wrong_api_key_is_rejected_and_stores_nothing() -> None:
    """With api_key set, the SDK's requests need the matching x-api-key header."""
    with FakeLangSmith(api_key="secret") as server:
        client = fast_client(server.url, api_key="wrong")
        with pytest.raises(LangSmithAuthError):
            new_feedback(client, uuid.uuid4())
        client.close(timeout=5)
    assert server.feedback == []


@pytest.mark.parametrize(
    ("status", "queued", "path", "endpoint", "success"),
    [
        pytest.param(503, False, "/feedback", "POST /feedback", 200, id="503-synchronous"),
        pytest.param(429, False, "/feedback", "POST /feedback", 200, id="429-synchronous"),
        pytest.param(503, True, "/runs/multipart", "POST /runs/multipart", 202, id="503-queued"),
    ],
)
def test_transient_failure_is_retried_by_the_sdk_and_lands_once(
    server: FakeLangSmith, client: Client, status: int, queued: bool, path: str, endpoint: str, success: int
) -> None:
    """One injected 503/429 is retried by the SDK's transport; the feedback is stored exactly once."""
    run_id = uuid.uuid4()
    server.fail_next(1, status=status, path=path)
    new_feedback(client, run_id, trace_id=run_id if queued else None)
    client.flush()

    assert [record.status for record in server.request_log if record.endpoint == endpoint] == [status, success]
    assert len(server.feedback) == 1
    assert server.duplicates == []


def test_failed_requests_store_nothing_and_other_paths_are_spared(server: FakeLangSmith, client: Client) -> None:
    """A fault filtered to /feedback fails both SDK attempts without storing, while run ingestion goes through."""
    server.fail_next(10, status=503, path="/feedback")
    root_id = trace_chain(client)
    with pytest.raises(LangSmithError):
        new_feedback(client, root_id)

    assert server.feedback == []
    assert server.count("POST /feedback", status=503) == 2
    assert root_id in server.runs
    assert all(record.status < 400 for record in server.request_log if record.endpoint != "POST /feedback")


def test_slow_response_times_out_then_retry_is_idempotent(server: FakeLangSmith, client: Client) -> None:
    """The server stores a request whose response the client gave up on; re-sending the same id does not duplicate."""
    impatient = fast_client(server.url, attempts=1, timeout_ms=(1_000, 200))
    run_id, feedback_id = uuid.uuid4(), uuid.uuid4()
    server.set_delay(1.0, path="/feedback")
    with pytest.raises(LangSmithConnectionError):
        new_feedback(impatient, run_id, feedback_id=feedback_id)
    impatient.close(timeout=5)
    assert server.wait_until(lambda: len(server.feedback) == 1)

    server.set_delay(0)
    new_feedback(client, run_id, feedback_id=feedback_id)
    assert [f["id"] for f in server.feedback] == [str(feedback_id)]
    assert server.duplicates == [{"kind": "feedback", "id": str(feedback_id), "endpoint": "POST /feedback"}]


def test_outage_then_recovery_on_the_same_port(server: FakeLangSmith, client: Client) -> None:
    """While stopped the SDK gets connection errors; restarted on the same port, the same client works again."""
    before = trace_chain(client)
    port = server.port

    server.stop()
    with pytest.raises(LangSmithConnectionError):
        new_feedback(client, before)
    server.start()
    after = trace_chain(client)
    new_feedback(client, after, trace_id=after)
    client.flush()

    assert server.port == port
    assert {before, after} <= set(server.runs)
    assert [f["run_id"] for f in server.feedback] == [after]


def test_stop_cuts_keep_alive_connections_and_joins_its_threads(server: FakeLangSmith) -> None:
    """stop() leaves no server thread behind even with an idle keep-alive client connection open."""
    session = requests.Session()
    assert session.get(f"{server.url}/info", timeout=5).json()["batch_ingest_config"]["use_multipart_endpoint"]

    server.stop()
    assert [t.name for t in threading.enumerate() if t.name.startswith(server.thread_name_prefix)] == []
    with pytest.raises(requests.ConnectionError):
        session.get(f"{server.url}/info", timeout=5)
    server.start()
    assert session.get(f"{server.url}/info", timeout=5).status_code == 200
    session.close()


def test_standalone_process_is_driven_over_http() -> None:
    """The fake run with `python -m` serves the SDK, exposes its state and faults over HTTP, and survives a kill."""
    with FakeLangSmithProcess() as process:
        client = fast_client(process.url)
        run_id = uuid.uuid4()
        new_feedback(client, run_id, trace_id=run_id)
        assert process.wait_until(lambda: len(process.feedback) == 1)
        stored = process.feedback
        url = process.url

        process.kill()
        process.start()
        after_crash = process.feedback
        process.fail_next(1, status=503, path="/feedback")
        new_feedback(client, run_id)
        log = [tuple(record[:2]) for record in process.state()["request_log"]]
        process.reset()
        after_reset = process.state()
        client.close(timeout=5)

    assert [(f["run_id"], f["key"]) for f in stored] == [(str(run_id), "thumbs")]
    assert (process.url, after_crash) == (url, [])
    assert log == [("POST /feedback", 503), ("POST /feedback", 200)]
    assert (after_reset["feedback"], after_reset["request_log"]) == ([], [])
