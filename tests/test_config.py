"""MonitorConfig: frozen, validated with messages that say what is allowed, and every setting reaches its component."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from langchain_llmmonitor import (
    CaptureConfig,
    FeedbackConfig,
    JudgeConfig,
    LangSmithConfig,
    ModelPrice,
    Monitor,
    MonitorConfig,
    OfflineJudge,
    PriceTable,
    RunsConfig,
    SamplingConfig,
    StoreConfig,
)

from .conftest import LogRecorder


def redact(text: str) -> str:
    return text.replace("secret", "[x]")


PRICES = PriceTable.default().with_overrides({"house-model": ModelPrice(input=1.0, output=2.0)})

# Every leaf setting: a value other than the default, and how to read the value the running component uses.
WALK: dict[str, tuple[Any, Callable[[Monitor], Any]]] = {
    "runs.max_age_seconds": (60.0, lambda m: m._runs._max_age),
    "runs.max_tracked": (99, lambda m: m._runs._max_runs),
    "runs.request_id_key": ("req", lambda m: m._request_id_key),
    "runs.settle_seconds": (0.5, lambda m: m._settle_seconds),
    "sampling.rate": (0.5, lambda m: m._sampler._rate),
    "sampling.evaluate_tags": (frozenset({"vip"}), lambda m: m._sampler._tags),
    "sampling.evaluate_errors": (False, lambda m: m._evaluate_errors),
    "sampling.evaluate_without_context": (True, lambda m: m._evaluate_without_context),
    "capture.question_key": ("ask", lambda m: m._capture.question_key),
    "capture.answer_key": ("reply", lambda m: m._capture.answer_key),
    "capture.redact": (redact, lambda m: m._capture.redact),
    "capture.max_documents": (3, lambda m: m._capture.max_documents),
    "capture.max_document_chars": (300, lambda m: m._capture.max_document_chars),
    "capture.max_context_chars": (900, lambda m: m._capture.max_context_chars),
    "capture.max_text_chars": (500, lambda m: m._capture.max_text_chars),
    "segments.keys": (("model", "release"), lambda m: tuple(sorted(m._segment_keys))),
    "segments.max_value_chars": (12, lambda m: m._segment_chars),
    "segments.metric_labels": (("app_version",), lambda m: m._metrics.segment_labels.keys),
    "segments.max_label_values": (3, lambda m: m._metrics.segment_labels._max_values),
    "judge.workers": (3, lambda m: m._quality._thread_count),
    "judge.queue_size": (7, lambda m: m._quality._board.capacity),
    "judge.max_evaluations_per_hour": (40, lambda m: m._quality._budget._max_evaluations),
    "judge.max_cost_per_hour": (2.5, lambda m: m._quality._budget._max_cost),
    "judge.cache_size": (5, lambda m: m._quality._cache._size),
    "judge.in_process": (False, lambda m: m.judging_in_process),
    "judge.poll_interval_seconds": (0.5, lambda m: m._quality._idle_wait),
    "judge.lease_seconds": (30.0, lambda m: m._quality.config.lease_seconds),
    "judge.request_ttl_seconds": (60.0, lambda m: m._quality.config.request_ttl_seconds),
    "store.url": ("SET BY THE TEST", lambda m: m.store.location),
    "store.queue_size": (11, lambda m: m._writer._board.capacity),
    "store.batch_size": (13, lambda m: m._writer._batch_size),
    "store.flush_interval_seconds": (0.25, lambda m: m._writer._linger),
    "store.outbox": (True, lambda m: m.store.outbox),
    "langsmith.project": ("shop", lambda m: m.project),
    "langsmith.forward": (True, lambda m: m.forwarder is not None),
    "langsmith.batch_size": (17, lambda m: m.forwarder.config.batch_size),
    "langsmith.poll_interval_seconds": (0.5, lambda m: m.forwarder._idle_wait),
    "langsmith.base_backoff_seconds": (2.0, lambda m: m.forwarder.config.base_backoff_seconds),
    "langsmith.max_backoff_seconds": (30.0, lambda m: m.forwarder.config.max_backoff_seconds),
    "langsmith.jitter": (0.1, lambda m: m.forwarder.config.jitter),
    "langsmith.lease_seconds": (45.0, lambda m: m.forwarder.config.lease_seconds),
    "langsmith.request_timeout_seconds": (3.0, lambda m: m.forwarder.config.request_timeout_seconds),
    "langsmith.not_found_attempts": (4, lambda m: m.forwarder.config.not_found_attempts),
    "langsmith.max_outage_probe_seconds": (2.0, lambda m: m.forwarder.config.max_outage_probe_seconds),
    "langsmith.delivered_retention_seconds": (3600.0, lambda m: m.forwarder.config.delivered_retention_seconds),
    "feedback.scale": ("five", lambda m: m.feedback_recorder.scale.name),
    "feedback.max_comment_chars": (100, lambda m: m.feedback_recorder.max_comment_chars),
    "feedback.secret": ("s" * 32, lambda m: m.feedback_tokens is not None),
    "feedback.token_ttl_seconds": (3600.0, lambda m: m.feedback_tokens.ttl.total_seconds()),
    "feedback.window": (64, lambda m: m._recent._capacity),
    "feedback.max_ratings_per_run": (3, lambda m: m.feedback_recorder.max_ratings_per_run),
    "feedback.max_body_bytes": (4096, lambda m: m.feedback_recorder.max_body_bytes),
    "prices": (PRICES, lambda m: m.prices),
    "shutdown_timeout_seconds": (1.5, lambda m: m._quality._exit_timeout),
}

# What the Monitor took as 28 keyword arguments, and the knobs no argument reached, with where they live now.
FORMER_SETTINGS = {
    "prices": "prices",
    "max_run_age_seconds": "runs.max_age_seconds",
    "max_tracked_runs": "runs.max_tracked",
    "request_id_key": "runs.request_id_key",
    "sample_rate": "sampling.rate",
    "evaluate_tags": "sampling.evaluate_tags",
    "evaluate_errors": "sampling.evaluate_errors",
    "evaluate_without_context": "sampling.evaluate_without_context",
    "question_key": "capture.question_key",
    "answer_key": "capture.answer_key",
    "redact": "capture.redact",
    "max_context_documents": "capture.max_documents",
    "max_context_chars": "capture.max_context_chars",
    "judge_workers": "judge.workers",
    "judge_queue_size": "judge.queue_size",
    "max_evaluations_per_hour": "judge.max_evaluations_per_hour",
    "max_judge_cost_per_hour": "judge.max_cost_per_hour",
    "store": "store.url",
    "forward_feedback": "langsmith.forward",
    "project": "langsmith.project",
    "feedback_scale": "feedback.scale",
    "feedback_secret": "feedback.secret",
    "feedback_window": "feedback.window",
    # unreachable before: the forwarder's settings, the cache, the text caps, the writer's queue, the drain at exit
    "Forwarder.batch_size": "langsmith.batch_size",
    "Forwarder.poll_interval": "langsmith.poll_interval_seconds",
    "Forwarder.base_backoff": "langsmith.base_backoff_seconds",
    "Forwarder.max_backoff": "langsmith.max_backoff_seconds",
    "Forwarder.jitter": "langsmith.jitter",
    "Forwarder.lease_seconds": "langsmith.lease_seconds",
    "Forwarder.request_timeout": "langsmith.request_timeout_seconds",
    "Forwarder.not_found_attempts": "langsmith.not_found_attempts",
    "QualityPipeline.cache_size": "judge.cache_size",
    "QualityPipeline.exit_timeout": "shutdown_timeout_seconds",
    "CaptureSettings.max_document_chars": "capture.max_document_chars",
    "CaptureSettings.max_text_chars": "capture.max_text_chars",
    "BatchWriter.queue_size": "store.queue_size",
    "BatchWriter.max_batch": "store.batch_size",
    "BatchWriter.interval": "store.flush_interval_seconds",
    "FeedbackRecorder.max_comment_chars": "feedback.max_comment_chars",
    "FeedbackTokens.ttl": "feedback.token_ttl_seconds",
}
COLLABORATORS = {"registry", "logger", "judge", "langsmith_client", "clock"}  # objects, not settings: keyword arguments


def leaf_paths(config: Any, prefix: str = "") -> list[str]:
    paths = []
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        if dataclasses.is_dataclass(value):
            paths += leaf_paths(value, f"{prefix}{spec.name}.")
        else:
            paths.append(prefix + spec.name)
    return paths


def nested(path: str, value: Any) -> dict[str, Any]:
    head, _, rest = path.partition(".")
    return {head: nested(rest, value) if rest else value}


def test_the_walk_covers_every_setting():
    """A setting added to MonitorConfig without a line in WALK (so without proof it reaches its component) fails here."""
    assert sorted(leaf_paths(MonitorConfig())) == sorted(WALK)


def test_every_former_setting_has_a_home():
    """Each of the old constructor's settings, and each knob it could not reach, names an existing config path."""
    assert set(FORMER_SETTINGS.values()) <= set(WALK)


