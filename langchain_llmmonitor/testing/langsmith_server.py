"""A local LangSmith-compatible HTTP server, so an app's tests can check the feedback and runs it sends to LangSmith
without a LangSmith account or network: the real `langsmith.Client` talks to it over real HTTP.

Why a server and not mocks: what breaks in production is the SDK's own machinery (background batching, zstd-compressed
multipart ingestion, transport retries, presigned tokens, stale keep-alive connections after an outage), and a mock of
the client skips all of it. This fake stores what it receives in memory, lets tests inspect it, and injects faults.

    with FakeLangSmith() as server:
        client = fast_client(server.url)
        client.create_feedback(run_id, "thumbs", score=1, trace_id=trace_id, session_id=project_id)
        client.flush()
        assert server.feedback[0]["score"] == 1

As a separate process (`python -m langchain_llmmonitor.testing.langsmith_server --port 0` prints its URL; its state is
served under `/_test/`), driven from tests by `FakeLangSmithProcess`, which can also kill it outright.

What the SDK (langsmith 0.15.1) does here, and how this fake answers:
- `GET /info` carries ALL keys of `batch_ingest_config` (a partial one kills the SDK's sender thread), a version above
  0.8.10 and `instance_flags.zstd_compression_enabled`. With it on (the default, as on LangSmith) the SDK sends runs and
  queued feedback as zstd-compressed `multipart/form-data` to `POST /runs/multipart`; the fake decompresses it. Runs
  traced before the SDK's sender thread has read `/info` (until `client.compressed_traces` is set) still go out as
  plain multipart. `zstd=False` gets plain multipart only; `multipart=False` makes the SDK use `POST /runs/batch` for
  runs and send all feedback synchronously to `POST /feedback`.
- `Client.create_project` posts to `POST /sessions`, answered 409 when the name exists (as LangSmith does: the SDK's
  own pytest plugin reads the project on `LangSmithConflictError`); `?upsert=true` returns the existing one instead.
- `Client.create_feedback` is queued for the background sender only when given `trace_id` (and the server is multipart
  capable, version >= 0.8.10); otherwise it is a synchronous `POST /feedback`.
- A repeated feedback id is stored once; the attempt is appended to `server.duplicates` and answered 200 with the stored
  feedback. Why not 409: the synchronous path raises `LangSmithConflictError` on 409 (it retries only 404), so a retry
  of a POST whose response was lost would surface as an error although the feedback exists; the multipart path treats
  409 as success either way. `duplicate_feedback_status=409` emulates a strict server.
- Presigned tokens: a token created with a feedback id (`create_presigned_feedback_token` always sends one) upserts that
  feedback on each submission, so a user changing a thumbs-up to a thumbs-down leaves one feedback; tokens created in
  bulk (no id) create a new feedback per submission. This is the fake's choice, not verified against LangSmith.
- Datasets: `Client.create_dataset` posts to `POST /datasets` (a taken name is 409, as on LangSmith);
  `read_dataset`/`has_dataset` read `GET /datasets?name=` (an empty list means not found) or `GET /datasets/{id}`.
  `Client.create_examples` reads `instance_flags.dataset_examples_multipart_enabled` (on by default, as on LangSmith):
  on, it posts `multipart/form-data` to `POST /v1/platform/datasets/{id}/examples` (parts `<id>` with metadata, split
  and created_at, `<id>.inputs`, `<id>.outputs`, `<id>.attachment.<name>`); off, a JSON list to `POST /examples/bulk`.
  Either way a batch is stored whole or not at all: an unknown dataset is 404 and an example id already stored (or
  twice in the batch) is 409 -- the fake's choice for a repeated id, not verified against LangSmith.
  `Client.list_examples` pages `GET /examples` by offset, filtered by `dataset`, `id`, `splits` and `metadata`; the
  filter language and `as_of` get 422.
- `Client.list_runs` (deprecated in 0.15 for `client.runs.query`, which needs a server >= 0.16) resolves a project name
  with `GET /sessions?name=` and pages `POST /runs/query` by cursor; the fake answers the common filters (session,
  is_root, start_time, id, trace, error, run_type), ignores `select`, and refuses the filter language with 422.

Keeping the SDK from retrying for minutes in tests (`fast_client` does the first two):
- `retry_config`: the transport (urllib3) retries 408/425/429/5xx and connection errors 3 times with 0.5 s exponential
  backoff, honouring `Retry-After`. `fast_client` uses `attempts - 1` retries without backoff.
- `timeout_ms=(connect, read)`: defaults are 10 s / 60 s; background sends use their own (3 s, 10 s).
- `create_feedback(..., stop_after_attempt=10)` is the synchronous default: on connection errors, 404, 408 and 500 it
  sleeps 2**i s between attempts (and Retry-After * 2**i on 429). Pass `stop_after_attempt=1`; 503 is never retried
  there, only by the transport.
- Background multipart sends make 3 immediate attempts, then drop the batch and call `tracing_error_callback`.
- `langsmith.utils.get_env_var` is lru-cached: after changing `LANGSMITH_*` variables call
  `langsmith.utils.get_env_var.cache_clear()`. `fast_client` passes URL and key explicitly.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import http.server
import io
import json
import re
import select
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import zstandard  # no extra dependency: every langsmith since 0.3 requires it to compress traces

if TYPE_CHECKING:
    from langsmith import Client

SERVER_VERSION = "0.12.0"
TENANT_ID = "00000000-0000-4000-8000-00000000fa4e"
DEFAULT_PROJECT = "default"
BATCH_INGEST_CONFIG = {
    "use_multipart_endpoint": True,
    "size_limit": 100,
    "size_limit_bytes": 20_971_520,
    "scale_up_qsize_trigger": 1000,
    "scale_up_nthreads_limit": 16,
    "scale_down_nempty_trigger": 4,
}
MAX_PAGE_SIZE = 100
DEFAULT_TOKEN_LIFETIME = datetime.timedelta(hours=3)
# `POST /runs/query` (what `Client.list_runs` calls) answers these filters; others get 422 rather than a silently
# unfiltered list. Runs come newest first, as on LangSmith, paged by an opaque cursor (here: the offset).
RUN_QUERY_FILTERS = frozenset(
    {"session", "is_root", "start_time", "id", "trace", "error", "run_type", "limit", "cursor", "select"}
)
DATASET_QUERY_FILTERS = frozenset({"name", "name_contains", "id", "data_type", "limit", "offset"})
DATASET_DATA_TYPES = frozenset({"kv", "llm", "chat"})
EXAMPLE_QUERY_FILTERS = frozenset(
    {"dataset", "id", "splits", "metadata", "limit", "offset", "inline_s3_urls", "select", "exclude_default_fields"}
)
RUN_PART_FIELDS = frozenset({"inputs", "outputs", "events", "extra", "error", "serialized"})
FEEDBACK_EDITABLE_FIELDS = ("score", "value", "correction", "comment")
CONTROL_PREFIX = "/_test/"
# Reachable without an API key: a browser holding only a presigned URL submits feedback through these.
PUBLIC_ENDPOINTS = frozenset({"GET /info", "POST /feedback/tokens/{id}", "GET /feedback/tokens/{id}"})


class _HttpError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    params: dict[str, list[str]]
    headers: Any
    body: bytes

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.params.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as error:
            raise _HttpError(422, f"body is not JSON: {error}") from error


@dataclass(frozen=True)
class _Reply:
    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)


class RequestRecord(NamedTuple):
    """One API request as the fake answered it; `encoding` is the request's Content-Encoding ("" when none), `at` the
    `time.monotonic()` of its arrival (so tests can tell what was asked during a backoff)."""

    endpoint: str
    status: int
    encoding: str
    at: float


@dataclass
class _Fault:
    remaining: int
    status: int
    path: str | None
    retry_after: float


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def _uuid_str(value: Any, name: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as error:
        raise _HttpError(422, f"{name} is not a UUID: {value!r}") from error


def _zstd_decompress(data: bytes) -> bytes:
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
        return reader.read()
    except zstandard.ZstdError as error:
        raise _HttpError(400, f"bad zstd body: {error}") from error


def _parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str, bytes]]:
    """(name, content type, data) of each part of a multipart/form-data body, as the SDK encodes it."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or not match:
        raise _HttpError(422, f"expected multipart/form-data with a boundary, got {content_type!r}")
    delimiter = b"--" + match.group(1).encode()
    segments = body.split(delimiter)
    if len(segments) < 2 or not segments[-1].startswith(b"--"):
        raise _HttpError(422, "multipart body has no closing boundary")
    parts = []
    for segment in segments[1:-1]:
        head, separator, data = segment.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            raise _HttpError(422, "multipart part without headers")
        headers = {
            key.strip().lower(): value.strip()
            for key, _, value in (line.partition(":") for line in head.decode().split("\r\n"))
        }
        name = re.search(r'name="([^"]*)"', headers.get("content-disposition", ""))
        if not name:
            raise _HttpError(422, "multipart part without a name")
        parts.append((name.group(1), headers.get("content-type", ""), data.removesuffix(b"\r\n")))
    return parts


