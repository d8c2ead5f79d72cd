"""The review's worst answers become a LangSmith dataset: a real review, the real SDK, the fake LangSmith over HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from langsmith import Client
from langsmith.utils import get_env_var

from langchain_llmmonitor.cli import main
from langchain_llmmonitor.review import (
    ExportResult,
    Review,
    WorstSample,
    build_review,
    export_worst_answers,
    generate_history,
)
from langchain_llmmonitor.storage.store import Store
from langchain_llmmonitor.testing.langsmith_server import FakeLangSmith, fast_client

NOW = datetime(2026, 3, 2, tzinfo=UTC)
UNTIL = "2026-03-02T00:00:00Z"
NAME = "worst-answers"
MULTIPART_EXAMPLES = "POST /v1/platform/datasets/{id}/examples"


@dataclass(frozen=True)
class Reviewed:
    store_path: Path
    review: Review


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory) -> Reviewed:
    """Six simulated weeks in a SQLite store, the last one reviewed: ten worst answers, each with its question."""
    store_path = tmp_path_factory.mktemp("export") / "monitor.db"
    store = Store(store_path)
    try:
        generate_history(store, now=NOW, seed=2)
        review = build_review(store, until=NOW)
    finally:
        store.close()
    assert len(review.worst_samples) == 10 and all(s.question for s in review.worst_samples)
    assert len({s.run_id for s in review.worst_samples}) == 10
    return Reviewed(store_path, review)


@pytest.fixture
def langsmith() -> Iterator[FakeLangSmith]:
    with FakeLangSmith() as server:
        yield server


@pytest.fixture
def client(langsmith: FakeLangSmith) -> Iterator[Client]:
    sdk_client = fast_client(langsmith.url, auto_batch_tracing=False)
    yield sdk_client
    sdk_client.close(timeout=5)


def expected_metadata(review: Review, sample: WorstSample) -> dict[str, Any]:
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
        # the simulated history's segments: which release, model and chain gave the answer
        "segment_app_version": "v1",
        "segment_model": "gpt-4o-mini",
        "segment_chain": "rag_chain",
    }


def example_id(dataset_id: str, run_id: str) -> str:
    return str(uuid.uuid5(uuid.UUID(dataset_id), run_id))


def stored_examples(server: FakeLangSmith, dataset_id: str) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in server.examples if e["dataset_id"] == dataset_id}


# The export ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("multipart", "endpoint", "status"),
    [
        pytest.param(True, MULTIPART_EXAMPLES, 201, id="multipart"),
        pytest.param(False, "POST /examples/bulk", 200, id="bulk"),
    ],
)
def test_worst_answers_become_one_example_each_with_the_review_in_metadata(
    reviewed: Reviewed, multipart: bool, endpoint: str, status: int
) -> None:
    """A new dataset gets one example per worst answer: the question as input, no output, the judgement as metadata."""
    review = reviewed.review
    with FakeLangSmith(dataset_examples_multipart=multipart) as server:
        client = fast_client(server.url, auto_batch_tracing=False)
        result = export_worst_answers(review, client, NAME, description="regressions of the week")
        client.close(timeout=5)
    [dataset] = server.datasets
    assert (dataset["name"], dataset["description"], dataset["example_count"]) == (NAME, "regressions of the week", 10)
    assert result == ExportResult(
        dataset_id=dataset["id"],
        dataset_name=NAME,
        dataset_url=result.dataset_url,
        dataset_created=True,
        created=10,
        already_present=0,
        skipped_without_question=0,
        repeated_runs=0,
        example_ids=tuple(example_id(dataset["id"], s.run_id) for s in review.worst_samples),
    )
    assert result.dataset_url is not None and result.dataset_url.endswith(f"/datasets/{dataset['id']}")
    examples = stored_examples(server, dataset["id"])
    assert list(examples) == list(result.example_ids)
    for sample, example in zip(review.worst_samples, examples.values(), strict=True):
        assert example["inputs"] == {"question": sample.question} and example["outputs"] is None
        assert example["metadata"] == expected_metadata(review, sample)
    assert server.count("POST /datasets") == 1 and server.count(endpoint, status=status) == 1
    assert server.errors == []


def test_exporting_the_same_week_again_adds_nothing(
    reviewed: Reviewed, langsmith: FakeLangSmith, client: Client
) -> None:
    """The second export finds every example id already there and sends no examples at all (so no conflict either)."""
    first = export_worst_answers(reviewed.review, client, NAME)
    again = export_worst_answers(reviewed.review, client, NAME)
    assert (again.dataset_id, again.dataset_created, again.created, again.already_present) == (
        first.dataset_id,
        False,
        0,
        10,
    )
    assert again.example_ids == () and len(langsmith.examples) == 10
    assert langsmith.count("POST /datasets") == 1 and langsmith.count(MULTIPART_EXAMPLES) == 1
    assert not [record for record in langsmith.request_log if record.status >= 400]


def test_an_existing_dataset_of_that_name_is_reused(
    reviewed: Reviewed, langsmith: FakeLangSmith, client: Client
) -> None:
    """A dataset someone made by hand keeps its id, description and examples; the worst answers are added to it."""
    existing = client.create_dataset(NAME, description="curated by hand")
    client.create_examples(dataset_id=existing.id, examples=[{"inputs": {"question": "hand-written"}}])
    result = export_worst_answers(reviewed.review, client, NAME, description="ignored: the dataset exists")
    assert (result.dataset_id, result.dataset_created, result.created) == (str(existing.id), False, 10)
    [dataset] = langsmith.datasets
    assert (dataset["description"], dataset["example_count"]) == ("curated by hand", 11)
    assert langsmith.count("POST /datasets") == 1


class RacingClient(Client):
    """A real client whose first create_dataset / create_examples is preceded by a rival's move, as if another
    process had got there between our lookup and our creation."""

    def __init__(self, url: str, **rival_moves: Callable[[], object]) -> None:
        super().__init__(api_url=url, api_key="test", auto_batch_tracing=False)
        self.rival_moves = rival_moves
        self.example_batches: list[int] = []

    def create_dataset(self, *args: Any, **kwargs: Any) -> Any:
        if move := self.rival_moves.pop("create_dataset", None):
            move()
        return super().create_dataset(*args, **kwargs)

    def create_examples(self, **kwargs: Any) -> Any:
        if move := self.rival_moves.pop("create_examples", None):
            move()
        self.example_batches.append(len(kwargs["examples"]))
        return super().create_examples(**kwargs)


def test_a_dataset_created_by_a_concurrent_export_is_read_after_the_409(
    reviewed: Reviewed, langsmith: FakeLangSmith, client: Client
) -> None:
    """Another process creates the dataset between our lookup and our creation: its 409 means "read it", not "fail"."""
    racing = RacingClient(langsmith.url, create_dataset=lambda: client.create_dataset(NAME, description="the rival's"))
    result = export_worst_answers(reviewed.review, racing, NAME)
    racing.close(timeout=5)
    [dataset] = langsmith.datasets
    assert (result.dataset_id, result.dataset_created, result.created) == (dataset["id"], False, 10)
    assert dataset["description"] == "the rival's" and dataset["example_count"] == 10
    assert langsmith.count("POST /datasets", status=409) == 1 and racing.rival_moves == {}


@pytest.mark.parametrize(
    "rivals",
    [
        pytest.param(10, id="all-of-them"),
        pytest.param(4, id="four-of-them"),
    ],
)
def test_examples_created_by_a_concurrent_export_are_not_sent_twice(
    reviewed: Reviewed, langsmith: FakeLangSmith, client: Client, rivals: int
) -> None:
    """Examples that appear between our check and our upload: the 409 makes us read the ids again and send the rest."""
    review = reviewed.review
    rival_review = replace(review, worst_samples=review.worst_samples[:rivals])
    racing = RacingClient(langsmith.url, create_examples=lambda: export_worst_answers(rival_review, client, NAME))
    result = export_worst_answers(review, racing, NAME)
    racing.close(timeout=5)
    assert (result.created, result.already_present) == (10 - rivals, rivals)
    assert racing.example_batches == ([10] if rivals == 10 else [10, 10 - rivals])
    assert len(langsmith.examples) == 10 and langsmith.count(MULTIPART_EXAMPLES, status=409) == 1
    ids = [example_id(result.dataset_id, s.run_id) for s in review.worst_samples]
    assert result.example_ids == tuple(ids[rivals:])
    assert {e["id"] for e in langsmith.examples} == set(ids)


def test_samples_without_a_question_and_repeated_runs_are_counted_not_sent(
    reviewed: Reviewed, langsmith: FakeLangSmith, client: Client
) -> None:
    """A score merged from LangSmith has no question to test with; a run judged twice is one example (its worst)."""
    worst = reviewed.review.worst_samples
    merged = [replace(sample, question=None, answer=None, source="langsmith") for sample in worst[:3]]
    rejudged = replace(worst[3], judge_key="openai/gpt-4.1-mini/rag-judge-v2", reason="judged again")
    review = replace(reviewed.review, worst_samples=(*merged, *worst[3:], rejudged, replace(worst[4], question=" ")))
    result = export_worst_answers(review, client, NAME)
    assert (result.created, result.already_present, result.skipped_without_question, result.repeated_runs) == (
        7,
        0,
        4,
        1,
    )
    examples = stored_examples(langsmith, result.dataset_id)
    assert list(examples) == [example_id(result.dataset_id, s.run_id) for s in worst[3:]]
    assert examples[example_id(result.dataset_id, worst[3].run_id)]["metadata"]["judge_reason"] == worst[3].reason


@pytest.mark.parametrize(
    ("client_value", "name", "message"),
    [
        pytest.param(None, NAME, "needs a langsmith.Client", id="no-client"),
        pytest.param("client", " ", "dataset_name must not be empty", id="blank-name"),
    ],
)
def test_export_without_a_client_or_name_says_what_is_missing(
    reviewed: Reviewed, langsmith: FakeLangSmith, client: Client, client_value: str | None, name: str, message: str
) -> None:
    """Nothing is sent when the call cannot work."""
    with pytest.raises(ValueError, match=message):
        export_worst_answers(reviewed.review, client if client_value else None, name)
    assert langsmith.request_log == []


# The CLI ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def langsmith_env(langsmith: FakeLangSmith, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLangSmith]:
    monkeypatch.setenv("LANGSMITH_ENDPOINT", langsmith.url)
    monkeypatch.setenv("LANGSMITH_API_KEY", "test")
    get_env_var.cache_clear()  # lru-cached: it may hold another test's endpoint
    yield langsmith
    get_env_var.cache_clear()


def review_cli(reviewed: Reviewed, out: Path, *options: str) -> int:
    return main(["review", "--store", str(reviewed.store_path), "--until", UNTIL, "--out", str(out), *options])


def test_cli_exports_the_worst_answers_once(
    reviewed: Reviewed, langsmith_env: FakeLangSmith, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`llmmonitor review --export-dataset NAME` adds the examples and says so; run again it adds none."""
    assert review_cli(reviewed, tmp_path / "out", "--export-dataset", NAME) == 0
    printed = capsys.readouterr().out
    [dataset] = langsmith_env.datasets
    assert (
        f"LangSmith dataset '{NAME}': 10 examples added, 0 already there, 0 without a question "
        f"(http://localhost/o/{dataset['tenant_id']}/datasets/{dataset['id']})"
    ) in printed.splitlines()
    assert (tmp_path / "out" / "review-2026-03-02.html").exists()
    assert {e["metadata"]["run_id"] for e in langsmith_env.examples} == {
        s.run_id for s in reviewed.review.worst_samples
    }

    assert review_cli(reviewed, tmp_path / "again", "--export-dataset", NAME, "--json") == 0
    export = json.loads(capsys.readouterr().out)["dataset_export"]
    assert (export["dataset_id"], export["created"], export["already_present"]) == (dataset["id"], 0, 10)
    assert len(langsmith_env.examples) == 10 and langsmith_env.count("POST /datasets") == 1