def test_monitor_takes_a_config_and_a_few_shortcuts():
    """`Monitor.__init__` has at most 8 parameters: the config plus shortcuts and collaborators."""
    parameters = [name for name in inspect.signature(Monitor.__init__).parameters if name != "self"]
    assert len(parameters) <= 8
    assert set(parameters) == {"config", "sample_rate", "store"} | COLLABORATORS


@pytest.mark.parametrize("path", [pytest.param(path, id=path) for path in WALK])
def test_each_setting_reaches_its_component(path: str, tmp_path: Path):
    """Set through `MonitorConfig.from_mapping`, each value is the one the running component uses."""
    value, read = WALK[path]
    value = str(tmp_path / "walk.db") if path == "store.url" else value
    overrides = _merge(_needed_for(path, tmp_path), nested(path, value))
    config = MonitorConfig.from_mapping(overrides)
    with Monitor(config, registry=CollectorRegistry(), logger=LogRecorder().logger, judge=OfflineJudge()) as monitor:
        seen = read(monitor)
    expected = {"store.url": f"sqlite:///{value}", "feedback.secret": True}.get(path, value)
    assert seen == expected


def _needed_for(path: str, tmp_path: Path) -> dict[str, Any]:
    """What must be on for a setting's component to exist: a store, forwarding, a token secret."""
    needed: dict[str, Any] = {"store": {"url": str(tmp_path / "m.db")}}
    if path.startswith("langsmith.") and path != "langsmith.forward":
        needed["langsmith"] = {"forward": True}
    if path == "feedback.token_ttl_seconds":
        needed["feedback"] = {"secret": "s" * 32}
    return needed


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, group in extra.items():
        merged[key] = {**merged.get(key, {}), **group} if isinstance(group, dict) else group
    return merged


