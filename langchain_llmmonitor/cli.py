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

    demo = commands.add_parser("demo", help="run an offline retrieval chain under the monitor and summarise what it saw")
    demo.add_argument("--requests", type=_positive_int, default=300, help="questions to send (default 300)")
    demo.add_argument("--error-rate", type=_probability, default=0.03, help="fraction of LLM calls that fail (default 0.03)")
    demo.add_argument("--port", type=int, default=9464, help="port for /metrics on 127.0.0.1 (default 9464, 0 = any free)")
    demo.add_argument("--out", type=Path, default=Path("llmmonitor-out"), help="directory for logs and reports")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--keep-serving", action="store_true", help="keep /metrics up after the summary until Ctrl-C")
    demo.set_defaults(func=_demo)

    from . import alerts, api, dashboard

    alerts.add_cli(commands)
    dashboard.add_cli(commands)
    api.add_cli(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
