"""A monitored demo app for the Prometheus end-to-end test, run as a subprocess: `python tests/_monitored_app.py`.

It serves `/metrics` on a free loopback port, prints `{"metrics_port": N}`, then reads commands from stdin, one a line:
`traffic N` (successful invokes), `stream N` (successful streams), `errors N` (invokes whose model call fails), `exit`.
After each command it prints one JSON line with its own running tally of what it did, kept independently of the
Monitor, so the test can compare what Prometheus scraped with what really happened.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

import structlog
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import ChatGeneration

from langchain_llmmonitor.demo.app import (
    QUESTIONS,
    DemoChatModel,
    ProviderOverloadedError,
    build_chain,
    build_retriever,
)
from langchain_llmmonitor.monitor import Monitor
from langchain_llmmonitor.ops.exposition import serve_metrics


class UsageTally(BaseCallbackHandler):
    """Sums the token usage the model reported, as LangChain hands it to any callback."""

    run_inline = True

    def __init__(self) -> None:
        super().__init__()
        self.tokens: Counter[str] = Counter()

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        for generations in response.generations:
            for generation in generations:
                usage = generation.message.usage_metadata if isinstance(generation, ChatGeneration) else None
                if usage:
                    self.tokens["prompt"] += usage["input_tokens"]
                    self.tokens["completion"] += usage["output_tokens"]


def main() -> None:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout carries the protocol
    monitor = Monitor()
    tally = UsageTally()
    config = {"callbacks": [monitor, tally]}
    retriever = build_retriever()
    healthy = build_chain(DemoChatModel(), retriever=retriever)
    failing = build_chain(DemoChatModel(error_rate=1.0), retriever=retriever)
    server = serve_metrics(monitor, port=0)
    done: Counter[str] = Counter()
    print(json.dumps({"metrics_port": server.port}), flush=True)

    for line in sys.stdin:
        command, _, count = line.strip().partition(" ")
        if command == "exit":
            break
        for index in range(int(count)):
            question = QUESTIONS[index % len(QUESTIONS)]
            if command == "traffic":
                healthy.invoke(question, config=config)
            elif command == "stream":
                for _ in healthy.stream(question, config=config):
                    pass
            elif command == "errors":
                try:
                    failing.invoke(question, config=config)
                except ProviderOverloadedError:
                    done["failed"] += 1
                    continue
                raise AssertionError("the failing model answered")
            else:
                raise ValueError(f"unknown command {command!r}")
            done["succeeded"] += 1
        tokens = {f"{kind}_tokens": total for kind, total in tally.tokens.items()}
        print(json.dumps({"command": command, **done, **tokens}), flush=True)
    server.stop()


if __name__ == "__main__":
    main()
