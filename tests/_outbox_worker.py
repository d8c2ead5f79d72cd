"""A process that fills an outbox and forwards it until it is killed: the subject of the kill -9 test.

    python -m tests._outbox_worker DB_PATH LANGSMITH_URL COUNT

Writes COUNT user ratings to the SQLite store at DB_PATH, prints "ready", then forwards to LANGSMITH_URL forever
with short leases and backoffs. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import sys
import threading
import uuid

import structlog

from langchain_llmmonitor.config import LangSmithConfig
from langchain_llmmonitor.core.records import UserFeedbackRecord
from langchain_llmmonitor.langsmith.forwarder import Forwarder
from langchain_llmmonitor.storage.store import Store
from langchain_llmmonitor.testing.langsmith_server import fast_client

LEASE_SECONDS = 1.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db_path")
    parser.add_argument("url")
    parser.add_argument("count", type=int)
    args = parser.parse_args()

    store = Store(args.db_path)
    for index in range(args.count):
        run_id = str(uuid.uuid4())
        store.add_user_feedback(
            UserFeedbackRecord(run_id=run_id, trace_id=run_id, score=index % 2, rating=str(index % 2), source="worker")
        )
    print("ready", flush=True)

    logger = structlog.wrap_logger(structlog.PrintLogger(sys.stderr), processors=[structlog.processors.JSONRenderer()])
    forwarder = Forwarder(
        store,
        client=fast_client(args.url, attempts=1, timeout_ms=(1_000, 2_000), auto_batch_tracing=False),
        config=LangSmithConfig(
            batch_size=5,
            poll_interval_seconds=0.02,
            base_backoff_seconds=0.05,
            max_backoff_seconds=0.2,
            lease_seconds=LEASE_SECONDS,
        ),
        logger=logger,
    )
    forwarder.start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
