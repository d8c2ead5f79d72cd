"""A scripted OpenAI-compatible HTTP server, so judge tests exercise the real `openai` client end to end.

Tests point `openai.OpenAI(base_url=server.base_url, api_key="test")` at it, script replies (valid JSON, malformed
JSON, refusals, 429/500, slow answers, length truncation) and assert on the recorded requests.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_COMPLETIONS_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
CHARS_PER_TOKEN = 4
REFUSAL_TEXT = "I'm sorry, I cannot assist with that request."


@dataclass(frozen=True, kw_only=True)
class Reply:
    """One scripted answer to a chat completion request.

    With `body=None` the server builds the body: a chat completion for a 2xx status, an OpenAI error object otherwise.
    A dict `body` is sent as JSON and a str `body` verbatim, for shapes the constructors do not cover.
    """

    status: int = 200
    content: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    body: Mapping[str, Any] | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0

    @classmethod
    def json(cls, value: Any, **overrides: Any) -> Reply:
        """Assistant content that is `value` serialised as JSON, as a structured-output model answers."""
        return cls(content=json.dumps(value), **overrides)

    @classmethod
    def text(cls, content: str, **overrides: Any) -> Reply:
        """Assistant content verbatim, e.g. truncated or otherwise malformed JSON."""
        return cls(content=content, **overrides)

    @classmethod
    def refused(cls, refusal: str = REFUSAL_TEXT) -> Reply:
        """A structured-outputs refusal: the API sets `message.refusal`, leaves `content` null, and stops normally."""
        return cls(content=None, refusal=refusal)

    @classmethod
    def truncated(cls, content: str) -> Reply:
        """Content cut off by the token limit (`finish_reason="length"`)."""
        return cls(content=content, finish_reason="length")

    @classmethod
    def rate_limited(cls, *, retry_after: float = 0.05) -> Reply:
        """HTTP 429 with the headers the real API sends; the client honours `retry-after-ms` before `retry-after`."""
        return cls.error(
            429,
            "Rate limit reached for requests. Please try again later.",
            error_type="requests",
            code="rate_limit_exceeded",
            headers={
                "retry-after": str(math.ceil(retry_after)),
                "retry-after-ms": str(round(retry_after * 1000)),
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{retry_after}s",
            },
        )

    @classmethod
    def server_error(cls) -> Reply:
        """HTTP 500 with the real API's error body."""
        return cls.error(
            500, "The server had an error while processing your request. Sorry about that!", error_type="server_error"
        )

    @classmethod
    def error(
        cls,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Any HTTP error status with an OpenAI-shaped `{"error": {...}}` body."""
        return cls(status=status, body=error_body(message, error_type=error_type, code=code), headers=headers or {})

    def delayed(self, seconds: float) -> Reply:
        """The same reply, sent only after `seconds` (for client timeout tests)."""
        return dataclasses.replace(self, delay_seconds=seconds)


Responder = Callable[[dict[str, Any]], Reply | str]


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON; None when empty or not JSON
    client_port: int  # the same port on consecutive requests shows a reused keep-alive connection


def completion_body(
    model: str, usage: dict[str, Any], *, service_tier: str = "default", choices: int = 1, content: str = "Paris."
) -> dict[str, Any]:
    """A chat completion as OpenAI returns it, with the usage and service tier a test scripts (for `Reply(body=...)`)."""
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "service_tier": service_tier,
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            for i in range(choices)
        ],
        "usage": usage,
    }


def error_body(message: str, *, error_type: str, code: str | None = None) -> dict[str, Any]:
    """The error envelope the OpenAI API returns, which the client turns into `APIStatusError.message` and `.code`."""
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def json_schema_of(request_body: Mapping[str, Any]) -> dict[str, Any]:
    """The `json_schema` block (`name`, `schema`, `strict`) of a chat completion request's `response_format`."""
    response_format = request_body.get("response_format") or {}
    if response_format.get("type") != "json_schema":
        raise ValueError(f"request has no json_schema response_format: {response_format!r}")
    return response_format["json_schema"]


def example_for_schema(schema: Mapping[str, Any], *, root: Mapping[str, Any] | None = None) -> Any:
    """The simplest value satisfying a strict-mode JSON schema, so an unscripted request still gets a valid answer."""
    root = schema if root is None else root
    if "$ref" in schema:
        definition = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            definition = definition[part]
        return example_for_schema(definition, root=root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return example_for_schema(schema["anyOf"][0], root=root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    match kind:
        case "object":
            return {name: example_for_schema(sub, root=root) for name, sub in schema.get("properties", {}).items()}
        case "array":
            return [example_for_schema(schema["items"], root=root) for _ in range(schema.get("minItems", 0))]
        case "integer" | "number":
            return schema.get("minimum", 0)
        case "string":
            return ""
        case "boolean":
            return False
        case _:
            return None


def answer_from_schema(request_body: dict[str, Any]) -> Reply:
    """Default responder: a schema-valid JSON answer when a json_schema was sent, plain text otherwise."""
    try:
        block = json_schema_of(request_body)
    except ValueError:
        return Reply.text("OK")
    return Reply.json(example_for_schema(block.get("schema", {})))


class FakeOpenAI:
    """An OpenAI-compatible server on 127.0.0.1 with an ephemeral port, scripted from tests.

    Use as `with FakeOpenAI() as server:`; replies queued with `enqueue` are consumed in order by chat completion
    requests, after which the default responder answers. All methods are thread-safe.
    """

    def __init__(self, *, default: Responder = answer_from_schema, model_ids: tuple[str, ...] = ("gpt-4o-mini",)):
        self._default = default
        self._model_ids = model_ids
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._httpd: _Server | None = None
        self._serve_thread: threading.Thread | None = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> FakeOpenAI:
        """Bind an ephemeral port and serve in a background thread."""
        if self._httpd is not None:
            raise RuntimeError("FakeOpenAI is already running")
        self._httpd = _Server(self)
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai-serve", daemon=True
        )
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake slow handlers, close keep-alive connections and join every thread. Idempotent."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.close_all_connections()
        self._httpd.server_close()
        assert self._serve_thread is not None
        self._serve_thread.join()
        self._httpd = self._serve_thread = None

    @property
    def base_url(self) -> str:
        """What to pass as the client's `base_url` (ends in `/v1`)."""
        if self._httpd is None:
            raise RuntimeError("FakeOpenAI is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a snapshot)."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_bodies(self) -> list[Any]:
        """The parsed bodies of the chat completion requests received so far."""
        return [request.body for request in self.requests if request.path == CHAT_COMPLETIONS_PATH]

    @property
    def queued(self) -> int:
        """How many scripted replies have not been consumed yet."""
        with self._lock:
            return len(self._queue)

    def enqueue(self, *replies: Reply | str) -> None:
        """Script the next chat completion replies; a str is shorthand for `Reply.text(str)`."""
        with self._lock:
            self._queue.extend(_as_reply(reply) for reply in replies)

    def set_default(self, responder: Responder) -> None:
        """Answer unscripted chat completions with `responder(request_body)` (a `Reply` or content text)."""
        with self._lock:
            self._default = responder

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            responder = self._default
        return _as_reply(responder(body))

    def _completion(self, reply: Reply, request_body: dict[str, Any]) -> dict[str, Any]:
        answer = reply.content if reply.content is not None else reply.refusal or ""
        prompt_tokens = reply.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = len(json.dumps(request_body.get("messages", []))) // CHARS_PER_TOKEN
        completion_tokens = reply.completion_tokens
        if completion_tokens is None:
            completion_tokens = len(answer) // CHARS_PER_TOKEN + 1
        return {
            "id": f"chatcmpl-fake{next(self._ids):06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request_body.get("model", self._model_ids[0]),
            "system_fingerprint": "fp_fake",
            "service_tier": "default",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": reply.content,
                        "refusal": reply.refusal,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
        }

    def _models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model, "object": "model", "created": 0, "owned_by": "openai"} for model in self._model_ids],
        }


