"""The fake OpenAI server speaks the protocol the real `openai` client expects, over real HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI, Reply, example_for_schema, json_schema_of

JUDGE_SCHEMA = {
    "type": "object",
    "properties": {
        "faithfulness": {"type": "integer", "minimum": 1, "maximum": 5},
        "verdict": {"type": "string", "enum": ["grounded", "hallucinated"]},
        "reason": {"type": "string"},
    },
    "required": ["faithfulness", "verdict", "reason"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "judge", "schema": JUDGE_SCHEMA, "strict": True}}
MESSAGES = [{"role": "user", "content": "<question>Capital of France?</question><answer>Paris</answer>"}]

ClientFactory = Callable[..., openai.OpenAI]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as running:
        yield running
    assert fake_threads() == [], "server threads outlived stop()"


@pytest.fixture
def make_client(server: FakeOpenAI) -> Iterator[ClientFactory]:
    clients: list[openai.OpenAI] = []

    def make(*, timeout: float = 5.0, max_retries: int = 0) -> openai.OpenAI:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", timeout=timeout, max_retries=max_retries)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def judge_call(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, response_format=RESPONSE_FORMAT, temperature=0
    )


def fake_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("fake-openai")]


def test_valid_json_content_is_parsed(server: FakeOpenAI, make_client: ClientFactory) -> None:
    """A scripted JSON answer arrives as parsable content with consistent usage and the requested model."""
    server.enqueue(Reply.json({"faithfulness": 4, "verdict": "grounded", "reason": "stated"}, completion_tokens=9))
    completion = judge_call(make_client())
    assert json.loads(completion.choices[0].message.content) == {
        "faithfulness": 4,
        "verdict": "grounded",
        "reason": "stated",
    }
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    assert completion.usage.completion_tokens == 9
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 9


def test_malformed_json_content_fails_to_parse(server: FakeOpenAI, make_client: ClientFactory) -> None:
    """Truncated JSON is delivered verbatim, so the judge's own parsing is what must catch it."""
    server.enqueue(Reply.text('{"faithfulness": 4, "verd'))
    content = judge_call(make_client()).choices[0].message.content
    assert content == '{"faithfulness": 4, "verd'
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)


def test_refusal_sets_message_refusal_and_null_content(server: FakeOpenAI, make_client: ClientFactory) -> None:
    """A structured-outputs refusal shows up as `message.refusal` with no content."""
    server.enqueue(Reply.refused("I can't help with that."))
    message = judge_call(make_client()).choices[0].message
    assert message.refusal == "I can't help with that."
    assert message.content is None


def test_truncation_reports_length_finish_reason(server: FakeOpenAI, make_client: ClientFactory) -> None:
    """A length-truncated answer carries `finish_reason="length"` and the partial content."""
    server.enqueue(Reply.truncated('{"faithfulness": 5, "reason": "the answer'))
    choice = judge_call(make_client()).choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content == '{"faithfulness": 5, "reason": "the answer'


def test_rate_limit_then_success_is_retried_by_the_client(server: FakeOpenAI, make_client: ClientFactory) -> None:
    """The client honours 429 + retry-after and retries into the next scripted success."""
    server.enqueue(Reply.rate_limited(retry_after=0.05), Reply.json({"faithfulness": 3}))
    completion = judge_call(make_client(max_retries=1))
    assert json.loads(completion.choices[0].message.content) == {"faithfulness": 3}
    assert [request.headers["x-stainless-retry-count"] for request in server.requests] == ["0", "1"]
    assert server.queued == 0


@pytest.mark.parametrize(
    ("reply", "error_class", "message_part", "headers"),
    [
        pytest.param(
            Reply.rate_limited(retry_after=0.05),
            openai.RateLimitError,
            "Rate limit reached",
            {"retry-after": "1", "retry-after-ms": "50"},
            id="429",
        ),
        pytest.param(Reply.server_error(), openai.InternalServerError, "The server had an error", {}, id="500"),
        pytest.param(Reply.error(400, "bad schema"), openai.BadRequestError, "bad schema", {}, id="400"),
        pytest.param(Reply(status=503, body="upstream down"), openai.InternalServerError, "503", {}, id="503-raw-body"),
    ],
)
def test_error_status_raises_matching_client_error(
    server: FakeOpenAI,
    make_client: ClientFactory,
    reply: Reply,
    error_class: type[openai.APIStatusError],
    message_part: str,
    headers: dict[str, str],
) -> None:
    """Without retries an error status surfaces as the client's typed exception, after exactly one request."""
    server.enqueue(reply)
    with pytest.raises(error_class) as raised:
        judge_call(make_client(max_retries=0))
    assert raised.value.status_code == reply.status
    assert message_part in str(raised.value)
    assert raised.value.request_id.startswith("req_")
    assert headers.items() <= raised.value.response.headers.items()
    assert len(server.requests) == 1


def test_slow_reply_beyond_client_timeout_raises_timeout(server: FakeOpenAI, make_client: ClientFactory) -> None:
    """A reply slower than the client's timeout becomes `APITimeoutError`, and stopping does not wait for it."""
    server.enqueue(Reply.json({"faithfulness": 5}).delayed(2.0))
    with pytest.raises(openai.APITimeoutError):
        judge_call(make_client(timeout=0.3, max_retries=0))
    assert len(server.requests) == 1


