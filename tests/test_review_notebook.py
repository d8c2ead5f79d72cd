"""The review in a notebook: its DataFrames hold the review's own numbers, and Jupyter shows it as escaped HTML with
the verdict table and the plots inline."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from IPython.core.formatters import DisplayFormatter

from langchain_llmmonitor.review import CRITERIA, Review, WorstSample, build_review, generate_history
from langchain_llmmonitor.review import _report as report_module
from langchain_llmmonitor.storage.store import Store

NOW = datetime(2026, 3, 2, tzinfo=UTC)
SEED = 2  # a checked seed (tests/test_review.py): faithfulness degraded, relevance stable
PNG = "data:image/png;base64,"
PAGE_TAGS = {"div", "style", "p", "strong", "code", "section", "h2", "h3", "span", "ul", "li", "table", "thead", "tbody",
             "tr", "th", "td", "figure", "img", "figcaption", "details", "summary"}  # fmt: skip
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Review]:
    """The degraded demo history's last week, reviewed."""
    store = Store(tmp_path_factory.mktemp("review") / "monitor.db")
    try:
        generate_history(store, now=NOW, seed=SEED)
        yield build_review(store, until=NOW)
    finally:
        store.close()


def test_verdicts_frame_has_a_row_per_criterion_with_the_reviews_numbers(review: Review) -> None:
    """Indexed by criterion, in review order: the verdict, both means, their n, the interval and the p-value."""
    frame = review.verdicts_frame()
    assert list(frame.index) == [spec.name for spec in CRITERIA]
    assert frame.loc["faithfulness", "verdict"] == "degraded" and frame.loc["relevance", "verdict"] == "stable"
    for criterion in review.criteria:
        a, row = criterion.assessment, frame.loc[criterion.name]
        assert (row["current_mean"], row["baseline_mean"], row["difference"]) == pytest.approx(
            (a.current_mean, a.baseline_mean, a.difference)
        )
        assert (row["current_n"], row["baseline_n"], row["ci_low"]) == (a.current_n, a.baseline_n, a.ci_low)
        assert row["p_value"] == (a.p_better if a.verdict == "improved" else a.p_worse)
    assert frame["current_n"].dtype == "Int64"


def test_trend_frame_is_long_and_its_window_counts_match_the_verdicts(review: Review) -> None:
    """A row per criterion, day and sampling; this week's random samples add up to the n each verdict used."""
    frame = review.trend_frame()
    assert len(frame) == sum(len(c.trend) + len(c.forced_trend) for c in review.criteria)
    assert set(frame["sampling"]) == {"random", "forced"} and frame["day"].dt.tz == UTC
    this_week = frame[frame["in_window"] & (frame["sampling"] == "random")]
    assert this_week.groupby("criterion")["n"].sum().to_dict() == {
        c.name: c.assessment.current_n for c in review.criteria
    }
    forced = frame[frame["in_window"] & (frame["sampling"] == "forced")]
    assert forced.groupby("criterion")["n"].sum().to_dict() == {c.name: c.assessment.forced_n for c in review.criteria}


def test_worst_frame_lists_the_worst_samples_in_order(review: Review) -> None:
    """One row per worst sample, worst first, one column per field (the run's segments one per key)."""
    frame = review.worst_frame()
    fields = [f.name for f in dataclasses.fields(WorstSample) if f.name != "segments"]
    segments = ["segments.app_version", "segments.model", "segments.chain"]
    assert list(frame.columns) == fields + segments
    assert list(frame["run_id"]) == [s.run_id for s in review.worst_samples]
    assert frame["at"].dt.tz == UTC and frame["hallucination"].dtype == "boolean"


class Page(HTMLParser):
    """The tags, image sources and table rows (as cell texts) of an HTML fragment."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.images: list[str] = []
        self.rows: list[list[str]] = []
        self._in_cell = False
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th") and self.rows:
            self.rows[-1].append("")
            self._in_cell = True

    def handle_endtag(self, tag: str) -> None:
        self._in_cell = self._in_cell and tag not in ("td", "th")

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.rows[-1][-1] += data


def test_jupyter_shows_the_verdict_table_and_the_plots_inline(review: Review) -> None:
    """Through IPython's own formatter: HTML with each criterion's verdict row and a PNG per criterion, and a short
    plain-text view with the status."""
    data, _ = DisplayFormatter().format(review)
    page = Page(data["text/html"])
    verdict_rows = {row[0]: row[1] for row in page.rows if row and row[0] in {c.label for c in review.criteria}}
    assert verdict_rows == {c.label: report_module._VERDICT_WORDS[c.verdict] for c in review.criteria}
    assert verdict_rows["Faithfulness"] == "DEGRADED"
    assert len(page.images) == len(review.criteria) and all(src.startswith(PNG) for src in page.images)
    assert page.tags <= PAGE_TAGS
    assert data["text/plain"].splitlines()[0].endswith("status DEGRADED")
    assert "  Faithfulness        DEGRADED" in data["text/plain"].splitlines()


def test_hostile_text_in_the_review_is_escaped(review: Review, monkeypatch: pytest.MonkeyPatch) -> None:
    """A highlight and a criterion summary quoting an answer's markup show as text, adding no tag or image."""
    monkeypatch.setattr(report_module, "_criterion_figure", lambda *args: b"\x89PNG\r\n\x1a\n")
    first = review.criteria[0]
    hostile = replace(
        review,
        highlights=(HOSTILE, *review.highlights),
        criteria=(replace(first, assessment=replace(first.assessment, summary=HOSTILE)), *review.criteria[1:]),
    )
    page_html = hostile._repr_html_()
    page = Page(page_html)
    assert page.tags <= PAGE_TAGS
    assert len(page.images) == len(review.criteria) and all(src.startswith(PNG) for src in page.images)
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x"
    assert page_html.count(escaped) == 3  # the highlight; the summary under the verdicts and over the plot


def test_the_plain_view_is_short(review: Review) -> None:
    """Not the dataclass's thousands of chart points: a line for the period and one per criterion."""
    from IPython.lib.pretty import pretty

    assert len(pretty(review).splitlines()) == 1 + len(review.criteria)


def verdict_table(page: Page, rows: int) -> list[list[str]]:
    start = next(i for i, row in enumerate(page.rows) if row[:2] == ["Criterion", "Verdict"])
    return page.rows[start : start + 1 + rows]


def test_the_notebook_shows_the_written_reports_verdict_table(review: Review) -> None:
    """The HTML a notebook shows is part of the written report: the same verdict table, cell for cell."""
    written, shown = Page(report_module.render_html(review)), Page(review._repr_html_())
    assert verdict_table(shown, len(review.criteria)) == verdict_table(written, len(review.criteria))
