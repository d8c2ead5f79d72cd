"""The review as a report: what each section says (`build_report`), its plots, and the two files it is written to.

`build_report` turns a `Review` into sections of plain blocks (`_sections`), once; the self-contained HTML page (plots
as inline base64 PNG) and its Markdown twin (the same tables and lists, no plots) both render from them, so the two
cannot drift apart.

Plots use matplotlib's object API on the Agg canvas (`Figure` + `FigureCanvasAgg`): no pyplot, so no global backend
switch, no GUI, nothing shared between threads. One figure per criterion (daily trend with its 95% band and the forced
samples apart, this period's distribution against the baseline's, and the EWMA chart with its limit) and one for user
ratings. The page has no scripts and no external resources, so it can be mailed, attached to a ticket or archived.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._deps import require_review_extra
from ._model import (
    CRITERIA,
    AgreementCounts,
    CriterionReview,
    Disagreement,
    ReportPaths,
    Review,
    SegmentCriterion,
    SegmentReview,
    WorstSample,
)
from ._sections import (
    Block,
    Bullets,
    Details,
    Figure,
    Heading,
    Inline,
    Line,
    Link,
    Note,
    Paragraph,
    Report,
    Section,
    Span,
    Table,
    to_html,
    to_markdown,
)

if TYPE_CHECKING:
    from ._drift import DriftAssessment

SECTIONS = (
    ("summary", "What changed and what to look at"),
    ("verdicts", "Drift verdicts"),
    ("segments", "By segment"),
    ("criteria", "Trends and distributions"),
    ("judge-changes", "Judge changes"),
    ("forced", "Forced samples"),
    ("user-feedback", "User feedback"),
    ("agreement", "Judge–human agreement"),
    ("worst", "Worst-scored answers"),
    ("usage", "Cost, tokens and latency"),
    ("method", "How to read this"),
)
_VERDICT_WORDS = {
    "degraded": "DEGRADED",
    "improved": "improved",
    "stable": "stable",
    "not_enough_samples": "not enough samples",
}
_STATUS_WORDS = {"degraded": "Degraded", "ok": "No degradation found", "not_enough_samples": "Not enough samples"}
_TEXT_LIMIT = 300


def write_report(review: Review, out_dir: str | Path) -> ReportPaths:
    """Write review-YYYY-MM-DD.html and .md (dated by the window's end) into `out_dir`, created if missing."""
    require_review_extra()
    report = build_report(review)
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"review-{review.window_end:%Y-%m-%d}"
    paths = ReportPaths(html=directory / f"{stem}.html", markdown=directory / f"{stem}.md")
    paths.html.write_text(to_html(report), encoding="utf-8")
    paths.markdown.write_text(to_markdown(report), encoding="utf-8")
    return paths


def render_html(review: Review) -> str:
    """The whole page as one string; plots are rendered here."""
    require_review_extra()
    return to_html(build_report(review))


def render_markdown(review: Review) -> str:
    """The same sections as the HTML page, as Markdown tables and lists (the plots are in the HTML)."""
    return to_markdown(build_report(review))


def build_report(review: Review) -> Report:
    """Every section of the report, in `SECTIONS` order, as blocks both formats render."""
    word = review.period_word
    return Report(
        title="LLM quality review",
        page_title=f"LLM quality review {review.window_start:%Y-%m-%d} to {review.window_end:%Y-%m-%d}",
        subtitle=f"{_when(review.window_start)} to {_when(review.window_end)} against the {review.baseline_weeks} "
        f"preceding {word}s · generated {_when(review.generated_at)}",
        sections=tuple(Section(key, title, tuple(_SECTION_BLOCKS[key](review))) for key, title in SECTIONS),
    )


# Formatting ---------------------------------------------------------------------------------------------------------


def _day(moment: datetime | date) -> str:
    return f"{moment:%a %b} {moment.day}"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _level(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}%" if kind == "rate" else f"{value:.2f}"


def _change(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    return f"{100 * value:+.1f} pts" if kind == "rate" else f"{value:+.2f}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "p<0.001" if value < 0.001 else f"p={value:.3f}"


def _clip(text: str | None, limit: int = _TEXT_LIMIT) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _rate_with_interval(rate: float | None, low: float | None, high: float | None) -> str:
    if rate is None:
        return "–"
    return f"{rate:.1%} [{(low or 0):.1%}, {(high or 0):.1%}]"


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:,.4f}"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


# Sections -----------------------------------------------------------------------------------------------------------


def _summary_blocks(review: Review) -> list[Block]:
    status = Span(_STATUS_WORDS[review.status], style=f"status status-{review.status}", strong=True)
    return [Paragraph((status,)), Bullets(tuple((line,) for line in review.highlights))]


_VERDICT_HEADER = (
    "Criterion",
    "Verdict",
    "This {word} (random)",
    "Baseline",
    "Difference [95% CI]",
    "Mean-shift test",
    "EWMA chart",
    "Forced (not compared)",
)


def _verdict_blocks(review: Review) -> list[Block]:
    header = tuple(h.format(word=review.period_word) for h in _VERDICT_HEADER)
    segments = len(review.criteria) * len(review.segments)
    shared = f", and the {segments} segment verdicts below" if segments else ""
    alpha = f"Each verdict at alpha {review.verdict_alpha:.4g} ({review.alpha:g} across all {len(review.criteria)}{shared})."
    blocks: list[Block] = [
        Table(header, tuple(_verdict_row(c) for c in review.criteria)),
        Note((alpha,)),
        Bullets(tuple(_labelled(c.label, c.summary) for c in review.criteria)),
    ]
    notes = tuple(_labelled(c.label, note) for c in review.criteria for note in c.assessment.notes)
    if notes:
        blocks += [Paragraph(("Notes:",)), Bullets(notes)]
    return blocks


def _verdict_row(criterion: CriterionReview) -> tuple[Inline, ...]:
    a, kind = criterion.assessment, criterion.kind
    interval = "–"
    if a.difference is not None:
        interval = f"{_change(a.difference, kind)} [{_change(a.ci_low, kind)}, {_change(a.ci_high, kind)}]"
    p_value = a.p_better if a.verdict == "improved" else a.p_worse
    if a.chart_signal_at is not None:
        chart = f"signal {_day(a.chart_signal_at)}"
    else:
        chart = "no signal" if a.chart_limit is not None else "not run"
    return (
        criterion.label,
        Span(_VERDICT_WORDS[a.verdict], style=f"verdict-{a.verdict}"),
        f"{_level(a.current_mean, kind)} (n={a.current_n})",
        f"{_level(a.baseline_mean, kind)} (n={a.baseline_n})",
        interval,
        f"{a.test} {_p(p_value)}",
        chart,
        f"{a.forced_n}" + (f" (mean {_level(a.forced_mean, kind)})" if a.forced_n else ""),
    )


def _segment_blocks(review: Review) -> list[Block]:
    word = review.period_word
    if not review.segments:
        return [
            Paragraph(
                (
                    f"No segment to compare this {word}: no stored dimension (app_version, prompt_version, model, "
                    f"chain, ...) has two values with {review.criteria[0].assessment.min_samples} or more random "
                    f"samples each.",
                )
            )
        ]
    header = ("Segment", "Baseline", f"Random samples this {word}", *(spec.label for spec in CRITERIA))
    rows = tuple(_segment_row(segment) for segment in review.segments)
    note = (
        f"Each segment verdict at alpha {review.segment_alpha:.4g}: half of the review's {review.alpha:g} is shared "
        "by every segment verdict, half by the overall ones. A value new this "
        f"{word} (a release) is compared with all traffic of the baseline, which it replaced. Cells: baseline → this "
        f"{word}."
    )
    findings = tuple(
        _labelled(f"{segment.key} {segment.value}, {c.label}", c.summary)
        for segment in review.segments
        for c in segment.criteria
        if c.verdict in ("degraded", "improved")
    )
    return [Table(header, rows), Note((note,)), *([Bullets(findings)] if findings else [])]


def _segment_row(segment: SegmentReview) -> tuple[Inline, ...]:
    return (
        f"{segment.key} = {segment.value}",
        segment.baseline,
        str(segment.current_n),
        *(_segment_cell(criterion) for criterion in segment.criteria),
    )


def _segment_cell(c: SegmentCriterion) -> Inline:
    levels = "" if c.current_mean is None else f" {_level(c.baseline_mean, c.kind)} → {_level(c.current_mean, c.kind)}"
    return Span(_VERDICT_WORDS[c.verdict] + levels, style=f"verdict-{c.verdict}")


def _labelled(label: str, text: str) -> Line:
    return (Span(label, strong=True), f": {text}")


def _criteria_blocks(review: Review) -> list[Block]:
    return [block for criterion in review.criteria for block in _criterion_blocks(review, criterion)]


def _criterion_blocks(review: Review, criterion: CriterionReview) -> list[Block]:
    """The plot, and under it the numbers it draws: the distribution and each day of this period."""
    caption = (
        f"Shaded: this {review.period_word}; dashed red lines: judge changes; dotted blue lines: releases (a new "
        "app_version or prompt_version first seen); pink: periods left out of the baseline as degraded; crosses: "
        "forced samples (not in the trend)."
    )
    figure = Figure(
        anchor=f"criterion-{criterion.name}",
        alt=f"{criterion.label}: daily trend, distribution and EWMA chart",
        png=partial(_criterion_figure, review, criterion),
        caption=caption,
    )
    numbers = (_distribution_table(review, criterion), _daily_table(review, criterion))
    return [
        Heading(criterion.label),
        Paragraph((criterion.summary,)),
        figure,
        Details("Distribution and daily numbers", numbers),
    ]


def _distribution_table(review: Review, criterion: CriterionReview) -> Table:
    distribution = criterion.distribution
    counts = zip(distribution.levels, distribution.current, distribution.baseline, strict=True)
    rows = tuple((level, str(now), str(base)) for level, now, base in counts)
    return Table(("Level", f"This {review.period_word}", "Baseline"), rows)


def _daily_table(review: Review, criterion: CriterionReview) -> Table:
    kind = criterion.kind
    forced_by_day = {p.day: p for p in criterion.forced_trend}
    rows = []
    for p in criterion.trend:
        if p.day < review.window_start.date():
            continue
        forced = forced_by_day.get(p.day)
        rows.append(
            (
                _day(p.day),
                str(p.n),
                f"{_level(p.mean, kind)} [{_level(p.ci_low, kind)}, {_level(p.ci_high, kind)}]",
                str(forced.n) if forced else "0",
                _level(forced.mean, kind) if forced else "–",
            )
        )
    return Table(("Day", "Random n", "Mean [95% CI]", "Forced n", "Forced mean"), tuple(rows))


def _judge_change_blocks(review: Review) -> list[Block]:
    if not review.judge_changes:
        return [Paragraph(("No judge change in the history reviewed.",))]
    rows = tuple((_when(c.at), c.previous_key, c.judge_key) for c in review.judge_changes)
    note = (
        "Scores of different judges are never compared: each verdict uses only the judge that scored this period, "
        "so its baseline restarts at a change."
    )
    return [Table(("When", "From", "To"), rows), Note((note,))]


def _forced_blocks(review: Review) -> list[Block]:
    forced, word = review.forced, review.period_word
    if not forced.n:
        return [Paragraph((f"No forced evaluations this {word}.",))]
    intro = (
        f"{forced.n} evaluations this {word} were forced (always-evaluate rules), not sampled at random. "
        "They are kept out of the trends and verdicts, and shown here."
    )
    reasons = tuple((reason, str(count)) for reason, count in forced.by_reason.items())
    means = [(name, _level(value, "score")) for name, value in forced.mean_scores.items()]
    means.append(("hallucination rate", _level(forced.hallucination_rate, "rate")))
    return [
        Paragraph((intro,)),
        Table(("Reason", "Evaluations"), reasons),
        Table(("Criterion", "Mean of forced samples"), tuple(means)),
    ]


def _feedback_blocks(review: Review) -> list[Block]:
    feedback, word = review.user_feedback, review.period_word
    blocks: list[Block] = [Table(("", "Ratings", "Thumbs down", "Thumbs-down share [95% CI]"), _feedback_rows(review))]
    if feedback.from_langsmith:
        blocks.append(Note((f"{feedback.from_langsmith} of these ratings came from LangSmith.",)))
    blocks.append(Figure(anchor="feedback-trend", alt="Daily thumbs-down share", png=partial(_feedback_figure, review)))
    if not feedback.comments:
        return [*blocks, Paragraph((f"No comments this {word}.",))]
    comments = tuple(
        (f"{'👎' if c.negative else '👍'} {_when(c.at)}: “{_clip(c.comment)}” (run ", _run(c.run_id, c.url), ")")
        for c in feedback.comments
    )
    return [*blocks, Paragraph((f"Comments this {word}, negative first:",)), Bullets(comments)]


def _feedback_rows(review: Review) -> tuple[tuple[str, ...], ...]:
    f = review.user_feedback
    return (
        (f"This {review.period_word}", str(f.n), str(f.negative), _rate_with_interval(f.rate, f.ci_low, f.ci_high)),
        (
            "Baseline",
            str(f.baseline_n),
            str(f.baseline_negative),
            _rate_with_interval(f.baseline_rate, f.baseline_ci_low, f.baseline_ci_high),
        ),
    )


_AGREEMENT_HEADER = (
    "",
    "Rated and judged",
    "Both bad",
    "Judge only",
    "User only",
    "Both fine",
    "Agreement [95% CI]",
    "Kappa",
    "Judge flags, of thumbs-down",
    "Judge passes, of thumbs-up",
    "Forced by feedback",
)
_DISAGREEMENT_HEADER = ("When", "User", "User's comment", "Faithf.", "Halluc.", "Judge's reason", "Question", "Answer",
                        "Sampling", "Run (request id)")  # fmt: skip


def _agreement_blocks(review: Review) -> list[Block]:
    """The reading, the 2x2 counts this period and in the baseline, how they were counted, and the disagreeing runs."""
    agreement, word = review.agreement, review.period_word
    blocks: list[Block] = [Paragraph((agreement.reading,))]
    if agreement.hint:
        blocks.append(Paragraph(_labelled("Judge or app?", agreement.hint)))
    if agreement.current.n or agreement.baseline.n:
        rows = (_agreement_row(f"This {word}", agreement.current), _agreement_row("Baseline", agreement.baseline))
        weekly = tuple(_agreement_row(_span(c), c) for c in agreement.baseline_periods)
        figure = Figure(
            anchor="agreement-trend",
            alt=f"Judge-human agreement per {word}",
            png=partial(_agreement_figure, review),
            caption=f"Per {word}: the agreement rate with its 95% interval, and the two shares by rating, which the "
            "mix of thumbs-down and thumbs-up runs does not move.",
        )
        blocks += [
            Table(_AGREEMENT_HEADER, rows),
            figure,
            Details(f"Agreement in each baseline {word}", (Table(_AGREEMENT_HEADER, weekly),)),
        ]
    blocks.append(Note((_agreement_note(review),)))
    for title, runs in (
        (f"Judge flags, user liked it (this {word})", agreement.judge_only),
        (f"User rated it down, judge passed it (this {word})", agreement.user_only),
    ):
        blocks.append(Heading(title))
        if runs:
            blocks.append(Table(_DISAGREEMENT_HEADER, tuple(_disagreement_row(d) for d in runs)))
        else:
            blocks.append(Paragraph(("None.",)))
    return blocks


def _span(counts: AgreementCounts) -> str:
    return f"{counts.start:%b} {counts.start.day} – {counts.end:%b} {counts.end.day}"


def _agreement_row(label: str, c: AgreementCounts) -> tuple[str, ...]:
    return (
        label,
        str(c.n),
        str(c.both_bad),
        str(c.judge_only),
        str(c.user_only),
        str(c.both_fine),
        _rate_with_interval(c.agreement, c.ci_low, c.ci_high),
        "–" if c.kappa is None else f"{c.kappa:.2f}",
        _share(c.flagged_of_negative),
        _share(c.passed_of_positive),
        str(c.forced),
    )


def _agreement_note(review: Review) -> str:
    agreement, word = review.agreement, review.period_word
    left_out = ""
    if agreement.neutral_left_out or agreement.forced_left_out:
        left_out = (
            f" Left out this {word}: {agreement.neutral_left_out} neutral ratings (3 of 5) and "
            f"{agreement.forced_left_out} runs judged only because of an error or a rule."
        )
    return (
        f"Runs with a successful judge evaluation (random, or forced by the user's thumbs-down) and a user rating "
        f"(thumbs; on a 1-5 scale 1-2 down, 4-5 up, 3 left out), counted in the {word} they were judged. The judge "
        f"flags a run on {agreement.flag_rule}; they agree when it flags exactly the runs users rated down. Every "
        "thumbs-down gets a forced evaluation while only a random share of the other runs is judged, so thumbs-down "
        "runs are over-represented here and the agreement rate moves with their share; the two shares by rating "
        "(judge flags, of thumbs-down; judge passes, of thumbs-up) do not. All judges are counted: after a judge "
        f"change (see Judge changes) a fall in agreement is the judge's. Descriptive, no verdict.{left_out}"
    )


def _disagreement_row(d: Disagreement) -> tuple[Inline, ...]:
    return (
        _when(d.at),
        d.rating,
        _clip(d.comment, 160) or "–",
        "–" if d.faithfulness is None else f"{d.faithfulness:g}",
        {True: "yes", False: "no", None: "–"}[d.hallucination],
        _clip(d.reason, 200),
        _clip(d.question, 160),
        _clip(d.answer, 160),
        d.sampling if d.sampling == "random" else f"forced ({d.sample_reason})",
        _run(d.run_id, d.url, f" ({d.request_id})" if d.request_id else ""),
    )


_WORST_HEADER = ("When", "Faithf./Relev./Compl.", "Halluc.", "Sampling", "Question", "Answer", "Judge's reason", "Run")


def _worst_blocks(review: Review) -> list[Block]:
    ranking = Note(("Ranked by the mean of the three 1-5 scores, a hallucination counting one point off.",))
    if not review.worst_samples:
        return [Paragraph((f"No evaluations this {review.period_word}.",)), ranking]
    return [Table(_WORST_HEADER, tuple(_worst_row(s) for s in review.worst_samples)), ranking]


def _worst_row(sample: WorstSample) -> tuple[Inline, ...]:
    scores = (sample.faithfulness, sample.relevance, sample.completeness)
    sampling = sample.sampling if sample.sampling == "random" else f"forced ({sample.sample_reason})"
    return (
        _when(sample.at),
        "/".join("–" if v is None else f"{v:g}" for v in scores),
        {True: "yes", False: "no", None: "–"}[sample.hallucination],
        sampling,
        _clip(sample.question),
        _clip(sample.answer),
        _clip(sample.reason),
        _run(sample.run_id, sample.url),
    )


def _usage_blocks(review: Review) -> list[Block]:
    word, usage = review.period_word, review.usage
    baseline = f"Baseline, per {word}" if usage.baseline is not None else "Baseline"
    note = (
        "From the store's root invocations (all statuses). Baseline: averages over the "
        f"{usage.baseline_periods} preceding periods with traffic; its latency percentiles pool them."
    )
    return [Table(("", f"This {word}", baseline), _usage_rows(review)), Note((note,))]


# (row label, UsageStats field, how to show it)
_USAGE_STATS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("Invocations", "invocations", _count),
    ("Errors", "errors", _count),
    ("Error rate", "error_rate", _share),
    ("Prompt tokens", "prompt_tokens", _count),
    ("Completion tokens", "completion_tokens", _count),
    ("Cost (priced calls)", "cost_usd", _money),
    ("Invocations without a price", "unpriced", _count),
    ("Latency p50", "latency_p50", _seconds),
    ("Latency p90", "latency_p90", _seconds),
    ("Latency p95", "latency_p95", _seconds),
    ("Latency p99", "latency_p99", _seconds),
    ("Judge evaluations", "judge_evaluations", _count),
    ("Judge errors", "judge_errors", _count),
    ("Judge cost", "judge_cost_usd", _money),
)


