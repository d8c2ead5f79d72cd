"""The Monitor's quality layer through real LangChain runtimes: sampling, context capture, and judging off the request path."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from langchain_llmmonitor import CaptureConfig, JudgeConfig, Monitor, MonitorConfig, SamplingConfig
from langchain_llmmonitor.core.judging import EvaluationInput, Scores, Verdict
from langchain_llmmonitor.demo.app import build_chain, build_retriever
from langchain_llmmonitor.handler.sampling import Sampler, trace_fraction
from langchain_llmmonitor.quality.judges.offline import OfflineJudge

from .conftest import fake_model, value
from .test_runtimes import ENTRY_POINTS, QUESTIONS


class RecordingJudge:
    """A judge that keeps what it was shown and gives a fixed verdict."""

    name = "recording"
    model = "recording-v1"
    prompt_version = "test-v1"

    def __init__(self) -> None:
        self.items: list[EvaluationInput] = []
        self._lock = threading.Lock()

    def evaluate(self, item: EvaluationInput) -> Verdict:
        with self._lock:
            self.items.append(item)
        return Verdict(
            Scores(4, 5, 4, False, "fine"), judge=self.name, model=self.model, prompt_version=self.prompt_version
        )


PROMPT = ChatPromptTemplate.from_messages([("system", "Context: {context}"), ("human", "{question}")])


WITHOUT_CONTEXT = MonitorConfig(sampling=SamplingConfig(evaluate_without_context=True))


def rag_chain(model: Any = None, retriever: Any = None) -> Any:
    """A dict-input RAG chain: {"question": ...} -> answer string."""
    retriever = retriever if retriever is not None else build_retriever()
    model = model if model is not None else fake_model("Returns are accepted within 30 days.")
    question = RunnableLambda(lambda inputs: inputs["question"])
    docs = question | retriever | RunnableLambda(lambda found: "\n".join(d.page_content for d in found))
    return {"context": docs, "question": question} | PROMPT | model | StrOutputParser()


def judged_monitor(
    registry: Any, logs: Any, judge: Any, sample_rate: float = 1.0, config: MonitorConfig | None = None
) -> Monitor:
    return Monitor(config, registry=registry, logger=logs.logger, judge=judge, sample_rate=sample_rate)


@pytest.mark.parametrize(("entry_point", "streams"), ENTRY_POINTS)
async def test_every_entry_point_hands_question_context_and_answer_to_the_judge(registry, logs, entry_point, streams):
    """With sample_rate 1, each invocation reaches the judge with its question, retrieved passages and answer."""
    judge = RecordingJudge()
    monitor = judged_monitor(registry, logs, judge)
    result = entry_point(rag_chain(), {"callbacks": [monitor]})
    if hasattr(result, "__await__"):
        await result
    assert monitor.flush(10)
    assert sorted(item.question for item in judge.items) == sorted(q["question"] for q in QUESTIONS)
    for item in judge.items:
        assert item.answer == "Returns are accepted within 30 days."
        assert 1 <= len(item.context) <= 4
    assert value(registry, "llm_quality_samples_total", reason="rate") == len(QUESTIONS)
    assert value(registry, "llm_judge_evaluations_total", judge="recording", status="success") == len(QUESTIONS)
    assert (
        value(registry, "llm_quality_score_count", criterion="faithfulness", judge="recording", sampling="random") == 4
    )


def test_demo_chain_with_string_input_is_judged_by_the_offline_judge(registry, logs):
    """The demo's string-input chain is captured, and the offline judge's scores land in the quality metrics and logs."""
    monitor = Monitor(registry=registry, logger=logs.logger, judge=OfflineJudge(), sample_rate=1.0)
    chain = build_chain()
    chain.invoke("How long do I have to return an item?", config={"callbacks": [monitor]})
    assert monitor.flush(10)
    (event,) = logs.named("quality_eval")
    assert event["status"] == "success" and event["judge"] == "offline"
    assert value(registry, "llm_quality_score_count", criterion="faithfulness", judge="offline", sampling="random") == 1


def test_sample_rate_zero_judges_nothing(registry, logs):
    """A zero rate with no forcing rule never calls the judge."""
    judge = RecordingJudge()
    monitor = judged_monitor(registry, logs, judge, sample_rate=0.0)
    rag_chain().batch(QUESTIONS, config={"callbacks": [monitor]})
    assert monitor.flush(5)
    assert judge.items == []
    assert value(registry, "llm_quality_samples_total", reason="rate") == 0


@pytest.mark.parametrize(
    ("config", "rate", "reason", "sampling"),
    [
        pytest.param({"metadata": {"llmmonitor_evaluate": True}}, 0.0, "metadata", "forced", id="metadata-forces-in"),
        pytest.param({"tags": ["llmmonitor:evaluate"]}, 0.0, "tag", "forced", id="tag-forces-in"),
        pytest.param({"metadata": {"llmmonitor_evaluate": False}}, 1.0, None, None, id="metadata-opts-out"),
    ],
)
def test_per_call_overrides(registry, logs, config, rate, reason, sampling):
    """`config["metadata"]` and tags force a trace in or keep it out whatever the rate, and say why."""
    judge = RecordingJudge()
    monitor = judged_monitor(registry, logs, judge, sample_rate=rate)
    rag_chain().invoke({"question": "How long do refunds take?"}, config={"callbacks": [monitor], **config})
    assert monitor.flush(5)
    if reason is None:
        assert judge.items == []
    else:
        assert len(judge.items) == 1
        assert value(registry, "llm_quality_samples_total", reason=reason) == 1
        assert (
            value(registry, "llm_quality_score_count", criterion="relevance", judge="recording", sampling=sampling) == 1
        )


class FlakyModel(GenericFakeChatModel):
    """Fails every call, so a fallback has to answer."""

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        raise TimeoutError("provider timed out")


def test_trace_that_recovered_from_a_failed_step_is_always_judged(registry, logs):
    """A fallback that answers after a failed LLM call forces an evaluation with reason "error"."""
    judge = RecordingJudge()
    monitor = judged_monitor(registry, logs, judge, sample_rate=0.0)
    model = FlakyModel(messages=iter([])).with_fallbacks([fake_model("Refunds take 5 days.")])
    rag_chain(model=model).invoke({"question": "How long do refunds take?"}, config={"callbacks": [monitor]})
    assert monitor.flush(5)
    assert [item.answer for item in judge.items] == ["Refunds take 5 days."]
    assert value(registry, "llm_quality_samples_total", reason="error") == 1
    assert (
        value(registry, "llm_quality_score_count", criterion="faithfulness", judge="recording", sampling="forced") == 1
    )


def test_failed_root_is_not_judged(registry, logs):
    """A trace that raised has no answer to judge; nothing is queued for it."""
    judge = RecordingJudge()
    monitor = judged_monitor(registry, logs, judge)
    chain = rag_chain(model=FlakyModel(messages=iter([])))
    with pytest.raises(TimeoutError):
        chain.invoke({"question": "anything"}, config={"callbacks": [monitor]})
    assert monitor.flush(5)
    assert judge.items == []


class ManyDocuments(BaseRetriever):
    """A retriever returning many long passages."""

    def _get_relevant_documents(self, query: str, *, run_manager: Any = None) -> list[Document]:
        return [Document(page_content=f"passage {i} " + "x" * 5_000) for i in range(40)]


def test_captured_context_is_capped_in_count_and_characters(registry, logs):
    """However much is retrieved, the judge sees at most the configured passages and characters."""
    judge = RecordingJudge()
    monitor = judged_monitor(
        registry, logs, judge, config=MonitorConfig(capture=CaptureConfig(max_documents=5, max_context_chars=6_000))
    )
    rag_chain(retriever=ManyDocuments()).invoke(
        {"question": "what is in the passages?"}, config={"callbacks": [monitor]}
    )
    assert monitor.flush(5)
    (item,) = judge.items
    assert 1 < len(item.context) <= 5
    assert sum(len(passage) for passage in item.context) <= 6_000
    assert item.context[0].startswith("passage 0")


def test_custom_keys_and_redaction_apply_before_the_judge_and_the_logs(registry, logs):
    """`question_key`/`answer_key` pick the fields; `redact` runs on all judged text before it leaves the callback."""
    judge = RecordingJudge()
    retriever = build_retriever()
    chain = RunnablePassthrough.assign(docs=RunnableLambda(lambda x: x["ask"]) | retriever) | RunnableLambda(
        lambda x: {"reply": f"Dear {x['customer']}, returns take 30 days.", "debug": "ignore me"}
    )
    capture = CaptureConfig(
        question_key="ask", answer_key="reply", redact=lambda text: text.replace("alice@example.com", "[email]")
    )
    monitor = judged_monitor(registry, logs, judge, config=MonitorConfig(capture=capture))
    chain.invoke(
        {"ask": "alice@example.com asks: how long for returns?", "customer": "alice@example.com"},
        config={"callbacks": [monitor]},
    )
    assert monitor.flush(5)
    (item,) = judge.items
    assert item.question == "[email] asks: how long for returns?"
    assert item.answer == "Dear [email], returns take 30 days."
    assert "alice@example.com" not in repr(logs.events)


def test_trace_without_retrieval_is_not_judged_unless_asked(registry, logs):
    """No retrieved context means no faithfulness to judge: dropped and counted, unless evaluate_without_context."""
    chain = PROMPT.partial(context="none") | fake_model("Hello!") | StrOutputParser()
    judge = RecordingJudge()
    monitor = judged_monitor(registry, logs, judge)
    chain.invoke({"question": "hi"}, config={"callbacks": [monitor]})
    assert monitor.flush(5)
    assert judge.items == []
    assert value(registry, "llm_judge_dropped_total", reason="no_context") == 1

    judge_all = RecordingJudge()
    monitor_all = judged_monitor(registry, logs, judge_all, config=WITHOUT_CONTEXT)
    chain.invoke({"question": "hi"}, config={"callbacks": [monitor_all]})
    assert monitor_all.flush(5)
    assert [(item.question, item.context, item.answer) for item in judge_all.items] == [("hi", (), "Hello!")]


def test_chat_model_called_directly_is_captured_from_its_messages(registry, logs):
    """A chat model invoked as the root is judged on its last human message and its reply."""
    judge = RecordingJudge()
    monitor = judged_monitor(registry, logs, judge, config=WITHOUT_CONTEXT)
    fake_model("Bonjour.").invoke([("system", "translate"), ("human", "Hello")], config={"callbacks": [monitor]})
    assert monitor.flush(5)
    assert [(item.question, item.answer) for item in judge.items] == [("Hello", "Bonjour.")]


def test_request_id_from_metadata_travels_with_the_evaluation(registry, logs):
    """The application's request id in `config["metadata"]` is attached to the evaluation's log event."""
    monitor = judged_monitor(registry, logs, RecordingJudge())
    rag_chain().invoke({"question": "refunds?"}, config={"callbacks": [monitor], "metadata": {"request_id": "req-42"}})
    assert monitor.flush(5)
    (event,) = logs.named("quality_eval")
    assert event["request_id"] == "req-42"


class BlockingJudge(RecordingJudge):
    """Holds every evaluation until released, like a judge behind a slow API."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def evaluate(self, item: EvaluationInput) -> Verdict:
        self.release.wait(30)
        return super().evaluate(item)


