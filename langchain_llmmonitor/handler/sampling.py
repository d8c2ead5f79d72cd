"""Which traces a judge scores: a deterministic share of traces, plus the ones a rule or the caller insists on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ..config import SamplingConfig
from ..core.vocabulary import EVALUATE_METADATA_KEY, FEEDBACK_REASON, FORCED, RANDOM
from .extract import is_mapping

_SCALE = 1 << 64


@dataclass(frozen=True, slots=True)
class SampleDecision:
    """Why a trace is (or is not yet) going to be judged. `sampling` keeps forced samples out of the review's trends."""

    sampling: str  # RANDOM or FORCED
    reason: str  # rate, metadata, tag, error, feedback


RATE = SampleDecision(RANDOM, "rate")
BY_METADATA = SampleDecision(FORCED, "metadata")
BY_TAG = SampleDecision(FORCED, "tag")
AFTER_ERROR = SampleDecision(FORCED, "error")
AFTER_FEEDBACK = SampleDecision(FORCED, FEEDBACK_REASON)


def trace_fraction(trace_id: UUID) -> float:
    """A uniform number in [0, 1) fixed by the trace id: every process and every retry decides the same way."""
    digest = hashlib.blake2b(trace_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


class Sampler:
    """Decides at the root's start, from the trace id, `config["metadata"]` and tags (`SamplingConfig`).

    `config["metadata"]["llmmonitor_evaluate"]` = True forces a trace in, False keeps it out, whatever the rate.
    """

    __slots__ = ("_rate", "_tags", "config")

    def __init__(self, config: SamplingConfig) -> None:
        self.config = config
        self._rate = config.rate
        self._tags = config.evaluate_tags

    def at_start(self, trace_id: UUID, metadata: Any, tags: Any) -> SampleDecision | bool | None:
        """The decision at the root's start: a SampleDecision, None (not sampled, rules may still apply), or False
        (the caller opted this trace out of evaluation entirely)."""
        if metadata and is_mapping(metadata) and EVALUATE_METADATA_KEY in metadata:
            return BY_METADATA if metadata[EVALUATE_METADATA_KEY] else False
        if tags and self._tags and not self._tags.isdisjoint(tags):
            return BY_TAG
        rate = self._rate
        if rate > 0.0 and (rate >= 1.0 or trace_fraction(trace_id) < rate):
            return RATE
        return None
