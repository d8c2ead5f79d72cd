"""Which traces a judge scores: a deterministic share of traces, plus the ones a rule or the caller insists on."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

RANDOM, FORCED = "random", "forced"
EVALUATE_METADATA_KEY = "llmmonitor_evaluate"
EVALUATE_TAG = "llmmonitor:evaluate"
_SCALE = 1 << 64


@dataclass(frozen=True, slots=True)
class SampleDecision:
    """Why a trace is (or is not yet) going to be judged. `sampling` keeps forced samples out of the review's trends."""

    sampling: str  # RANDOM or FORCED
    reason: str  # rate, metadata, tag, error, feedback


def trace_fraction(trace_id: UUID) -> float:
    """A uniform number in [0, 1) fixed by the trace id: every process and every retry decides the same way."""
    digest = hashlib.blake2b(trace_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


@dataclass(frozen=True, kw_only=True)
class Sampler:
    """Decides at the root's start, from the trace id, `config["metadata"]` and tags.

    Args:
        rate: the share of traces judged at random, 0 to 1.
        evaluate_tags: a trace carrying any of these tags is always judged (forced).
        evaluate_errors: a trace that succeeded although a step inside it failed (a retry or a fallback answered)
            is always judged.
    `config["metadata"]["llmmonitor_evaluate"]` = True forces a trace in, False keeps it out, whatever the rate.
    """

    rate: float = 0.05
    evaluate_tags: Collection[str] = frozenset({EVALUATE_TAG})
    evaluate_errors: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"sample_rate must be between 0 and 1, got {self.rate!r}")
        if isinstance(self.evaluate_tags, str):
            raise TypeError("evaluate_tags must be a collection of tags, not one string")
        object.__setattr__(self, "evaluate_tags", frozenset(self.evaluate_tags))

    def at_start(self, trace_id: UUID, metadata: Any, tags: Any) -> SampleDecision | None | bool:
        """The decision at the root's start: a SampleDecision, None (not sampled, rules may still apply), or False
        (the caller opted this trace out of evaluation entirely)."""
        if isinstance(metadata, Mapping) and EVALUATE_METADATA_KEY in metadata:
            if not metadata[EVALUATE_METADATA_KEY]:
                return False
            return SampleDecision(FORCED, "metadata")
        if tags and self.evaluate_tags and not self.evaluate_tags.isdisjoint(tags):  # type: ignore[attr-defined]
            return SampleDecision(FORCED, "tag")
        if self.rate > 0.0 and (self.rate >= 1.0 or trace_fraction(trace_id) < self.rate):
            return SampleDecision(RANDOM, "rate")
        return None