def _usage_rows(review: Review) -> tuple[tuple[str, str, str], ...]:
    now, base = review.usage.current, review.usage.baseline
    return tuple(
        (label, show(getattr(now, field)), show(getattr(base, field)) if base is not None else "–")
        for label, field, show in _USAGE_STATS
    )


def _method_blocks(review: Review) -> list[Block]:
    sources, word = review.sources, review.period_word
    lines = [
        f"Window: {_when(review.window_start)} to {_when(review.window_end)}; baseline: the {review.baseline_weeks} "
        f"preceding periods of the same length, minus periods already judged degraded, and only samples from the "
        f"judge (name, model, prompt version) that scored this {word}.",
        "Trends and verdicts use random samples only. Forced samples (judged because of an error or negative "
        "feedback) would make a week with more complaints look worse for a reason that is not drift; they are shown "
        "apart.",
        f"Verdicts: a one-sided mean-shift test (Welch t for scores, Fisher mid-p for the hallucination rate) with a "
        f"bootstrap 95% interval of the difference, and a one-sided EWMA control chart (lambda 0.05) whose limit is "
        f"bootstrapped from the baseline. Each verdict has alpha {review.verdict_alpha:.4g}, so a stable "
        f'{word} gets any "degraded" with probability at most {review.alpha:g}. A criterion with fewer '
        f'random samples than needed this {word} or in its baseline says "not enough samples" instead '
        f"of guessing.",
        "Segments: the values of each run's stored dimensions (app_version, prompt_version, model, chain, or the "
        "keys configured) with enough random samples this period get the same verdicts, when a dimension has two "
        "such values or more (chosen from sample counts, before any score is looked at); then half of the alpha goes "
        "to them, split evenly.",
        f"Data: {sources.evaluations} evaluations, {sources.user_feedback} user ratings and {sources.invocations} "
        f"invocations from the store {sources.store}.",
    ]
    if sources.langsmith_project:
        lines.append(
            f"LangSmith project {sources.langsmith_project}: {sources.langsmith_runs} root runs read, "
            f"{sources.langsmith_feedback_merged} feedback merged, {sources.langsmith_feedback_already_local} already "
            f"in the store, {sources.langsmith_feedback_other_keys} of other keys or unnamed judges left out."
        )
    lines.append(_RUN_LINKS[sources.run_links])
    return [Bullets(tuple((line,) for line in lines))]


