"""An Anthropic-compatible Messages endpoint on 127.0.0.1: each request gets the next scripted `usage` block.

Only what `langchain-anthropic`'s `ChatAnthropic.invoke` needs: `POST /v1/messages` answering one text block with the
usage object the test supplies (cache reads, cache writes split by TTL, thinking tokens).
"""

from __future__ import annotations

import http.server
import itertools
import json
import threading
from collections import deque
from typing import Any


class FakeAnthropic:
    """Use as `with FakeAnthropic() as server:`, then `server.enqueue(usage)` before each call."""

    def __init__(self) -> None:
        self._usages: deque[dict[str, Any]] = deque()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-anthropic", daemon=True)

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

    def enqueue(self, usage: dict[str, Any]) -> None:
        with self._lock:
            self._usages.append(usage)

    def _message(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            usage = self._usages.popleft()
        return {
            "id": f"msg_fake{next(self._ids):06d}",
            "type": "message",
            "role": "assistant",
            "model": request.get("model", "claude-sonnet-4-5"),
            "content": [{"type": "text", "text": "Paris."}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                body = json.dumps(server._message(request)).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler
