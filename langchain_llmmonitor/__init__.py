"""Production monitoring for LangChain applications, from one callback handler: `callbacks=[Monitor()]`."""

from typing import TYPE_CHECKING

from .config import (
    CaptureConfig,
    FeedbackConfig,
    JudgeConfig,
    LangSmithConfig,
    MonitorConfig,
    RunsConfig,
    SamplingConfig,
    SegmentConfig,
    StoreConfig,
)
from .core.errors import FeedbackConflictError, InvalidFeedbackError, UnknownRunError
from .core.judging import EvaluationInput, Judge, JudgeError, Scores, Verdict
from .core.ratings import RatingScale
from .core.redaction import Redactor
from .monitor import Monitor
from .ops.exposition import mark_worker_dead, metrics_app, serve_metrics
from .pricing import ModelPrice, PriceTable
from .quality.judges import ChatModelJudge, OfflineJudge
from .telemetry.snapshot import MetricsSnapshot

if TYPE_CHECKING:
    from .quality.judges.openai_judge import OpenAIJudge

__all__ = [
    "CaptureConfig",
    "ChatModelJudge",
    "EvaluationInput",
    "FeedbackConfig",
    "FeedbackConflictError",
    "InvalidFeedbackError",
    "Judge",
    "JudgeConfig",
    "JudgeError",
    "LangSmithConfig",
    "MetricsSnapshot",
    "ModelPrice",
    "Monitor",
    "MonitorConfig",
    "OfflineJudge",
    "OpenAIJudge",
    "PriceTable",
    "RatingScale",
    "Redactor",
    "RunsConfig",
    "SamplingConfig",
    "Scores",
    "SegmentConfig",
    "StoreConfig",
    "UnknownRunError",
    "Verdict",
    "mark_worker_dead",
    "metrics_app",
    "serve_metrics",
]


def __getattr__(name: str) -> object:
    if name == "OpenAIJudge":  # imported on use: the openai client takes a while to import and may never be needed
        from .quality.judges.openai_judge import OpenAIJudge

        return OpenAIJudge
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
