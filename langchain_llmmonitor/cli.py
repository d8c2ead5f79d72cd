"""The `llmmonitor` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _demo(args: argparse.Namespace) -> int:
    from .demo import DemoOptions, run_demo

    run_demo(
        DemoOptions(
            requests=args.requests,
            error_rate=args.error_rate,
            hallucination_rate=args.hallucination_rate,
            sample_rate=args.sample_rate,
            feedback_rate=args.feedback_rate,
            history_weeks=args.history_weeks,
            scenario=args.scenario,
            port=args.port,
            out_dir=args.out,
            seed=args.seed,
            keep_serving=args.keep_serving,
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmmonitor", description="Monitoring for LangChain applications.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="run an offline retrieval chain under the monitor and summarise what it saw"
    )
    demo.add_argument("--requests", type=_positive_int, default=300, help="questions to send (default 300)")
    demo.add_argument(
        "--error-rate", type=_probability, default=0.03, help="fraction of LLM calls that fail (default 0.03)"
    )
    demo.add_argument(
        "--hallucination-rate",
        type=_probability,
        default=0.1,
        help="fraction of answers with an invented fact (default 0.1)",
    )
    demo.add_argument(
        "--sample-rate", type=_probability, default=0.2, help="share of traces the offline judge scores (default 0.2)"
    )
    demo.add_argument(
        "--feedback-rate",
        type=_probability,
        default=0.15,
        help="share of answers the simulated users rate (default 0.15)",
    )
    demo.add_argument(
        "--history-weeks",
        type=int,
        default=6,
        choices=range(0, 53),
        metavar="N",
        help="weeks of simulated history to review (default 6, 0 = none)",
    )
    demo.add_argument(
        "--scenario",
        choices=("degradation", "stable", "release"),
        default="degradation",
        help="what the simulated history does (default: a slow degradation in the last week; release: only the "
        "new app_version v2 of the last week is worse)",
    )
    demo.add_argument(
        "--port", type=int, default=9464, help="port for /metrics on 127.0.0.1 (default 9464, 0 = any free)"
    )
    demo.add_argument("--out", type=Path, default=Path("llmmonitor-out"), help="directory for logs and reports")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--keep-serving", action="store_true", help="keep /metrics up after the summary until Ctrl-C")
    demo.set_defaults(func=_demo)

    from . import judge_worker, review
    from .feedback import serve
    from .ops import alerts, dashboard

    alerts.add_cli(commands)
    dashboard.add_cli(commands)
    serve.add_cli(commands)
    judge_worker.add_cli(commands)
    review.add_cli(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
