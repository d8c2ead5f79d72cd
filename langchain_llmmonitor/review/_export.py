"""The review's worst answers as a LangSmith dataset, so each one becomes a regression test of the next release.

    result = export_worst_answers(review, langsmith.Client(), "worst-answers")
    result.created, result.already_present, result.dataset_url

One example per worst answer with a question: `inputs={"question": ...}`, no outputs. The judged answer and why it was
bad go into the example's metadata (`rejected_answer`, `judge_reason`, the four scores, `judge_key`, `run_id`,
`trace_id`, the run's segments as `segment_app_version`, ...), not into its outputs: LangSmith hands an example's outputs to evaluators as the reference answer,
and a known-bad answer there would make every "matches the reference" evaluator reward repeating it. Outputs stay
empty for the correct answer, written by whoever reviews the example; metadata is shown in the UI and filterable
(`list_examples(metadata={"run_id": ...})`).

Idempotent: an example's id is uuid5(dataset id, run id), so exporting a week twice, or two overlapping reviews, adds
each run once. Ids already in the dataset are read first and skipped rather than left to a conflict error; a conflict
that still happens (another export racing this one, or a retried request whose reply was lost) is settled by reading
the ids again. Samples merged from LangSmith carry no question text and are skipped and counted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._langsmith import chunks
from ._model import Review, WorstSample

DEFAULT_DESCRIPTION = (
    "Worst-judged answers from llmmonitor's weekly reviews. Inputs are the users' questions; outputs are left for a "
    "correct reference answer; metadata holds the rejected answer, the judge's scores and reason, and the run."
)
_IDS_PER_REQUEST = 100  # ids go in the query string of GET /examples; LangSmith pages at 100


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What one export did. `created + already_present + skipped_without_question + repeated_runs` is the number of
    worst samples: none is lost silently.

    `repeated_runs`: samples of a run already exported by this call (a run judged by two judges is one question, one
    example; the first, worst sample is kept). `dataset_url` is None when the client cannot tell the web address.
    """

    dataset_id: str
    dataset_name: str
    dataset_url: str | None
    dataset_created: bool
    created: int
    already_present: int
    skipped_without_question: int
    repeated_runs: int
    example_ids: tuple[str, ...]  # of the examples this call created, in the review's order (worst first)


def example_id(dataset_id: str | uuid.UUID, run_id: str) -> uuid.UUID:
    """The example id of a run's worst answer in a dataset: the same run in another dataset gets another id, as
    LangSmith's example ids are unique across datasets."""
    return uuid.uuid5(uuid.UUID(str(dataset_id)), run_id)


def export_worst_answers(
    review: Review, client: Any, dataset_name: str, *, description: str | None = None
) -> ExportResult:
    """Add the review's worst answers to the LangSmith dataset `dataset_name` (created if missing) as examples.

    `client` is a `langsmith.Client`. `description` applies only when the dataset is created here. Raises the
    client's errors (`langsmith.utils.LangSmithError` and subclasses); nothing is half-written by this function that
    a second call would not complete.
    """
    if client is None:
        raise ValueError("export_worst_answers needs a langsmith.Client (set LANGSMITH_API_KEY and pass Client())")
    if not dataset_name or not dataset_name.strip():
        raise ValueError("dataset_name must not be empty")
    dataset, dataset_created = _dataset(client, dataset_name, description or DEFAULT_DESCRIPTION)
    dataset_id = str(dataset.id)
    examples, skipped, repeated = _examples(review, dataset_id)
    present = _present_ids(client, dataset_id, list(examples))
    created = _create(client, dataset_id, {i: e for i, e in examples.items() if i not in present})
    return ExportResult(
        dataset_id=dataset_id,
        dataset_name=dataset.name,
        dataset_url=getattr(dataset, "url", None),
        dataset_created=dataset_created,
        created=len(created),
        already_present=len(examples) - len(created),
        skipped_without_question=skipped,
        repeated_runs=repeated,
        example_ids=tuple(i for i in examples if i in created),
    )


def _dataset(client: Any, name: str, description: str) -> tuple[Any, bool]:
    """The dataset named `name`, and whether this call created it; another creator winning the race is not an error."""
    from langsmith.utils import LangSmithConflictError, LangSmithNotFoundError

    try:
        return client.read_dataset(dataset_name=name), False
    except LangSmithNotFoundError:
        pass
    try:
        return client.create_dataset(name, description=description, metadata={"source": "llmmonitor review"}), True
    except LangSmithConflictError:
        return client.read_dataset(dataset_name=name), False


def _examples(review: Review, dataset_id: str) -> tuple[dict[str, dict[str, Any]], int, int]:
    """Example id -> example, worst first; and how many samples had no question, and how many repeated a run."""
    examples: dict[str, dict[str, Any]] = {}
    skipped = repeated = 0
    for sample in review.worst_samples:
        if not (sample.question or "").strip():
            skipped += 1
            continue
        key = str(example_id(dataset_id, sample.run_id))
        if key in examples:
            repeated += 1
            continue
        examples[key] = {"id": key, "inputs": {"question": sample.question}, "metadata": _metadata(review, sample)}
    return examples, skipped, repeated


def _metadata(review: Review, sample: WorstSample) -> dict[str, Any]:
    return {
        "rejected_answer": sample.answer,
        "judge_reason": sample.reason,
        "faithfulness": sample.faithfulness,
        "relevance": sample.relevance,
        "completeness": sample.completeness,
        "hallucination": sample.hallucination,
        "judge_key": sample.judge_key,
        "run_id": sample.run_id,
        "trace_id": sample.trace_id,
        "project": sample.project,
        "run_url": sample.url,
        "judged_at": sample.at.isoformat(),
        "sampling": sample.sampling,
        "sample_reason": sample.sample_reason,
        "window_start": review.window_start.isoformat(),
        "window_end": review.window_end.isoformat(),
        "source": "llmmonitor review",
        **{f"segment_{key}": value for key, value in sample.segments.items()},  # filterable: segment_app_version
    }


def _present_ids(client: Any, dataset_id: str, ids: Sequence[str]) -> set[str]:
    """Which of `ids` the dataset already has."""
    present: set[str] = set()
    for chunk in chunks(ids, _IDS_PER_REQUEST):
        present.update(str(example.id) for example in client.list_examples(dataset_id=dataset_id, example_ids=chunk))
    return present


def _create(client: Any, dataset_id: str, examples: dict[str, dict[str, Any]]) -> set[str]:
    """Create `examples`; the ids created. On a conflict (a racing export, a retry whose reply was lost) the ids
    are read again and only the still missing ones are sent, once."""
    from langsmith.utils import LangSmithConflictError

    if not examples:
        return set()
    try:
        client.create_examples(dataset_id=dataset_id, examples=list(examples.values()))
        return set(examples)
    except LangSmithConflictError:
        present = _present_ids(client, dataset_id, list(examples))
    missing = [example for key, example in examples.items() if key not in present]
    if missing:
        client.create_examples(dataset_id=dataset_id, examples=missing)
    return {example["id"] for example in missing}