def test_cli_without_a_langsmith_key_fails_before_reviewing(
    reviewed: Reviewed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No LANGSMITH_API_KEY: exit 2 with what to set, before the (long) review is built or any report written."""
    get_env_var.cache_clear()  # the conftest removed the variables; the cache may still hold another test's key
    assert review_cli(reviewed, tmp_path / "out", "--export-dataset", NAME) == 2
    captured = capsys.readouterr()
    assert "--export-dataset needs a LangSmith API key: set LANGSMITH_API_KEY" in captured.err
    assert captured.out == "" and not (tmp_path / "out").exists()


def test_cli_export_failure_keeps_the_reports_and_exits_1(
    reviewed: Reviewed, langsmith_env: FakeLangSmith, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """LangSmith refusing the export is reported with its reason; the reports are written all the same."""
    langsmith_env.fail_next(1, status=403, path="/datasets")
    assert review_cli(reviewed, tmp_path / "out", "--export-dataset", NAME) == 1
    captured = capsys.readouterr()
    assert f"adding the worst answers to LangSmith dataset '{NAME}' failed" in captured.err
    assert "403" in captured.err and "Running again adds only the missing examples" in captured.err
    assert (tmp_path / "out" / "review-2026-03-02.html").exists() and "HTML report:" in captured.out
    assert langsmith_env.examples == [] and langsmith_env.datasets == []
