"""What a weekly review holds: plain frozen dataclasses, no numpy, so the result can be pickled, compared and dumped.

Everything the HTML and Markdown reports show comes from here, and `Review.to_dict()` is the same data as JSON types
(datetimes as ISO 8601 strings), so a script or dashboard sees exactly what a reader of the report sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..core.plain import to_plain

if TYPE_CHECKING:
    from ._drift import DayPoint, DriftAssessment, JudgeChange

Status = Literal["degraded", "ok", "not_enough_samples"]


@dataclass(frozen=True, slots=True)
class CriterionSpec:
    """A judged quantity the review tracks, and which way is bad."""

    name: str
    label: str
    kind: Literal["score", "rate"]
    direction: Literal["decrease", "increase"]


CRITERIA = (
    CriterionSpec("faithfulness", "Faithfulness", "score", "decrease"),
    CriterionSpec("relevance", "Relevance", "score", "decrease"),
    CriterionSpec("completeness", "Completeness", "score", "decrease"),
    CriterionSpec("hallucination", "Hallucination rate", "rate", "increase"),
)


@dataclass(frozen=True, slots=True)
class Distribution:
    """Counts per level (scores 1-5, or no/yes for a rate) of the samples the verdict compared: random, one judge."""

    levels: tuple[str, ...]
    current: tuple[int, ...]
    baseline: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CriterionReview:
    """One criterion: the drift verdict, the daily trend (random samples) and the forced samples shown apart."""

    name: str
    label: str
    kind: Literal["score", "rate"]
    direction: Literal["decrease", "increase"]
    assessment: DriftAssessment
    trend: tuple[DayPoint, ...]
    forced_trend: tuple[DayPoint, ...]
    distribution: Distribution

    @property
    def verdict(self) -> str:
        return self.assessment.verdict

    @property
    def summary(self) -> str:
        return self.assessment.summary


@dataclass(frozen=True, slots=True)
class ForcedSummary:
    """Evaluations made because something already looked wrong (errors, negative feedback): never in the trends."""

    n: int
    by_reason: Mapping[str, int]
    mean_scores: Mapping[str, float | None]
    hallucination_rate: float | None


@dataclass(frozen=True, slots=True)
class FeedbackComment:
    """A user's rating with a comment, newest first in the report."""

    at: datetime
    rating: str
    negative: bool
    comment: str
    run_id: str
    trace_id: str
    url: str | None
    source: Literal["store", "langsmith"]


@dataclass(frozen=True, slots=True)
class UserFeedbackSummary:
    """Thumbs-down share this period and in the baseline periods, with 95% Wilson intervals; descriptive, no verdict.

    Who bothers to rate is self-selected and volumes are small, so the rate is shown, not tested.
    """

    n: int
    negative: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    baseline_n: int
    baseline_negative: int
    baseline_rate: float | None
    baseline_ci_low: float | None
    baseline_ci_high: float | None
    trend: tuple[DayPoint, ...]
    comments: tuple[FeedbackComment, ...]
    from_langsmith: int