def test_request_records_structured_output_settings(server: FakeOpenAI, make_client: ClientFactory) -> None:
    """The recorded body shows the strict json_schema response_format and temperature the client sent."""
    judge_call(make_client())
    (body,) = server.chat_bodies
    assert body["temperature"] == 0
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == MESSAGES
    assert json_schema_of(body) == {"name": "judge", "schema": JUDGE_SCHEMA, "strict": True}
    assert server.requests[0].headers["authorization"] == "Bearer test"


def test_json_schema_of_rejects_request_without_schema() -> None:
    """Asking for the schema of a plain request fails loudly instead of returning nothing."""
    with pytest.raises(ValueError, match="no json_schema"):
        json_schema_of({"model": "gpt-4o-mini", "response_format": {"type": "json_object"}})


def test_unscripted_request_gets_schema_valid_default(server: FakeOpenAI, make_client: ClientFactory) -> None:
    """Once the queue is empty the default responder answers with JSON matching the sent schema."""
    content = judge_call(make_client()).choices[0].message.content
    assert json.loads(content) == {"faithfulness": 1, "verdict": "grounded", "reason": ""}


def test_custom_default_responder_sees_request_body(server: FakeOpenAI, make_client: ClientFactory) -> None:
    """A test-supplied responder receives the parsed request body and its answer is returned."""
    server.set_default(lambda body: json.dumps({"echo": body["messages"][0]["content"]}))
    content = judge_call(make_client()).choices[0].message.content
    assert json.loads(content) == {"echo": MESSAGES[0]["content"]}


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        pytest.param({"type": "string", "enum": ["b", "a"]}, "b", id="enum"),
        pytest.param({"anyOf": [{"type": "number", "minimum": 2.5}, {"type": "null"}]}, 2.5, id="any-of"),
        pytest.param({"type": ["boolean", "null"]}, False, id="type-list"),
        pytest.param({"type": "array", "items": {"const": 7}, "minItems": 2}, [7, 7], id="array-min-items"),
        pytest.param(
            {
                "type": "object",
                "properties": {"inner": {"$ref": "#/$defs/Inner"}},
                "$defs": {"Inner": {"type": "integer"}},
            },
            {"inner": 0},
            id="ref",
        ),
    ],
)
def test_example_for_schema(schema: dict[str, Any], expected: Any) -> None:
    """The default answer generator produces the simplest value each schema construct allows."""
    assert example_for_schema(schema) == expected


def test_concurrent_requests_each_consume_one_scripted_reply(server: FakeOpenAI, make_client: ClientFactory) -> None:
    """Parallel callers get distinct queued replies: none is lost or served twice."""
    server.enqueue(*(Reply.json({"n": n}) for n in range(8)))
    client = make_client()
    results: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        value = json.loads(judge_call(client).choices[0].message.content)["n"]
        with lock:
            results.append(value)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(8))
    assert len(server.chat_bodies) == 8


def test_models_list_and_unknown_path(server: FakeOpenAI, make_client: ClientFactory) -> None:
    """`GET /v1/models` lists models and an unknown path is a JSON 404 the client maps to `NotFoundError`."""
    client = make_client()
    assert [model.id for model in client.models.list()] == ["gpt-4o-mini"]
    with pytest.raises(openai.NotFoundError, match=r"Invalid URL \(GET /v1/files/file-x\)"):
        client.files.retrieve("file-x")


def test_keep_alive_connection_is_reused(server: FakeOpenAI, make_client: ClientFactory) -> None:
    """Consecutive calls from one client travel over the same pooled connection and both succeed."""
    client = make_client()
    judge_call(client)
    judge_call(client)
    first, second = server.requests
    assert first.client_port == second.client_port


async def test_async_client_is_served(server: FakeOpenAI) -> None:
    """The async client, which the judge may use, parses the same responses."""
    server.enqueue(Reply.json({"faithfulness": 2}))
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0) as client:
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, response_format=RESPONSE_FORMAT, temperature=0
        )
    assert json.loads(completion.choices[0].message.content) == {"faithfulness": 2}


def test_stop_closes_keep_alive_and_wakes_slow_handlers() -> None:
    """Stopping with an idle pooled connection and a handler mid-delay neither hangs nor leaks threads."""
    server = FakeOpenAI().start()
    idle_client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    slow_client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0, timeout=120)
    with idle_client, slow_client:
        judge_call(idle_client)
        server.enqueue(Reply.json({"faithfulness": 1}).delayed(60))
        outcome: list[BaseException] = []

        def slow_call() -> None:
            try:
                judge_call(slow_client)
            except openai.APIConnectionError as error:
                outcome.append(error)

        caller = threading.Thread(target=slow_call)
        caller.start()
        deadline = time.monotonic() + 10
        while len(server.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(server.requests) == 2

        stopper = threading.Thread(target=server.stop)
        stopper.start()
        stopper.join(timeout=30)
        assert not stopper.is_alive(), "stop() is stuck on the idle connection or the 60 s slow reply"
        caller.join(timeout=30)
        assert fake_threads() == []
        assert not caller.is_alive()
        assert len(outcome) == 1