_RUN_LINKS = {
    "exact": "Run links point at the runs in LangSmith (organisation and project ids read from LangSmith).",
    "partial": "Runs of the LangSmith project read are linked (ids read from LangSmith); runs of other projects are "
    "shown by id.",
    "template": "Run links follow the run URL template given to the review.",
    "none": "Runs are shown by id, not linked: the store knows neither the organisation and project ids LangSmith's "
    "web app addresses runs by nor which LangSmith the runs went to. Review with --langsmith-project for links.",
}


def _run(run_id: str, url: str | None, suffix: str = "") -> Inline:
    """A link (on the id's first 8 characters) where the run's address is known, else the whole id as text, to look
    the run up by."""
    return Link(run_id[:8] + suffix, url) if url else run_id + suffix


_SECTION_BLOCKS: dict[str, Callable[[Review], list[Block]]] = {
    "summary": _summary_blocks,
    "verdicts": _verdict_blocks,
    "segments": _segment_blocks,
    "criteria": _criteria_blocks,
    "judge-changes": _judge_change_blocks,
    "forced": _forced_blocks,
    "user-feedback": _feedback_blocks,
    "agreement": _agreement_blocks,
    "worst": _worst_blocks,
    "usage": _usage_blocks,
    "method": _method_blocks,
}


