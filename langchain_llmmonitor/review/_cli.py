"""`llmmonitor review`: build the review, write the HTML and Markdown reports, print where they are and the summary;
with `--export-dataset NAME`, also add the worst answers to that LangSmith dataset.

Importable without the review extra, so the command always exists; running it without numpy & co. prints the
`pip install` line and exits with 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ._deps import require_review_extra
from ._export import ExportResult
from ._model import ReportPaths, Review

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
    option("--export-dataset", metavar="NAME", default=None,
           help="also add the worst answers' questions to this LangSmith dataset (created if missing) as regression "
           "examples, each run once; needs LANGSMITH_API_KEY")  # fmt: skip
    option("--json", action="store_true", help="print the review as JSON instead of the summary")
    parser.set_defaults(func=run_cli)
    return parser


def run_cli(args: argparse.Namespace) -> int:
    """Build and write the review; 0 when written (whatever the verdicts), 2 when it cannot run, 1 when the reports
    are written but the dataset export failed (running it again adds only what is missing)."""
    try:
        require_review_extra()
    except ImportError as error:
        print(f"llmmonitor review: {error}", file=sys.stderr)
        return 2
    if "://" not in args.store and not Path(args.store).expanduser().exists():
        print(f"llmmonitor review: no store at {args.store} (pass --store PATH_OR_URL)", file=sys.stderr)
        return 2
    needs = [flag for flag, value in (("--langsmith-project", args.langsmith_project),
                                      ("--export-dataset", args.export_dataset)) if value]  # fmt: skip
    if needs and not _has_langsmith_key():
        print(f"llmmonitor review: {' and '.join(needs)} needs a LangSmith API key: set LANGSMITH_API_KEY (and "
              "LANGSMITH_ENDPOINT for a self-hosted LangSmith)", file=sys.stderr)  # fmt: skip
        return 2
    from langsmith.utils import LangSmithError

    from . import build_review, export_worst_answers, write_report

    client = None
    if needs:
        from langsmith import Client

        client = Client(auto_batch_tracing=False)  # no background sender thread: nothing here is traced
    exported, export_error = None, None
    try:
        review = build_review(
            args.store,
            since=args.since,
            until=args.until,
            baseline_weeks=args.baseline_weeks,
            min_samples=args.min_samples,
            langsmith_client=client if args.langsmith_project else None,  # export only: nothing read from it
            project=args.langsmith_project,
            langsmith_url=args.langsmith_url,
        )
        paths = write_report(review, args.out)
        if args.export_dataset:
            try:
                exported = export_worst_answers(review, client, args.export_dataset)
            except (LangSmithError, ValueError) as error:  # e.g. a blank name: say it, keep the reports
                export_error = error
    finally:
        close = getattr(client, "close", None)  # not in older SDKs
        if close is not None:
            close()
    _print_summary(review, paths, exported, as_json=args.json)
    if export_error is not None:
        print(f"llmmonitor review: the reports are written, but adding the worst answers to LangSmith dataset "
              f"{args.export_dataset!r} failed: {export_error}. Running again adds only the missing examples.",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _has_langsmith_key() -> bool:
    from langsmith.utils import get_api_key

    return get_api_key(None) is not None


def _print_summary(review: Review, paths: ReportPaths, exported: ExportResult | None, *, as_json: bool) -> None:
    if as_json:
        data = review.to_dict()
        data["report"] = {"html": str(paths.html), "markdown": str(paths.markdown)}
        if exported is not None:
            data["dataset_export"] = dataclasses.asdict(exported)
        print(json.dumps(data, indent=2))
        return
    status = {"degraded": "DEGRADED", "ok": "no degradation found", "not_enough_samples": "not enough samples"}
    print(f"Quality review {review.window_start:%Y-%m-%d %H:%M} to {review.window_end:%Y-%m-%d %H:%M} UTC: "
          f"{status[review.status]}")  # fmt: skip
    for line in review.highlights:
        print(f"  - {line}")
    print(f"HTML report:     {paths.html}")
    print(f"Markdown report: {paths.markdown}")
    if exported is not None:
        print(f"LangSmith dataset {exported.dataset_name!r}: {exported.created} examples added, "
              f"{exported.already_present} already there, {exported.skipped_without_question} without a question"
              + (f", {exported.repeated_runs} repeated runs" if exported.repeated_runs else "")
              + (f" ({exported.dataset_url})" if exported.dataset_url else ""))  # fmt: skip
