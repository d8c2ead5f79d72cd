"""Judged samples and user ratings in one shape, whether they come from the local store or from LangSmith.

Also how a run becomes a link: LangSmith's web app addresses a run by organisation (tenant) id and project id,
`{base}/o/{tenant_id}/projects/p/{project_id}/r/{run_id}?trace_id={trace_id}` (the shape `Client.get_run_url`
builds, plus the trace id the app opens the trace with). The store knows neither id, so without a LangSmith client the
link uses "-" for the tenant and the project *name* for the project: best effort, marked as such in the report. With
a client and a project, both ids are read from LangSmith once and the links are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote

from ..core.ratings import is_negative_rating
from ..core.records import EvaluationRecord, UserFeedbackRecord
from ..core.vocabulary import CRITERIA, FORCED, HALLUCINATION

DEFAULT_LANGSMITH_URL = "https://smith.langchain.com"
EXACT_RUN_URL = "{base}/o/{tenant_id}/projects/p/{project_id}/r/{run_id}?trace_id={trace_id}"
BEST_EFFORT_RUN_URL = "{base}/o/-/projects/p/{project}/r/{run_id}?trace_id={trace_id}"
Source = Literal["store", "langsmith"]


@dataclass(frozen=True, slots=True)
class Judged:
    """One judge evaluation of a run: criterion -> value (scores 1-5; hallucination 0/1), only those it gave."""

    at: datetime
    run_id: str
    trace_id: str
    project: str | None
    judge_key: str
    sampling: str
    sample_reason: str
    scores: dict[str, float]
    reason: str | None
    question: str | None
    answer: str | None
    source: Source
    request_id: str | None = None

    @property
    def forced(self) -> bool:
        return self.sampling == FORCED


@dataclass(frozen=True, slots=True)
class Rating:
    """One user rating of a run."""

    at: datetime
    run_id: str
    trace_id: str
    project: str | None
    rating: str
    score: float | None
    comment: str | None
    source: Source
    request_id: str | None = None

    @property
    def negative(self) -> bool:
        return is_negative_rating(self.rating, self.score)


def judge_key(judge: str, model: str, prompt_version: str) -> str:
    """Scores are comparable only within one key: a new model or prompt version starts a new baseline."""
    return f"{judge}/{model}/{prompt_version}"


def judged_from_store(record: EvaluationRecord) -> Judged:
    scores = {name: float(getattr(record, name)) for name in CRITERIA if getattr(record, name) is not None}
    if record.hallucination is not None:
        scores[HALLUCINATION] = float(record.hallucination)
    return Judged(
        at=record.created_at,
        run_id=record.run_id,
        trace_id=record.trace_id,
        project=record.project,
        judge_key=judge_key(record.judge, record.judge_model, record.prompt_version),
        sampling=record.sampling,
        sample_reason=record.sample_reason,
        scores=scores,
        reason=record.reason,
        question=record.question,
        answer=record.answer,
        source="store",
        request_id=record.request_id,
    )


def rating_from_store(record: UserFeedbackRecord) -> Rating:
    return Rating(
        at=record.created_at,
        run_id=record.run_id,
        trace_id=record.trace_id,
        project=record.project,
        rating=record.rating,
        score=record.score,
        comment=record.comment,
        source="store",
        request_id=record.request_id,
    )


def aware(moment: datetime) -> datetime:
    """LangSmith may answer naive times, which are UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class RunLinker:
    """Builds run links; `exact` when the tenant and project ids came from LangSmith."""

    def __init__(
        self,
        base: str = DEFAULT_LANGSMITH_URL,
        *,
        template: str | None = None,
        tenant_id: str | None = None,
        project_ids: dict[str, str] | None = None,
        default_project: str | None = None,
    ) -> None:
        self.base = base.rstrip("/")
        self.tenant_id = tenant_id
        self.project_ids = dict(project_ids or {})
        self.default_project = default_project or "default"
        self.exact = template is None and tenant_id is not None and bool(self.project_ids)
        self.template = template or (EXACT_RUN_URL if self.exact else BEST_EFFORT_RUN_URL)
        self.fell_back = False  # some run was of a project LangSmith was not asked about

    @property
    def quality(self) -> Literal["exact", "best-effort"]:
        return "exact" if self.exact and not self.fell_back else "best-effort"

    def url(self, run_id: str, trace_id: str, project: str | None) -> str:
        name = project or self.default_project
        project_id = self.project_ids.get(name)
        template = self.template
        if template is EXACT_RUN_URL and project_id is None:  # a run of another project than the one looked up
            template, self.fell_back = BEST_EFFORT_RUN_URL, True
        return template.format(
            base=self.base,
            tenant_id=self.tenant_id or "-",
            project_id=project_id or "-",
            project=quote(name, safe=""),
            run_id=run_id,
            trace_id=trace_id,
        )
