"""The review in a notebook: its numbers as pandas DataFrames (the `frames` extra), and the verdicts with their plots
as HTML when a `Review` is the last expression of a Jupyter cell.

The HTML is the report's own summary, verdict and trend sections (`_report.build_report`, rendered by `_sections`), so
it escapes what the report escapes and draws the same plots, inlined as base64 PNG: no scripts, nothing loaded from
elsewhere. Its style is scoped to the review's element, so displaying it leaves the rest of the notebook as it was.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..frames import records_frame, require_pandas
from ._deps import require_review_extra
from ._model import CriterionReview, Review, SegmentCriterion, WorstSample
from ._report import build_report
from ._sections import section_html

NOTEBOOK_SECTIONS = ("summary", "verdicts", "segments", "criteria")
"""What a notebook shows inline; `write_report` writes every section."""
_STYLE = """
.llmmonitor-review { max-width: 1100px; line-height: 1.4; }
.llmmonitor-review h2 { font-size: 1.15rem; border-bottom: 1px solid #ddd; margin-top: 1.2rem; }
.llmmonitor-review h3 { font-size: 1rem; margin: 1rem 0 0.3rem; }
.llmmonitor-review .meta, .llmmonitor-review .note, .llmmonitor-review figcaption { color: #555; font-size: 0.88em; }
.llmmonitor-review .status { display: inline-block; padding: 0.15rem 0.6rem; border-radius: 4px; font-weight: 600; }
.llmmonitor-review .status-degraded { background: #fde2e4; color: #8a0015; }
.llmmonitor-review .status-ok { background: #def5e3; color: #185a2b; }
.llmmonitor-review .status-not_enough_samples { background: #eee; color: #444; }
.llmmonitor-review table { border-collapse: collapse; font-size: 0.88em; margin: 0.5rem 0; }
.llmmonitor-review th, .llmmonitor-review td { border: 1px solid #ddd; padding: 0.25rem 0.45rem; text-align: left;
  vertical-align: top; }
.llmmonitor-review .verdict-degraded { color: #8a0015; font-weight: 600; }
.llmmonitor-review .verdict-improved { color: #185a2b; }
.llmmonitor-review .verdict-not_enough_samples { color: #666; font-style: italic; }
.llmmonitor-review figure { margin: 0.8rem 0 0.3rem; }
.llmmonitor-review figure img { max-width: 100%; height: auto; }
"""


@dataclass(frozen=True, slots=True)
class VerdictRow:
    """One criterion's verdict and the numbers behind it; a rate's means and difference are shares (0-1)."""

    criterion: str
    label: str
    kind: str
    verdict: str
    current_mean: float | None
    current_n: int
    baseline_mean: float | None
    baseline_n: int
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    test: str
    p_value: float | None
    """One-sided: in the bad direction, or the good one for an "improved" verdict."""
    chart_signal_at: datetime | None
    forced_n: int
    forced_mean: float | None
    summary: str


@dataclass(frozen=True, slots=True)
class TrendRow:
    """One UTC day of one criterion's trend, of random or forced samples."""

    criterion: str
    day: date
    sampling: str
    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    in_window: bool
    """The day is in the period reviewed (not the history before it)."""


def verdicts_frame(review: Review) -> Any:
    """One row per criterion, indexed by its name."""
    require_pandas()
    return records_frame(map(_verdict_row, review.criteria), VerdictRow).set_index("criterion")


def segments_frame(review: Review) -> Any:
    """One row per tested segment and criterion (the `SegmentCriterion` fields, `name` as `criterion`), led by the
    segment's key, value and baseline; empty when no segment was tested."""
    require_pandas()
    owners = [segment for segment in review.segments for _ in segment.criteria]
    criteria = [criterion for segment in review.segments for criterion in segment.criteria]
    frame = records_frame(criteria, SegmentCriterion).rename(columns={"name": "criterion"})
    for position, column in enumerate(("key", "value", "baseline")):
        frame.insert(position, column, [getattr(segment, column) for segment in owners])
    return frame


def trend_frame(review: Review) -> Any:
    """The daily trends in long format: a row per criterion, day and sampling ("random" or "forced")."""
    require_pandas()
    first_day = review.window_start.date()
    rows = [
        TrendRow(c.name, p.day, sampling, p.n, p.mean, p.ci_low, p.ci_high, p.day >= first_day)
        for c in review.criteria
        for sampling, points in (("random", c.trend), ("forced", c.forced_trend))
        for p in points
    ]
    return records_frame(rows, TrendRow)


def worst_frame(review: Review) -> Any:
    """The period's lowest-scored evaluations, worst first, with the judge's reasons."""
    require_pandas()
    return records_frame(review.worst_samples, WorstSample)


def review_html(review: Review) -> str:
    """The status, highlights, verdict table and each criterion's plot, as one self-contained HTML element."""
    require_review_extra()  # the plots
    report = build_report(review)
    sections = "".join(section_html(s) for s in report.sections if s.key in NOTEBOOK_SECTIONS)
    return (
        f'<div class="llmmonitor-review"><style>{_STYLE}</style>'
        f'<p class="meta"><strong>Weekly quality review</strong>: {html.escape(report.subtitle)}</p>{sections}'
        '<p class="note">The whole report (forced samples, user feedback, agreement, worst answers, cost): '
        "<code>write_report(review, directory)</code>. As data: <code>review.verdicts_frame()</code>, "
        "<code>review.segments_frame()</code>, <code>review.trend_frame()</code>, <code>review.worst_frame()</code>, "
        "<code>review.to_dict()</code>.</p></div>"
    )


def review_text(review: Review) -> str:
    """A few lines for a plain-text display: the period, the status and one verdict per criterion."""
    width = max(len(c.label) for c in review.criteria)
    lines = [
        f"Review of {review.window_start:%Y-%m-%d %H:%M} to {review.window_end:%Y-%m-%d %H:%M} UTC: "
        f"status {review.status.upper()}"
    ]
    lines += [f"  {c.label:<{width}}  {c.verdict.upper()}" for c in review.criteria]
    return "\n".join(lines)


def _verdict_row(criterion: CriterionReview) -> VerdictRow:
    a = criterion.assessment
    return VerdictRow(
        criterion=criterion.name,
        label=criterion.label,
        kind=criterion.kind,
        verdict=a.verdict,
        current_mean=a.current_mean,
        current_n=a.current_n,
        baseline_mean=a.baseline_mean,
        baseline_n=a.baseline_n,
        difference=a.difference,
        ci_low=a.ci_low,
        ci_high=a.ci_high,
        test=a.test,
        p_value=a.p_better if a.verdict == "improved" else a.p_worse,
        chart_signal_at=a.chart_signal_at,
        forced_n=a.forced_n,
        forced_mean=a.forced_mean,
        summary=criterion.summary,
    )
