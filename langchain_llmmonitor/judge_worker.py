"""`llmmonitor worker`: judge the store's jobs (and forward its outbox to LangSmith) in a process of its own.

Application servers with `MonitorConfig(judge=JudgeConfig(in_process=False))` only store the jobs of sampled traces;
any number of these workers on the same store (PostgreSQL for a fleet) claim them under leases, so each job is judged
once and a worker killed mid-job loses nothing: its job comes back when the lease ends.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import time
from typing import Any

from prometheus_client import CollectorRegistry

from .config import JudgeConfig, LangSmithConfig, SegmentConfig
from .core.judging import Judge
from .core.text import scrub
from .quality import QualityPipeline
from .quality.judges import DEFAULT_OPENAI_MODEL, OfflineJudge, default_judge
from .telemetry.logs import default_logger
from .telemetry.metrics import SegmentLabels, metrics_for


def load_judge(spec: str) -> Judge:
    """`auto` (OpenAI when OPENAI_API_KEY is set, else offline), `offline`, `openai`, or `module:attribute` naming a
    judge or a callable that returns one."""
    if spec == "auto":
        return default_judge()
    if spec == "offline":
        return OfflineJudge()
    if spec == "openai":
        from .quality.judges.openai_judge import OpenAIJudge

        return OpenAIJudge(model=DEFAULT_OPENAI_MODEL)
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--judge must be auto, offline, openai or module:attribute, got {spec!r}")
    found = getattr(importlib.import_module(module_name), attribute)
    judge = found() if callable(found) and not callable(getattr(found, "evaluate", None)) else found
    if not callable(getattr(judge, "evaluate", None)):
        raise ValueError(f"{spec} is not a judge (it has no evaluate method)")
    return judge


class JudgeWorker:
    """Judge threads on a store's job queue, plus the LangSmith forwarder when there is one to run."""

    def __init__(
        self,
        store: Any,
        judge: Judge,
        *,
        config: JudgeConfig | None = None,
        forward: bool = False,
        registry: CollectorRegistry | None = None,
        logger: Any = None,
        segments: SegmentConfig | None = None,
    ) -> None:
        """`segments`: only its `metric_labels` and `max_label_values` matter here, the labels of the quality metrics
        (the applications' own settings decide which segments the jobs carry)."""
        self.store = store
        self.registry = registry if registry is not None else CollectorRegistry()
        self._log = logger if logger is not None else default_logger()
        store.gauges.register(self.registry)
        segments = segments if segments is not None else SegmentConfig()
        labels = SegmentLabels(segments.metric_labels, segments.max_label_values)
        self.pipeline = QualityPipeline(
            judge, metrics=metrics_for(self.registry, labels), config=config, logger=self._log, jobs=store
        )
        self.forwarder = None
        if forward:
            from .langsmith import Forwarder

            self.forwarder = Forwarder(store, config=LangSmithConfig(), registry=self.registry, logger=self._log)

    def run(self, stop: threading.Event, *, idle_exit: float | None = None) -> None:
        """Work until `stop` is set (or, with `idle_exit`, until no job was left for that many seconds)."""
        self.pipeline.start()
        if self.forwarder is not None:
            self.forwarder.start()
        idle_since: float | None = None
        while not stop.wait(0.5):
            if idle_exit is None:
                continue
            idle = self._idle()
            idle_since = (idle_since or time.monotonic()) if idle else None
            if idle_since is not None and time.monotonic() - idle_since >= idle_exit:
                break

    def _idle(self) -> bool:
        try:
            return self.store.pending_jobs() == 0 and self.pipeline.pending == 0
        except Exception:  # noqa: BLE001 - a store that cannot be read is not idle: jobs may be waiting there
            return False

    def close(self, timeout: float = 30.0) -> None:
        """Finish the evaluations in progress; jobs not started stay in the store for the other workers."""
        self.pipeline.close(timeout)
        if self.forwarder is not None:
            self.forwarder.close(timeout)


def add_cli(commands: Any) -> None:
    parser = commands.add_parser(
        "worker", help="judge the store's pending jobs (and forward feedback to LangSmith) in this process"
    )
    parser.add_argument("--store", required=True, help="SQLite path or SQLAlchemy URL of the monitor's store")
    parser.add_argument(
        "--judge", default="auto", help="auto (default), offline, openai, or module:attribute of your own judge"
    )
    parser.add_argument("--threads", type=int, default=4, help="judge threads (default %(default)s)")
    parser.add_argument("--no-forward", action="store_true", help="do not deliver the outbox to LangSmith")
    parser.add_argument(
        "--outbox", action="store_true", help="queue scores for LangSmith although another process forwards them"
    )
    parser.add_argument("--metrics-port", type=int, default=None, help="serve /metrics on 127.0.0.1:PORT")
    parser.add_argument(
        "--idle-exit", type=float, default=None, help="exit once no job was left for this many seconds (batch runs)"
    )
    parser.add_argument(
        "--metric-label",
        action="append",
        default=[],
        metavar="KEY",
        help="a segment key (app_version, ...) as a label of the quality metrics, as the applications' "
        "segments.metric_labels (repeatable)",
    )
    parser.set_defaults(func=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    """Run a worker until SIGTERM/SIGINT (or idle); 2 on a configuration error, reported on stderr."""
    from langsmith.utils import get_env_var

    from .storage import INSTALL_HINT, open_store

    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:
        print(f"llmmonitor worker: error: a store needs SQLAlchemy: {INSTALL_HINT}", file=sys.stderr)
        return 2

    try:
        judge = load_judge(args.judge)
        config = JudgeConfig(workers=args.threads)
        labels = tuple(args.metric_label)
        segments = SegmentConfig(keys=(*SegmentConfig().keys, *labels), metric_labels=labels)
        store = open_store(args.store)
    except (ValueError, ImportError, OSError, AttributeError, SQLAlchemyError) as error:
        print(f"llmmonitor worker: error: {scrub(str(error))}", file=sys.stderr)  # a store URL may hold a password
        return 2
    forward = not args.no_forward and bool(get_env_var("API_KEY", default=None))
    store.outbox = forward or args.outbox
    worker = JudgeWorker(store, judge, config=config, forward=forward, segments=segments)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.metrics_port is not None:
        from .ops.exposition import serve_metrics

        serve_metrics(worker.registry, port=args.metrics_port)
    print(
        f"llmmonitor worker: store {store.location}, judge {judge.name}, {args.threads} threads, "
        f"LangSmith forwarding {'on' if forward else 'off'}",
        file=sys.stderr,
    )
    try:
        worker.run(stop, idle_exit=args.idle_exit)
    finally:
        worker.close()
        store.close()
    return 0