# Plots --------------------------------------------------------------------------------------------------------------


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


def _png(figure: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _shade_windows(axis: Any, review: Review) -> None:
    axis.axvspan(review.window_start, review.window_end, color="#ffd54f", alpha=0.3, zorder=0,
                 label=f"this {review.period_word}")  # fmt: skip
    shown = [c for c in review.judge_changes if review.display_start <= c.at < review.window_end]
    for index, change in enumerate(shown):
        axis.axvline(change.at, color="#b00020", linestyle="--", linewidth=1.2, zorder=3,
                     label="judge change" if index == 0 else None)  # fmt: skip
    for index, release in enumerate(review.releases):
        axis.axvline(release.at, color="#1565c0", linestyle=":", linewidth=1.4, zorder=3,
                     label="release" if index == 0 else None)  # fmt: skip
        axis.annotate(f"{release.key} {release.value}", xy=(release.at, 1.0), xycoords=("data", "axes fraction"),
                      xytext=(2, -10), textcoords="offset points", fontsize=7, color="#1565c0")  # fmt: skip


def _date_axis(axis: Any, review: Review) -> None:
    """The time axis both trend plots share: the displayed history, dated, on a light grid."""
    import matplotlib.dates as mdates

    axis.set_xlim(review.display_start, review.window_end)
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    axis.grid(alpha=0.3)


def _legend(axis: Any, *twins: Any) -> None:
    """Beside the axes on the right, never over the data; constrained layout leaves the room. With `twins` (axes
    sharing this one's area), one legend for all, at the figure's right edge: past the twin's tick labels."""
    if not twins:
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=7)
        return
    handles, labels = axis.get_legend_handles_labels()
    for twin in twins:
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    axis.figure.legend(handles, labels, loc="outside right upper", fontsize=7)


