"""An LLM judge on the OpenAI Chat Completions API, with the verdict forced through a strict JSON schema.

Retries are the `openai` client's own (checked in openai 3.57 `_base_client.py`): it retries connection errors,
timeouts, 408, 409, 429 and 5xx up to `max_retries` times; it sleeps for the server's `retry-after-ms` or `retry-after`
when that is between 0 and 120 s (and does not retry at all when it is longer), and otherwise backs off exponentially,
0.5 s x 2^n capped at 8 s with up to 25% jitter. Only what is left after those retries reaches this module.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import openai

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
from ...core.usage import Usage
from ...pricing import PriceTable
from .prompt import PROMPT_VERSION, SCHEMA_NAME, SCORES_SCHEMA, build_messages, parse_scores

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletion

RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": SCORES_SCHEMA, "strict": True}}


class OpenAIJudge:
    """Scores traces with an OpenAI model. Safe to share between worker threads.

    Without `client`, one is built on first use from `api_key` or `OPENAI_API_KEY` (and `base_url` or the client's
    `OPENAI_BASE_URL`), so a judge can be configured before its key exists. `timeout` and `max_retries` also apply to
    a `client` passed in; the client retries timeouts too, so one call can take (max_retries + 1) x timeout plus
    backoff. Pass a dated snapshot as `model` to pin the judge: an alias can move to a new model.
    """

    name = "openai"
    prompt_version = PROMPT_VERSION

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini",
        client: openai.OpenAI | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        prices: PriceTable | None = None,
    ) -> None:
        self.model = model
        self.timeout = timeout
        self.max_retries = max_retries
        self._api_key = api_key
        self._base_url = base_url
        self._prices = prices or PriceTable.default()
        self._client = client.with_options(max_retries=max_retries) if client is not None else None
        self._owns_client = client is None
        self._client_lock = threading.Lock()

    def evaluate(self, item: EvaluationInput) -> Verdict:
        try:
            completion = self._get_client().chat.completions.create(
                model=self.model,
                messages=build_messages(item),  # type: ignore[arg-type]
                response_format=RESPONSE_FORMAT,  # type: ignore[arg-type]
                temperature=0,
                timeout=self.timeout,
            )
        except openai.APITimeoutError as error:
            raise JudgeTimeout(f"{self.model} did not answer within {self.timeout} s") from error
        except openai.RateLimitError as error:
            message = f"{self.model} still rate limited with max_retries={self.max_retries}: {error.message}"
            raise JudgeRateLimited(message) from error
        except openai.APIStatusError as error:
            raise JudgeAPIError(f"{self.model} returned HTTP {error.status_code}: {error.message}") from error
        except openai.OpenAIError as error:
            raise JudgeAPIError(f"{self.model} request failed: {error}") from error
        usage = self._usage(completion)
        try:
            scores = parse_scores(_content(completion))
        except JudgeError as error:  # the reply was useless, but it was paid for
            error.usage = usage
            raise
        return Verdict(
            scores=scores, judge=self.name, model=self.model, prompt_version=self.prompt_version, usage=usage
        )

    def close(self) -> None:
        """Close the HTTP connections of a client this judge built; a client passed in stays its owner's to close."""
        with self._client_lock:
            if self._owns_client and self._client is not None:
                self._client.close()
                self._client = None

    def _get_client(self) -> openai.OpenAI:
        with self._client_lock:
            if self._client is None:
                api_key = self._api_key or os.environ.get("OPENAI_API_KEY")
                if not api_key:
                    raise JudgeAPIError("OpenAIJudge has no API key: pass api_key= or set OPENAI_API_KEY")
                self._client = openai.OpenAI(
                    api_key=api_key, base_url=self._base_url, timeout=self.timeout, max_retries=self.max_retries
                )
            return self._client

    def _usage(self, completion: ChatCompletion) -> JudgeUsage:
        usage = completion.usage
        if usage is None:
            return JudgeUsage()
        details = usage.prompt_tokens_details
        cached = (details.cached_tokens or 0) if details is not None else 0
        price = self._prices.lookup(completion.model or self.model, "openai", _tier(completion.service_tier))
        tokens = Usage(prompt=usage.prompt_tokens, completion=usage.completion_tokens, cache_read=cached)
        cost = price.cost(tokens) if price is not None else None
        return JudgeUsage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, cost_usd=cost)


def _tier(service_tier: str | None) -> str | None:
    """The tiers priced apart (flex, priority); "default" and "auto" are the standard price."""
    return service_tier if service_tier in ("flex", "priority") else None


def _content(completion: ChatCompletion) -> str:
    """The reply text, or the error that says why there is no verdict in it."""
    if not completion.choices:
        raise JudgeParseError("judge reply has no choices")
    choice = completion.choices[0]
    if choice.message.refusal:
        raise JudgeRefusal(f"judge refused: {choice.message.refusal}")
    if choice.finish_reason == "content_filter":
        raise JudgeRefusal("judge reply was withheld by the content filter")
    if choice.finish_reason == "length":
        raise JudgeParseError("judge reply was cut off by the token limit (finish_reason=length)")
    if choice.message.content is None:
        raise JudgeParseError(f"judge reply has no content (finish_reason={choice.finish_reason})")
    return choice.message.content
