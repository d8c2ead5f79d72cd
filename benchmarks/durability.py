"""What survives an outage: store outages during traffic, and LangSmith answering 429 or nothing at all.

    .venv/bin/python benchmarks/durability.py                       # both, with a 180 s LangSmith outage
    .venv/bin/python benchmarks/durability.py --langsmith-outage 30 # shorter
    .venv/bin/python benchmarks/durability.py --only store

Store: a chain answers questions from a thread (offline judge, 30 % sampled) while SQLite is locked by another writer
or PostgreSQL refuses and drops every connection, for `--store-outage` seconds; printed are the invocations sent and
stored, the sampled traces and their stored evaluations, rows dropped, and how long after the outage the store had
everything. PostgreSQL comes from LLMMONITOR_TEST_POSTGRES_URL or the local default, in a throwaway database.

LangSmith: 500 ratings in the outbox, the real `langsmith.Client` against the local fake. A 429 with Retry-After 5:
requests sent before it elapsed, and the drain time after. An outage (every request answered 503): requests sent
during it, and the time from its end to the last delivery, with the default `LangSmithConfig`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from langchain_llmmonitor import Monitor
from langchain_llmmonitor.config import LangSmithConfig
from langchain_llmmonitor.core.records import UserFeedbackRecord
from langchain_llmmonitor.demo.app import build_chain
from langchain_llmmonitor.langsmith import Forwarder
from langchain_llmmonitor.quality.judges import OfflineJudge
from langchain_llmmonitor.storage.store import Store
from langchain_llmmonitor.testing import FakeLangSmith
from tests._outages import lock_sqlite, stop_postgres_database

EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def _drop(*_: object) -> None:
    raise structlog.DropEvent


QUIET = structlog.wrap_logger(None, processors=[_drop])
POSTGRES = os.environ.get("LLMMONITOR_TEST_POSTGRES_URL") or "postgresql+psycopg://postgres:postgres@127.0.0.1/postgres"


def store_outage(kind: str, url: str, seconds: float) -> None:
    registry = CollectorRegistry()
    store = Store(url, busy_timeout_seconds=0.2)
    monitor = Monitor(registry=registry, logger=QUIET, judge=OfflineJudge(), sample_rate=0.3, store=store)
    chain, stop, sent = build_chain(), threading.Event(), [0]

    def traffic() -> None:
        while not stop.is_set():
            chain.invoke("How long do I have to return an item?", config={"callbacks": [monitor]})
            sent[0] += 1
            time.sleep(0.005)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    time.sleep(1.0)
    before = sent[0]
    outage = lock_sqlite(url, seconds) if kind == "sqlite" else stop_postgres_database(url, seconds)
    outage.join()
    during, ended = sent[0] - before, time.monotonic()
    stop.set()
    sender.join()
    monitor.flush(120)
    caught_up = time.monotonic() - ended
    stored, evaluations = len(list(store.invocations(*EVER))), len(list(store.evaluations(*EVER)))
    sampled = registry.get_sample_value("llm_quality_samples_total", {"reason": "rate"}) or 0
    dropped = sum(
        sample.value
        for family in registry.collect()
        if family.name in ("llm_monitor_dropped", "llm_judge_dropped")
        for sample in family.samples
        if sample.name.endswith("_total")
    )
    print(
        f"{kind:<8} outage {seconds:g} s: {sent[0]} invocations sent ({during} during the outage), {stored} stored; "
        f"{sampled:.0f} sampled, {evaluations} evaluations stored; {dropped:.0f} dropped; "
        f"everything stored {caught_up:.2f} s after the outage"
    )
    monitor.close()
    store.close()


def postgres_database() -> tuple[str, object] | None:
    admin = create_engine(make_url(POSTGRES), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"llmmonitor_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001 - reported, the SQLite half still runs
        print(f"postgres: skipped, no server at {make_url(POSTGRES).render_as_string()}: {type(error).__name__}")
        return None
    return make_url(POSTGRES).set(database=name).render_as_string(hide_password=False), admin


def langsmith_scenarios(outage_seconds: float) -> None:
    with tempfile.TemporaryDirectory() as directory, FakeLangSmith() as server:
        os.environ.update(LANGSMITH_API_KEY="bench", LANGSMITH_ENDPOINT=server.url)
        for scenario in ("429", "outage"):
            store = Store(Path(directory) / f"{scenario}.db")
            for _ in range(500):
                run_id = str(uuid.uuid4())
                store.add_user_feedback(UserFeedbackRecord(run_id=run_id, trace_id=run_id, score=1, rating="positive"))
            server.reset()
            forwarder = Forwarder(store, config=LangSmithConfig(), registry=CollectorRegistry(), logger=QUIET)
            if scenario == "429":
                server.fail_next(1, status=429, retry_after=5)
                forwarder.start()
                server.wait_until(lambda: len(server.feedback) == 500, timeout=120)
                log = server.request_log
                refused = next(r.at for r in log if r.status == 429)
                early = [r for r in log if refused < r.at < refused + 5]
                print(
                    f"429 Retry-After 5 s: {len(early)} requests in the 5 s after it; 500 items delivered "
                    f"{max(r.at for r in log) - refused - 5:.2f} s after it elapsed"
                )
            else:
                server.fail_next(10**9, status=503)
                forwarder.start()
                time.sleep(outage_seconds)
                server.clear_faults()
                recovered = time.monotonic()
                server.wait_until(lambda: len(server.feedback) == 500, timeout=600)
                log = server.request_log
                during = [r for r in log if r.at < recovered]
                resumed = min(r.at for r in log if r.at >= recovered and r.status < 300)
                print(
                    f"LangSmith outage {outage_seconds:g} s: {len(during)} requests during it; first delivery "
                    f"{resumed - recovered:.2f} s after it ended, all 500 after {max(r.at for r in log) - recovered:.2f} s"
                )
            forwarder.close()
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("store", "langsmith"))
    parser.add_argument("--store-outage", type=float, default=5.0, help="seconds (default 5)")
    parser.add_argument("--langsmith-outage", type=float, default=180.0, help="seconds (default 180)")
    args = parser.parse_args()
    if args.only != "langsmith":
        with tempfile.TemporaryDirectory() as directory:
            store_outage("sqlite", str(Path(directory) / "monitor.db"), args.store_outage)
        database = postgres_database()
        if database is not None:
            url, admin = database
            try:
                store_outage("postgres", url, args.store_outage)
            finally:
                with admin.connect() as connection:  # type: ignore[attr-defined]
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    if args.only != "store":
        langsmith_scenarios(args.langsmith_outage)


if __name__ == "__main__":
    main()
