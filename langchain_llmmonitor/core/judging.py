"""What every judge takes and gives back, and how it fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .text import scrub
from .vocabulary import CRITERIA


@dataclass(frozen=True, slots=True)
class EvaluationInput:
    """One sampled trace, as the judge sees it: the question, the retrieved passages, the answer."""

    question: str
    context: tuple[str, ...]
    answer: str


def scrubbed(item: EvaluationInput) -> EvaluationInput:
    """The item without credentials: it goes to a judge (maybe a third-party API) and into the store, and a judge's
    reason may quote it. Done by the background workers, never on the request path."""
    return EvaluationInput(
        question=scrub(item.question),
        context=tuple(scrub(passage) for passage in item.context),
        answer=scrub(item.answer),
    )


@dataclass(frozen=True, slots=True)
class Scores:
    """A judge's verdict on one trace. Scores are integers 1-5."""

    faithfulness: int
    relevance: int
    completeness: int
    hallucination: bool
    reason: str

    def __post_init__(self) -> None:
        for criterion in CRITERIA:
            value = getattr(self, criterion)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
                raise ValueError(f"{criterion} must be an integer from 1 to 5, got {value!r}")
        if not isinstance(self.hallucination, bool):
            raise ValueError(f"hallucination must be a bool, got {self.hallucination!r}")


@dataclass(frozen=True, slots=True)
class JudgeUsage:
    """Tokens and dollars the judge itself spent on one evaluation (kept apart from the application's)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Scores plus what produced them, so a judge change is never read as application drift."""

    scores: Scores
    judge: str
    model: str
    prompt_version: str
    usage: JudgeUsage = field(default_factory=JudgeUsage)


class JudgeError(Exception):
    """A judge could not produce scores. Counted and stored as missing, never turned into a score.

    `usage` is what the failed call still cost when the model did answer (a refusal, an unparsable reply).
    """

    kind = "other"
    usage: JudgeUsage | None = None


class JudgeTimeout(JudgeError):
    kind = "timeout"


class JudgeParseError(JudgeError):
    kind = "parse"


class JudgeRefusal(JudgeError):
    kind = "refusal"


class JudgeRateLimited(JudgeError):
    kind = "rate_limit"


class JudgeAPIError(JudgeError):
    kind = "api"


@runtime_checkable
class Judge(Protocol):
    """Scores one trace. Called from a background worker thread, never from a callback."""

    name: str
    model: str
    prompt_version: str

    def evaluate(self, item: EvaluationInput) -> Verdict:
        """Return a verdict or raise a `JudgeError`."""
        ...
