"""Production monitoring for LangChain applications, from one callback handler."""

from .exposition import mark_worker_dead, metrics_app, serve_metrics
from .judges import ChatModelJudge, EvaluationInput, Judge, JudgeError, OfflineJudge, Scores, Verdict
from .monitor import Monitor
from .pricing import ModelPrice, PriceTable

__all__ = [
    "ChatModelJudge",
    "EvaluationInput",
    "Judge",
    "JudgeError",
    "ModelPrice",
    "Monitor",
    "OfflineJudge",
    "OpenAIJudge",
    "PriceTable",
    "Scores",
    "Verdict",
    "mark_worker_dead",
    "metrics_app",
    "serve_metrics",
]


def __getattr__(name: str) -> object:
    if name == "OpenAIJudge":
        from .judges.openai_judge import OpenAIJudge

        return OpenAIJudge
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