def _criterion_figure(review: Review, criterion: CriterionReview) -> bytes:
    return _png(_criterion_chart(review, criterion))


def _criterion_chart(review: Review, criterion: CriterionReview) -> Any:
    """The daily trend and the distribution side by side, over the EWMA chart."""
    import matplotlib.figure

    figure = matplotlib.figure.Figure(figsize=(11, 6.2), layout="constrained")
    grid = figure.add_gridspec(2, 3, height_ratios=[3, 2])
    _plot_trend(figure.add_subplot(grid[0, :2]), review, criterion)
    _plot_distribution(figure.add_subplot(grid[0, 2]), review, criterion)
    _plot_ewma(figure.add_subplot(grid[1, :]), review, criterion.assessment)
    return figure


def _plot_trend(axis: Any, review: Review, criterion: CriterionReview) -> None:
    """Daily means of the random samples with their 95% band; forced samples as crosses, outside the trend."""
    scale = 100.0 if criterion.kind == "rate" else 1.0
    # The band is clipped to the scale: a day's interval can overshoot it.
    floor, ceiling = (0.0, 100.0) if criterion.kind == "rate" else (1.0, 5.0)
    _shade_windows(axis, review)
    for start, end in criterion.assessment.quarantined_periods:
        axis.axvspan(max(start, review.display_start), end, color="#f8d7da", zorder=0)
    points = [p for p in criterion.trend if p.mean is not None]
    axis.plot(
        [_noon(p.day) for p in points],
        [p.mean * scale for p in points],  # type: ignore[operator]
        marker="o",
        markersize=3,
        color="#1f5fa8",
        label="daily mean, random samples",
    )
    banded = [p for p in points if p.ci_low is not None and p.ci_high is not None]
    axis.fill_between(
        [_noon(p.day) for p in banded],
        [max(floor, p.ci_low * scale) for p in banded],  # type: ignore[operator]
        [min(ceiling, p.ci_high * scale) for p in banded],  # type: ignore[operator]
        color="#1f5fa8",
        alpha=0.18,
        label="95% interval",
    )
    forced = [p for p in criterion.forced_trend if p.mean is not None]
    if forced:
        axis.scatter(
            [_noon(p.day) for p in forced],
            [p.mean * scale for p in forced],  # type: ignore[operator]
            marker="x",
            color="#777777",
            label="forced samples (not in trend)",
            zorder=4,
        )
    if criterion.assessment.baseline_mean is not None:
        axis.axhline(criterion.assessment.baseline_mean * scale, color="#555555", linewidth=0.8, linestyle=":",
                     label="baseline mean")  # fmt: skip
    axis.set_title(f"{criterion.label}: daily trend — verdict: {_VERDICT_WORDS[criterion.verdict]}")
    axis.set_ylabel(criterion.label + (" (%)" if criterion.kind == "rate" else " (1-5)"))
    _date_axis(axis, review)
    _legend(axis)


