"""How well the offline judge separates right from hallucinated answers on HaluEval QA.

Each row gives two items with the same question and context: the right answer (label 0) and the hallucinated one
(label 1). The judge was tuned on `split == "dev"`; `test` is the held-out estimate.

    python benchmarks/offline_judge_auroc.py [--data PATH] [--hard PATH]

Two baselines put the AUROC in context: HaluEval's right answers are short spans copied from the context while its
hallucinated answers are often full sentences, so answer length alone ranks well. The "restated" line wraps each right
answer in the question's own wording, a faithful but long answer, and reports how often the judge flags it.

The hard set (`benchmarks/data/offline_judge_hard.jsonl`, written for this project) holds the shapes HaluEval rarely
has: numbers of the context bound to the wrong thing, yes/no answers that flip the context's negation, and a correct
sentence plus one invented clause; each context has a faithful (0) and a hallucinated (1) answer. Its baseline is word
overlap: the share of the answer's content words absent from the context.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from langchain_llmmonitor.core.judging import EvaluationInput
from langchain_llmmonitor.quality.judges.offline import OfflineJudge, _is_content, _normalise, _tokens

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT / "benchmarks" / "data" / "halueval_qa.jsonl"  # HaluEval QA (MIT, see HALUEVAL_LICENSE)
HARD_DATA = REPO_ROOT / "benchmarks" / "data" / "offline_judge_hard.jsonl"
SPLITS = ("dev", "test")
SHAPES = ("numbers", "polarity", "clause")


@dataclass(frozen=True, slots=True)
class SplitReport:
    """The figures printed for one split."""

    items: int
    auroc: float
    accuracy: float
    precision: float
    recall: float
    faithfulness_right: float
    faithfulness_hallucinated: float
    ms_per_item: float
    length_auroc: float
    restated_flagged: float


def load_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def labelled_items(rows: Sequence[dict], split: str) -> tuple[list[EvaluationInput], list[int]]:
    """Two items per row of `split`: the right answer (0) and the hallucinated answer (1)."""
    items, labels = [], []
    for row in rows:
        if row["split"] != split:
            continue
        for answer, label in ((row["right_answer"], 0), (row["hallucinated_answer"], 1)):
            items.append(EvaluationInput(question=row["question"], context=(row["knowledge"],), answer=answer))
            labels.append(label)
    return items, labels


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Mann-Whitney U / (n_pos * n_neg) from rank sums; tied scores share their average rank."""
    order = sorted(range(len(scores)), key=scores.__getitem__)
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        raise ValueError("AUROC needs both labels")
    positive_rank_sum = sum(rank for rank, label in zip(ranks, labels, strict=True) if label)
    return (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def report_split(judge: OfflineJudge, rows: Sequence[dict], split: str) -> SplitReport:
    items, labels = labelled_items(rows, split)
    started = time.perf_counter()
    verdicts = [judge.evaluate(item) for item in items]
    elapsed = time.perf_counter() - started
    scores = [judge.hallucination_score(item) for item in items]

    flagged = [verdict.scores.hallucination for verdict in verdicts]
    true_positives = sum(1 for flag, label in zip(flagged, labels, strict=True) if flag and label)
    predicted_positives = sum(flagged)
    faithfulness = {
        label: [v.scores.faithfulness for v, item_label in zip(verdicts, labels, strict=True) if item_label == label]
        for label in (0, 1)
    }
    restated = [
        EvaluationInput(
            question=row["question"],
            context=(row["knowledge"],),
            answer=f"{row['question'].strip().rstrip('?')}? {row['right_answer']}.",
        )
        for row in rows
        if row["split"] == split
    ]
    return SplitReport(
        items=len(items),
        auroc=auroc(scores, labels),
        accuracy=sum(1 for flag, label in zip(flagged, labels, strict=True) if flag == bool(label)) / len(items),
        precision=true_positives / predicted_positives if predicted_positives else float("nan"),
        recall=true_positives / sum(labels),
        faithfulness_right=sum(faithfulness[0]) / len(faithfulness[0]),
        faithfulness_hallucinated=sum(faithfulness[1]) / len(faithfulness[1]),
        ms_per_item=elapsed / len(items) * 1000,
        length_auroc=auroc([float(len(item.answer.split())) for item in items], labels),
        restated_flagged=sum(judge.evaluate(item).scores.hallucination for item in restated) / len(restated),
    )


def hard_items(rows: Sequence[dict]) -> tuple[list[EvaluationInput], list[int]]:
    """The hard set's rows, one answer each, as judge inputs and labels."""
    items = [
        EvaluationInput(question=row["question"], context=(row["knowledge"],), answer=row["answer"]) for row in rows
    ]
    return items, [row["label"] for row in rows]


def word_overlap_score(item: EvaluationInput) -> float:
    """The baseline: share of the answer's content words (the judge's tokens and stopwords) absent from the context."""
    context = {_normalise(token) for passage in item.context for token in _tokens(passage)}
    words = [word for word in map(_normalise, _tokens(item.answer)) if _is_content(word)]
    return sum(word not in context for word in words) / len(words) if words else 0.0


def hard_auroc(judge: OfflineJudge, rows: Sequence[dict], *, key: str = "", value: str = "") -> tuple[float, float]:
    """Judge and word-overlap AUROC on the hard set's rows where `key == value` (all rows when no key)."""
    items, labels = hard_items([row for row in rows if not key or row[key] == value])
    judged = auroc([judge.hallucination_score(item) for item in items], labels)
    return judged, auroc([word_overlap_score(item) for item in items], labels)


def report_hard(judge: OfflineJudge, rows: Sequence[dict]) -> None:
    items, labels = hard_items(rows)
    flags = [judge.evaluate(item).scores.hallucination for item in items]
    accuracy = sum(flag == bool(label) for flag, label in zip(flags, labels, strict=True)) / len(items)
    judged, overlap = hard_auroc(judge, rows)
    print(
        f"hard  n={len(items)}  AUROC {judged:.3f}  accuracy {accuracy:.3f}  word-overlap baseline AUROC {overlap:.3f}"
    )
    for key, values in (("split", SPLITS), ("shape", SHAPES)):
        for value in values:
            judged, overlap = hard_auroc(judge, rows, key=key, value=value)
            count = sum(row[key] == value for row in rows)
            print(f"      {key} {value:<8} n={count:<3} AUROC {judged:.3f}  word overlap {overlap:.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"HaluEval QA jsonl (default: {DEFAULT_DATA})")
    parser.add_argument("--hard", type=Path, default=HARD_DATA, help=f"hard set jsonl (default: {HARD_DATA})")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"no data file at {args.data}; pass --data PATH")
    if not args.hard.is_file():
        parser.error(f"no hard set at {args.hard}; pass --hard PATH")

    rows = load_rows(args.data)
    judge = OfflineJudge()
    print(
        f"judge {judge.name}  model {judge.model}  prompt_version {judge.prompt_version}  threshold {judge.threshold}"
    )
    print(f"data  {args.data}")
    for split in SPLITS:
        r = report_split(judge, rows, split)
        print(
            f"{split:<5} n={r.items}  AUROC {r.auroc:.3f}  accuracy {r.accuracy:.3f}  precision {r.precision:.3f}  "
            f"recall {r.recall:.3f}  faithfulness right {r.faithfulness_right:.2f} vs hallucinated "
            f"{r.faithfulness_hallucinated:.2f}  {r.ms_per_item:.3f} ms/item"
        )
        print(
            f"      baselines: answer-length AUROC {r.length_auroc:.3f}; restated right answers flagged "
            f"{r.restated_flagged:.1%}"
        )
    print(f"hard  {args.hard}")
    report_hard(judge, load_rows(args.hard))
    return 0


if __name__ == "__main__":
    sys.exit(main())
