"""A small retrieval-augmented chain that runs offline: LangChain's in-memory vector store and a fake chat model.

Used by `llmmonitor demo`, the benchmarks and the notebooks, so that everything can be tried without an API key.
The fake model answers from the retrieved context, reports token usage like a real provider (also when streaming), takes a
little time, and can be made to fail or to hallucinate.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from pydantic import PrivateAttr

CORPUS = (
    "Acme Cloud stores backups in three regions: Frankfurt, Virginia and Singapore.",
    "Backups in Acme Cloud are kept for 35 days on the Standard plan and 365 days on the Enterprise plan.",
    "The Standard plan costs 20 dollars per user per month and includes 100 GB of storage.",
    "The Enterprise plan costs 45 dollars per user per month and includes single sign-on and audit logs.",
    "Acme Cloud supports single sign-on through SAML 2.0 and OpenID Connect on the Enterprise plan.",
    "To reset a password, open Settings, choose Security, and click Reset password; a link is emailed within 5 minutes.",
    "Two-factor authentication can use an authenticator app or a hardware key; SMS codes are not supported.",
    "The Acme Cloud API allows 600 requests per minute per workspace; bursts above that receive HTTP 429.",
    "API keys are created under Settings, Developer, API keys, and can be scoped to read-only access.",
    "Deleted files go to the trash and can be restored for 30 days before they are purged.",
    "Acme Cloud encrypts data at rest with AES-256 and in transit with TLS 1.3.",
    "Support is available by email on every plan and by phone on the Enterprise plan, Monday to Friday.",
    "The status page at status.acme.example reports incidents and scheduled maintenance windows.",
    "Scheduled maintenance happens on the first Sunday of each month between 02:00 and 04:00 UTC.",
    "Workspaces can invite up to 10 guests for free; additional guests are billed as users.",
    "The desktop app runs on Windows 11, macOS 13 or later, and Ubuntu 22.04 or later.",
    "Files larger than 5 GB must be uploaded with the command-line tool, which resumes interrupted uploads.",
    "Audit logs record sign-ins, permission changes and file deletions, and are kept for one year.",
    "Data export produces a ZIP archive of all files and a JSON file of the workspace metadata.",
    "Acme Cloud was founded in 2014 in Lisbon and serves about 40,000 companies.",
)

QUESTIONS = (
    "Where does Acme Cloud store backups?",
    "How long are backups kept on the Standard plan?",
    "How much does the Enterprise plan cost?",
    "Does Acme Cloud support single sign-on?",
    "How do I reset my password?",
    "Can I use SMS for two-factor authentication?",
    "What is the API rate limit?",
    "How do I create an API key?",
    "Can I restore a deleted file?",
    "How is my data encrypted?",
    "Is phone support available?",
    "When is scheduled maintenance?",
    "How many guests can a workspace invite?",
    "Which operating systems does the desktop app support?",
    "How do I upload a 10 GB file?",
    "What do audit logs record?",
    "What does a data export contain?",
    "When was Acme Cloud founded?",
)

# What the model says when it "hallucinates": fluent, confident, and not in any document.
INVENTED_FACTS = (
    "Backups are also mirrored to a fourth region in Sydney at no extra cost.",
    "The Enterprise plan includes unlimited phone support around the clock, 24/7.",
    "Passwords can be reset by texting RESET to the Acme support number.",
    "The API limit was raised to 5,000 requests per minute in 2023.",
    "Deleted files stay in the trash for 180 days.",
    "Acme Cloud was founded in 2009 in Berlin by former Google engineers.",
)

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "do",
        "does",
        "how",
        "i",
        "my",
        "can",
        "what",
        "which",
        "when",
        "where",
        "of",
        "to",
        "in",
        "on",
        "for",
        "and",
        "or",
        "by",
        "be",
        "it",
    ]
)


class KeywordEmbeddings(Embeddings):
    """Hashed bag-of-words vectors: deterministic, instant, and good enough for keyword retrieval in a demo."""

    def __init__(self, size: int = 256) -> None:
        self.size = size

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.size
        for word in _WORD.findall(text.lower()):
            if word not in _STOPWORDS:
                index = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big") % self.size
                vector[index] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


class ProviderOverloadedError(Exception):
    """What the fake provider raises when told to fail, like a 529 from a real one."""


def _approximate_tokens(text: str) -> int:
    return max(1, round(len(text.split()) * 1.3))


class DemoChatModel(GenericFakeChatModel):
    """LangChain's generic fake chat model, answering from the context in its prompt and reporting usage.

    `error_rate` makes calls fail, `hallucination_rate` appends an invented fact, `latency_seconds` is the median of a
    log-normal delay. Each call draws from a generator seeded by `seed`, the prompt and the call's sequence number, so
    the same calls in the same order give the same outcomes (with many threads the order, and so the outcomes, vary).
    """

    messages: Iterator[AIMessage | str] = iter(())
    model_name: str = "gpt-4o-mini"
    latency_seconds: float = 0.0
    error_rate: float = 0.0
    hallucination_rate: float = 0.0
    seed: int = 0
    _calls: Iterator[int] = PrivateAttr(default_factory=itertools.count)

    def _rng(self, messages: list[BaseMessage]) -> random.Random:
        digest = hashlib.blake2b(f"{self.seed}|{messages[-1].content}|{next(self._calls)}".encode(), digest_size=8)
        return random.Random(int.from_bytes(digest.digest(), "big"))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        rng = self._rng(messages)
        time.sleep(self._latency(rng))
        return self._answer(messages, rng)

    def _latency(self, rng: random.Random) -> float:
        return self.latency_seconds * math.exp(rng.gauss(0.0, 0.5)) if self.latency_seconds else 0.0

    def _answer(self, messages: list[BaseMessage], rng: random.Random) -> ChatResult:
        if rng.random() < self.error_rate:
            raise ProviderOverloadedError("the provider is overloaded, try again later (HTTP 529)")
        prompt_text = "\n".join(str(message.content) for message in messages)
        answer = _answer_from_prompt(prompt_text)
        if rng.random() < self.hallucination_rate:
            answer = f"{answer} {rng.choice(INVENTED_FACTS)}"
        usage = {
            "input_tokens": _approximate_tokens(prompt_text),
            "output_tokens": _approximate_tokens(answer),
            "total_tokens": _approximate_tokens(prompt_text) + _approximate_tokens(answer),
        }
        message = AIMessage(content=answer, usage_metadata=usage, response_metadata={"model_name": self.model_name})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        rng = self._rng(messages)
        latency = self._latency(rng)
        time.sleep(latency * 0.3)  # time to first token; the rest is spread over the tokens
        message = self._answer(messages, rng).generations[0].message
        words = re.split(r"(\s)", str(message.content))
        for word in words:
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word, id=message.id))
            if run_manager:
                run_manager.on_llm_new_token(word, chunk=chunk)
            yield chunk
            time.sleep(latency * 0.7 / len(words))
        # Like OpenAI with stream_usage=True: usage arrives in a final, empty chunk.
        usage = getattr(message, "usage_metadata", None)
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage, chunk_position="last"))

    @property
    def _llm_type(self) -> str:
        return "demo-fake-chat-model"


def _answer_from_prompt(prompt_text: str) -> str:
    """The context sentence sharing most words with the question: a faithful, extractive answer."""
    context, _, question = prompt_text.rpartition("Question:")
    question_words = {w for w in _WORD.findall(question.lower()) if w not in _STOPWORDS}
    sentences = [line.strip("- ").strip() for line in context.splitlines() if line.startswith("- ")]
    if not sentences:
        return "I could not find that in the documentation."
    return max(sentences, key=lambda s: len(question_words & set(_WORD.findall(s.lower()))))


PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer the question using only the context below.\nContext:\n{context}"),
        ("human", "Question: {question}"),
    ]
)


def _format_documents(documents: list[Document]) -> str:
    return "\n".join(f"- {document.page_content}" for document in documents)


def build_retriever(*, k: int = 3) -> Any:
    """An in-memory vector store over the demo corpus."""
    store = InMemoryVectorStore(KeywordEmbeddings())
    store.add_texts(list(CORPUS))
    return store.as_retriever(search_kwargs={"k": k})


def build_chain(model: DemoChatModel | None = None, *, retriever: Any = None) -> Runnable:
    """retriever -> prompt -> chat model -> string: the shape of most RAG apps."""
    retriever = retriever if retriever is not None else build_retriever()
    model = model if model is not None else DemoChatModel()
    return (
        {"context": retriever | RunnableLambda(_format_documents), "question": RunnablePassthrough()}
        | PROMPT
        | model
        | StrOutputParser()
    ).with_config(run_name="support_bot")


def drive(
    chain: Runnable, *, requests: int, callbacks: list[Any], seed: int = 0, concurrency: int = 8
) -> dict[str, int]:
    """Send `requests` questions through every LangChain entry point from `concurrency` threads.

    Returns how many went each way. Failures of the fake provider are expected and counted, not raised.
    """
    config = {"callbacks": callbacks}
    counts: dict[str, int] = defaultdict(int)
    lock = threading.Lock()

    def count(kind: str, n: int = 1) -> None:
        with lock:
            counts[kind] += n

    async def one_async(rng: random.Random, question: str) -> None:
        if rng.random() < 0.5:
            async for _ in chain.astream(question, config=config):
                pass
            count("astream")
        else:
            await chain.ainvoke(question, config=config)
            count("ainvoke")

    def one(worker_seed: int) -> int:
        rng = random.Random(worker_seed)
        kind = rng.random()
        try:
            if kind < 0.45:
                chain.invoke(rng.choice(QUESTIONS), config=config)
                count("invoke")
            elif kind < 0.7:
                stream = chain.stream(rng.choice(QUESTIONS), config=config)
                if rng.random() < 0.1:  # the user closed the tab after the first words
                    next(stream)
                    stream.close()
                    count("abandoned_stream")
                else:
                    for _ in stream:
                        pass
                    count("stream")
            elif kind < 0.8:
                results = chain.batch([rng.choice(QUESTIONS) for _ in range(4)], config=config, return_exceptions=True)
                failed = sum(isinstance(result, Exception) for result in results)
                count("batch", len(results) - failed)
                count("failed", failed)
                return len(results)
            else:
                asyncio.run(one_async(rng, rng.choice(QUESTIONS)))
        except ProviderOverloadedError:
            count("failed")
        return 1

    rng = random.Random(seed)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        sent = 0
        while sent < requests:
            batch = [pool.submit(one, rng.getrandbits(32)) for _ in range(min(concurrency * 4, requests - sent))]
            sent += sum(future.result() for future in batch)
    return dict(counts)
