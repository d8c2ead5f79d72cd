"""An application process for the durability tests, on a store given by URL or path.

python -m tests._durable_app STORE kill N     answer N sampled questions with a slow judge, print "stored" once every
                                              job is in the store, then wait to be killed (kill -9)
python -m tests._durable_app STORE exit N     the same, then exit normally with jobs still queued
python -m tests._durable_app STORE hold       answer one question (not sampled), print its run id, then keep running
                                              (answering judgement requests) until stdin closes
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid

import structlog

from langchain_llmmonitor import Monitor, MonitorConfig
from langchain_llmmonitor.core.judging import EvaluationInput, Verdict
from langchain_llmmonitor.demo.app import build_chain
from langchain_llmmonitor.quality.judges import OfflineJudge
from langchain_llmmonitor.storage import open_store

QUESTION = "How long do I have to return an item?"
JUDGE_SECONDS = 0.3


class SlowJudge(OfflineJudge):
    """The offline judge, as slow as a remote model, so jobs pile up."""

    def evaluate(self, item: EvaluationInput) -> Verdict:
        time.sleep(JUDGE_SECONDS)
        return super().evaluate(item)


def slow_judge() -> SlowJudge:
    return SlowJudge()


def _answer(store_url: str, mode: str, requests: int) -> None:
    config = MonitorConfig.from_mapping(
        {
            "sampling": {"rate": 1.0 if mode != "hold" else 0.0},
            "judge": {"lease_seconds": 2.0},
            "shutdown_timeout_seconds": 0.5,
        }
    )
    monitor = Monitor(config, store=store_url, judge=SlowJudge())
    chain = build_chain()
    run_ids = [uuid.uuid4() for _ in range(requests)]
    for run_id in run_ids:
        chain.invoke(QUESTION, config={"callbacks": [monitor], "run_id": run_id})
    if mode == "hold":
        print(run_ids[0], flush=True)
        sys.stdin.read()
        monitor.close()
        return
    store = open_store(store_url)
    while store.pending_jobs() + sum(store.job_outcomes().values()) < requests:
        time.sleep(0.01)
    print("stored", flush=True)
    if mode == "kill":
        threading.Event().wait()
    # "exit": return with jobs queued; the Monitor is closed at interpreter exit


if __name__ == "__main__":
    structlog.configure(  # stdout is the protocol with the test: log warnings and errors to stderr
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )
    _answer(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