def _json_part(name: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as error:
        raise _HttpError(422, f"part {name} is not JSON: {error}") from error


def _aware(moment: str) -> datetime.datetime:
    """An ISO time as sent by the SDK; a naive one is UTC."""
    try:
        parsed = datetime.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except (TypeError, ValueError) as error:
        raise _HttpError(422, f"not an ISO time: {moment!r}") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _expiry(spec: dict[str, Any]) -> datetime.datetime:
    if spec.get("expires_at"):
        expires_at = datetime.datetime.fromisoformat(spec["expires_at"])
        return expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=datetime.UTC)
    lifetime = datetime.timedelta(**spec["expires_in"]) if spec.get("expires_in") else DEFAULT_TOKEN_LIFETIME
    return datetime.datetime.now(datetime.UTC) + lifetime


class _HttpServer(http.server.ThreadingHTTPServer):
    """One daemon thread per connection, tracked so that closing cuts and joins them all: stop() leaks nothing, and a
    server a test forgot to stop never holds up interpreter exit."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: FakeLangSmith) -> None:
        self.fake = fake
        self._connections: dict[Any, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"{self.fake.thread_name_prefix}-connection",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is not a server bug
            super().handle_error(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        with self._connections_lock:
            connections = dict(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        for thread in connections.values():
            thread.join()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; with Nagle on, keep-alive requests stall ~40 ms on delayed ACKs.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        request = _Request(self.command, split.path, parse_qs(split.query), self.headers, body)
        reply = self.server.fake._respond(request)
        if reply is None:
            self.close_connection = True
            return
        data = json.dumps(reply.payload).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionError("client closed the connection mid-body")
        return body

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request log on FakeLangSmith is what tests read."""


_Route = tuple[str, re.Pattern[str], str, Callable[..., _Reply]]