def _plot_distribution(axis: Any, review: Review, criterion: CriterionReview) -> None:
    """Share of each level this period against the baseline's, as paired bars."""
    distribution = criterion.distribution
    total_now, total_base = sum(distribution.current) or 1, sum(distribution.baseline) or 1
    positions = range(len(distribution.levels))
    for offset, counts, total, color, label in (
        (-0.2, distribution.baseline, total_base, "#9db4d0", "baseline"),
        (0.2, distribution.current, total_now, "#e0a100", f"this {review.period_word}"),
    ):
        heights = [100 * count / total for count in counts]
        axis.bar([x + offset for x in positions], heights, 0.4, color=color, label=f"{label} (n={sum(counts)})")
    axis.set_xticks(list(positions), distribution.levels)
    axis.set_ylabel("% of random samples")
    axis.set_title("Distribution")
    _legend(axis)


def _plot_ewma(axis: Any, review: Review, assessment: DriftAssessment) -> None:
    """The EWMA over baseline then this period with its limit and signal, or why the chart was not run."""
    import matplotlib.dates as mdates

    if not assessment.chart:
        axis.axis("off")
        reason = "not enough samples" if assessment.verdict == "not_enough_samples" else "no spread in the baseline"
        axis.text(0.5, 0.5, f"EWMA chart not run: {reason}", ha="center", va="center")
        return
    axis.axvspan(review.window_start, review.window_end, color="#ffd54f", alpha=0.3, zorder=0)
    chart = assessment.chart
    axis.plot([p.timestamp for p in chart], [p.ewma for p in chart], color="#333333", linewidth=1)
    if assessment.chart_limit is not None:
        axis.axhline(assessment.chart_limit, color="#b00020", linestyle="--", linewidth=1, label="control limit")
    if assessment.chart_signal_at is not None:
        axis.axvline(assessment.chart_signal_at, color="#b00020", linewidth=1.5, label="signal")
    axis.set_title("EWMA of standardised random samples (baseline, then this period), one-sided limit")
    axis.set_ylabel("baseline sd")
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    _legend(axis)
    axis.grid(alpha=0.3)