def _as_reply(reply: Reply | str) -> Reply:
    return reply if isinstance(reply, Reply) else Reply.text(reply)


class _Server(ThreadingHTTPServer):
    """Tracks live connections so `stop` can close idle keep-alive sockets and join every handler thread."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, fake: FakeOpenAI):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        threading.current_thread().name = "fake-openai-handler"
        super().process_request_thread(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        """Wake handlers blocked reading an idle keep-alive connection or sleeping before a slow reply."""
        self.stopping.set()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client already closed it

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up mid-reply is expected, not a bug
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx's connection pool expects
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging; tests assert on `FakeOpenAI.requests` instead."""

    def _dispatch(self) -> None:
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = self.path.split("?", 1)[0]
        fake._record(
            RecordedRequest(
                method=self.command,
                path=path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                client_port=self.client_address[1],
            )
        )
        if (self.command, path) == ("GET", MODELS_PATH):
            self._send(200, fake._models())
        elif (self.command, path) != ("POST", CHAT_COMPLETIONS_PATH):
            message = f"Invalid URL ({self.command} {path})"
            self._send(404, error_body(message, error_type="invalid_request_error"))
        elif not isinstance(body, dict):
            message = "We could not parse the JSON body of your request."
            self._send(400, error_body(message, error_type="invalid_request_error"))
        else:
            self._reply(fake._next_reply(body), body)

    def _reply(self, reply: Reply, request_body: dict[str, Any]) -> None:
        if reply.delay_seconds and self.server.stopping.wait(reply.delay_seconds):
            self.close_connection = True
            return
        if reply.body is not None:
            body = reply.body
        elif 200 <= reply.status < 300:
            body = self.server.fake._completion(reply, request_body)
        else:
            body = error_body(f"HTTP {reply.status}", error_type="server_error" if reply.status >= 500 else "error")
        self._send(reply.status, body, reply.headers)

    def _send(self, status: int, body: Mapping[str, Any] | str, headers: Mapping[str, str] | None = None) -> None:
        payload = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
