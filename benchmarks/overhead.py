"""What the Monitor costs a real chain, measured against doing nothing, a no-op handler and LangSmith's own tracer.

    python benchmarks/overhead.py                 # interleaved timing of the reference chain
    python benchmarks/overhead.py --soak 100000   # memory soak: errors, abandoned streams, runs that never end
    python benchmarks/overhead.py --judge         # request latency with every trace sent to a 200 ms judge
    python benchmarks/overhead.py --concurrency   # 10,000 concurrent ainvoke and 8 threads x 1,000 invoke, exact counts

The reference chain is the demo's RAG chain (in-memory retriever, prompt, fake chat model, parser) with no artificial
latency, so the figures are the dispatch and bookkeeping cost itself. Variants take turns in blocks of a few questions,
in a shuffled order, so that machine noise hits them all alike; each ratio is the median of per-round ratios.
benchmarks/instructions.py counts instructions instead, for machines too noisy to resolve a percent.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import os
import random
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers import LangChainTracer
from prometheus_client import CollectorRegistry

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from langchain_llmmonitor import Monitor, MonitorConfig, RunsConfig
from langchain_llmmonitor.demo.app import QUESTIONS, DemoChatModel, ProviderOverloadedError, build_chain


class NoopHandler(BaseCallbackHandler):
    """Receives every event and does nothing: the floor set by LangChain's callback dispatch.

    It implements `on_chat_model_start` (as the Monitor does): without it LangChain catches a NotImplementedError and
    converts the messages to strings for `on_llm_start` on every call, a cost the no-op would carry and the Monitor not.
    """

    run_inline = True

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        return None


def json_logger(sink: io.TextIOBase) -> Any:
    """A production-like structlog setup: JSON lines with level and timestamp, written to `sink`."""
    return structlog.wrap_logger(
        structlog.WriteLogger(sink),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
    )


def filtered_logger() -> Any:
    """structlog with INFO filtered out (only warnings and errors are rendered), as many services run.

    The lines go to the null device: an in-memory sink would grow with every warning and show up as the soak's memory.
    """
    return structlog.wrap_logger(
        structlog.WriteLogger(open(os.devnull, "w")),  # open as long as the benchmark runs
        wrapper_class=structlog.make_filtering_bound_logger(30),
        processors=[structlog.processors.JSONRenderer()],
    )


def quiet_monitor(logger: Any = None) -> Monitor:
    """A Monitor with no judge on its own registry; INFO filtered unless another logger is given."""
    return Monitor(
        registry=CollectorRegistry(), logger=logger if logger is not None else filtered_logger(), sample_rate=0.0
    )


def variants(devnull: io.TextIOBase) -> tuple[dict[str, list[Any]], Any]:
    """The handler lists timed, and the local LangSmith the tracer sends to (stop it when done)."""
    from langchain_llmmonitor.testing.langsmith_server import FakeLangSmith, fast_client

    sink = FakeLangSmith().start()
    tracer = LangChainTracer(client=fast_client(sink.url), project_name="overhead-benchmark")
    return (
        {
            "bare chain": [],
            "no-op handler": [NoopHandler()],
            "Monitor (INFO filtered)": [quiet_monitor()],
            "Monitor (JSON logs)": [quiet_monitor(json_logger(devnull))],
            "Monitor (+offline judge 5%)": [Monitor(registry=CollectorRegistry(), logger=filtered_logger())],
            "LangChainTracer": [tracer],
        },
        sink,
    )


def settle(callbacks: list[Any]) -> None:
    """Wait for a variant's background work (judge threads, the tracer's sends), so it is timed with that variant."""
    for handler in callbacks:
        if isinstance(handler, Monitor):
            handler.flush(timeout=60)
        elif hasattr(handler, "wait_for_futures"):
            handler.wait_for_futures()
            handler.client.flush()


def has_background_work(callbacks: list[Any]) -> bool:
    return any(
        isinstance(h, LangChainTracer) or (isinstance(h, Monitor) and h.config.sampling.rate > 0) for h in callbacks
    )


def timing(rounds: int, per_round: int, block: int) -> None:
    """Each block of `block` questions goes through every variant back to back, in a shuffled order, so that a
    machine that speeds up or slows down (a shared VM) moves all variants alike; background work is waited for after
    each invocation of the variant that made it, inside that variant's time."""
    chain = build_chain(DemoChatModel(seed=1))
    with open("/dev/null", "w") as devnull:
        handlers, sink = variants(devnull)
        configs = {name: {"callbacks": callbacks} for name, callbacks in handlers.items()}
        settles = {name for name, callbacks in handlers.items() if has_background_work(callbacks)}
        samples: dict[str, list[float]] = {name: [] for name in handlers}
        questions = list(QUESTIONS)
        for config in configs.values():  # warm-up: imports, label caches, connection pools
            for question in questions[:20]:
                chain.invoke(question, config=config)
        order = list(handlers)
        clock = time.perf_counter
        for round_number in range(rounds):
            shuffle = random.Random(round_number).shuffle
            totals = dict.fromkeys(handlers, 0.0)
            gc.collect()
            for first in range(0, per_round, block):
                batch = [questions[i % len(questions)] for i in range(first, min(first + block, per_round))]
                shuffle(order)
                for name in order:
                    config, settles_here = configs[name], name in settles
                    started = clock()
                    for question in batch:
                        chain.invoke(question, config=config)
                        if settles_here:
                            settle(handlers[name])
                    totals[name] += clock() - started
            for name, total in totals.items():
                samples[name].append(total / per_round)
        sink.stop()

    print(
        f"reference chain: retriever -> prompt -> fake chat model -> parser; {rounds} rounds x {per_round} invocations, interleaved"
    )
    print("ratios are medians of per-round ratios (each variant against the no-op of the same round), with their IQR")
    print(f"{'variant':<28}{'per invocation':>15}{'vs bare':>10}{'vs no-op':>10}{'IQR vs no-op':>18}")
    for name, values in samples.items():
        low, _, high = statistics.quantiles(paired(values, samples["no-op handler"]), n=4)
        print(
            f"{name:<28}{statistics.median(values) * 1e6:>12.0f} µs"
            f"{statistics.median(paired(values, samples['bare chain'])):>9.3f}x"
            f"{statistics.median(paired(values, samples['no-op handler'])):>9.3f}x"
            f"{low:>10.3f}-{high:.3f}x"
        )