def _feedback_figure(review: Review) -> bytes:
    return _png(_feedback_chart(review))


def _feedback_chart(review: Review) -> Any:
    """Daily thumbs-down share with its 95% band, over the number of ratings per day."""
    import matplotlib.figure

    feedback = review.user_feedback
    figure = matplotlib.figure.Figure(figsize=(11, 3.4), layout="constrained")
    axis = figure.add_subplot()
    _shade_windows(axis, review)
    points = [p for p in feedback.trend if p.mean is not None]
    shares = [100 * (p.mean or 0.0) for p in points]
    days = [_noon(p.day) for p in points]
    axis.plot(days, shares, marker="o", markersize=3, color="#b00020", label="thumbs-down share")
    axis.fill_between(
        days,
        [100 * (p.ci_low or 0.0) for p in points],
        [100 * (p.ci_high or 0.0) for p in points],
        color="#b00020",
        alpha=0.15,
        label="95% interval",
    )
    counts = axis.twinx()
    counts.bar([_noon(p.day) for p in feedback.trend], [p.n for p in feedback.trend], width=0.6, color="#cccccc",
               alpha=0.6, label="ratings")  # fmt: skip
    counts.set_ylabel("ratings per day")
    axis.set_zorder(counts.get_zorder() + 1)
    axis.patch.set_visible(False)
    axis.set_ylabel("thumbs down (%)")
    _date_axis(axis, review)
    axis.set_title("User ratings: daily thumbs-down share")
    _legend(axis, counts)
    return figure


