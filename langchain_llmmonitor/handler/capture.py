"""What a judge needs from a trace: the question, the retrieved passages and the answer, as bounded plain text.

The Monitor keeps only references while a trace runs (the objects are alive anyway); turning them into text happens
once, for the traces chosen for evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..config import CaptureConfig
from ..core.judging import EvaluationInput

QUESTION_KEYS = ("question", "input", "query", "q", "prompt", "messages")
ANSWER_KEYS = ("answer", "output", "result", "text", "content", "generation", "response", "messages")


def evaluation_input(
    config: CaptureConfig, inputs: Any, documents: Sequence[Any], outputs: Any
) -> EvaluationInput | None:
    """The judge's view of one trace, bounded and redacted as `config` says; None when there is no question or no
    answer to judge."""
    question = text_of(inputs, config.question_key, QUESTION_KEYS, last_role="human") or _asked_in(outputs)
    answer = text_of(outputs, config.answer_key, ANSWER_KEYS, last_role="ai")
    if not question or not answer:
        return None
    redact = config.redact or _same
    passages: list[str] = []
    budget = config.max_context_chars
    for document in documents[: config.max_documents]:
        passage = _document_text(document)
        if not passage:
            continue
        passage = redact(passage[: min(config.max_document_chars, budget)])
        passages.append(passage)
        budget -= len(passage)
        if budget <= 0:
            break
    return EvaluationInput(
        question=redact(question[: config.max_text_chars]),
        context=tuple(passages),
        answer=redact(answer[: config.max_text_chars]),
    )


def _asked_in(outputs: Any) -> str:
    """The last human message of a conversation state: the question of a run resumed with `Command(resume=...)`,
    whose input is the resume value."""
    messages = outputs.get("messages") if isinstance(outputs, Mapping) else None
    if isinstance(messages, Sequence) and not isinstance(messages, str):
        for message in reversed(messages):
            if _role(message) == "human":
                return _message_text(message)
    return ""


def _same(text: str) -> str:
    return text


def _document_text(document: Any) -> str:
    content = getattr(document, "page_content", document)
    return content.strip() if isinstance(content, str) else ""


def text_of(value: Any, key: str | None, default_keys: Sequence[str], *, last_role: str) -> str:
    """Plain text from a string, a message, a list of messages, a chat prompt value or a dict holding one of those."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, Mapping):
        keys = (key,) if key is not None else default_keys
        for candidate in keys:
            if candidate in value:
                text = text_of(value[candidate], None, (), last_role=last_role)
                if text:
                    return text
        return ""
    content = getattr(value, "content", None)
    if content is not None:
        return _content_text(content)
    to_messages = getattr(value, "to_messages", None)  # a ChatPromptValue
    if callable(to_messages):
        value = to_messages()
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)) and value:
        for message in reversed(value):
            if _role(message) == last_role:
                return _message_text(message)
        return _message_text(value[-1])
    return ""


def _message_text(message: Any) -> str:
    if isinstance(message, Mapping):
        return _content_text(message.get("content"))
    if isinstance(message, Sequence) and not isinstance(message, str) and len(message) == 2:
        return _content_text(message[1])
    return text_of(message, None, (), last_role="")


def _role(message: Any) -> str | None:
    if isinstance(message, Mapping):
        role = message.get("role") or message.get("type")
        return {"user": "human", "assistant": "ai"}.get(role, role)
    if isinstance(message, Sequence) and not isinstance(message, str) and len(message) == 2:  # ("human", "text")
        return {"user": "human", "assistant": "ai"}.get(message[0], message[0])
    return getattr(message, "type", None)


def _content_text(content: Any) -> str:
    """A message's content: a string, or the text parts of a list of content blocks."""
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, Sequence):
        parts = [
            block if isinstance(block, str) else block.get("text", "")
            for block in content
            if isinstance(block, str) or (isinstance(block, Mapping) and block.get("type") == "text")
        ]
        return "\n".join(part for part in parts if isinstance(part, str)).strip()
    return ""