def paired(values: list[float], baseline: list[float]) -> list[float]:
    """Round-by-round ratios of the same questions at the same moment."""
    return [value / base for value, base in zip(values, baseline, strict=True)]


class SlowJudge:
    """A judge that takes 200 ms, like a call to a hosted model, and gives a fixed verdict."""

    name, model, prompt_version = "slow", "sleep-200ms", "bench"

    def evaluate(self, item: Any) -> Any:
        from langchain_llmmonitor.quality.judges import Scores, Verdict

        time.sleep(0.2)
        return Verdict(
            Scores(4, 4, 4, False, "ok"), judge=self.name, model=self.model, prompt_version=self.prompt_version
        )


def judge_latency(rounds: int, per_round: int) -> None:
    """Request p50/p99 with a 200 ms judge on every trace (sample_rate 1.0) against the Monitor without a judge."""
    chain = build_chain(DemoChatModel(seed=1))
    monitors = {
        "Monitor, no judge": quiet_monitor(),
        "Monitor, 200 ms judge, rate 1.0": Monitor(
            registry=CollectorRegistry(), logger=filtered_logger(), sample_rate=1.0, judge=SlowJudge()
        ),
    }
    latencies: dict[str, list[float]] = {name: [] for name in monitors}
    questions = list(QUESTIONS)
    order = list(monitors)
    for round_number in range(rounds):
        random.Random(round_number).shuffle(order)
        for name in order:
            config = {"callbacks": [monitors[name]]}
            for i in range(per_round):
                question = f"{questions[i % len(questions)]} (request {round_number}-{i})"  # unique: no cache hits
                started = time.perf_counter()
                chain.invoke(question, config=config)
                latencies[name].append(time.perf_counter() - started)
    judged = monitors["Monitor, 200 ms judge, rate 1.0"]
    judged.close(timeout=30)
    print(f"request latency, {rounds} rounds x {per_round} invocations interleaved, judge queue 1000, 1 worker")
    base = statistics.median(latencies["Monitor, no judge"])
    for name, values in latencies.items():
        values.sort()
        p50, p99 = statistics.median(values), values[int(0.99 * (len(values) - 1))]
        print(f"{name:<34} p50 {p50 * 1e6:7.0f} µs ({p50 / base:.3f}x)  p99 {p99 * 1e6:7.0f} µs")
    registry = judged.registry

    def count(metric: str, **labels: str) -> float:
        return registry.get_sample_value(metric, labels) or 0.0

    print(
        f"judge: {count('llm_quality_samples_total', reason='rate'):.0f} sampled; "
        f"{count('llm_judge_evaluations_total', judge='slow', status='success'):.0f} judged, "
        f"{count('llm_judge_evaluations_total', judge='slow', status='cached'):.0f} answered from the cache, "
        f"{count('llm_judge_dropped_total', reason='queue_full'):.0f} dropped on a full queue, "
        f"{count('llm_judge_dropped_total', reason='shutdown'):.0f} left at shutdown (never blocking a request)"
    )


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def soak(invocations: int) -> None:
    """Run many invocations with failures, abandoned streams and runs that never end; report memory growth."""
    chain = build_chain(DemoChatModel(error_rate=0.05, seed=2))
    config = MonitorConfig(runs=RunsConfig(max_age_seconds=2.0))
    monitor = Monitor(config, registry=CollectorRegistry(), logger=filtered_logger(), sample_rate=0.05)
    config = {"callbacks": [monitor]}
    rng = random.Random(0)
    abandoned: list[Any] = []

    def step(i: int) -> None:
        kind = rng.random()
        question = QUESTIONS[i % len(QUESTIONS)]
        try:
            if kind < 0.7:
                chain.invoke(question, config=config)
            elif kind < 0.9:
                for _ in chain.stream(question, config=config):
                    pass
            elif kind < 0.99:
                stream = chain.stream(question, config=config)  # read one chunk, walk away; collected later
                next(stream)
                abandoned.append(stream)
                if len(abandoned) > 50:
                    abandoned.pop(0)
            else:  # a worker killed mid-call: the start arrives, the end never does
                monitor.on_chat_model_start({}, [[]], run_id=uuid.uuid4(), metadata={"ls_model_name": "gpt-4o-mini"})
        except ProviderOverloadedError:
            pass

    warmup = min(5_000, invocations // 10)
    for i in range(warmup):
        step(i)
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    checkpoints = {invocations // 4, invocations // 2, 3 * invocations // 4}
    for i in range(invocations):
        step(i)
        if i in checkpoints:
            gc.collect()
            print(f"  after {i:>7} invocations: RSS {rss_mb():7.1f} MB, runs in flight {monitor.runs_in_flight}")
    abandoned.clear()
    time.sleep(2.1)
    monitor.expire_stale_runs()
    gc.collect()
    after = rss_mb()
    active = monitor.registry.get_sample_value("llm_active_requests")
    expired = sum(
        monitor.registry.get_sample_value("llm_monitor_runs_expired_total", {"kind": kind}) or 0
        for kind in ("llm", "chain", "retriever")
    )
    print(
        f"soak: {invocations} invocations in {time.perf_counter() - started:.0f} s; RSS {before:.1f} -> {after:.1f} MB "
        f"(growth {after - before:+.1f} MB, target < 10 MB); runs in flight {monitor.runs_in_flight}; "
        f"llm_active_requests {active:.0f}; runs aged out {expired:.0f}"
    )


def concurrency(tasks: int, threads: int, per_thread: int, rounds: int) -> None:
    """Concurrent load: `tasks` ainvoke calls at once, and `threads` threads x `per_thread` invokes, against a no-op
    handler in the same run; the Monitor's counts must be exact and its in-flight gauge back at 0."""
    chain = build_chain(DemoChatModel(seed=3))
    questions = list(QUESTIONS)
    timings: dict[str, dict[str, list[float]]] = {"asyncio": {}, "threads": {}}
    for round_number in range(rounds):
        variants = {"no-op handler": NoopHandler(), "Monitor (INFO filtered)": quiet_monitor()}
        order = list(variants)
        random.Random(round_number).shuffle(order)
        for name in order:
            handler = variants[name]
            config = {"callbacks": [handler]}
            seconds = _gather(chain, config, questions, tasks)
            timings["asyncio"].setdefault(name, []).append(seconds)
            if isinstance(handler, Monitor):
                _check_exact(handler, tasks)
            seconds = _threaded(chain, config, questions, threads, per_thread)
            timings["threads"].setdefault(name, []).append(seconds)
            if isinstance(handler, Monitor):
                _check_exact(handler, tasks + threads * per_thread)
    labels = {"asyncio": f"{tasks} concurrent ainvoke", "threads": f"{threads} threads x {per_thread} invoke"}
    print(f"concurrent load, {rounds} rounds interleaved (medians of wall time)")
    for kind, by_variant in timings.items():
        noop = statistics.median(by_variant["no-op handler"])
        for name, values in by_variant.items():
            median = statistics.median(values)
            print(f"{labels[kind]:<28}{name:<26}{median:>8.2f} s{median / noop:>9.3f}x")
    print(
        "every round: each LLM call and invocation counted once, no run evicted or expired, no handler error,"
        " llm_active_requests 0, no run left in flight"
    )


def _gather(chain: Any, config: dict[str, Any], questions: list[str], tasks: int) -> float:
    async def everything() -> None:
        await asyncio.gather(*(chain.ainvoke(questions[i % len(questions)], config=config) for i in range(tasks)))

    gc.collect()
    started = time.perf_counter()
    asyncio.run(everything())
    return time.perf_counter() - started


def _threaded(chain: Any, config: dict[str, Any], questions: list[str], threads: int, per_thread: int) -> float:
    def worker(offset: int) -> None:
        for i in range(per_thread):
            chain.invoke(questions[(offset + i) % len(questions)], config=config)

    gc.collect()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(worker, range(threads)))
    return time.perf_counter() - started


def _check_exact(monitor: Monitor, calls: int) -> None:
    """The Monitor's books after `calls` invocations of the one-LLM-call chain: exact, and nothing in flight."""
    registry = monitor.registry

    def total(metric: str) -> float:
        return sum(s.value for family in registry.collect() for s in family.samples if s.name == metric)

    counted = total("llm_requests_total")
    assert counted == calls, f"{counted:.0f} LLM calls counted, {calls} made"
    invocations = total("llm_invocations_total")
    assert invocations == calls, f"{invocations:.0f} invocations counted, {calls} made"
    assert total("llm_monitor_runs_evicted_total") == total("llm_monitor_runs_expired_total") == 0
    assert total("llm_monitor_handler_errors_total") == 0
    assert registry.get_sample_value("llm_active_requests") == 0
    assert monitor.runs_in_flight == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, help="rounds (default 60; 3 with --concurrency)")
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--block", type=int, default=10, help="invocations a variant runs before the next one's turn")
    parser.add_argument("--soak", type=int, metavar="N", help="run the memory soak with N invocations instead")
    parser.add_argument("--judge", action="store_true", help="measure request latency with a 200 ms judge instead")
    parser.add_argument(
        "--concurrency",
        action="store_true",
        help="10,000 concurrent ainvoke and 8 threads x 1,000 invoke instead",
    )
    args = parser.parse_args()
    if args.soak:
        soak(args.soak)
    elif args.concurrency:
        concurrency(tasks=10_000, threads=8, per_thread=1_000, rounds=args.rounds or 3)
    elif args.judge:
        judge_latency(args.rounds or 60, args.per_round)
    else:
        if args.rounds is not None and args.rounds < 2:
            parser.error(f"--rounds must be at least 2 for the timing (its spread needs two rounds), got {args.rounds}")
        timing(args.rounds or 60, args.per_round, args.block)


if __name__ == "__main__":
    main()