def _agreement_figure(review: Review) -> bytes:
    return _png(_agreement_chart(review))


def _agreement_chart(review: Review) -> Any:
    """Per period, oldest first: agreement with its interval, judge flags of thumbs-down, judge passes of thumbs-up."""
    import matplotlib.figure

    agreement = review.agreement
    periods = [*agreement.baseline_periods, agreement.current]
    middles = [c.start + (c.end - c.start) / 2 for c in periods]
    figure = matplotlib.figure.Figure(figsize=(11, 3.2), layout="constrained")
    axis = figure.add_subplot()
    axis.axvspan(review.window_start, review.window_end, color="#ffd54f", alpha=0.3, zorder=0,
                 label=f"this {review.period_word}")  # fmt: skip
    known = [(m, c) for m, c in zip(middles, periods, strict=True) if c.agreement is not None]
    axis.errorbar(
        [m for m, _ in known],
        [100 * (c.agreement or 0.0) for _, c in known],
        yerr=[
            [100 * ((c.agreement or 0.0) - (c.ci_low or 0.0)) for _, c in known],
            [100 * ((c.ci_high or 0.0) - (c.agreement or 0.0)) for _, c in known],
        ],
        marker="o",
        capsize=3,
        color="#1f5fa8",
        label="agreement (95% interval)",
    )
    for name, label, color in (
        ("flagged_of_negative", "judge flags, of thumbs-down", "#b00020"),
        ("passed_of_positive", "judge passes, of thumbs-up", "#2e7d32"),
    ):
        shown = [(m, getattr(c, name)) for m, c in zip(middles, periods, strict=True) if getattr(c, name) is not None]
        axis.plot([m for m, _ in shown], [100 * v for _, v in shown], marker="s", markersize=4, linestyle="--",
                  color=color, label=label)  # fmt: skip
    axis.set_ylim(0, 105)
    axis.set_ylabel("% of runs rated and judged")
    axis.set_title(f"Judge–human agreement per {review.period_word}")
    _date_axis(axis, review)
    _legend(axis)
    return figure
