"""Judged samples and user ratings in one shape, whether they come from the local store or from LangSmith.

Also how a run becomes a link: LangSmith's web app addresses a run by organisation (tenant) id and project id,
`{base}/o/{tenant_id}/projects/p/{project_id}/r/{run_id}?trace_id={trace_id}` (the shape `Client.get_run_url`
builds, plus the trace id the app opens the trace with). The store knows neither id nor which LangSmith (cloud,
region, self-hosted) the runs went to, so without a LangSmith client the report shows run ids, not links: a guessed
address opens nothing, or another organisation's page. With a client and a project, both ids are read from
LangSmith once and the links use the client's web URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote

from ..core.ratings import is_negative_rating
from ..core.records import EvaluationRecord, UserFeedbackRecord
from ..core.vocabulary import CRITERIA, FORCED, HALLUCINATION

EXACT_RUN_URL = "{base}/o/{tenant_id}/projects/p/{project_id}/r/{run_id}?trace_id={trace_id}"
Source = Literal["store", "langsmith"]
LinkQuality = Literal["exact", "partial", "template", "none"]


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
    segments: Mapping[str, str] = field(default_factory=dict)

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
        segments=record.segments,
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
    """Links a run only where its address is known, else `url` returns None and the report shows the run id.

    Known means: LangSmith's web URL with the tenant id and the id of the run's project, both read from LangSmith
    (`exact`), or the caller's own `template`, trusted as given. `unlinked` counts runs asked about that got no link.
    """

    def __init__(
        self,
        base: str | None = None,
        *,
        template: str | None = None,
        tenant_id: str | None = None,
        project_ids: dict[str, str] | None = None,
        default_project: str | None = None,
    ) -> None:
        self.base = base.rstrip("/") if base else None
        self.tenant_id = tenant_id
        self.project_ids = dict(project_ids or {})
        self.default_project = default_project or "default"
        self.template = template
        self.exact = template is None and bool(self.base and tenant_id and self.project_ids)
        self.unlinked = 0

    @property
    def quality(self) -> LinkQuality:
        """ "exact": every run linked from LangSmith's ids; "partial": some runs (of other projects) only by id;
        "template": the caller's template; "none": run ids only."""
        if self.template is not None:
            return "template"
        if not self.exact:
            return "none"
        return "partial" if self.unlinked else "exact"

    def url(self, run_id: str, trace_id: str, project: str | None) -> str | None:
        name = project or self.default_project
        project_id = self.project_ids.get(name)
        if self.template is None and (not self.exact or project_id is None):
            self.unlinked += 1
            return None
        return (self.template or EXACT_RUN_URL).format(
            base=self.base or "",
            tenant_id=self.tenant_id or "-",
            project_id=project_id or "-",
            project=quote(name, safe=""),
            run_id=run_id,
            trace_id=trace_id,
        )
