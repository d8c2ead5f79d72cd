"""`MonitorConfig`: every setting of a Monitor in one frozen object, grouped by the part of the monitor it drives.

    config = MonitorConfig(sampling=SamplingConfig(rate=0.1), store=StoreConfig(url="llmmonitor.db"))
    config = MonitorConfig.from_mapping({"sampling": {"rate": 0.1}, "langsmith": {"project": "shop"}})
    monitor = Monitor(config)

Each group is validated when it is built, with a message that says what is allowed; a mapping with an unknown key is
refused naming the closest known one. Groups are handed as they are to the component they configure, so a setting has
exactly one name and one default. Environment variables are read only where the ecosystem already reads them
(`LANGSMITH_*` for the project and the key, `OPENAI_API_KEY` for the default judge).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.ratings import SCALE_NAMES
from .core.segments import DEFAULT_SEGMENT_KEYS
from .core.settings import check, from_mapping, number_problem
from .core.vocabulary import EVALUATE_TAG

if TYPE_CHECKING:
    from .pricing import PriceTable

__all__ = [
    "CaptureConfig",
    "FeedbackConfig",
    "JudgeConfig",
    "LangSmithConfig",
    "MonitorConfig",
    "RunsConfig",
    "SamplingConfig",
    "SegmentConfig",
    "StoreConfig",
]


@dataclass(frozen=True, kw_only=True)
class RunsConfig:
    """Runs in flight: how long and how many are remembered, and where the application's request id is.

    Args:
        max_age_seconds: a run that has not ended after this long (an abandoned stream, a killed task) is forgotten and
            gives back its in-flight count (`llm_monitor_runs_expired_total`).
        max_tracked: hard bound on runs in flight; beyond it the oldest are forgotten and counted apart
            (`llm_monitor_runs_evicted_total{reason="capacity"}`).
        request_id_key: the `config["metadata"]` key holding the application's own request id.
        settle_seconds: how long a finished root waits for the ends of its LLM calls still in flight (an abandoned
            stream reports its tokens just after the root ends) before they are closed as cancelled and the
            invocation is written.
    """

    max_age_seconds: float = 900.0
    max_tracked: int = 50_000
    request_id_key: str = "request_id"
    settle_seconds: float = 2.0

    def __post_init__(self) -> None:
        check(
            self,
            [
                number_problem("max_age_seconds", self.max_age_seconds, above=0),
                number_problem("max_tracked", self.max_tracked, integer=True, minimum=1),
                _text_problem("request_id_key", self.request_id_key),
                number_problem("settle_seconds", self.settle_seconds, minimum=0),
            ],
        )


@dataclass(frozen=True, kw_only=True)
class SamplingConfig:
    """Which traces a judge scores.

    Args:
        rate: the share of traces judged at random, decided from the trace id (the same in every process and retry).
            `config["metadata"]["llmmonitor_evaluate"]` = True / False forces a trace in or out.
        evaluate_tags: traces carrying any of these tags are always judged (forced).
        evaluate_errors: always judge a trace that answered although a step inside it failed (retry, fallback).
        evaluate_without_context: also judge traces that retrieved nothing (faithfulness to no context means little).
    """

    rate: float = 0.05
    evaluate_tags: frozenset[str] = frozenset({EVALUATE_TAG})
    evaluate_errors: bool = True
    evaluate_without_context: bool = False

    def __post_init__(self) -> None:
        tags = self.evaluate_tags
        if isinstance(tags, str) or not isinstance(tags, Collection) or not all(isinstance(t, str) for t in tags):
            raise TypeError(f"SamplingConfig.evaluate_tags must be a collection of tags (strings), got {tags!r}")
        object.__setattr__(self, "evaluate_tags", frozenset(tags))
        check(
            self,
            [
                number_problem("rate", self.rate, minimum=0, maximum=1),
                _flag_problem("evaluate_errors", self.evaluate_errors),
                _flag_problem("evaluate_without_context", self.evaluate_without_context),
            ],
        )


@dataclass(frozen=True, kw_only=True)
class CaptureConfig:
    """What of a sampled trace a judge sees: where the question and answer are, and how much context is kept.

    Args:
        question_key: the root input key holding the question; by default the first text under common keys
            (question, input, query, messages, ...).
        answer_key: the root output key holding the answer; by default answer, output, result, ..., messages.
        redact: applied to the question, each passage and the answer before they reach a judge, a log or the store.
        max_documents: retrieved passages kept per trace, in retrieval order.
        max_document_chars: characters kept of each passage.
        max_context_chars: characters kept of all passages together.
        max_text_chars: characters kept of the question and of the answer.
    """

    question_key: str | None = None
    answer_key: str | None = None
    redact: Callable[[str], str] | None = None
    max_documents: int = 8
    max_document_chars: int = 2_000
    max_context_chars: int = 8_000
    max_text_chars: int = 8_000

    def __post_init__(self) -> None:
        if self.redact is not None and not callable(self.redact):
            raise TypeError(f"CaptureConfig.redact must be a function from text to text, got {self.redact!r}")
        check(
            self,
            [
                _text_problem("question_key", self.question_key, optional=True),
                _text_problem("answer_key", self.answer_key, optional=True),
                *(
                    number_problem(name, getattr(self, name), integer=True, minimum=1)
                    for name in ("max_documents", "max_document_chars", "max_context_chars", "max_text_chars")
                ),
            ],
        )


@dataclass(frozen=True, kw_only=True)
class SegmentConfig:
    """The dimensions each invocation and evaluation is stored with, so the weekly review can say which release,
    prompt, model or chain moved. Stored, never metric labels (`core.segments`).

    Args:
        keys: read from the root run's `config["metadata"]`, else from its tags written `key:value`; `model` (the
            model of the trace's last LLM call) and `chain` (the root's name) are filled in when not declared. Keep
            them low-cardinality: the review tests each value with enough samples, and splits its alpha among them.
        max_value_chars: a longer value is cut.
        metric_labels: keys (of `keys`) also added as labels of the invocation and quality metrics
            (`llm_invocations_total`, `llm_invocation_duration_seconds`, `llm_quality_score`,
            `llm_quality_hallucination_verdicts_total`), for dashboards and alerts per release. Off by default: every
            label multiplies the series.
        max_label_values: distinct values each metric label takes in one process; later ones are counted as
            "other", so a key that turns out not to be low-cardinality cannot grow the series without end.
    """

    keys: tuple[str, ...] = DEFAULT_SEGMENT_KEYS
    max_value_chars: int = 64
    metric_labels: tuple[str, ...] = ()
    max_label_values: int = 20

    def __post_init__(self) -> None:
        for name in ("keys", "metric_labels"):
            keys = getattr(self, name)
            if isinstance(keys, str) or not isinstance(keys, Collection):
                raise TypeError(f"SegmentConfig.{name} must be a sequence of metadata keys (strings), got {keys!r}")
            object.__setattr__(self, name, tuple(dict.fromkeys(keys)))
        check(
            self,
            [
                *(_key_problem(key) for key in self.keys),
                number_problem("max_value_chars", self.max_value_chars, integer=True, minimum=1, maximum=200),
                *(_label_problem(key, self.keys) for key in self.metric_labels),
                number_problem("max_label_values", self.max_label_values, integer=True, minimum=1, maximum=1_000),
            ],
        )


@dataclass(frozen=True, kw_only=True)
class JudgeConfig:
    """The background judge pool and what it may spend.

    Without a store, sampled traces wait in memory for the judge threads. With a store, they are durable jobs there:
    the judge threads (of this process, of any other on the store, or of `llmmonitor worker`) claim them under a
    lease, so a crash or a deploy loses none.

    Args:
        workers: judge threads, started with the first sampled trace (with a store: when the Monitor starts).
        queue_size: evaluations waiting in memory for a worker (no store); a full queue drops and counts
            (`llm_judge_dropped_total`), it never blocks a request.
        max_evaluations_per_hour: evaluations accepted per sliding hour (None: no limit).
        max_cost_per_hour: judge dollars per sliding hour (None: no limit); only judges that report a cost count.
        cache_size: verdicts remembered for identical (judge, prompt version, question, context, answer); 0 disables.
        in_process: judge in this process. False (needs a store): jobs are only stored, for `llmmonitor worker`
            processes to judge, which moves judging off the application servers.
        poll_interval_seconds: with a store, how often an idle judge thread looks for jobs other processes stored.
        lease_seconds: with a store, how long a claimed job is reserved for one thread; a killed process's job is
            judged by another after it. Keep it above the judge's longest call.
        request_ttl_seconds: how long a request to judge a run (a thumbs-down that reached a process which did not
            run it) waits for the process that holds the trace, before it is closed as `expired`.
    """

    workers: int = 1
    queue_size: int = 1_000
    max_evaluations_per_hour: int | None = None
    max_cost_per_hour: float | None = None
    cache_size: int = 10_000
    in_process: bool = True
    poll_interval_seconds: float = 1.0
    lease_seconds: float = 300.0
    request_ttl_seconds: float = 3_600.0

    def __post_init__(self) -> None:
        check(
            self,
            [
                number_problem("workers", self.workers, integer=True, minimum=1),
                number_problem("queue_size", self.queue_size, integer=True, minimum=1),
                number_problem(
                    "max_evaluations_per_hour", self.max_evaluations_per_hour, integer=True, minimum=0, optional=True
                ),
                number_problem("max_cost_per_hour", self.max_cost_per_hour, minimum=0, optional=True),
                number_problem("cache_size", self.cache_size, integer=True, minimum=0),
                _flag_problem("in_process", self.in_process),
                *(
                    number_problem(name, getattr(self, name), above=0)
                    for name in ("poll_interval_seconds", "lease_seconds", "request_ttl_seconds")
                ),
            ],
        )


@dataclass(frozen=True, kw_only=True)
class StoreConfig:
    """Where invocations, scores, ratings and judge jobs are kept, and how they are written there.

    Args:
        url: a SQLite file path or a SQLAlchemy URL (`postgresql+psycopg://user:pw@host/db`); None: no store, scores
            reach only metrics and logs. Needs the `store` (or `postgres`) extra.
        queue_size: invocations and judge jobs held in memory on their way to the store, also while it is
            unreachable (writes are retried until it is back); beyond it rows are dropped, each counted
            (`llm_monitor_dropped_total`, `llm_judge_dropped_total`) and logged with their number.
        batch_size: rows written per transaction at most.
        flush_interval_seconds: how long the writer waits for more rows before it writes a batch.
        outbox: queue scores and ratings in the store for LangSmith. By default when this process forwards them;
            True when another process does (`llmmonitor worker`), False never (nothing is left to pile up).
    """

    url: str | None = None
    queue_size: int = 10_000
    batch_size: int = 500
    flush_interval_seconds: float = 0.5
    outbox: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.url, Path):
            object.__setattr__(self, "url", str(self.url))
        check(
            self,
            [
                _text_problem("url", self.url, optional=True),
                number_problem("queue_size", self.queue_size, integer=True, minimum=1),
                number_problem("batch_size", self.batch_size, integer=True, minimum=1),
                number_problem("flush_interval_seconds", self.flush_interval_seconds, above=0),
                None if self.outbox is None else _flag_problem("outbox", self.outbox),
            ],
        )


@dataclass(frozen=True, kw_only=True)
class LangSmithConfig:
    """Delivery of stored scores and ratings to LangSmith, as feedback on each trace's root run.

    Args:
        project: the LangSmith project of the runs; by default LANGSMITH_PROJECT (as LangChain's tracer does).
        forward: send the outbox to LangSmith; by default when there is a store and a client is given or
            LANGSMITH_API_KEY is set.
        batch_size: items claimed per delivery pass.
        poll_interval_seconds: seconds between passes when nothing is due.
        base_backoff_seconds: the wait after a first failure, of one item or of LangSmith as a whole; it doubles
            with each further failure.
        max_backoff_seconds: the longest wait between attempts of one item LangSmith refused (404, 401...).
        jitter: the random fraction of each wait (0 to 1), so items and processes do not retry in lockstep.
        lease_seconds: how long a claimed item is reserved for one forwarder (a crashed process's items come back
            after it); keep it well above `request_timeout_seconds`.
        request_timeout_seconds: connect and read timeout of the client the forwarder builds.
        not_found_attempts: attempts after which an item LangSmith keeps answering 404 to is parked.
        max_outage_probe_seconds: the longest pause while LangSmith is unreachable, overloaded or rate limiting
            (a Retry-After may ask for longer): nothing is sent during a pause, one item probes after it, so delivery
            resumes within about this long of LangSmith's recovery.
        delivered_retention_seconds: delivered outbox items are deleted this long after delivery (the evaluations
            and ratings themselves stay).
    """

    project: str | None = None
    forward: bool | None = None
    batch_size: int = 50
    poll_interval_seconds: float = 1.0
    base_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0
    jitter: float = 0.5
    lease_seconds: float = 60.0
    request_timeout_seconds: float = 10.0
    not_found_attempts: int = 10
    max_outage_probe_seconds: float = 10.0
    delivered_retention_seconds: float = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        check(
            self,
            [
                _text_problem("project", self.project, optional=True),
                None if self.forward is None else _flag_problem("forward", self.forward),
                number_problem("batch_size", self.batch_size, integer=True, minimum=1),
                *(
                    number_problem(name, getattr(self, name), above=0)
                    for name in ("poll_interval_seconds", "base_backoff_seconds", "max_backoff_seconds")
                ),
                number_problem("jitter", self.jitter, minimum=0, maximum=1),
                number_problem("lease_seconds", self.lease_seconds, above=0),
                number_problem("request_timeout_seconds", self.request_timeout_seconds, above=0),
                number_problem("not_found_attempts", self.not_found_attempts, integer=True, minimum=1),
                number_problem("max_outage_probe_seconds", self.max_outage_probe_seconds, above=0),
                number_problem("delivered_retention_seconds", self.delivered_retention_seconds, above=0),
            ],
        )


@dataclass(frozen=True, kw_only=True)
class FeedbackConfig:
    """Users' ratings: the scale, the checks, and the signed tokens that let a client rate only its own answers.

    Args:
        scale: "thumbs" (-1 / +1) or "five" (1 to 5).
        max_comment_chars: longer comments are refused (not truncated: the user would not know).
        secret: 32 or more bytes to sign per-run feedback tokens (`Monitor.feedback_token`); never shown in a repr.
        token_ttl_seconds: how long a token is accepted after it is issued.
        window: finished traces remembered for ratings that arrive before they reach the store, and for judging a
            trace when its user gives a negative rating.
        max_ratings_per_run: ratings one run may get (each token or idempotency key counts once, however often it
            is posted); more are refused (HTTP 429), so one client cannot stuff a run.
        max_body_bytes: the largest `POST /feedback` body the API reads; a larger one is refused (HTTP 413) before
            it is read or parsed.
    """

    scale: str = "thumbs"
    max_comment_chars: int = 2_000
    secret: str | bytes | None = field(default=None, repr=False)
    token_ttl_seconds: float = 7 * 24 * 3600.0
    window: int = 2_048
    max_ratings_per_run: int = 10
    max_body_bytes: int = 65_536

    def __post_init__(self) -> None:
        check(
            self,
            [
                None
                if self.scale in SCALE_NAMES
                else f"scale must be one of {', '.join(SCALE_NAMES)}, got {self.scale!r}",
                number_problem("max_comment_chars", self.max_comment_chars, integer=True, minimum=0),
                None
                if self.secret is None or isinstance(self.secret, (str, bytes))
                else f"secret must be text or bytes, got {type(self.secret).__name__}",
                number_problem("token_ttl_seconds", self.token_ttl_seconds, minimum=1),
                number_problem("window", self.window, integer=True, minimum=1),
                number_problem("max_ratings_per_run", self.max_ratings_per_run, integer=True, minimum=1),
                number_problem("max_body_bytes", self.max_body_bytes, integer=True, minimum=1_024),
            ],
        )


@dataclass(frozen=True, kw_only=True)
class MonitorConfig:
    """Every setting of a Monitor. Frozen: derive a variant with `dataclasses.replace` or `with_overrides`.

    Args:
        runs, sampling, capture, segments, judge, store, langsmith, feedback: the groups above.
        prices: the price table for cost; the shipped one by default.
        shutdown_timeout_seconds: how long `close()` (and the interpreter's exit) waits for each background worker
            to drain what it holds.
    """

    runs: RunsConfig = field(default_factory=RunsConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    segments: SegmentConfig = field(default_factory=SegmentConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    langsmith: LangSmithConfig = field(default_factory=LangSmithConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    prices: PriceTable | None = None
    shutdown_timeout_seconds: float = 5.0

    def __post_init__(self) -> None:
        for name, group in _GROUPS.items():
            if not isinstance(getattr(self, name), group):
                raise TypeError(f"MonitorConfig.{name} must be a {group.__name__}, got {getattr(self, name)!r}")
        if self.prices is not None and not callable(getattr(self.prices, "lookup", None)):
            raise TypeError(f"MonitorConfig.prices must be a PriceTable, got {self.prices!r}")
        check(self, [number_problem("shutdown_timeout_seconds", self.shutdown_timeout_seconds, minimum=0)])

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, Any], *, base: MonitorConfig | None = None) -> MonitorConfig:
        """`base` (or the defaults) with nested overrides: `{"sampling": {"rate": 0.1}, "store": {"url": "m.db"}}`.

        Keys may use dashes; an unknown key is refused naming the closest known one.
        """
        return from_mapping(cls, overrides, base=base)

    def with_overrides(self, **groups: Any) -> MonitorConfig:
        """A copy with some settings changed: `config.with_overrides(sampling={"rate": 0.2})`."""
        return from_mapping(type(self), groups, base=self)

    def with_shortcuts(self, *, sample_rate: float | None = None, store_url: str | Path | None = None) -> MonitorConfig:
        """The config with the Monitor's keyword shortcuts applied (a shortcut given wins over the config)."""
        config = self
        if sample_rate is not None:
            config = replace(config, sampling=replace(config.sampling, rate=sample_rate))
        if store_url is not None:
            config = replace(config, store=replace(config.store, url=str(store_url)))
        return config


_GROUPS = {
    "runs": RunsConfig,
    "sampling": SamplingConfig,
    "capture": CaptureConfig,
    "segments": SegmentConfig,
    "judge": JudgeConfig,
    "store": StoreConfig,
    "langsmith": LangSmithConfig,
    "feedback": FeedbackConfig,
}


def _flag_problem(name: str, value: Any) -> str | None:
    return None if isinstance(value, bool) else f"{name} must be true or false, got {value!r}"


def _text_problem(name: str, value: Any, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if isinstance(value, str) and value.strip():
        return None
    return f"{name} must be a non-empty string{' or None' if optional else ''}, got {value!r}"


def _key_problem(key: Any) -> str | None:
    if isinstance(key, str) and key.strip() and not any(sep in key for sep in ":="):
        return None
    return f"keys must be non-empty strings without ':' or '=' (tags are written key:value), got {key!r}"


_TAKEN_LABELS = frozenset({"name", "status", "criterion", "judge", "sampling", "verdict", "le"})


def _label_problem(key: Any, keys: tuple[str, ...]) -> str | None:
    if key not in keys:
        return f"metric_labels must be among keys {list(keys)}, got {key!r}"
    if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", key) or key.startswith("__") or key in _TAKEN_LABELS:
        return (
            f"metric_labels must be Prometheus label names (letters, digits, '_'; not {sorted(_TAKEN_LABELS)}), "
            f"got {key!r}"
        )
    return None
