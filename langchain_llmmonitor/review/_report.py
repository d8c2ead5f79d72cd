"""The review as a self-contained HTML page (plots as inline base64 PNG) and a Markdown twin (tables, no plots).

Plots use matplotlib's object API on the Agg canvas (`Figure` + `FigureCanvasAgg`): no pyplot, so no global backend
switch, no GUI, nothing shared between threads. One figure per criterion (daily trend with its 95% band and the forced
samples apart, this period's distribution against the baseline's, and the EWMA chart with its limit) and one for user
ratings. The page has no scripts and no external resources, so it can be mailed, attached to a ticket or archived.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

from ._deps import require_review_extra
from ._model import CriterionReview, ReportPaths, Review

SECTIONS = (
    ("summary", "What changed and what to look at"),
    ("verdicts", "Drift verdicts"),
    ("criteria", "Trends and distributions"),
    ("judge-changes", "Judge changes"),
    ("forced", "Forced samples"),
    ("user-feedback", "User feedback"),
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
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"review-{review.window_end:%Y-%m-%d}"
    paths = ReportPaths(html=directory / f"{stem}.html", markdown=directory / f"{stem}.md")
    paths.html.write_text(render_html(review), encoding="utf-8")
    paths.markdown.write_text(render_markdown(review), encoding="utf-8")
    return paths


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


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:,.4f}"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def _verdict_rows(review: Review) -> list[list[str]]:
    rows = []
    for c in review.criteria:
        a = c.assessment
        interval = f"{_change(a.difference, c.kind)} [{_change(a.ci_low, c.kind)}, {_change(a.ci_high, c.kind)}]"
        if a.difference is None:
            interval = "–"
        p_value = a.p_better if a.verdict == "improved" else a.p_worse
        if a.chart_signal_at is not None:
            chart = f"signal {_day(a.chart_signal_at)}"
        else:
            chart = "no signal" if a.chart_limit is not None else "not run"
        forced = f"{a.forced_n}" + (f" (mean {_level(a.forced_mean, c.kind)})" if a.forced_n else "")
        rows.append(
            [
                c.label,
                _VERDICT_WORDS[a.verdict],
                f"{_level(a.current_mean, c.kind)} (n={a.current_n})",
                f"{_level(a.baseline_mean, c.kind)} (n={a.baseline_n})",
                interval,
                f"{a.test} {_p(p_value)}",
                chart,
                forced,
            ]
        )
    return rows


_VERDICT_HEADER = [
    "Criterion",
    "Verdict",
    "This {word} (random)",
    "Baseline",
    "Difference [95% CI]",
    "Mean-shift test",
    "EWMA chart",
    "Forced (not compared)",
]


def _usage_rows(review: Review) -> list[list[str]]:
    now, base = review.usage.current, review.usage.baseline

    def row(label: str, pick: Any, fmt: Any) -> list[str]:
        return [label, fmt(pick(now)), fmt(pick(base)) if base is not None else "–"]

    def count(value: float) -> str:
        return f"{value:,.0f}"

    def rate(value: float | None) -> str:
        return "–" if value is None else f"{value:.1%}"

    stats: list[tuple[str, Any, Any]] = [
        ("Invocations", lambda s: s.invocations, count),
        ("Errors", lambda s: s.errors, count),
        ("Error rate", lambda s: s.error_rate, rate),
        ("Prompt tokens", lambda s: s.prompt_tokens, count),
        ("Completion tokens", lambda s: s.completion_tokens, count),
        ("Cost (priced calls)", lambda s: s.cost_usd, _money),
        ("Invocations without a price", lambda s: s.unpriced, count),
        ("Latency p50", lambda s: s.latency_p50, _seconds),
        ("Latency p90", lambda s: s.latency_p90, _seconds),
        ("Latency p95", lambda s: s.latency_p95, _seconds),
        ("Latency p99", lambda s: s.latency_p99, _seconds),
        ("Judge evaluations", lambda s: s.judge_evaluations, count),
        ("Judge errors", lambda s: s.judge_errors, count),
        ("Judge cost", lambda s: s.judge_cost_usd, _money),
    ]
    return [row(label, pick, fmt) for label, pick, fmt in stats]


def _worst_rows(review: Review) -> list[dict[str, str]]:
    rows = []
    for s in review.worst_samples:
        scores = "/".join("–" if v is None else f"{v:g}" for v in (s.faithfulness, s.relevance, s.completeness))
        hallucination = {True: "yes", False: "no", None: "–"}[s.hallucination]
        rows.append(
            {
                "when": _when(s.at),
                "scores": scores,
                "hallucination": hallucination,
                "sampling": s.sampling if s.sampling == "random" else f"forced ({s.sample_reason})",
                "question": _clip(s.question),
                "answer": _clip(s.answer),
                "reason": _clip(s.reason),
                "url": s.url,
                "run_id": s.run_id,
            }
        )
    return rows


def _method_lines(review: Review) -> list[str]:
    sources = review.sources
    lines = [
        f"Window: {_when(review.window_start)} to {_when(review.window_end)}; baseline: the {review.baseline_weeks} "
        f"preceding periods of the same length, minus periods already judged degraded, and only samples from the "
        f"judge (name, model, prompt version) that scored this {review.period_word}.",
        "Trends and verdicts use random samples only. Forced samples (judged because of an error or negative "
        "feedback) would make a week with more complaints look worse for a reason that is not drift; they are shown "
        "apart.",
        f"Verdicts: a one-sided mean-shift test (Welch t for scores, Fisher mid-p for the hallucination rate) with a "
        f"bootstrap 95% interval of the difference, and a one-sided EWMA control chart (lambda 0.05) whose limit is "
        f"bootstrapped from the baseline. Each verdict has alpha {review.verdict_alpha:.4g}, so a stable "
        f"{review.period_word} gets any \"degraded\" with probability at most {review.alpha:g}. A criterion with fewer "
        f"random samples than needed this {review.period_word} or in its baseline says \"not enough samples\" instead "
        f"of guessing.",
        f"Data: {sources.evaluations} evaluations, {sources.user_feedback} user ratings and {sources.invocations} "
        f"invocations from the store {sources.store}.",
    ]
    if sources.langsmith_project:
        lines.append(
            f"LangSmith project {sources.langsmith_project}: {sources.langsmith_runs} root runs read, "
            f"{sources.langsmith_feedback_merged} feedback merged, {sources.langsmith_feedback_already_local} already "
            f"in the store, {sources.langsmith_feedback_other_keys} of other keys or unnamed judges left out."
        )
    if sources.run_links == "exact":
        lines.append("Run links point at the runs in LangSmith (organisation and project ids read from LangSmith).")
    else:
        lines.append(
            "Run links are best effort: the store knows project names, not the organisation and project ids "
            "LangSmith's web app addresses runs by. Review with --langsmith-project for exact links."
        )
    return lines


# Plots --------------------------------------------------------------------------------------------------------------


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=timezone.utc)


def _png(figure: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _shade_windows(axis: Any, review: Review) -> None:
    axis.axvspan(review.window_start, review.window_end, color="#ffd54f", alpha=0.3, zorder=0,
                 label=f"this {review.period_word}")  # fmt: skip
    shown = [c for c in review.judge_changes if review.display_start <= c.at < review.window_end]
    for index, change in enumerate(shown):
        axis.axvline(change.at, color="#b00020", linestyle="--", linewidth=1.2, zorder=3,
                     label="judge change" if index == 0 else None)  # fmt: skip


def _criterion_figure(review: Review, criterion: CriterionReview) -> str:
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    scale = 100.0 if criterion.kind == "rate" else 1.0
    unit = " (%)" if criterion.kind == "rate" else " (1-5)"
    figure = Figure(figsize=(11, 6.2), layout="constrained")
    grid = figure.add_gridspec(2, 3, height_ratios=[3, 2])
    trend_axis = figure.add_subplot(grid[0, :2])
    distribution_axis = figure.add_subplot(grid[0, 2])
    chart_axis = figure.add_subplot(grid[1, :])

    _shade_windows(trend_axis, review)
    for start, end in criterion.assessment.quarantined_periods:
        trend_axis.axvspan(max(start, review.display_start), end, color="#f8d7da", zorder=0)
    points = [p for p in criterion.trend if p.mean is not None]
    days = [_noon(p.day) for p in points]
    means = [p.mean * scale for p in points]
    trend_axis.plot(days, means, marker="o", markersize=3, color="#1f5fa8", label="daily mean, random samples")
    banded = [p for p in points if p.ci_low is not None and p.ci_high is not None]
    floor, ceiling = (0.0, 100.0) if criterion.kind == "rate" else (1.0, 5.0)  # a day's interval can overshoot the scale
    trend_axis.fill_between(
        [_noon(p.day) for p in banded],
        [max(floor, p.ci_low * scale) for p in banded],  # type: ignore[operator]
        [min(ceiling, p.ci_high * scale) for p in banded],  # type: ignore[operator]
        color="#1f5fa8",
        alpha=0.18,
        label="95% interval",
    )
    forced = [p for p in criterion.forced_trend if p.mean is not None]
    if forced:
        trend_axis.scatter(
            [_noon(p.day) for p in forced],
            [p.mean * scale for p in forced],  # type: ignore[operator]
            marker="x",
            color="#777777",
            label="forced samples (not in trend)",
            zorder=4,
        )
    if criterion.assessment.baseline_mean is not None:
        trend_axis.axhline(criterion.assessment.baseline_mean * scale, color="#555555", linewidth=0.8, linestyle=":",
                           label="baseline mean")  # fmt: skip
    trend_axis.set_title(f"{criterion.label}: daily trend — verdict: {_VERDICT_WORDS[criterion.verdict]}")
    trend_axis.set_ylabel(criterion.label + unit)
    trend_axis.set_xlim(review.display_start, review.window_end)
    trend_axis.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    trend_axis.legend(loc="best", fontsize=7, ncols=2, framealpha=0.8)
    trend_axis.grid(alpha=0.3)

    distribution = criterion.distribution
    total_now, total_base = sum(distribution.current) or 1, sum(distribution.baseline) or 1
    positions = range(len(distribution.levels))
    for offset, counts, total, color, label in (
        (-0.2, distribution.baseline, total_base, "#9db4d0", "baseline"),
        (0.2, distribution.current, total_now, "#e0a100", f"this {review.period_word}"),
    ):
        heights = [100 * count / total for count in counts]
        label = f"{label} (n={sum(counts)})"
        distribution_axis.bar([x + offset for x in positions], heights, 0.4, color=color, label=label)
    distribution_axis.set_xticks(list(positions), distribution.levels)
    distribution_axis.set_ylabel("% of random samples")
    distribution_axis.set_title("Distribution")
    distribution_axis.legend(fontsize=7)

    a = criterion.assessment
    if a.chart:
        chart_axis.axvspan(review.window_start, review.window_end, color="#ffd54f", alpha=0.3, zorder=0)
        chart_axis.plot([p.timestamp for p in a.chart], [p.ewma for p in a.chart], color="#333333", linewidth=1)
        if a.chart_limit is not None:
            chart_axis.axhline(a.chart_limit, color="#b00020", linestyle="--", linewidth=1, label="control limit")
        if a.chart_signal_at is not None:
            chart_axis.axvline(a.chart_signal_at, color="#b00020", linewidth=1.5, label="signal")
        chart_axis.set_title("EWMA of standardised random samples (baseline, then this period), one-sided limit")
        chart_axis.set_ylabel("baseline sd")
        chart_axis.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
        chart_axis.legend(loc="lower left", fontsize=7)
        chart_axis.grid(alpha=0.3)
    else:
        chart_axis.axis("off")
        reason = "not enough samples" if a.verdict == "not_enough_samples" else "no spread in the baseline"
        chart_axis.text(0.5, 0.5, f"EWMA chart not run: {reason}", ha="center", va="center")
    return _png(figure)


def _feedback_figure(review: Review) -> str:
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    feedback = review.user_feedback
    figure = Figure(figsize=(11, 3.4), layout="constrained")
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
    axis.set_xlim(review.display_start, review.window_end)
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    axis.set_title("User ratings: daily thumbs-down share")
    axis.legend(loc="upper left", fontsize=7)
    axis.grid(alpha=0.3)
    return _png(figure)


# HTML ---------------------------------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2rem; }
.meta { color: #666; margin-top: 0; }
.status { display: inline-block; padding: 0.2rem 0.7rem; border-radius: 4px; font-weight: 600; }
.status-degraded { background: #fde2e4; color: #8a0015; } .status-ok { background: #def5e3; color: #185a2b; }
.status-not_enough_samples { background: #eee; color: #444; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; margin: 0.6rem 0; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.45rem; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
.verdict-degraded { color: #8a0015; font-weight: 600; } .verdict-improved { color: #185a2b; }
.verdict-not_enough_samples { color: #666; font-style: italic; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: 0.88rem; }
ul.highlights li { margin-bottom: 0.35rem; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool = False) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else _e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _link(url: str, text: str) -> str:
    if not url.startswith(("https://", "http://")):
        return _e(text)
    return f'<a href="{_e(url)}" rel="noopener">{_e(text)}</a>'


def render_html(review: Review) -> str:
    """The whole page as one string; plots are rendered here."""
    require_review_extra()
    word = review.period_word
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>LLM quality review {review.window_start:%Y-%m-%d} to {review.window_end:%Y-%m-%d}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>LLM quality review</h1>",
        f'<p class="meta">{_e(_when(review.window_start))} to {_e(_when(review.window_end))} against the '
        f"{review.baseline_weeks} preceding {word}s · generated {_e(_when(review.generated_at))}</p>",
    ]
    titles = dict(SECTIONS)

    def section(key: str, body: str) -> None:
        parts.append(f'<section id="{key}"><h2>{_e(titles[key])}</h2>{body}</section>')

    items = "".join(f"<li>{_e(line)}</li>" for line in review.highlights)
    section(
        "summary",
        f'<p><span class="status status-{review.status}">{_e(_STATUS_WORDS[review.status])}</span></p>'
        f'<ul class="highlights">{items}</ul>',
    )

    header = [h.format(word=word) for h in _VERDICT_HEADER]
    rows = _verdict_rows(review)
    body_rows = []
    for criterion, row in zip(review.criteria, rows, strict=True):
        cells = [_e(c) for c in row]
        cells[1] = f'<span class="verdict-{criterion.verdict}">{cells[1]}</span>'
        body_rows.append(cells)
    notes = "".join(
        f"<li><b>{_e(c.label)}</b>: {_e(note)}</li>" for c in review.criteria for note in c.assessment.notes
    )
    summaries = "".join(f"<li><b>{_e(c.label)}</b>: {_e(c.summary)}</li>" for c in review.criteria)
    section(
        "verdicts",
        _table(header, body_rows, raw=True)
        + f'<p class="note">Each verdict at alpha {review.verdict_alpha:.4g} '
        f"({review.alpha:g} across all {len(review.criteria)}).</p><ul>{summaries}</ul>"
        + (f"<p>Notes:</p><ul>{notes}</ul>" if notes else ""),
    )

    figures = []
    for criterion in review.criteria:
        image = _criterion_figure(review, criterion)
        figures.append(
            f'<figure id="criterion-{_e(criterion.name)}"><img src="data:image/png;base64,{image}" '
            f'alt="{_e(criterion.label)}: daily trend, distribution and EWMA chart">'
            f"<figcaption>{_e(criterion.summary)}. Shaded: this {word}; dashed red lines: judge changes; pink: "
            f"periods left out of the baseline as degraded; crosses: forced samples (not in the trend).</figcaption>"
            f"</figure>"
        )
    section("criteria", "".join(figures))

    if review.judge_changes:
        change_rows = [[_when(c.at), c.previous_key, c.judge_key] for c in review.judge_changes]
        judge_body = _table(["When", "From", "To"], change_rows) + (
            '<p class="note">Scores of different judges are never compared: each verdict uses only the judge that '
            "scored this period, so its baseline restarts at a change.</p>"
        )
    else:
        judge_body = "<p>No judge change in the history reviewed.</p>"
    section("judge-changes", judge_body)

    forced = review.forced
    if forced.n:
        reason_rows = [[reason, str(count)] for reason, count in forced.by_reason.items()]
        means = [[name, _level(value, "score")] for name, value in forced.mean_scores.items()]
        means.append(["hallucination rate", _level(forced.hallucination_rate, "rate")])
        forced_body = (
            f"<p>{forced.n} evaluations this {word} were forced (always-evaluate rules), not sampled at random. "
            "They are kept out of the trends and verdicts, and shown here.</p>"
            + _table(["Reason", "Evaluations"], reason_rows)
            + _table(["Criterion", "Mean of forced samples"], means)
        )
    else:
        forced_body = f"<p>No forced evaluations this {word}.</p>"
    section("forced", forced_body)

    feedback = review.user_feedback
    comment_items = "".join(
        f"<li>{'👎' if c.negative else '👍'} {_e(_when(c.at))}: “{_e(_clip(c.comment))}” "
        f"({_link(c.url, 'run')})</li>"
        for c in feedback.comments
    )
    feedback_body = _table(_FEEDBACK_HEADER, _feedback_rows(review))
    if feedback.from_langsmith:
        feedback_body += f'<p class="note">{feedback.from_langsmith} of these ratings came from LangSmith.</p>'
    feedback_body += (
        f'<figure id="feedback-trend"><img src="data:image/png;base64,{_feedback_figure(review)}" '
        'alt="Daily thumbs-down share"></figure>'
    )
    if comment_items:
        feedback_body += f"<p>Comments this {word}, negative first:</p><ul>{comment_items}</ul>"
    else:
        feedback_body += f"<p>No comments this {word}.</p>"
    section("user-feedback", feedback_body)

    worst_rows = [
        [
            _e(r["when"]),
            _e(r["scores"]),
            _e(r["hallucination"]),
            _e(r["sampling"]),
            _e(r["question"]),
            _e(r["answer"]),
            _e(r["reason"]),
            _link(r["url"], r["run_id"][:8]),
        ]
        for r in _worst_rows(review)
    ]
    section(
        "worst",
        (
            _table(
                ["When", "Faithf./Relev./Compl.", "Halluc.", "Sampling", "Question", "Answer", "Judge's reason", "Run"],
                worst_rows,
                raw=True,
            )
            if worst_rows
            else f"<p>No evaluations this {word}.</p>"
        )
        + '<p class="note">Ranked by the mean of the three 1-5 scores, a hallucination counting one point off.</p>',
    )

    baseline_label = f"Baseline, per {word}" if review.usage.baseline is not None else "Baseline"
    section(
        "usage",
        _table(["", f"This {word}", baseline_label], _usage_rows(review))
        + '<p class="note">From the store\'s root invocations (all statuses). Baseline: averages over the '
        f"{review.usage.baseline_periods} preceding periods with traffic; its latency percentiles pool them.</p>",
    )
    section("method", "<ul>" + "".join(f"<li>{_e(line)}</li>" for line in _method_lines(review)) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


_FEEDBACK_HEADER = ["", "Ratings", "Thumbs down", "Thumbs-down share [95% CI]"]


def _feedback_rows(review: Review) -> list[list[str]]:
    f = review.user_feedback
    return [
        [f"This {review.period_word}", str(f.n), str(f.negative), _rate_with_interval(f.rate, f.ci_low, f.ci_high)],
        [
            "Baseline",
            str(f.baseline_n),
            str(f.baseline_negative),
            _rate_with_interval(f.baseline_rate, f.baseline_ci_low, f.baseline_ci_high),
        ],
    ]


def _rate_with_interval(rate: float | None, low: float | None, high: float | None) -> str:
    if rate is None:
        return "–"
    return f"{rate:.1%} [{(low or 0):.1%}, {(high or 0):.1%}]"


# Markdown -----------------------------------------------------------------------------------------------------------


def _md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def render_markdown(review: Review) -> str:
    """The same sections as the HTML page, as Markdown tables and lists (the plots are in the HTML)."""
    word = review.period_word
    titles = dict(SECTIONS)
    out = [
        "# LLM quality review",
        "",
        f"{_when(review.window_start)} to {_when(review.window_end)} against the {review.baseline_weeks} preceding "
        f"{word}s. Plots: see the HTML report.",
        "",
        f"## {titles['summary']}",
        "",
        f"**{_STATUS_WORDS[review.status]}**",
        "",
    ]
    out += [f"- {line}" for line in review.highlights] + [""]

    out += [f"## {titles['verdicts']}", ""]
    out += _md_table([h.format(word=word) for h in _VERDICT_HEADER], _verdict_rows(review))
    out += [f"Each verdict at alpha {review.verdict_alpha:.4g} ({review.alpha:g} across all).", ""]
    for criterion in review.criteria:
        for note in criterion.assessment.notes:
            out.append(f"- {criterion.label}: {note}")
    out.append("")

    out += [f"## {titles['criteria']}", ""]
    for criterion in review.criteria:
        out += [f"### {criterion.label}", "", criterion.summary, ""]
        distribution = criterion.distribution
        counts = zip(distribution.levels, distribution.current, distribution.baseline, strict=True)
        rows = [[level, str(now), str(base)] for level, now, base in counts]
        out += _md_table(["Level", f"This {word}", "Baseline"], rows)
        days = [p for p in criterion.trend if p.day >= review.window_start.date()]
        forced_by_day = {p.day: p for p in criterion.forced_trend}
        out += _md_table(
            ["Day", "Random n", "Mean [95% CI]", "Forced n", "Forced mean"],
            [
                [
                    _day(p.day),
                    str(p.n),
                    f"{_level(p.mean, criterion.kind)} [{_level(p.ci_low, criterion.kind)}, "
                    f"{_level(p.ci_high, criterion.kind)}]",
                    str(forced_by_day[p.day].n) if p.day in forced_by_day else "0",
                    _level(forced_by_day[p.day].mean, criterion.kind) if p.day in forced_by_day else "–",
                ]
                for p in days
            ],
        )

    out += [f"## {titles['judge-changes']}", ""]
    if review.judge_changes:
        changes = [[_when(c.at), c.previous_key, c.judge_key] for c in review.judge_changes]
        out += _md_table(["When", "From", "To"], changes)
        out += ["Scores of different judges are never compared: baselines restart at a change.", ""]
    else:
        out += ["No judge change in the history reviewed.", ""]

    out += [f"## {titles['forced']}", ""]
    forced = review.forced
    if forced.n:
        out += [f"{forced.n} forced evaluations this {word}, kept out of the trends and verdicts.", ""]
        out += _md_table(["Reason", "Evaluations"], [[r, str(n)] for r, n in forced.by_reason.items()])
        means = [[name, _level(value, "score")] for name, value in forced.mean_scores.items()]
        means.append(["hallucination rate", _level(forced.hallucination_rate, "rate")])
        out += _md_table(["Criterion", "Mean"], means)
    else:
        out += [f"No forced evaluations this {word}.", ""]

    feedback = review.user_feedback
    out += [f"## {titles['user-feedback']}", ""]
    out += _md_table(_FEEDBACK_HEADER, _feedback_rows(review))
    for c in feedback.comments:
        thumb = "thumbs down" if c.negative else "thumbs up"
        out.append(f'- {thumb}, {_when(c.at)}: "{_clip(c.comment)}" ([run]({c.url}))')
    out.append("")

    out += [f"## {titles['worst']}", ""]
    rows = _worst_rows(review)
    if rows:
        fields = ("when", "scores", "hallucination", "sampling", "question", "answer", "reason")
        cells = [[*(r[name] for name in fields), f"[{r['run_id'][:8]}]({r['url']})"] for r in rows]
        out += _md_table(["When", "F/R/C", "Halluc.", "Sampling", "Question", "Answer", "Judge's reason", "Run"], cells)
    else:
        out += [f"No evaluations this {word}.", ""]

    out += [f"## {titles['usage']}", ""]
    out += _md_table(["", f"This {word}", f"Baseline, per {word}"], _usage_rows(review))

    out += [f"## {titles['method']}", ""]
    out += [f"- {line}" for line in _method_lines(review)] + [""]
    return "\n".join(out)

