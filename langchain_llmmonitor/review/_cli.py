"""`llmmonitor review`: build the review, write the HTML and Markdown reports, print where they are and the summary.

Importable without the review extra, so the command always exists; running it without numpy & co. prints the
`pip install` line and exits with 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ._deps import require_review_extra

_DURATION = re.compile(r"^\s*(\d+)\s*([hdw])\s*$", re.IGNORECASE)
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str) -> timedelta:
    """ "7d", "2w", "24h" -> a timedelta."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"expected a duration like 7d, 2w or 24h, got {text!r}")
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, got {text!r}") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `review` subcommand to an `argparse` subparsers object; returns its parser."""
    parser = subparsers.add_parser(
        "review",
        help="weekly quality review: drift verdicts, trends, user feedback, worst answers, cost (HTML + Markdown)",
        description="Review judged quality, user feedback and usage over the last period against the periods before "
        "it, and write a self-contained HTML report and a Markdown one.",
    )
    option = parser.add_argument
    option("--since", type=parse_since, default=timedelta(days=7), help="period to review: 7d (default), 2w, 24h")
    option("--until", type=_moment, default=None, help="end of the period, ISO 8601 (default: now; naive = UTC)")
    option("--store", default="llmmonitor.db", help="SQLite file or SQLAlchemy URL (default llmmonitor.db)")
    option("--out", type=Path, default=Path("llmmonitor-out"), help="directory for the reports")
    option("--baseline-weeks", type=_positive, default=4, help="baseline periods before the reviewed one (default 4)")
    option("--min-samples", type=_positive, default=50, help="random samples needed per period and criterion")
    option("--langsmith-project", default=None, help="also merge judge scores and ratings from this LangSmith project")
    option("--langsmith-url", default=None, help="LangSmith web app for run links (default: the client's)")
    option("--json", action="store_true", help="print the review as JSON instead of the summary")
    parser.set_defaults(func=run_cli)
    return parser


def run_cli(args: argparse.Namespace) -> int:
    """Build and write the review; 0 when written (whatever the verdicts), 2 when it cannot run."""
    try:
        require_review_extra()
    except ImportError as error:
        print(f"llmmonitor review: {error}", file=sys.stderr)
        return 2
    if "://" not in args.store and not Path(args.store).expanduser().exists():
        print(f"llmmonitor review: no store at {args.store} (pass --store PATH_OR_URL)", file=sys.stderr)
        return 2
    from . import build_review, write_report

    client = None
    if args.langsmith_project:
        from langsmith import Client

        client = Client(auto_batch_tracing=False)  # read-only: no background sender thread
    try:
        review = build_review(
            args.store,
            since=args.since,
            until=args.until,
            baseline_weeks=args.baseline_weeks,
            min_samples=args.min_samples,
            langsmith_client=client,
            project=args.langsmith_project,
            langsmith_url=args.langsmith_url,
        )
    finally:
        close = getattr(client, "close", None)  # not in older SDKs
        if close is not None:
            close()
    paths = write_report(review, args.out)
    if args.json:
        data = review.to_dict()
        data["report"] = {"html": str(paths.html), "markdown": str(paths.markdown)}
        print(json.dumps(data, indent=2))
        return 0
    status = {"degraded": "DEGRADED", "ok": "no degradation found", "not_enough_samples": "not enough samples"}
    print(f"Quality review {review.window_start:%Y-%m-%d %H:%M} to {review.window_end:%Y-%m-%d %H:%M} UTC: "
          f"{status[review.status]}")  # fmt: skip
    for line in review.highlights:
        print(f"  - {line}")
    print(f"HTML report:     {paths.html}")
    print(f"Markdown report: {paths.markdown}")
    return 0
