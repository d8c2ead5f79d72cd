"""LangGraph control flow (interrupts, Command to the parent graph) is not counted as failure."""

from __future__ import annotations

import asyncio
from typing import TypedDict

import pytest
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphInterrupt, GraphRecursionError, NodeCancelledError, ParentCommand
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from langchain_llmmonitor.handler import outcome_of

from .conftest import fake_model, value


class State(TypedDict):
    amount: int
    result: str


@tool
def approve_refund(amount: int) -> str:
    """Ask a human to approve a refund."""
    decision = interrupt({"amount": amount})
    return f"refund {amount}: {decision}"


def test_interrupt_inside_a_tool_is_interrupted_not_error(monitor, registry):
    """A human-in-the-loop interrupt pauses the graph: the tool is "interrupted", nothing is an error; resuming succeeds."""

    def refund(state: State, config) -> dict:
        return {"result": approve_refund.invoke({"amount": state["amount"]}, config)}

    graph = StateGraph(State)
    graph.add_node("refund", refund)
    graph.add_edge(START, "refund")
    graph.add_edge("refund", END)
    app = graph.compile(checkpointer=InMemorySaver())
    config = {"callbacks": [monitor], "configurable": {"thread_id": "t1"}}

    paused = app.invoke({"amount": 40, "result": ""}, config)
    assert "__interrupt__" in paused
    assert value(registry, "llm_tool_calls_total", tool="approve_refund", status="interrupted") == 1

    assert app.invoke(Command(resume="approved"), config)["result"] == "refund 40: approved"
    assert value(registry, "llm_tool_calls_total", tool="approve_refund", status="success") == 1
    assert value(registry, "llm_tool_calls_total", tool="approve_refund", status="error") == 0
    assert value(registry, "llm_invocations_total", name="LangGraph", status="interrupted") == 1
    assert value(registry, "llm_invocations_total", name="LangGraph", status="success") == 1
    assert value(registry, "llm_invocations_total", name="LangGraph", status="error") == 0
    assert monitor.runs_in_flight == 0


def test_command_to_parent_graph_is_not_an_error(monitor, registry):
    """A subgraph handing control to its parent with Command(graph=PARENT) is routing, not a failure."""

    def escalate(state: State) -> Command:
        return Command(graph=Command.PARENT, goto="answer", update={"result": "escalated"})

    sub = StateGraph(State)
    sub.add_node("escalate", escalate)
    sub.add_edge(START, "escalate")

    def answer(state: State) -> dict:
        reply = fake_model(answer="A human will call you.").invoke("escalation", config={"callbacks": [monitor]})
        return {"result": f"{state['result']}: {reply.content}"}

    parent = StateGraph(State)
    parent.add_node("triage", sub.compile())
    parent.add_node("answer", answer)
    parent.add_edge(START, "triage")
    parent.add_edge("answer", END)
    result = parent.compile().invoke({"amount": 0, "result": ""}, {"callbacks": [monitor]})

    assert result["result"] == "escalated: A human will call you."
    assert value(registry, "llm_invocations_total", name="LangGraph", status="success") == 1
    assert value(registry, "llm_invocations_total", name="LangGraph", status="error") == 0
    assert value(registry, "llm_requests_total", model="gpt-4o-mini", status="success") == 1
    assert monitor.runs_in_flight == 0


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        pytest.param(GraphInterrupt(()), "interrupted", id="GraphInterrupt"),
        pytest.param(ParentCommand(Command(graph=Command.PARENT, goto="x")), "interrupted", id="ParentCommand"),
        pytest.param(GraphRecursionError("too deep"), "error", id="GraphRecursionError"),
        pytest.param(NodeCancelledError("retrieve"), "cancelled", id="NodeCancelledError"),
        pytest.param(asyncio.CancelledError(), "cancelled", id="CancelledError"),
        pytest.param(GeneratorExit(), "cancelled", id="GeneratorExit"),
        pytest.param(ValueError("bad"), "error", id="ValueError"),
    ],
)
def test_outcome_of_real_langgraph_exceptions(error, outcome):
    """LangGraph's own control-flow exceptions are recognised by class; real failures stay errors."""
    assert outcome_of(error) == outcome


def test_message_state_graph_is_judged_on_its_last_question_and_answer(registry, logs):
    """A MessagesState RAG graph: the judge sees the last human message, the retrieved passages and the last AI reply."""
    from langgraph.graph import MessagesState

    from langchain_llmmonitor import Monitor
    from langchain_llmmonitor.demo.app import build_retriever

    from .test_quality_monitor import RecordingJudge

    retriever = build_retriever()
    model = fake_model("Returns are accepted within 30 days.")

    class RagState(MessagesState):
        context: str

    def retrieve(state: RagState) -> dict:
        found = retriever.invoke(state["messages"][-1].content)
        return {"context": "\n".join(document.page_content for document in found)}

    def answer(state: RagState) -> dict:
        return {"messages": [model.invoke([("system", state["context"]), *state["messages"]])]}

    graph = StateGraph(RagState)
    graph.add_node("retrieve", retrieve)
    graph.add_node("answer", answer)
    graph.add_edge(START, "retrieve")
    graph.add_edge("retrieve", "answer")
    graph.add_edge("answer", END)
    judge = RecordingJudge()
    monitor = Monitor(registry=registry, logger=logs.logger, judge=judge, sample_rate=1.0)
    history = [
        ("user", "hello"),
        ("assistant", "Hi! How can I help?"),
        ("user", "How long do I have to return an item?"),
    ]
    graph.compile().invoke({"messages": history}, {"callbacks": [monitor]})
    assert monitor.flush(10)
    (item,) = judge.items
    assert item.question == "How long do I have to return an item?"
    assert item.answer == "Returns are accepted within 30 days."
    assert item.context and all(isinstance(passage, str) for passage in item.context)


def test_a_run_resumed_after_an_interrupt_is_judged(registry, logs):
    """interrupt() pauses the graph ("interrupted"); the Command(resume=...) half is judged on the conversation."""
    from langgraph.graph import MessagesState

    from langchain_llmmonitor import Monitor, MonitorConfig, SamplingConfig

    from .test_quality_monitor import RecordingJudge

    model = fake_model("Your refund of 40 EUR is approved.")

    def approve(state: MessagesState) -> dict:
        interrupt("approve the refund?")
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("approve", approve)
    graph.add_edge(START, "approve")
    graph.add_edge("approve", END)
    app = graph.compile(checkpointer=InMemorySaver())
    judge = RecordingJudge()
    sampling = SamplingConfig(rate=1.0, evaluate_without_context=True)  # no retriever in this graph
    monitor = Monitor(registry=registry, logger=logs.logger, judge=judge, config=MonitorConfig(sampling=sampling))
    config = {"callbacks": [monitor], "configurable": {"thread_id": "t2"}}

    app.invoke({"messages": [("user", "Can I get a refund of 40 EUR?")]}, config)
    app.invoke(Command(resume="yes"), config)
    assert monitor.flush(10)
    assert [event["status"] for event in logs.named("invocation")] == ["interrupted", "success"]
    (item,) = judge.items
    assert (item.question, item.answer) == ("Can I get a refund of 40 EUR?", "Your refund of 40 EUR is approved.")
    assert value(registry, "llm_judge_dropped_total", reason="no_answer") == 0
