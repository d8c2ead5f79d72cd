"""ChatModelJudge on LangChain's fake chat models: the structured-output and plain-text paths, failures, tags, usage."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import httpx2
import openai
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tracers.context import collect_runs
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from langchain_llmmonitor.core.judging import (
    EvaluationInput,
    JudgeAPIError,
    JudgeError,
    JudgeParseError,
    JudgeRateLimited,
    JudgeRefusal,
    JudgeTimeout,
    Scores,
)
from langchain_llmmonitor.core.usage import Usage
from langchain_llmmonitor.core.vocabulary import JUDGE_TAG
from langchain_llmmonitor.pricing import PriceTable
from langchain_llmmonitor.quality.judges.chat_model_judge import STRUCTURED_SCHEMA, ChatModelJudge
from langchain_llmmonitor.quality.judges.prompt import PROMPT_VERSION, SCHEMA_NAME, build_messages

VALID = {
    "reason": "Supported by document 1.",
    "faithfulness": 4,
    "relevance": 5,
    "completeness": 3,
    "hallucination": False,
}
SCORES = Scores(faithfulness=4, relevance=5, completeness=3, hallucination=False, reason="Supported by document 1.")
ITEM = EvaluationInput(question="Capital of France?", context=("Paris is the capital of France.",), answer="Paris.")
USAGE = {"input_tokens": 900, "output_tokens": 40, "total_tokens": 940, "input_token_details": {"cache_read": 100}}


class TextChatModel(GenericFakeChatModel):
    """A model without structured output (no `bind_tools`), named like a priced model."""

    model_name: str = "gpt-4o-mini"


class ToolCallingChatModel(GenericFakeChatModel):
    """A model that binds tools, so LangChain's real `with_structured_output` drives it; records each call's kwargs."""

    model_name: str = "claude-haiku-4-5"
    calls: list[dict[str, Any]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any) -> Runnable[Any, Any]:
        return self.bind(tools=[convert_to_openai_tool(tool) for tool in tools], tool_choice=tool_choice, **kwargs)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.calls.append({"messages": messages, **kwargs})
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


class TagRecorder(BaseCallbackHandler):
    """Keeps the tags of every chat model run it sees, as a monitor attached to the judge model would."""

    def __init__(self) -> None:
        self.tags: list[list[str]] = []

    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, tags: list[str] | None = None, **kwargs: Any
    ) -> None:
        self.tags.append(list(tags or []))


def tool_reply(args: Any, *, name: str = SCHEMA_NAME, **fields: Any) -> AIMessage:
    return AIMessage(
        content="", tool_calls=[{"name": name, "args": args, "id": "call_1", "type": "tool_call"}], **fields
    )


def text_judge(*replies: AIMessage | str, **options: Any) -> ChatModelJudge:
    return ChatModelJudge(TextChatModel(messages=iter(replies)), **options)


def tool_judge(*replies: AIMessage | str, **options: Any) -> ChatModelJudge:
    return ChatModelJudge(ToolCallingChatModel(messages=iter(replies)), **options)


def raising(error: Exception) -> Iterator[AIMessage]:
    raise error
    yield  # a generator, so the error is raised on the model call, not here


def expected_cost(model: str) -> float:
    price = PriceTable.default().lookup(model)
    assert price is not None
    return price.cost(Usage(prompt=900, completion=40, cache_read=100))


def test_plain_model_falls_back_to_text_and_parses_the_verdict() -> None:
    """A model without structured output gets the prompt as text; its JSON reply becomes the verdict, with usage."""
    judge = text_judge(AIMessage(content=json.dumps(VALID), usage_metadata=USAGE))
    assert not judge.uses_structured_output
    verdict = judge.evaluate(ITEM)
    assert verdict.scores == SCORES
    assert (verdict.judge, verdict.model, verdict.prompt_version) == ("chat_model", "gpt-4o-mini", PROMPT_VERSION)
    assert (verdict.usage.prompt_tokens, verdict.usage.completion_tokens) == (900, 40)
    assert verdict.usage.cost_usd == pytest.approx(expected_cost("gpt-4o-mini"))


def test_tool_calling_model_uses_structured_output_with_the_scores_schema() -> None:
    """A model that binds tools is forced to call the scores tool; its arguments become the verdict, with usage."""
    model = ToolCallingChatModel(messages=iter([tool_reply(VALID, usage_metadata=USAGE)]))
    judge = ChatModelJudge(model, name="anthropic")
    assert judge.uses_structured_output
    verdict = judge.evaluate(ITEM)
    assert verdict.scores == SCORES
    assert (verdict.judge, verdict.model) == ("anthropic", "claude-haiku-4-5")
    assert verdict.usage.cost_usd == pytest.approx(expected_cost("claude-haiku-4-5"))
    (call,) = model.calls
    assert call["tools"] == [convert_to_openai_tool(STRUCTURED_SCHEMA)]
    assert call["tools"][0]["function"]["name"] == SCHEMA_NAME
    assert call["tool_choice"] == "any"
    assert [message.content for message in call["messages"]] == [message["content"] for message in build_messages(ITEM)]


@pytest.mark.parametrize(
    ("make_judge", "reply", "error", "message"),
    [
        pytest.param(text_judge, "The answer looks good, 5/5.", JudgeParseError, "not valid JSON", id="text-prose"),
        pytest.param(text_judge, json.dumps({**VALID, "relevance": 7}), JudgeParseError, "from 1 to 5", id="text-7"),
        pytest.param(
            text_judge,
            AIMessage(content='{"reason": "cut', response_metadata={"finish_reason": "length"}),
            JudgeParseError,
            "token limit",
            id="text-truncated",
        ),
        pytest.param(tool_judge, tool_reply({**VALID, "faithfulness": 0}), JudgeParseError, "from 1 to 5", id="tool-0"),
        pytest.param(tool_judge, tool_reply({"faithfulness": 5}), JudgeParseError, "missing", id="tool-missing-keys"),
        pytest.param(tool_judge, "I'd rather answer in prose.", JudgeParseError, "no rag_judge_scores", id="no-call"),
        pytest.param(
            tool_judge, tool_reply(VALID, name="other"), JudgeParseError, "no rag_judge_scores", id="other-tool"
        ),
        pytest.param(
            tool_judge,
            AIMessage(content="", additional_kwargs={"refusal": "I can't grade this."}),
            JudgeRefusal,
            "can't grade",
            id="refusal",
        ),
        pytest.param(
            tool_judge,
            tool_reply(VALID, response_metadata={"stop_reason": "max_tokens"}),
            JudgeParseError,
            "token limit",
            id="tool-truncated",
        ),
    ],
)
def test_invalid_replies_raise_instead_of_scoring(
    make_judge: Any, reply: AIMessage | str, error: type[JudgeError], message: str
) -> None:
    """A reply that is not a complete, valid verdict is a JudgeError on either path, never a score."""
    with pytest.raises(error, match=message):
        make_judge(reply).evaluate(ITEM)


def _request() -> httpx2.Request:
    return httpx2.Request("POST", "https://api.openai.com/v1/chat/completions")


@pytest.mark.parametrize(
    ("raised", "error"),
    [
        pytest.param(TimeoutError("read timed out"), JudgeTimeout, id="builtin-timeout"),
        pytest.param(openai.APITimeoutError(request=_request()), JudgeTimeout, id="openai-timeout"),
        pytest.param(httpx.ReadTimeout("timed out"), JudgeTimeout, id="httpx-timeout"),
        pytest.param(
            openai.RateLimitError("slow down", response=httpx2.Response(429, request=_request()), body=None),
            JudgeRateLimited,
            id="openai-429",
        ),
        pytest.param(ConnectionError("connection refused"), JudgeAPIError, id="connection"),
        pytest.param(ValueError("unexpected provider payload"), JudgeAPIError, id="anything-else"),
    ],
)
@pytest.mark.parametrize("model_class", [TextChatModel, ToolCallingChatModel])
def test_model_exceptions_map_to_judge_errors(
    model_class: type[GenericFakeChatModel], raised: Exception, error: type[JudgeError]
) -> None:
    """A raising model becomes the matching JudgeError with the original exception as its cause."""
    judge = ChatModelJudge(model_class(messages=raising(raised)))
    with pytest.raises(error) as caught:
        judge.evaluate(ITEM)
    assert caught.value.__cause__ is raised


@pytest.mark.parametrize(
    ("model_class", "reply"),
    [
        pytest.param(TextChatModel, json.dumps(VALID), id="text"),
        pytest.param(ToolCallingChatModel, tool_reply(VALID), id="structured"),
    ],
)
def test_judge_runs_carry_the_judge_tag_and_run_name(model_class: type[GenericFakeChatModel], reply: Any) -> None:
    """The judge model's run is tagged for a monitor to skip, and the judge's top run is named llmmonitor_judge."""
    recorder = TagRecorder()
    judge = ChatModelJudge(model_class(messages=iter([reply]), callbacks=[recorder]))
    with collect_runs() as collected:
        judge.evaluate(ITEM)
    assert len(recorder.tags) == 1 and JUDGE_TAG in recorder.tags[0]
    roots = [run for run in collected.traced_runs if run.parent_run_id is None]
    assert [run.name for run in roots] == ["llmmonitor_judge"]
    assert JUDGE_TAG in roots[0].tags


def test_unknown_model_name_counts_tokens_but_not_dollars() -> None:
    """A model without a name is "unknown": tokens are still reported, cost stays None rather than 0."""
    model = GenericFakeChatModel(messages=iter([AIMessage(content=json.dumps(VALID), usage_metadata=USAGE)]))
    verdict = ChatModelJudge(model, name="local").evaluate(ITEM)
    assert (verdict.judge, verdict.model) == ("local", "unknown")
    assert (verdict.usage.prompt_tokens, verdict.usage.completion_tokens, verdict.usage.cost_usd) == (900, 40, None)


def test_reply_without_usage_reports_zero_tokens_and_unknown_cost() -> None:
    """A provider that reports no usage yields an empty JudgeUsage, not a made-up cost."""
    verdict = text_judge(json.dumps(VALID)).evaluate(ITEM)
    assert (verdict.usage.prompt_tokens, verdict.usage.completion_tokens, verdict.usage.cost_usd) == (0, 0, None)


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(AIMessage(content="I would rather not grade this.", usage_metadata=USAGE), id="not-json"),
        pytest.param(AIMessage(content=json.dumps({**VALID, "faithfulness": 9}), usage_metadata=USAGE), id="score-9"),
    ],
)
def test_unusable_reply_still_reports_its_cost(reply: AIMessage) -> None:
    """The model answered, so the failed evaluation carries the tokens and dollars it spent."""
    with pytest.raises(JudgeParseError) as raised:
        text_judge(reply).evaluate(ITEM)
    usage = raised.value.usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (900, 40)
    assert usage.cost_usd == pytest.approx(expected_cost("gpt-4o-mini"))
