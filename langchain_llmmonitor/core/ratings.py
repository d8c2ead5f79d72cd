"""Rating scales: the scores a user's rating may take, the metric label of each, and which ones are negative.

- thumbs: -1 (down) or +1 (up), labelled "negative"/"positive". 0 is refused: it reads as "neutral" to some and
  "down" to others (0/1 frontends), and a guessed meaning would skew the thumbs-down share silently; an error that says
  "send -1 or 1" costs a frontend one line.
- five: integers 1 to 5, labelled "1".."5"; 1 and 2 count as negative.
The label set is fixed by the scale, so the metric's cardinality is too.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidFeedbackError
from .vocabulary import NEGATIVE_RATING, POSITIVE_RATING

SCALE_NAMES = ("thumbs", "five")


@dataclass(frozen=True)
class RatingScale:
    """The scores a rating may take, the metric label of each, and which of them count as negative."""

    name: str
    scores: tuple[int, ...]
    labels: tuple[str, ...]
    negative: frozenset[int]
    descriptions: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.scores or len(self.scores) != len(self.labels) or len(set(self.labels)) != len(self.labels):
            raise ValueError("a rating scale needs one distinct label per score")
        if not self.negative <= set(self.scores):
            raise ValueError("negative scores must be on the scale")

    @classmethod
    def thumbs(cls) -> RatingScale:
        """-1 (thumbs down, "negative") or 1 (thumbs up, "positive")."""
        return cls("thumbs", (-1, 1), (NEGATIVE_RATING, POSITIVE_RATING), frozenset({-1}), ("thumbs down", "thumbs up"))

    @classmethod
    def five_point(cls) -> RatingScale:
        """Integers 1 to 5, labelled "1".."5"; 1 and 2 are negative."""
        return cls("five", (1, 2, 3, 4, 5), ("1", "2", "3", "4", "5"), frozenset({1, 2}))

    @classmethod
    def named(cls, name: str) -> RatingScale:
        """`"thumbs"` or `"five"`."""
        scales = {"thumbs": cls.thumbs, "five": cls.five_point}
        if name not in scales:
            raise ValueError(f"unknown rating scale {name!r}: use 'thumbs' or 'five'")
        return scales[name]()

    @property
    def allowed(self) -> str:
        """The allowed scores in words, for error messages."""
        words = [
            f"{score} ({self.descriptions[index]})" if self.descriptions else str(score)
            for index, score in enumerate(self.scores)
        ]
        return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]

    def validate(self, score: Any) -> float:
        """`score` as a float if it is on this scale; InvalidFeedbackError (saying what is allowed) if not."""
        if isinstance(score, bool) or not isinstance(score, numbers.Real):
            raise InvalidFeedbackError(
                f"the rating must be a number, got {type(score).__name__}; the {self.name} scale allows {self.allowed}"
            )
        value = float(score)
        if not math.isfinite(value) or value not in self.scores:
            shown = f"{value:g}" if math.isfinite(value) else repr(score)
            raise InvalidFeedbackError(f"rating {shown} is not on the {self.name} scale: allowed {self.allowed}")
        return value

    def label(self, score: float) -> str:
        """The `rating` label of a score on this scale."""
        return self.labels[self.scores.index(int(self.validate(score)))]

    def is_negative(self, score: float) -> bool:
        return self.validate(score) in self.negative

    def feedback_config(self) -> dict[str, Any]:
        """How LangSmith should read `user_rating` scores (used when the key is first created there)."""
        return {"type": "continuous", "min": min(self.scores), "max": max(self.scores)}


def is_negative_rating(rating: str | None, score: float | None) -> bool:
    """Thumbs down on any scale, also for ratings that came from elsewhere (LangSmith): the label "negative", a 1-5
    rating of 1 or 2, or else a 0-1 score below 0.5."""
    label = (rating or "").strip().lower()
    if label in (NEGATIVE_RATING, POSITIVE_RATING):
        return label == NEGATIVE_RATING
    if label.isdigit() and 1 <= int(label) <= 5:
        return int(label) <= 2
    return score is not None and score < 0.5