def test_a_stuck_judge_never_blocks_requests_and_a_full_queue_drops(registry, logs):
    """With the judge stuck, every request still completes; what does not fit in the queue is dropped and counted."""
    judge = BlockingJudge()
    monitor = judged_monitor(registry, logs, judge, config=MonitorConfig(judge=JudgeConfig(queue_size=2)))
    answers = rag_chain().batch([{"question": f"q{i}"} for i in range(10)], config={"callbacks": [monitor]})
    assert len(answers) == 10
    dropped = value(registry, "llm_judge_dropped_total", reason="queue_full")
    assert dropped >= 10 - 2 - 1  # two queued, at most one taken by the worker
    judge.release.set()
    assert monitor.flush(10)
    assert len(judge.items) + dropped == 10


def test_sampling_is_deterministic_across_processes():
    """The decision is a pure function of the trace id: another interpreter computes the same fractions."""
    ids = [uuid.UUID(int=i * 7919 + 12345) for i in range(50)] + [uuid.uuid4() for _ in range(50)]
    here = [trace_fraction(trace_id) for trace_id in ids]
    code = (
        "import sys, uuid\n"
        "from langchain_llmmonitor.handler.sampling import trace_fraction\n"
        "print(repr([trace_fraction(uuid.UUID(line.strip())) for line in sys.stdin if line.strip()]))\n"
    )
    there = subprocess.run(
        [sys.executable, "-c", code],
        input="\n".join(map(str, ids)),
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert eval(there.stdout) == here


@pytest.mark.parametrize("rate", [pytest.param(0.05, id="5%"), pytest.param(0.3, id="30%")])
def test_sample_rate_is_accurate(rate):
    """Over 20,000 traces the sampled share is within 4 standard errors of the rate, uuid4 and uuid7-like ids alike."""
    sampler = Sampler(SamplingConfig(rate=rate))
    for make in (uuid.uuid4, lambda: uuid.UUID(int=(int(uuid.uuid4()) & ~(0xFFFF << 64)))):  # low-entropy middle bits
        ids = [make() for _ in range(20_000)]
        share = sum(sampler.at_start(trace_id, None, None) is not None for trace_id in ids) / len(ids)
        assert abs(share - rate) < 4 * (rate * (1 - rate) / len(ids)) ** 0.5


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        pytest.param({"sample_rate": 1.5}, "rate must be a number from 0 to 1, got 1.5", id="rate-above-1"),
        pytest.param({"sample_rate": -0.1}, "rate must be a number from 0 to 1, got -0.1", id="rate-below-0"),
        pytest.param(
            {"config": {"sampling": {"evaluate_tags": "llmmonitor:evaluate"}}},
            "evaluate_tags must be a collection of tags",
            id="tags-as-string",
        ),
        pytest.param(
            {"config": {"capture": {"max_documents": 0}}}, "max_documents must be an integer >= 1", id="no-documents"
        ),
        pytest.param(
            {"config": {"feedback": {"scale": "stars"}}}, "scale must be one of thumbs, five", id="unknown-scale"
        ),
        pytest.param(
            {"config": {"langsmith": {"forward": True}}}, "forwarding needs a store", id="forwarding-without-store"
        ),
    ],
)
def test_bad_quality_settings_are_rejected_at_construction(bad, message):
    """Configuration mistakes fail loudly, saying what is allowed, when the Monitor is built, not at request time."""
    with pytest.raises((ValueError, TypeError), match=message):
        config = bad.pop("config", None)
        Monitor(MonitorConfig.from_mapping(config) if config else None, **bad)


def test_judge_own_chat_model_runs_are_not_application_traffic(registry, logs):
    """A ChatModelJudge whose chat model reports to the same Monitor does not count its calls as application requests."""
    from langchain_llmmonitor.quality.judges.chat_model_judge import ChatModelJudge

    reply = '{"faithfulness": 5, "relevance": 5, "completeness": 4, "hallucination": false, "reason": "grounded"}'
    judge_model = GenericFakeChatModel(messages=iter([AIMessage(content=reply)] * 3))
    judge = ChatModelJudge(judge_model)
    monitor = judged_monitor(registry, logs, judge)
    judge_model.callbacks = [monitor]  # e.g. a globally attached handler
    rag_chain().invoke({"question": "refunds?"}, config={"callbacks": [monitor]})
    assert monitor.flush(10)
    assert value(registry, "llm_judge_evaluations_total", judge=judge.name, status="success") == 1
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 1
    assert value(registry, "llm_invocations_total", name="llmmonitor_judge", status="success") == 0
