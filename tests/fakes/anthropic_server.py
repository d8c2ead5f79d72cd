"""An Anthropic-compatible Messages endpoint on 127.0.0.1: each request gets the next scripted `usage` block.

Only what `langchain-anthropic`'s `ChatAnthropic` needs: `POST /v1/messages` answering one text block with the usage
object the test supplies (cache reads, cache writes split by TTL, thinking tokens), as one JSON message or, for a
request with `"stream": true`, as the Messages API's server-sent events.
"""

from __future__ import annotations

import http.server
import itertools
import json
import threading
from collections import deque
from typing import Any

ANSWER = ("Par", "is.")

# The fields of the API's `MessageDeltaUsage`: the cumulative counts a `message_delta` event repeats. The TTL split of
# cache writes (`cache_creation`) is not one of them; the stream reports it in `message_start` only.
_DELTA_USAGE_FIELDS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
    "output_tokens_details",
    "server_tool_use",
)


class FakeAnthropic:
    """Use as `with FakeAnthropic() as server:`, then `server.enqueue(usage)` before each call."""

    def __init__(self) -> None:
        self._usages: deque[dict[str, Any]] = deque()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-anthropic", daemon=True
        )

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The parsed bodies of the requests received so far, oldest first (a snapshot)."""
        with self._lock:
            return list(self._requests)

    def enqueue(self, usage: dict[str, Any]) -> None:
        with self._lock:
            self._usages.append(usage)

    def _message(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._requests.append(request)
            usage = self._usages.popleft()
        return {
            "id": f"msg_fake{next(self._ids):06d}",
            "type": "message",
            "role": "assistant",
            "model": request.get("model", "claude-sonnet-4-5"),
            "content": [{"type": "text", "text": "".join(ANSWER)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }

    def _events(self, request: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """The events of a streamed answer, in the order and shapes the Messages API sends them."""
        message = self._message(request)
        usage = message["usage"]
        # message_start carries the whole usage block known before generation, with a first output token count;
        # message_delta then repeats the cumulative counts and the final `output_tokens`.
        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        start["usage"].pop("output_tokens_details", None)
        delta_usage = {key: usage[key] for key in _DELTA_USAGE_FIELDS if key in usage}
        return [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            ("ping", {"type": "ping"}),
            *(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
                )
                for text in ANSWER
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": delta_usage,
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                if request.get("stream"):
                    events = server._events(request)
                    body = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()
                    content_type = "text/event-stream"
                else:
                    body = json.dumps(server._message(request)).encode()
                    content_type = "application/json"
                self.send_response(200)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler
