"""Judges score a sampled trace (question, retrieved context, answer); all share one small interface, `Judge`."""

from ._base import (
    CRITERIA,
    JUDGE_TAG,
    EvaluationInput,
    Judge,
    JudgeAPIError,
    JudgeError,
    JudgeParseError,
    JudgeRateLimited,
    JudgeRefusal,
    JudgeTimeout,
    JudgeUsage,
    Scores,
    Verdict,
)
from .chat_model_judge import ChatModelJudge
from .offline import OfflineJudge
from .prompt import PROMPT_VERSION

__all__ = [
    "CRITERIA",
    "JUDGE_TAG",
    "PROMPT_VERSION",
    "ChatModelJudge",
    "EvaluationInput",
    "Judge",
    "JudgeAPIError",
    "JudgeError",
    "JudgeParseError",
    "JudgeRateLimited",
    "JudgeRefusal",
    "JudgeTimeout",
    "JudgeUsage",
    "OfflineJudge",
    "OpenAIJudge",
    "Scores",
    "Verdict",
]


def __getattr__(name: str) -> object:
    if name == "OpenAIJudge":  # imported on use: the openai client takes a while to import and may never be needed
        from .openai_judge import OpenAIJudge

        return OpenAIJudge
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