def test_config_and_its_groups_are_frozen():
    """A config cannot be changed after it is built: derive another with `with_overrides`."""
    config = MonitorConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.sampling = SamplingConfig()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.sampling.rate = 0.5  # type: ignore[misc]
    changed = config.with_overrides(sampling={"rate": 0.5})
    assert (config.sampling.rate, changed.sampling.rate) == (0.05, 0.5)


def test_shortcuts_win_over_the_config(tmp_path: Path):
    """`Monitor(config, sample_rate=..., store=...)`: the keyword shortcut is what the monitor uses."""
    config = MonitorConfig(sampling=SamplingConfig(rate=0.2), store=StoreConfig(url=str(tmp_path / "config.db")))
    with Monitor(config, sample_rate=0.7, store=tmp_path / "shortcut.db", logger=LogRecorder().logger) as monitor:
        assert monitor.config.sampling.rate == 0.7
        assert monitor.store.location.endswith("shortcut.db")


@pytest.mark.parametrize(
    ("mapping", "error", "message"),
    [
        pytest.param(
            {"sampling": {"rat": 0.1}},
            ValueError,
            "unknown SamplingConfig setting 'rat' (did you mean 'rate'?)",
            id="typo",
        ),
        pytest.param(
            {"samplng": {}},
            ValueError,
            "unknown MonitorConfig setting 'samplng' (did you mean 'sampling'?)",
            id="group-typo",
        ),
        pytest.param(
            {"sampling": {"rate": 2}},
            ValueError,
            "invalid SamplingConfig: rate must be a number from 0 to 1, got 2",
            id="rate",
        ),
        pytest.param(
            {"sampling": 0.5},
            TypeError,
            "MonitorConfig.sampling must be a SamplingConfig, got 0.5",
            id="group-as-value",
        ),
        pytest.param(
            {"judge": {"workers": 0, "queue_size": -1}},
            ValueError,
            "workers must be an integer >= 1, got 0; queue_size must be an integer >= 1, got -1",
            id="all-problems-at-once",
        ),
        pytest.param(
            {"judge": {"max_cost_per_hour": "5"}},
            ValueError,
            "max_cost_per_hour must be a number >= 0 or None, got '5'",
            id="string-number",
        ),
        pytest.param(
            {"langsmith": {"jitter": 1.5}}, ValueError, "jitter must be a number from 0 to 1, got 1.5", id="jitter"
        ),
        pytest.param(
            {"feedback": {"scale": "stars"}}, ValueError, "scale must be one of thumbs, five, got 'stars'", id="scale"
        ),
        pytest.param(
            {"capture": {"redact": "mask"}}, TypeError, "redact must be a function from text to text", id="redact"
        ),
        pytest.param(
            {"runs": {"request_id_key": ""}},
            ValueError,
            "request_id_key must be a non-empty string, got ''",
            id="empty-key",
        ),
        pytest.param(
            {"store": {"flush-interval-seconds": 0}},
            ValueError,
            "flush_interval_seconds must be a number > 0, got 0",
            id="dashes",
        ),
        pytest.param(
            {"sampling": {"evaluate_errors": "yes"}},
            ValueError,
            "evaluate_errors must be true or false, got 'yes'",
            id="flag",
        ),
        pytest.param(
            {"judge": {"lease_seconds": 0, "in_process": "no"}},
            ValueError,
            "in_process must be true or false, got 'no'; lease_seconds must be a number > 0, got 0",
            id="judge-jobs",
        ),
        pytest.param({"store": {"outbox": 1}}, ValueError, "outbox must be true or false, got 1", id="outbox"),
        pytest.param(
            {"segments": {"keys": ["app_version", "tier:gold"]}},
            ValueError,
            "keys must be non-empty strings without ':' or '=' (tags are written key:value), got 'tier:gold'",
            id="segment-key",
        ),
        pytest.param(
            {"segments": {"keys": "app_version"}},
            TypeError,
            "SegmentConfig.keys must be a sequence of metadata keys (strings), got 'app_version'",
            id="segment-keys-as-text",
        ),
        pytest.param(
            {"segments": {"metric_labels": ["tenant"]}},
            ValueError,
            "metric_labels must be among keys ['app_version', 'prompt_version', 'model', 'chain'], got 'tenant'",
            id="label-not-a-segment",
        ),
        pytest.param(
            {"segments": {"keys": ["app-version", "status"], "metric_labels": ["app-version", "status"]}},
            ValueError,
            "metric_labels must be Prometheus label names (letters, digits, '_'; not ['criterion', 'judge', 'le', "
            "'name', 'sampling', 'status', 'verdict']), got 'app-version'",
            id="label-name",
        ),
        pytest.param(
            {"segments": {"max_value_chars": 500}},
            ValueError,
            "max_value_chars must be an integer from 1 to 200, got 500",
            id="segment-value-length",
        ),
        pytest.param(["sampling"], TypeError, "MonitorConfig configuration must be a mapping", id="not-a-mapping"),
    ],
)
def test_bad_settings_say_what_is_allowed(mapping: Any, error: type[Exception], message: str):
    """A mistake is refused when the config is built, with the setting's name, the allowed values and what was given."""
    with pytest.raises(error) as raised:
        MonitorConfig.from_mapping(mapping)
    assert message in str(raised.value)


