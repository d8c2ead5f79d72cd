"""The weekly quality review: is judged quality drifting, what do users say, what does it cost?

    from langchain_llmmonitor.review import build_review, write_report
    review = build_review("llmmonitor.db")                 # the last 7 days against the 4 weeks before
    paths = write_report(review, "llmmonitor-out")         # review-YYYY-MM-DD.html (plots inline) and .md
    review.status, review.highlights, review.to_dict()     # the same data, for scripts

or `llmmonitor review --since 7d`. The verdicts are given overall and per segment (app_version, model, ...: see
`_segments`). `generate_history(store)` writes six simulated weeks with a slow degradation (or, with
`scenario="release"`, a worse release), so a first review has something to find. `export_worst_answers(review, langsmith.Client(), "worst-answers")` (or
`--export-dataset NAME`) adds the worst answers' questions to a LangSmith dataset, to test the next release on. Needs
the review extra (numpy, scipy, matplotlib, tqdm): the functions that need it raise ImportError naming
`pip install 'langchain-llmmonitor[review]'`; the types, `export_worst_answers` and `add_cli` import without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._cli import add_cli, parse_since, run_cli
from ._deps import INSTALL_HINT, require_review_extra
from ._export import ExportResult, export_worst_answers
from ._model import (
    CRITERIA,
    AgreementCounts,
    CriterionReview,
    CriterionSpec,
    Disagreement,
    Distribution,
    FeedbackComment,
    ForcedSummary,
    JudgeHumanAgreement,
    Release,
    ReportPaths,
    Review,
    SegmentCriterion,
    SegmentReview,
    Sources,
    UsageStats,
    UsageSummary,
    UserFeedbackSummary,
    WorstSample,
)
from ._records import EXACT_RUN_URL
from ._report import render_html, render_markdown, write_report

if TYPE_CHECKING:
    from ._build import build_review
    from ._history import HistorySummary, generate_history

_NEEDS_EXTRA = {"build_review": "._build", "generate_history": "._history", "HistorySummary": "._history"}

__all__ = [
    "CRITERIA",
    "EXACT_RUN_URL",
    "INSTALL_HINT",
    "AgreementCounts",
    "CriterionReview",
    "CriterionSpec",
    "Disagreement",
    "Distribution",
    "ExportResult",
    "FeedbackComment",
    "ForcedSummary",
    "HistorySummary",
    "JudgeHumanAgreement",
    "Release",
    "ReportPaths",
    "Review",
    "SegmentCriterion",
    "SegmentReview",
    "Sources",
    "UsageStats",
    "UsageSummary",
    "UserFeedbackSummary",
    "WorstSample",
    "add_cli",
    "build_review",
    "export_worst_answers",
    "generate_history",
    "parse_since",
    "render_html",
    "render_markdown",
    "run_cli",
    "write_report",
]


def __getattr__(name: str) -> Any:
    """Load the numpy-backed parts on first use, after checking the extra is installed (PEP 562)."""
    module = _NEEDS_EXTRA.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    require_review_extra()
    return getattr(importlib.import_module(module, __name__), name)
