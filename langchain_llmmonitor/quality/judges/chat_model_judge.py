"""An LLM judge on any LangChain chat model (ChatOpenAI, ChatAnthropic, a local model).

Structured output is used when the model has it (`with_structured_output`: tool calling or a JSON schema, whichever the
provider implements); a model without it gets the same prompt as plain text and its reply is parsed. Either way the reply
is validated by `parse_scores`, so a provider that does not enforce the schema still cannot produce an invalid score.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable, RunnableConfig

from ...core.judging import (
    EvaluationInput,
    JudgeAPIError,
    JudgeError,
    JudgeParseError,
    JudgeRateLimited,
    JudgeRefusal,
    JudgeTimeout,
    JudgeUsage,
    Verdict,
)
from ...core.usage import from_usage_metadata
from ...core.vocabulary import JUDGE_TAG
from ...pricing import PriceTable
from .prompt import PROMPT_VERSION, SCHEMA_NAME, SCORES_SCHEMA, build_messages, parse_scores

JUDGE_RUN_NAME = "llmmonitor_judge"
STRUCTURED_SCHEMA = {"title": SCHEMA_NAME, "description": "Scores for one RAG answer.", **SCORES_SCHEMA}
"""`title` names the tool (or JSON schema) that providers' structured output is bound to."""


class ChatModelJudge:
    """Scores traces with a LangChain chat model. `uses_structured_output` says which path the model got.

    Every call runs with the `JUDGE_TAG` tag and run name "llmmonitor_judge", so a monitor attached to the judge model
    can tell the judge's own runs from application traffic.
    """

    prompt_version = PROMPT_VERSION

    def __init__(self, model: BaseChatModel, *, name: str | None = None, prices: PriceTable | None = None) -> None:
        self.name = name or "chat_model"
        self.model = _model_name(model)
        self._chat_model = model
        self._prices = prices or PriceTable.default()
        try:
            self._structured: Runnable[Any, Any] | None = model.with_structured_output(
                STRUCTURED_SCHEMA, include_raw=True
            )
        except NotImplementedError:  # BaseChatModel's default when the model cannot bind tools
            self._structured = None

    @property
    def uses_structured_output(self) -> bool:
        return self._structured is not None

    def evaluate(self, item: EvaluationInput) -> Verdict:
        messages = build_messages(item)
        config = RunnableConfig(tags=[JUDGE_TAG], run_name=JUDGE_RUN_NAME)  # per call: worker threads share the judge
        raw: Any = None
        try:
            if self._structured is not None:
                result = self._structured.invoke(messages, config=config)
                raw = result["raw"]
                payload = _structured_payload(result)
            else:
                raw = self._chat_model.invoke(messages, config=config)
                payload = _text(raw)
            scores = parse_scores(payload)
        except JudgeError as error:
            if raw is not None:  # the model answered: the failed call still cost tokens
                error.usage = self._usage(raw)
            raise
        except Exception as error:
            raise _judge_error(error) from error
        return Verdict(
            scores=scores,
            judge=self.name,
            model=self.model,
            prompt_version=self.prompt_version,
            usage=self._usage(raw),
        )

    def _usage(self, message: Any) -> JudgeUsage:
        usage = getattr(message, "usage_metadata", None)
        if not usage:
            return JudgeUsage()
        tokens = from_usage_metadata(usage)
        if tokens is None:
            return JudgeUsage()
        price = self._prices.lookup(self.model, None, tokens.service_tier) if self.model != "unknown" else None
        cost = price.cost(tokens) if price is not None else None
        return JudgeUsage(prompt_tokens=tokens.prompt, completion_tokens=tokens.completion, cost_usd=cost)


def _structured_payload(result: Mapping[str, Any]) -> Any:
    """The parsed verdict from `with_structured_output(include_raw=True)`, or the error that says why there is none."""
    raw = result["raw"]
    _check_finish(raw)
    error = result.get("parsing_error")
    if error is not None:
        if type(error).__name__ == "OpenAIRefusalError":  # langchain-openai's json_schema parser on a refusal
            raise JudgeRefusal(f"judge refused: {error}") from error
        raise JudgeParseError(f"judge structured output did not parse: {error}") from error
    if result.get("parsed") is None:
        raise JudgeParseError(f"judge reply has no {SCHEMA_NAME} output: {str(getattr(raw, 'content', raw))[:200]!r}")
    return result["parsed"]


def _text(message: Any) -> str:
    _check_finish(message)
    if not isinstance(message, AIMessage):
        raise JudgeParseError(f"judge model returned {type(message).__name__}, not an AIMessage")
    text = message.text
    return str(text) if isinstance(text, str) else text()  # a property since langchain-core 1.0, a method before


def _check_finish(message: Any) -> None:
    """Refusals and truncation, as providers report them in the message, are not parse accidents."""
    refusal = getattr(message, "additional_kwargs", {}).get("refusal")
    if refusal:
        raise JudgeRefusal(f"judge refused: {refusal}")
    metadata = getattr(message, "response_metadata", {})
    stop = metadata.get("finish_reason") or metadata.get("stop_reason")
    if stop in ("length", "max_tokens", "MAX_TOKENS"):
        raise JudgeParseError(f"judge reply was cut off by the token limit ({stop})")
    if stop == "content_filter":
        raise JudgeRefusal("judge reply was withheld by the content filter")


def _judge_error(error: Exception) -> JudgeError:
    """Map a provider's exception by shape, not by import: the judge must not depend on every provider's package."""
    names = {cls.__name__ for cls in type(error).__mro__}
    if isinstance(error, TimeoutError) or any("Timeout" in name for name in names):
        return JudgeTimeout(f"judge model timed out: {error}")
    if "RateLimitError" in names or getattr(error, "status_code", None) == 429:
        return JudgeRateLimited(f"judge model rate limited: {error}")
    if isinstance(error, OutputParserException):
        return JudgeParseError(f"judge reply did not parse: {error}")
    return JudgeAPIError(f"judge model failed: {type(error).__name__}: {error}")


def _model_name(model: BaseChatModel) -> str:
    for attribute in ("model_name", "model", "model_id"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return value
    return model._get_ls_params().get("ls_model_name") or "unknown"