def test_secret_never_shows_in_a_repr():
    """The feedback token secret is kept out of reprs, which end up in logs and tracebacks."""
    config = MonitorConfig(feedback=FeedbackConfig(secret="top-secret-value-of-32-bytes-or-more"))
    assert "top-secret" not in repr(config)


def test_groups_are_exported_and_compose():
    """Every group is importable from the package and a MonitorConfig accepts each."""
    config = MonitorConfig(
        runs=RunsConfig(max_tracked=10),
        sampling=SamplingConfig(rate=0.1),
        capture=CaptureConfig(max_documents=2),
        judge=JudgeConfig(workers=2),
        store=StoreConfig(queue_size=5),
        langsmith=LangSmithConfig(project="p"),
        feedback=FeedbackConfig(window=5),
    )
    assert (config.runs.max_tracked, config.judge.workers, config.langsmith.project) == (10, 2, "p")


def test_judge_is_fixed_at_construction(registry):
    """Assigning another judge is refused instead of being silently ignored by the running workers."""
    monitor = Monitor(registry=registry, logger=LogRecorder().logger, judge=OfflineJudge())
    with pytest.raises(AttributeError):
        monitor.judge = OfflineJudge()  # type: ignore[misc]
    monitor.close()


def test_token_ttl_reaches_issued_tokens(tmp_path: Path):
    """`FeedbackConfig.token_ttl_seconds` is how long an issued token is accepted."""
    config = MonitorConfig(feedback=FeedbackConfig(secret="s" * 32, token_ttl_seconds=120))
    with Monitor(config, store=tmp_path / "m.db", logger=LogRecorder().logger) as monitor:
        assert monitor.feedback_tokens.ttl == timedelta(seconds=120)