@dataclass(frozen=True, slots=True)
class AgreementCounts:
    """Runs judged and rated in [start, end): judge flag against user thumbs-down as a 2x2 table, and its rates.

    `agreement` (with its 95% Wilson interval) is the share where the judge flags exactly the runs users rated down;
    `flagged_of_negative` and `passed_of_positive` are that share within each rating, which the over-representation
    of thumbs-down runs (each one gets a forced evaluation) does not move. `kappa` is Cohen's kappa.
    """

    start: datetime
    end: datetime
    n: int
    both_bad: int
    judge_only: int
    user_only: int
    both_fine: int
    forced: int
    agreement: float | None
    ci_low: float | None
    ci_high: float | None
    kappa: float | None
    flagged_of_negative: float | None
    passed_of_positive: float | None


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A run of this period where the judge and its user disagree: "judge_only" flags, "user_only" thumbs-down."""

    kind: Literal["judge_only", "user_only"]
    at: datetime
    run_id: str
    trace_id: str
    request_id: str | None
    rating: str
    comment: str | None
    faithfulness: float | None
    hallucination: bool | None
    reason: str | None
    question: str | None
    answer: str | None
    sampling: str
    sample_reason: str
    judge_key: str
    url: str | None


@dataclass(frozen=True, slots=True)
class JudgeHumanAgreement:
    """How the judge's flags line up with users' thumbs on runs that have both; descriptive, no verdict.

    A run counts in the period of its judge evaluation (random, or forced by the user's thumbs-down; other forced
    ones are left out). `difference` is this period's agreement minus the baseline's, with a 95% Newcombe interval.
    `reading` is the one-line summary; `hint`, when set, says whether the judge or the app looks like what moved.
    """

    flag_rule: str
    faithfulness_threshold: int
    current: AgreementCounts
    baseline: AgreementCounts
    baseline_periods: tuple[AgreementCounts, ...]
    difference: float | None
    difference_ci_low: float | None
    difference_ci_high: float | None
    neutral_left_out: int
    forced_left_out: int
    judge_only: tuple[Disagreement, ...]
    user_only: tuple[Disagreement, ...]
    reading: str
    hint: str | None


@dataclass(frozen=True, slots=True)
class SegmentCriterion:
    """One criterion's verdict within one segment, with the numbers behind it (in the data's units)."""

    name: str
    label: str
    kind: Literal["score", "rate"]
    verdict: str
    summary: str
    current_n: int
    current_mean: float | None
    baseline_n: int
    baseline_mean: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_worse: float | None
    chart_signal_at: datetime | None


@dataclass(frozen=True, slots=True)
class SegmentReview:
    """The verdicts of one segment (`key` = `value`, e.g. app_version = v2) this period.

    `baseline` is "segment" when the value has enough samples of its own in the baseline periods, else "all traffic"
    (a new release is compared with what it replaced).
    """

    key: str
    value: str
    baseline: Literal["segment", "all traffic"]
    current_n: int
    criteria: tuple[SegmentCriterion, ...]

    @property
    def status(self) -> Status:
        verdicts = {criterion.verdict for criterion in self.criteria}
        if "degraded" in verdicts:
            return "degraded"
        return "not_enough_samples" if verdicts <= {"not_enough_samples"} else "ok"


@dataclass(frozen=True, slots=True)
class Release:
    """A value of a release key (app_version, prompt_version) first seen at `at`: marked on the trend plots."""

    at: datetime
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class WorstSample:
    """One of the period's lowest-scored evaluations, with the judge's reason and a link to the run in LangSmith."""

    at: datetime
    run_id: str
    trace_id: str
    project: str | None
    sampling: str
    sample_reason: str
    judge_key: str
    faithfulness: float | None
    relevance: float | None
    completeness: float | None
    hallucination: bool | None
    reason: str | None
    question: str | None
    answer: str | None
    url: str | None
    source: Literal["store", "langsmith"]
    segments: Mapping[str, str]  # app_version, model, ... of the run


@dataclass(frozen=True, slots=True)
class UsageStats:
    """Traffic, tokens, cost and latency of root invocations (the local store only), and the judge's own cost.

    For the baseline, counts and sums are averages per period and latency percentiles are over all its invocations.
    """

    invocations: float
    errors: float
    error_rate: float | None
    prompt_tokens: float
    completion_tokens: float
    cost_usd: float
    unpriced: float
    latency_p50: float | None
    latency_p90: float | None
    latency_p95: float | None
    latency_p99: float | None
    judge_evaluations: float
    judge_errors: float
    judge_cost_usd: float


@dataclass(frozen=True, slots=True)
class UsageSummary:
    current: UsageStats
    baseline: UsageStats | None
    baseline_periods: int


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the numbers came from, and how far to trust the run links."""

    store: str
    evaluations: int
    user_feedback: int
    invocations: int
    langsmith_project: str | None
    langsmith_runs: int
    langsmith_feedback_merged: int
    langsmith_feedback_already_local: int
    langsmith_feedback_other_keys: int
    run_links: Literal["exact", "partial", "template", "none"]