class FakeLangSmith:
    """In-memory LangSmith API on 127.0.0.1 with fault injection; start/stop it, or use it as a context manager.

    Fault rules, delays and state survive stop()/start(), which rebinds the same port: an outage and its recovery.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        zstd: bool = True,
        multipart: bool = True,
        dataset_examples_multipart: bool = True,
        duplicate_feedback_status: int = 200,
    ) -> None:
        if duplicate_feedback_status not in (200, 409):
            raise ValueError("duplicate_feedback_status must be 200 (idempotent) or 409 (conflict)")
        self._host = host
        self._port = port
        self._api_key = api_key
        self._zstd = zstd
        self._multipart = multipart
        self._dataset_examples_multipart = dataset_examples_multipart
        self._duplicate_feedback_status = duplicate_feedback_status
        self._state = threading.Condition(threading.RLock())
        self._lifecycle = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HttpServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._faults: list[_Fault] = []
        self._delay: tuple[float, str | None] = (0.0, None)
        self._routes = self._build_routes()
        self._reset_state()

    # -- lifecycle ---------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def thread_name_prefix(self) -> str:
        """Every thread this server runs is named with it, so tests can prove none outlives stop()."""
        return f"fake-langsmith-{self._port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> FakeLangSmith:
        """Bind (the same port again after a stop) and serve in a background thread."""
        with self._lifecycle:
            if self._httpd is not None:
                raise RuntimeError("FakeLangSmith is already running")
            self._stopping.clear()
            httpd = _HttpServer((self._host, self._port), self)
            self._port = httpd.server_address[1]
            self._httpd = httpd
            self._serve_thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{self.thread_name_prefix}-serve",
                daemon=True,
            )
            self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Refuse new connections, cut open ones (clients see an outage), and join every server thread."""
        with self._lifecycle:
            httpd, self._httpd = self._httpd, None
            if httpd is None:
                return
            self._stopping.set()
            httpd.shutdown()
            httpd.server_close()
            assert self._serve_thread is not None
            self._serve_thread.join()

    def __enter__(self) -> FakeLangSmith:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- faults ------------------------------------------------------------------------------------------------------

    def fail_next(self, n: int = 1, *, status: int = 503, path: str | None = None, retry_after: float = 0) -> None:
        """Answer the next `n` requests whose URL path starts with `path` (any when None) with `status`; store nothing.

        429 and 503 carry `Retry-After: retry_after`, which the SDK's transport honours.
        """
        with self._state:
            self._faults.append(_Fault(remaining=n, status=status, path=path, retry_after=retry_after))

    def clear_faults(self) -> None:
        """Drop the faults still pending, keeping all data: an injected outage is over."""
        with self._state:
            self._faults.clear()

    def set_delay(self, seconds: float, *, path: str | None = None) -> None:
        """Hold each request (whose path starts with `path`) `seconds` before handling it; 0 turns it off."""
        with self._state:
            self._delay = (seconds, path)

    def reset(self) -> None:
        """Forget all stored data, the request log and pending faults."""
        with self._state:
            self._faults.clear()
            self._delay = (0.0, None)
            self._reset_state()

    # -- inspection (snapshots, safe to read while requests arrive) --------------------------------------------------

    @property
    def feedback(self) -> list[dict[str, Any]]:
        """Stored feedback in arrival order."""
        with self._state:
            return copy.deepcopy(list(self._feedback.values()))

    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        """Run id -> run merged from its post and patches (trace_id, parent_run_id, inputs, outputs, end_time...)."""
        with self._state:
            return copy.deepcopy(self._runs)

    @property
    def sessions(self) -> list[dict[str, Any]]:
        with self._state:
            return copy.deepcopy(list(self._sessions.values()))

    @property
    def datasets(self) -> list[dict[str, Any]]:
        """Stored datasets in creation order, as `GET /datasets/{id}` serves them (with `example_count`)."""
        with self._state:
            return [self._dataset_view(dataset) for dataset in self._datasets.values()]

    @property
    def examples(self) -> list[dict[str, Any]]:
        """Stored examples in arrival order: id, dataset_id, inputs, outputs, metadata, split, source_run_id..."""
        with self._state:
            return copy.deepcopy(list(self._examples.values()))

    @property
    def tokens(self) -> list[dict[str, Any]]:
        """Presigned feedback tokens: id, url, expires_at, run_id, feedback_key, feedback_id."""
        with self._state:
            return copy.deepcopy(list(self._tokens.values()))

    @property
    def duplicates(self) -> list[dict[str, Any]]:
        """Repeated creations that were not stored again: {"kind": "feedback"|"run", "id", "endpoint"}."""
        with self._state:
            return copy.deepcopy(self._duplicates)

    @property
    def request_log(self) -> list[RequestRecord]:
        """Every API request in arrival order, e.g. ("POST /feedback", 503, ""); `/_test/` calls excluded."""
        with self._state:
            return list(self._request_log)

    @property
    def errors(self) -> list[str]:
        """Tracebacks of requests the fake itself failed on (answered 500): a gap in the fake, not an injected fault."""
        with self._state:
            return list(self._errors)

    def count(self, endpoint: str, *, status: int | None = None) -> int:
        """Requests to `endpoint` ("METHOD /template", e.g. "PATCH /feedback/{id}"), optionally with that status."""
        return sum(1 for record in self.request_log if record.endpoint == endpoint and status in (None, record.status))

    def wait_until(self, predicate: Callable[[], bool], *, timeout: float = 5.0) -> bool:
        """Block until `predicate()` holds (re-checked whenever data is stored), or `timeout` passes.

        The predicate runs under the server's lock: let it read this server's state, nothing slow.
        """
        deadline = time.monotonic() + timeout
        with self._state:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._state.wait(min(remaining, 0.1))
            return True

    # -- request handling --------------------------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._feedback: dict[str, dict[str, Any]] = {}
        self._runs: dict[str, dict[str, Any]] = {}
        self._posted_run_ids: set[str] = set()
        self._tokens: dict[str, dict[str, Any]] = {}
        self._duplicates: list[dict[str, Any]] = []
        self._request_log: list[RequestRecord] = []
        self._errors: list[str] = []
        self._sessions: dict[str, dict[str, Any]] = {}
        self._datasets: dict[str, dict[str, Any]] = {}
        self._examples: dict[str, dict[str, Any]] = {}
        self._ensure_session(DEFAULT_PROJECT)

    def _build_routes(self) -> list[_Route]:
        table: list[tuple[str, str, Callable[..., _Reply]]] = [
            ("GET", "/info", self._info),
            ("POST", "/runs/multipart", self._ingest_multipart),
            ("POST", "/runs/batch", self._ingest_batch),
            ("POST", "/runs/query", self._query_runs),
            ("POST", "/runs", self._create_run),
            ("PATCH", "/runs/{id}", self._update_run),
            ("GET", "/runs/{id}", self._read_run),
            ("POST", "/feedback/tokens", self._create_tokens),
            ("GET", "/feedback/tokens", self._list_tokens),
            ("POST", "/feedback/tokens/{id}", self._submit_token_json),
            ("GET", "/feedback/tokens/{id}", self._submit_token_query),
            ("POST", "/feedback", self._create_feedback),
            ("GET", "/feedback", self._list_feedback),
            ("GET", "/feedback/{id}", self._read_feedback),
            ("PATCH", "/feedback/{id}", self._update_feedback),
            ("DELETE", "/feedback/{id}", self._delete_feedback),
            ("GET", "/sessions", self._list_sessions),
            ("POST", "/sessions", self._create_session),
            ("GET", "/sessions/{id}", self._read_session),
            ("GET", "/datasets", self._list_datasets),
            ("POST", "/datasets", self._create_dataset),
            ("GET", "/datasets/{id}", self._read_dataset),
            ("POST", "/v1/platform/datasets/{id}/examples", self._create_examples_multipart),
            ("POST", "/examples/bulk", self._create_examples_bulk),
            ("GET", "/examples", self._list_examples),
        ]
        return [
            (method, re.compile(template.replace("{id}", "(?P<id>[^/]+)")), f"{method} {template}", handler)
            for method, template, handler in table
        ]

    def _respond(self, request: _Request) -> _Reply | None:
        """The reply to one request, or None when an outage began while it waited (the connection is then cut)."""
        arrived = time.monotonic()
        if request.path.startswith(CONTROL_PREFIX):
            return self._guarded(lambda: self._control(request))
        endpoint, call = f"{request.method} {request.path}", None
        for method, pattern, name, handler in self._routes:
            if method == request.method and (match := pattern.fullmatch(request.path)):
                endpoint, call = name, (lambda h=handler, m=match: h(request, **m.groupdict()))
                break
        seconds, delayed_path = self._delay
        if seconds and (delayed_path is None or request.path.startswith(delayed_path)):
            self._stopping.wait(seconds)
        if self._stopping.is_set():
            return None
        reply = self._injected_fault(request.path)
        if (
            reply is None
            and self._api_key is not None
            and endpoint not in PUBLIC_ENDPOINTS
            and request.headers.get("x-api-key") != self._api_key
        ):
            reply = _Reply(401, {"detail": "Invalid token"})
        if reply is None:
            reply = self._guarded(call) if call else _Reply(404, {"detail": "Not Found"})
        with self._state:
            encoding = request.headers.get("Content-Encoding", "").lower()
            self._request_log.append(RequestRecord(endpoint, reply.status, encoding, arrived))
            self._state.notify_all()
        return reply

    def _guarded(self, call: Callable[[], _Reply]) -> _Reply:
        try:
            return call()
        except _HttpError as error:
            return _Reply(error.status, {"detail": error.detail})
        except Exception as error:  # noqa: BLE001 - any bug of the fake becomes a 500 the test can see
            with self._state:
                self._errors.append(traceback.format_exc())
            return _Reply(500, {"detail": f"fake LangSmith bug: {error!r}"})

    def _injected_fault(self, path: str) -> _Reply | None:
        with self._state:
            for fault in self._faults:
                if fault.remaining > 0 and (fault.path is None or path.startswith(fault.path)):
                    fault.remaining -= 1
                    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.status in (429, 503) else {}
                    return _Reply(fault.status, {"detail": f"injected fault {fault.status}"}, headers)
        return None

    def _info(self, request: _Request) -> _Reply:
        return _Reply(
            200,
            {
                "version": SERVER_VERSION,
                "license_expiration_time": None,
                "batch_ingest_config": {**BATCH_INGEST_CONFIG, "use_multipart_endpoint": self._multipart},
                "instance_flags": {
                    "zstd_compression_enabled": self._zstd,
                    "dataset_examples_multipart_enabled": self._dataset_examples_multipart,
                },
            },
        )

    # runs

    def _ingest_multipart(self, request: _Request) -> _Reply:
        body = request.body
        if request.headers.get("Content-Encoding", "").lower() == "zstd":
            body = _zstd_decompress(body)
        operations = []
        for name, content_type, data in _parse_multipart(body, request.headers.get("Content-Type", "")):
            kind, _, rest = name.partition(".")
            target, _, detail = rest.partition(".")
            if kind in ("post", "patch") and detail in ("", *RUN_PART_FIELDS):
                operations.append((kind, _uuid_str(target, name), detail, _json_part(name, data)))
            elif kind == "feedback" and not detail:
                feedback = _json_part(name, data)
                self._check_feedback(feedback)
                operations.append((kind, _uuid_str(target, name), detail, feedback))
            elif kind == "attachment" and detail:
                operations.append((kind, _uuid_str(target, name), detail, {"content_type": content_type}))
            else:
                raise _HttpError(422, f"unexpected multipart part {name!r}")
        with self._state:
            for kind, target, detail, value in operations:
                if kind == "feedback":
                    self._store_feedback({**value, "id": target}, "POST /runs/multipart")
                elif kind == "attachment":
                    run = self._runs.setdefault(target, {"id": target})
                    run.setdefault("attachments", {})[detail] = value
                elif detail:
                    self._runs.setdefault(target, {"id": target})[detail] = value
                else:
                    self._store_run(kind, {**value, "id": target}, "POST /runs/multipart")
            self._state.notify_all()
        return _Reply(202, {"message": f"{len(operations)} parts ingested"})

    def _ingest_batch(self, request: _Request) -> _Reply:
        body = request.json()
        if not isinstance(body, dict) or not set(body) <= {"post", "patch"}:
            raise _HttpError(422, "expected {'post': [...], 'patch': [...]}")
        operations = [(kind, run) for kind in ("post", "patch") for run in body.get(kind) or []]
        for _, run in operations:
            if not isinstance(run, dict):
                raise _HttpError(422, "each run must be an object")
            _uuid_str(run.get("id"), "id")
        with self._state:
            for kind, run in operations:
                self._store_run(kind, run, "POST /runs/batch")
            self._state.notify_all()
        return _Reply(202, {"message": f"{len(operations)} runs ingested"})

    def _create_run(self, request: _Request) -> _Reply:
        run = request.json()
        if not isinstance(run, dict):
            raise _HttpError(422, "expected a run object")
        _uuid_str(run.get("id"), "id")
        with self._state:
            self._store_run("post", run, "POST /runs")
            self._state.notify_all()
        return _Reply(202, {"message": "Run created"})

    def _update_run(self, request: _Request, id: str) -> _Reply:
        update = request.json()
        if not isinstance(update, dict):
            raise _HttpError(422, "expected a run object")
        with self._state:
            self._store_run("patch", {**update, "id": _uuid_str(id, "run id")}, "PATCH /runs/{id}")
            self._state.notify_all()
        return _Reply(202, {"message": "Run updated"})

    def _read_run(self, request: _Request, id: str) -> _Reply:
        run_id = _uuid_str(id, "run id")
        with self._state:
            if run_id not in self._runs:
                raise _HttpError(404, "Run not found")
            run = copy.deepcopy(self._runs[run_id])
            children = [child["id"] for child in self._runs.values() if child.get("parent_run_id") == run_id]
        run.pop("attachments", None)  # LangSmith serves them as presigned `s3_urls`, which this fake has none of
        status = "error" if run.get("error") else "success" if run.get("end_time") else "pending"
        return _Reply(200, {"inputs": {}, "extra": {}, "status": status, **run, "child_run_ids": children})

    def _query_runs(self, request: _Request) -> _Reply:
        body = request.json() or {}
        if not isinstance(body, dict) or not set(body) <= RUN_QUERY_FILTERS:
            raise _HttpError(422, f"the fake answers only {sorted(RUN_QUERY_FILTERS)}, got {sorted(body)}")
        sessions = {_uuid_str(session, "session") for session in body.get("session") or []}
        ids = {_uuid_str(run_id, "id") for run_id in body.get("id") or []}
        trace = _uuid_str(body["trace"], "trace") if body.get("trace") else None
        since = _aware(body["start_time"]) if body.get("start_time") else None
        offset = int(body.get("cursor") or 0)
        limit = min(int(body.get("limit") or MAX_PAGE_SIZE), MAX_PAGE_SIZE)
        with self._state:
            views = [self._run_view(run) for run in self._runs.values() if run.get("start_time")]
        matches = [
            run
            for run in views
            if (not sessions or run.get("session_id") in sessions)
            and (not ids or run["id"] in ids)
            and (trace is None or run["trace_id"] == trace)
            and (body.get("is_root") is None or (run.get("parent_run_id") is None) == body["is_root"])
            and (body.get("error") is None or bool(run.get("error")) == body["error"])
            and (body.get("run_type") is None or run.get("run_type") == body["run_type"])
            and (since is None or _aware(run["start_time"]) >= since)
        ]
        matches.sort(key=lambda run: _aware(run["start_time"]), reverse=True)
        page = matches[offset : offset + limit]
        more = offset + limit < len(matches)
        return _Reply(200, {"runs": page, "cursors": {"next": str(offset + limit) if more else None}})

    def _run_view(self, stored: dict[str, Any]) -> dict[str, Any]:
        """A stored run as the API serves it: the fields `langsmith.schemas.Run` requires are always there."""
        run = copy.deepcopy(stored)
        run.pop("attachments", None)
        status = "error" if run.get("error") else "success" if run.get("end_time") else "pending"
        defaults = {"name": "", "run_type": "chain", "inputs": {}, "extra": {}, "trace_id": run["id"], "status": status}
        return {**defaults, **{key: value for key, value in run.items() if value is not None}}

    def _store_run(self, kind: str, body: dict[str, Any], endpoint: str) -> None:
        run_id = _uuid_str(body["id"], "id")
        run = self._runs.setdefault(run_id, {})
        if kind == "post":
            if run_id in self._posted_run_ids:
                self._duplicates.append({"kind": "run", "id": run_id, "endpoint": endpoint})
            self._posted_run_ids.add(run_id)
        run.update({key: value for key, value in body.items() if value is not None or key not in run})
        run["id"] = run_id
        if run.get("session_name") and not run.get("session_id"):
            run["session_id"] = self._ensure_session(run["session_name"])["id"]

    # feedback

    @staticmethod
    def _check_feedback(body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("key"), str) or not body["key"]:
            raise _HttpError(422, "feedback needs a non-empty 'key'")
        for name in ("id", "run_id", "trace_id", "session_id"):
            if body.get(name) is not None:
                _uuid_str(body[name], name)

    def _store_feedback(self, body: dict[str, Any], endpoint: str) -> tuple[int, dict[str, Any]]:
        """Store new feedback, or record a duplicate; returns (HTTP status to answer, the stored feedback)."""
        feedback_id = _uuid_str(body.get("id") or uuid.uuid4(), "id")
        if feedback_id in self._feedback:
            self._duplicates.append({"kind": "feedback", "id": feedback_id, "endpoint": endpoint})
            return self._duplicate_feedback_status, self._feedback[feedback_id]
        now = _now()
        feedback = {
            "run_id": None,
            "trace_id": None,
            "session_id": None,
            "score": None,
            "value": None,
            "comment": None,
            "correction": None,
            **{key: value for key, value in body.items() if value is not None},
            "id": feedback_id,
        }
        for name in ("run_id", "trace_id", "session_id"):
            if feedback[name] is not None:
                feedback[name] = _uuid_str(feedback[name], name)
        feedback.setdefault("feedback_source", {"type": "api", "metadata": {}})
        feedback.setdefault("created_at", now)
        feedback.setdefault("modified_at", now)
        run = self._runs.get(feedback["run_id"] or "")
        if run is not None:
            feedback["trace_id"] = feedback["trace_id"] or run.get("trace_id")
            feedback["session_id"] = feedback["session_id"] or run.get("session_id")
        self._feedback[feedback_id] = feedback
        return 200, feedback

    def _create_feedback(self, request: _Request) -> _Reply:
        body = request.json()
        self._check_feedback(body)
        with self._state:
            status, feedback = self._store_feedback(body, "POST /feedback")
            self._state.notify_all()
            if status == 409:
                raise _HttpError(409, f"Feedback {feedback['id']} already exists")
            return _Reply(status, copy.deepcopy(feedback))

    def _list_feedback(self, request: _Request) -> _Reply:
        limit = int(request.param("limit", str(MAX_PAGE_SIZE)))
        offset = int(request.param("offset", "0"))
        if not 1 <= limit <= MAX_PAGE_SIZE or offset < 0:
            raise _HttpError(422, f"limit must be 1..{MAX_PAGE_SIZE} and offset >= 0")
        runs = {_uuid_str(run, "run") for run in request.params.get("run", [])}
        sessions = {_uuid_str(session, "session") for session in request.params.get("session", [])}
        keys = set(request.params.get("key", []))
        # The SDK sends FeedbackSourceType members as str(), e.g. "FeedbackSourceType.API".
        sources = {source.rpartition(".")[2].lower() for source in request.params.get("source", [])}
        with self._state:
            matches = [
                feedback
                for feedback in self._feedback.values()
                if (not runs or feedback["run_id"] in runs)
                and (not sessions or feedback["session_id"] in sessions)
                and (not keys or feedback["key"] in keys)
                and (not sources or (feedback.get("feedback_source") or {}).get("type") in sources)
            ]
            return _Reply(200, copy.deepcopy(matches[offset : offset + limit]))

    def _feedback_by_id(self, id: str) -> dict[str, Any]:
        feedback = self._feedback.get(_uuid_str(id, "feedback id"))
        if feedback is None:
            raise _HttpError(404, "Feedback not found")
        return feedback

    def _read_feedback(self, request: _Request, id: str) -> _Reply:
        with self._state:
            return _Reply(200, copy.deepcopy(self._feedback_by_id(id)))

    def _update_feedback(self, request: _Request, id: str) -> _Reply:
        update = request.json()
        if not isinstance(update, dict) or not set(update) <= set(FEEDBACK_EDITABLE_FIELDS):
            raise _HttpError(422, f"only {FEEDBACK_EDITABLE_FIELDS} can be updated")
        with self._state:
            feedback = self._feedback_by_id(id)
            feedback.update(update, modified_at=_now())
            self._state.notify_all()
            return _Reply(200, copy.deepcopy(feedback))

    def _delete_feedback(self, request: _Request, id: str) -> _Reply:
        with self._state:
            del self._feedback[self._feedback_by_id(id)["id"]]
            self._state.notify_all()
        return _Reply(200, {})

    # presigned feedback tokens

    def _create_tokens(self, request: _Request) -> _Reply:
        body = request.json()
        specs = body if isinstance(body, list) else [body]
        for spec in specs:
            if not isinstance(spec, dict) or not spec.get("feedback_key"):
                raise _HttpError(422, "a token needs run_id and feedback_key")
            _uuid_str(spec.get("run_id"), "run_id")
        with self._state:
            tokens = [self._new_token(spec) for spec in specs]
        return _Reply(200, tokens if isinstance(body, list) else tokens[0])

    def _new_token(self, spec: dict[str, Any]) -> dict[str, Any]:
        token_id = str(uuid.uuid4())
        token = {
            "id": token_id,
            "url": f"{self.url}/feedback/tokens/{token_id}",
            "expires_at": _expiry(spec).isoformat(),
            "run_id": _uuid_str(spec["run_id"], "run_id"),
            "feedback_key": spec["feedback_key"],
            "feedback_id": _uuid_str(spec["id"], "id") if spec.get("id") else None,
            "feedback_config": spec.get("feedback_config"),
        }
        self._tokens[token_id] = token
        return copy.deepcopy(token)

    def _list_tokens(self, request: _Request) -> _Reply:
        run_id = _uuid_str(request.param("run_id"), "run_id")
        with self._state:
            return _Reply(200, [copy.deepcopy(t) for t in self._tokens.values() if t["run_id"] == run_id])

    def _submit_token_json(self, request: _Request, id: str) -> _Reply:
        body = request.json()
        if not isinstance(body, dict):
            raise _HttpError(422, "expected an object")
        return self._submit_token(id, body, "POST /feedback/tokens/{id}")

    def _submit_token_query(self, request: _Request, id: str) -> _Reply:
        values: dict[str, Any] = {name: request.param(name) for name in FEEDBACK_EDITABLE_FIELDS}
        if values["score"] is not None:
            try:
                values["score"] = float(values["score"])
            except ValueError as error:
                raise _HttpError(422, f"score is not a number: {values['score']!r}") from error
        return self._submit_token(id, values, "GET /feedback/tokens/{id}")

    def _submit_token(self, token_id: str, values: dict[str, Any], endpoint: str) -> _Reply:
        with self._state:
            token = self._tokens.get(_uuid_str(token_id, "token id"))
            if token is None:
                raise _HttpError(404, "Feedback ingest token not found")
            if datetime.datetime.fromisoformat(token["expires_at"]) < datetime.datetime.now(datetime.UTC):
                raise _HttpError(400, "Feedback ingest token has expired")
            edits = {name: values.get(name) for name in FEEDBACK_EDITABLE_FIELDS}
            existing = self._feedback.get(token["feedback_id"] or "")
            if existing is not None:
                existing.update(edits, modified_at=_now())
                feedback = existing
            else:
                body = {
                    "id": token["feedback_id"],
                    "run_id": token["run_id"],
                    "key": token["feedback_key"],
                    "feedback_source": {"type": "api", "metadata": values.get("metadata") or {}},
                    **edits,
                }
                feedback = self._store_feedback(body, endpoint)[1]
            self._state.notify_all()
            return _Reply(200, copy.deepcopy(feedback))

    # sessions (projects)

    def _ensure_session(self, name: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
        for session in self._sessions.values():
            if session["name"] == name:
                return session
        fields = fields or {}
        session = {
            "id": _uuid_str(fields.get("id") or uuid.uuid4(), "id"),
            "name": name,
            "tenant_id": TENANT_ID,
            "start_time": _now(),
            "end_time": None,
            "description": fields.get("description"),
            "extra": fields.get("extra"),
            "reference_dataset_id": fields.get("reference_dataset_id"),
        }
        self._sessions[session["id"]] = session
        return session

    def _session_view(self, session: dict[str, Any]) -> dict[str, Any]:
        run_count = sum(1 for run in self._runs.values() if run.get("session_id") == session["id"])
        return {**copy.deepcopy(session), "run_count": run_count}

    def _list_sessions(self, request: _Request) -> _Reply:
        limit = int(request.param("limit", str(MAX_PAGE_SIZE)))
        offset = int(request.param("offset", "0"))
        names = set(request.params.get("name", []))
        ids = {_uuid_str(session_id, "id") for session_id in request.params.get("id", [])}
        with self._state:
            matches = [
                self._session_view(session)
                for session in self._sessions.values()
                if (not names or session["name"] in names) and (not ids or session["id"] in ids)
            ]
        return _Reply(200, matches[offset : offset + limit])

    def _read_session(self, request: _Request, id: str) -> _Reply:
        with self._state:
            session = self._sessions.get(_uuid_str(id, "session id"))
            if session is None:
                raise _HttpError(404, "Session not found")
            return _Reply(200, self._session_view(session))

    def _create_session(self, request: _Request) -> _Reply:
        body = request.json()
        if not isinstance(body, dict) or not body.get("name"):
            raise _HttpError(422, "a session needs a name")
        upsert = (request.param("upsert") or "").lower() == "true"
        with self._state:
            if not upsert and any(session["name"] == body["name"] for session in self._sessions.values()):
                raise _HttpError(409, "Session already exists.")
            session = self._ensure_session(body["name"], body)
            return _Reply(200, self._session_view(session))

    # datasets and examples

    def _dataset_view(self, dataset: dict[str, Any]) -> dict[str, Any]:
        count = sum(1 for example in self._examples.values() if example["dataset_id"] == dataset["id"])
        return {**copy.deepcopy(dataset), "example_count": count}

    def _dataset_by_id(self, id: str) -> dict[str, Any]:
        dataset = self._datasets.get(_uuid_str(id, "dataset id"))
        if dataset is None:
            raise _HttpError(404, f"Dataset {id} not found")
        return dataset

    def _list_datasets(self, request: _Request) -> _Reply:
        if unknown := set(request.params) - DATASET_QUERY_FILTERS:
            raise _HttpError(422, f"the fake answers only {sorted(DATASET_QUERY_FILTERS)}, got {sorted(unknown)}")
        limit = int(request.param("limit", str(MAX_PAGE_SIZE)))
        offset = int(request.param("offset", "0"))
        if not 1 <= limit <= MAX_PAGE_SIZE or offset < 0:
            raise _HttpError(422, f"limit must be 1..{MAX_PAGE_SIZE} and offset >= 0")
        names = set(request.params.get("name", []))
        ids = {_uuid_str(dataset_id, "id") for dataset_id in request.params.get("id", [])}
        contains = request.param("name_contains")
        data_type = request.param("data_type")
        with self._state:
            matches = [
                self._dataset_view(dataset)
                for dataset in self._datasets.values()
                if (not names or dataset["name"] in names)
                and (not ids or dataset["id"] in ids)
                and (contains is None or contains in dataset["name"])
                and (data_type is None or dataset["data_type"] == data_type)
            ]
        return _Reply(200, matches[offset : offset + limit])

    def _read_dataset(self, request: _Request, id: str) -> _Reply:
        with self._state:
            return _Reply(200, self._dataset_view(self._dataset_by_id(id)))

    def _create_dataset(self, request: _Request) -> _Reply:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"].strip():
            raise _HttpError(422, "a dataset needs a non-empty name")
        if body.get("data_type", "kv") not in DATASET_DATA_TYPES:
            raise _HttpError(422, f"data_type must be one of {sorted(DATASET_DATA_TYPES)}")
        now = _now()
        with self._state:
            if any(dataset["name"] == body["name"] for dataset in self._datasets.values()):
                raise _HttpError(409, "Dataset with this name already exists.")
            dataset = {
                "id": _uuid_str(body.get("id") or uuid.uuid4(), "id"),
                "name": body["name"],
                "description": body.get("description"),
                "data_type": body.get("data_type", "kv"),
                "created_at": now,
                "modified_at": now,
                "tenant_id": TENANT_ID,
                "session_count": 0,
                "extra": body.get("extra"),
                "metadata": (body.get("extra") or {}).get("metadata"),
                "inputs_schema_definition": body.get("inputs_schema_definition"),
                "outputs_schema_definition": body.get("outputs_schema_definition"),
                "transformations": body.get("transformations"),
            }
            self._datasets[dataset["id"]] = dataset
            self._state.notify_all()
            return _Reply(200, self._dataset_view(dataset))

    def _create_examples_multipart(self, request: _Request, id: str) -> _Reply:
        body = request.body
        if request.headers.get("Content-Encoding", "").lower() == "zstd":
            body = _zstd_decompress(body)
        examples: dict[str, dict[str, Any]] = {}
        for name, content_type, data in _parse_multipart(body, request.headers.get("Content-Type", "")):
            target, _, detail = name.partition(".")
            example = examples.setdefault(_uuid_str(target, name), {})
            if not detail:
                example.update(_json_part(name, data), id=target)
            elif detail in ("inputs", "outputs"):
                example[detail] = _json_part(name, data)
            elif detail.startswith("attachment.") and detail != "attachment.":
                example.setdefault("attachments", {})[detail.partition(".")[2]] = {"content_type": content_type}
            else:
                raise _HttpError(422, f"unexpected multipart part {name!r}")
        if any("id" not in example for example in examples.values()):
            raise _HttpError(422, "each example needs a part named by its id (its metadata, split, created_at)")
        stored = self._store_examples(id, list(examples.values()))
        return _Reply(
            201, {"count": len(stored), "example_ids": [example["id"] for example in stored], "as_of": _now()}
        )

    def _create_examples_bulk(self, request: _Request) -> _Reply:
        body = request.json()
        if not isinstance(body, list) or not all(isinstance(example, dict) for example in body):
            raise _HttpError(422, "expected a list of example objects")
        if len({str(example.get("dataset_id")) for example in body}) > 1:
            raise _HttpError(422, "the fake takes one dataset per bulk request, as the SDK sends it")
        if not body:
            return _Reply(200, [])
        return _Reply(200, self._store_examples(str(body[0].get("dataset_id")), body))

    def _store_examples(self, dataset_id: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Validate the whole batch, then store it: a bad or repeated example stores none of them."""
        now = _now()
        with self._state:
            dataset = self._dataset_by_id(dataset_id)
            examples = [self._new_example(dataset["id"], body, now) for body in bodies]
            ids = [example["id"] for example in examples]
            repeated = sorted({i for i in ids if i in self._examples or ids.count(i) > 1})
            if repeated:
                raise _HttpError(409, f"Examples already exist: {', '.join(repeated)}")
            for example in examples:
                self._examples[example["id"]] = example
            self._state.notify_all()
            return copy.deepcopy(examples)

    @staticmethod
    def _new_example(dataset_id: str, body: dict[str, Any], now: str) -> dict[str, Any]:
        for name in ("inputs", "outputs", "metadata"):
            if body.get(name) is not None and not isinstance(body[name], dict):
                raise _HttpError(422, f"example {name} must be an object")
        split = body.get("split") or "base"
        return {
            "id": _uuid_str(body.get("id") or uuid.uuid4(), "id"),
            "dataset_id": dataset_id,
            "inputs": body.get("inputs") or {},
            "outputs": body.get("outputs"),
            "metadata": body.get("metadata"),
            "split": [split] if isinstance(split, str) else list(split),
            "source_run_id": _uuid_str(body["source_run_id"], "source_run_id") if body.get("source_run_id") else None,
            "attachments": body.get("attachments"),
            "created_at": body.get("created_at") or now,
            "modified_at": now,
        }

    def _list_examples(self, request: _Request) -> _Reply:
        if unknown := set(request.params) - EXAMPLE_QUERY_FILTERS:
            raise _HttpError(422, f"the fake answers only {sorted(EXAMPLE_QUERY_FILTERS)}, got {sorted(unknown)}")
        limit = int(request.param("limit", str(MAX_PAGE_SIZE)))
        offset = int(request.param("offset", "0"))
        if not 1 <= limit <= MAX_PAGE_SIZE or offset < 0:
            raise _HttpError(422, f"limit must be 1..{MAX_PAGE_SIZE} and offset >= 0")
        ids = {_uuid_str(example_id, "id") for example_id in request.params.get("id", [])}
        splits = set(request.params.get("splits", []))
        try:
            metadata = json.loads(request.param("metadata") or "{}")
        except ValueError as error:
            raise _HttpError(422, f"metadata is not JSON: {error}") from error
        if not isinstance(metadata, dict):
            raise _HttpError(422, "metadata must be a JSON object")
        with self._state:
            dataset_id = self._dataset_by_id(request.param("dataset"))["id"] if request.param("dataset") else None
            matches = [
                self._example_view(example)
                for example in self._examples.values()
                if (dataset_id is None or example["dataset_id"] == dataset_id)
                and (not ids or example["id"] in ids)
                and (not splits or splits & set(example["split"]))
                and all((example["metadata"] or {}).get(key) == value for key, value in metadata.items())
            ]
        return _Reply(200, matches[offset : offset + limit])

    @staticmethod
    def _example_view(stored: dict[str, Any]) -> dict[str, Any]:
        """An example as the API serves it: attachments would be presigned URLs, which this fake has none of."""
        example = copy.deepcopy(stored)
        example.pop("attachments", None)
        example.pop("split", None)
        return example

    # control API for a standalone process

    def _control(self, request: _Request) -> _Reply:
        action = request.path.removeprefix(CONTROL_PREFIX)
        if request.method == "GET" and action == "feedback":
            return _Reply(200, self.feedback)
        if request.method == "GET" and action == "runs":
            return _Reply(200, self.runs)
        if request.method == "GET" and action == "datasets":
            return _Reply(200, self.datasets)
        if request.method == "GET" and action == "examples":
            return _Reply(200, self.examples)
        if request.method == "GET" and action == "state":
            return _Reply(200, self._snapshot())
        body = request.json() or {}
        if request.method == "POST" and action == "fail_next":
            self.fail_next(
                int(body.get("n", 1)),
                status=int(body.get("status", 503)),
                path=body.get("path"),
                retry_after=float(body.get("retry_after", 0)),
            )
        elif request.method == "POST" and action == "clear_faults":
            self.clear_faults()
        elif request.method == "POST" and action == "delay":
            self.set_delay(float(body.get("seconds", 0)), path=body.get("path"))
        elif request.method == "POST" and action == "reset":
            self.reset()
        else:
            raise _HttpError(404, f"unknown control call {request.method} {request.path}")
        return _Reply(200, {})

    def _snapshot(self) -> dict[str, Any]:
        with self._state:
            return {
                "feedback": self.feedback,
                "runs": self.runs,
                "sessions": self.sessions,
                "datasets": self.datasets,
                "examples": self.examples,
                "tokens": self.tokens,
                "duplicates": self.duplicates,
                "request_log": self.request_log,
                "errors": self.errors,
            }


def fast_client(
    url: str, *, api_key: str = "test", attempts: int = 2, timeout_ms: int | tuple[int, int] = 3_000, **kwargs: Any
) -> Client:
    """A real `langsmith.Client` for `url` that gives up in seconds: `attempts` tries per request, no backoff."""
    # Imported here so the standalone server process does not pay for importing the SDK.
    from langsmith import Client
    from langsmith.utils import LangSmithRetry

    retry = LangSmithRetry(
        total=attempts - 1,
        backoff_factor=0,
        status_forcelist=[408, 425, 429, 500, 502, 503, 504],
        allowed_methods=None,
        raise_on_redirect=False,
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    return Client(api_url=url, api_key=api_key, retry_config=retry, timeout_ms=timeout_ms, **kwargs)


class FakeLangSmithProcess:
    """The fake in a child process (`python -m langchain_llmmonitor.testing.langsmith_server`), inspected over its
    `/_test/` API.

    For tests where the server must outlive, or die independently of, the test process: `kill()` is a crash,
    `start()` afterwards brings it back on the same port with empty state.
    """

    def __init__(self, *, port: int = 0, args: Sequence[str] = (), startup_timeout: float = 15.0) -> None:
        self._port = port
        self._args = list(args)
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> FakeLangSmithProcess:
        module = "langchain_llmmonitor.testing.langsmith_server"
        command = [sys.executable, "-m", module, "--port", str(self._port), *self._args]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], self._startup_timeout)
        line = process.stdout.readline().strip() if ready else ""
        if not line.startswith("http://"):
            process.kill()
            process.wait()
            raise RuntimeError(f"fake LangSmith process did not start (said {line!r}, exit {process.poll()})")
        self._process = process
        self._port = int(line.rpartition(":")[2])
        return self

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM)."""
        self._end(kill=False)

    def kill(self) -> None:
        """Crash it (SIGKILL): connections die mid-flight, in-memory state is lost."""
        self._end(kill=True)

    def _end(self, *, kill: bool) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()

    def __enter__(self) -> FakeLangSmithProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _call(self, method: str, action: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{CONTROL_PREFIX}{action}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with self._opener.open(request, timeout=10) as response:
            return json.loads(response.read())

    def state(self) -> dict[str, Any]:
        """feedback, runs, sessions, datasets, examples, tokens, duplicates, request_log and errors, as `FakeLangSmith`
        exposes them."""
        return self._call("GET", "state")

    @property
    def feedback(self) -> list[dict[str, Any]]:
        return self._call("GET", "feedback")

    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        return self._call("GET", "runs")

    @property
    def datasets(self) -> list[dict[str, Any]]:
        return self._call("GET", "datasets")

    @property
    def examples(self) -> list[dict[str, Any]]:
        return self._call("GET", "examples")

    def fail_next(self, n: int = 1, *, status: int = 503, path: str | None = None, retry_after: float = 0) -> None:
        self._call("POST", "fail_next", {"n": n, "status": status, "path": path, "retry_after": retry_after})

    def clear_faults(self) -> None:
        self._call("POST", "clear_faults", {})

    def set_delay(self, seconds: float, *, path: str | None = None) -> None:
        self._call("POST", "delay", {"seconds": seconds, "path": path})

    def reset(self) -> None:
        self._call("POST", "reset", {})

    def wait_until(self, predicate: Callable[[], bool], *, timeout: float = 5.0) -> bool:
        """Poll `predicate()` (which may read this object over HTTP) until it holds or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="LangSmith-compatible fake API server for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port; the URL is printed on stdout")
    parser.add_argument("--api-key", default=None, help="when set, requests without this x-api-key get 401")
    parser.add_argument("--no-zstd", action="store_true", help="do not offer zstd-compressed run ingestion")
    parser.add_argument("--no-multipart", action="store_true", help="make the SDK use /runs/batch")
    parser.add_argument(
        "--no-dataset-examples-multipart", action="store_true", help="make the SDK create examples via /examples/bulk"
    )
    parser.add_argument("--duplicate-feedback-status", type=int, choices=(200, 409), default=200)
    args = parser.parse_args(argv)
    server = FakeLangSmith(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        zstd=not args.no_zstd,
        multipart=not args.no_multipart,
        dataset_examples_multipart=not args.no_dataset_examples_multipart,
        duplicate_feedback_status=args.duplicate_feedback_status,
    ).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(server.url, flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()


if __name__ == "__main__":
    main()
