"""The handler's own time per invocation, warm and with cold caches: why wall time and instruction counts disagree.

    python benchmarks/replay.py            # 500 replays per variant and mode, 3 rounds (about a minute)

One invocation of the reference chain is recorded (every callback with its arguments), then replayed straight into
each handler with fresh run ids. "warm" replays the events back to back, as a micro-benchmark would; "cold" walks
a few megabytes of Python objects before each event, as the chain does between two callbacks in real use. Only the
time inside the callbacks is counted. The Monitor's extra time over the no-op handler is its cost per invocation.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.overhead import NoopHandler, quiet_monitor
from langchain_llmmonitor.demo.app import QUESTIONS, DemoChatModel, build_chain

_EVENTS = ("on_chain_start", "on_chain_end", "on_chat_model_start", "on_llm_end", "on_retriever_start")
_EVENTS += ("on_retriever_end", "on_llm_new_token", "on_tool_start", "on_tool_end")
Event = tuple[str, tuple[Any, ...], dict[str, Any]]


class Recorder(BaseCallbackHandler):
    """Keeps every callback of one invocation, in order."""

    run_inline = True

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __getattribute__(self, name: str) -> Any:
        if name in _EVENTS:
            return lambda *args, **kwargs: self.events.append((name, args, kwargs))
        return super().__getattribute__(name)


def record() -> list[Event]:
    recorder = Recorder()
    build_chain(DemoChatModel(seed=1)).invoke(QUESTIONS[0], config={"callbacks": [recorder]})
    return recorder.events


def with_fresh_ids(events: list[Event]) -> list[Event]:
    """The same events under new run ids, so that each replay is a new trace."""
    fresh: dict[Any, uuid.UUID] = {}
    replay = []
    for name, args, kwargs in events:
        kwargs = dict(kwargs, run_id=fresh.setdefault(kwargs["run_id"], uuid.uuid4()))
        if kwargs.get("parent_run_id") is not None:
            kwargs["parent_run_id"] = fresh[kwargs["parent_run_id"]]
        replay.append((name, args, kwargs))
    return replay


def time_in_callbacks(handler: Any, replays: list[list[Event]], sweep: list[dict[str, int]] | None) -> float:
    """Seconds spent inside `handler`'s callbacks over all replays; `sweep` is walked before each event if given."""
    clock, spent = time.perf_counter, 0.0
    for events in replays:
        for name, args, kwargs in events:
            if sweep is not None:
                sum(item["n"] for item in sweep)
            callback = getattr(handler, name)
            started = clock()
            callback(*args, **kwargs)
            spent += clock() - started
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--replays", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    events = record()
    sweep = [{"n": i, "text": str(i)} for i in range(20_000)]  # a few MB: more than the caches hold
    handlers = {"no-op handler": NoopHandler(), "Monitor (INFO filtered)": quiet_monitor()}
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for mode, walk in (("warm", None), ("cold", sweep)):
            for name, handler in handlers.items():
                replays = [with_fresh_ids(events) for _ in range(args.replays)]
                spent = time_in_callbacks(handler, replays, walk)
                results.setdefault((mode, name), []).append(spent / args.replays * 1e6)
    print(
        f"one invocation of the reference chain: {len(events)} callbacks, replayed {args.replays} times x {args.rounds}"
    )
    print(f"{'':6}{'variant':<26}{'µs in callbacks':>16}{'Monitor extra':>15}")
    for mode in ("warm", "cold"):
        floor = statistics.median(results[mode, "no-op handler"])
        for name in handlers:
            spent = statistics.median(results[mode, name])
            print(f"{mode:<6}{name:<26}{spent:>16.1f}{spent - floor:>15.1f}")


if __name__ == "__main__":
    main()