@dataclass(frozen=True, slots=True)
class Review:
    """Everything the weekly report shows. `highlights` is the "what changed and what to look at" list, worst first.

    The window is [window_start, window_end); the baseline is the `baseline_weeks` periods of the same length before
    it (minus periods already judged degraded), and the trends start at `display_start`. `alpha` is the chance that a
    stable period gets any "degraded" verdict: it is split evenly over the criteria (`verdict_alpha` each), or, when
    segments are tested, half of it so and half over every segment's criteria (`segment_alpha` each).
    """

    generated_at: datetime
    window_start: datetime
    window_end: datetime
    display_start: datetime
    baseline_weeks: int
    alpha: float
    verdict_alpha: float
    status: Status
    highlights: tuple[str, ...]
    criteria: tuple[CriterionReview, ...]
    segments: tuple[SegmentReview, ...]
    segment_alpha: float | None
    releases: tuple[Release, ...]
    judge_changes: tuple[JudgeChange, ...]
    forced: ForcedSummary
    user_feedback: UserFeedbackSummary
    agreement: JudgeHumanAgreement
    worst_samples: tuple[WorstSample, ...]
    usage: UsageSummary
    sources: Sources

    @property
    def period(self) -> timedelta:
        return self.window_end - self.window_start

    @property
    def period_word(self) -> str:
        """How the report names the window: "week" for the default 7 days."""
        return {timedelta(days=7): "week", timedelta(days=1): "day"}.get(self.period, "period")

    def criterion(self, name: str) -> CriterionReview:
        for criterion in self.criteria:
            if criterion.name == name:
                return criterion
        raise KeyError(name)

    def segment(self, key: str, value: str) -> SegmentReview:
        for segment in self.segments:
            if (segment.key, segment.value) == (key, value):
                return segment
        raise KeyError(f"{key}={value}")

    def to_dict(self) -> dict[str, Any]:
        """The review as JSON types: what `llmmonitor review --json` prints."""
        plain = to_plain(self)
        assert isinstance(plain, dict)
        plain["period_word"] = self.period_word
        for criterion, data in zip(self.criteria, plain["criteria"], strict=True):
            data["verdict"], data["summary"] = criterion.verdict, criterion.summary
        return plain

    # In a notebook (DataFrames need the `frames` extra) ---------------------------------------------------------------

    def verdicts_frame(self) -> Any:
        """A pandas DataFrame, one row per criterion: verdict, means, difference with its 95% CI, p-value, n."""
        from ._notebook import verdicts_frame

        return verdicts_frame(self)

    def segments_frame(self) -> Any:
        """A pandas DataFrame, one row per tested segment (app_version = v2, ...) and criterion, with its verdict."""
        from ._notebook import segments_frame

        return segments_frame(self)

    def trend_frame(self) -> Any:
        """A pandas DataFrame of the daily trends, one row per criterion, day and sampling (random or forced)."""
        from ._notebook import trend_frame

        return trend_frame(self)

    def worst_frame(self) -> Any:
        """A pandas DataFrame of the period's lowest-scored evaluations, worst first, with the judge's reasons."""
        from ._notebook import worst_frame

        return worst_frame(self)

    def _repr_html_(self) -> str:
        """Jupyter shows the status, the verdict table and the plots inline."""
        from ._notebook import review_html

        return review_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain view: the status and the verdicts, not every number of the dataclass."""
        from ._notebook import review_text

        printer.text(review_text(self))


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """The files `write_report` wrote: a self-contained HTML page (plots inline) and a Markdown twin without plots."""

    html: Path
    markdown: Path
