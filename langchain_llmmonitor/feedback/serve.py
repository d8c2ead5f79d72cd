"""`llmmonitor serve`: the feedback API over a store, forwarding to LangSmith when a key is set.

Importable without FastAPI, so the command always exists; running it without the `api` extra says what to install.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from ..core.text import scrub
from .api import INSTALL_HINT, _fastapi, create_app
from .tokens import FeedbackTokens

if TYPE_CHECKING:
    from fastapi import FastAPI

SECRET_ENV = "LLMMONITOR_FEEDBACK_SECRET"


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Register `llmmonitor serve`; the parser's default `func` is `run_cli`. Works without FastAPI installed."""
    parser = subparsers.add_parser(
        "serve",
        help="serve POST /feedback, /metrics, /healthz and /readyz",
        description=(
            "Serve the feedback API and forward stored feedback to LangSmith (when LANGSMITH_API_KEY or "
            f"LANGCHAIN_API_KEY is set). With the secret in ${SECRET_ENV}, every rating needs a valid token for its "
            "run. Without one, anyone who can reach the server can rate any run: allowed on a loopback address, "
            f"elsewhere only with --allow-anonymous. Needs the api extra: {INSTALL_HINT}"
        ),
    )
    parser.add_argument(
        "--store",
        default="llmmonitor.db",
        metavar="PATH_OR_URL",
        help="SQLite file or SQLAlchemy URL (default %(default)s)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    parser.add_argument(
        "--scale", choices=("thumbs", "five"), default="thumbs", help="rating scale (default %(default)s)"
    )
    parser.add_argument(
        "--require-token",
        action="store_true",
        help=f"refuse ratings without a valid token (the default when ${SECRET_ENV} is set; an error without it)",
    )
    parser.add_argument(
        "--allow-anonymous",
        action="store_true",
        help="accept ratings without a token (with a secret: beside tokened ones; without: on a non-loopback address)",
    )
    parser.add_argument("--no-forward", action="store_true", help="store feedback only; do not send it to LangSmith")
    parser.add_argument(
        "--outbox", action="store_true", help="queue ratings for LangSmith although another process forwards them"
    )
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    parser.set_defaults(func=run_cli)
    return parser


def app_from_args(args: argparse.Namespace, environ: Any = None) -> FastAPI:
    """The app `llmmonitor serve` runs: store, fresh metrics registry, recorder, tokens and forwarder from the
    arguments and environment. `app.state.store` is left open for the caller to close."""
    from langsmith.utils import get_env_var

    from ..config import FeedbackConfig
    from ..langsmith import Forwarder
    from ..storage import open_store
    from .recorder import FeedbackRecorder

    environ = os.environ if environ is None else environ
    secret = environ.get(SECRET_ENV) or None
    if args.require_token and secret is None:
        raise ValueError(f"--require-token needs the token secret in ${SECRET_ENV}")
    if args.require_token and args.allow_anonymous:
        raise ValueError("--require-token and --allow-anonymous contradict each other")
    if secret is None and not args.allow_anonymous and not _loopback(args.host):
        raise ValueError(
            f"without ${SECRET_ENV} anyone who reaches {args.host} could rate any run: set the secret (clients then "
            "need a token per answer), or pass --allow-anonymous to accept that"
        )
    tokens = FeedbackTokens(secret) if secret is not None else None
    registry = CollectorRegistry()
    store = open_store(args.store, registry=registry)
    try:
        recorder = FeedbackRecorder(store, config=FeedbackConfig(scale=args.scale), registry=registry)
        forwarder = None
        if not args.no_forward and get_env_var("API_KEY", default=None):
            forwarder = Forwarder(store, registry=registry)
        store.outbox = forwarder is not None or args.outbox  # nothing piles up unforwarded
        return create_app(
            recorder=recorder,
            registry=registry,
            tokens=tokens,
            require_token=tokens is not None and not args.allow_anonymous,
            forwarder=forwarder,
            store=store,
        )
    except BaseException:
        store.close()
        raise


def run_cli(args: argparse.Namespace) -> int:
    """Run the server until interrupted; 2 on a configuration error, reported on stderr."""
    try:
        _fastapi()
        import uvicorn
    except ImportError:
        print(f"llmmonitor serve: error: the server needs FastAPI and uvicorn: {INSTALL_HINT}", file=sys.stderr)
        return 2
    from sqlalchemy.exc import SQLAlchemyError

    try:
        app = app_from_args(args)
    except (ValueError, OSError, SQLAlchemyError) as error:
        print(f"llmmonitor serve: error: {scrub(str(error))}", file=sys.stderr)  # a store URL may hold a password
        return 2
    store = app.state.store
    forwarding = "on" if app.state.forwarder is not None else "off"
    where = store.location
    ratings = "a valid token per run required" if app.state.tokens_required else "anonymous ratings accepted"
    print(
        f"llmmonitor serve: store {where}, scale {args.scale}, {ratings}, LangSmith forwarding {forwarding}",
        file=sys.stderr,
    )
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    finally:
        store.close()
    return 0


def _loopback(host: str) -> bool:
    """Only this machine can connect (a name is trusted only as "localhost")."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
