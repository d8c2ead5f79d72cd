"""Judges score a sampled trace (question, retrieved context, answer); all share one small interface, `Judge`.

`OfflineJudge` needs nothing; `ChatModelJudge` wraps any LangChain chat model; `OpenAIJudge` calls the OpenAI API
(imported on first use: the openai client takes a while to import and may never be needed).
"""

import os
from typing import TYPE_CHECKING

from ...core.judging import (
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

if TYPE_CHECKING:
    from ...pricing import PriceTable
    from .openai_judge import OpenAIJudge

__all__ = [
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
    "default_judge",
]


def __getattr__(name: str) -> object:
    if name == "OpenAIJudge":
        from .openai_judge import OpenAIJudge

        return OpenAIJudge
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
"""The judge model used when an OpenAI judge is asked for without a model (`Monitor()`, `llmmonitor worker`)."""


def default_judge(prices: "PriceTable | None" = None) -> Judge:
    """OpenAI's gpt-4o-mini when `OPENAI_API_KEY` is set, else the offline judge (no network, no key)."""
    if os.environ.get("OPENAI_API_KEY"):
        from .openai_judge import OpenAIJudge

        return OpenAIJudge(model=DEFAULT_OPENAI_MODEL, prices=prices)
    return OfflineJudge()
