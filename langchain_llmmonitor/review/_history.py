"""Simulated weeks of traffic, judge scores and user ratings, so a new user's first review has something to find.

The scenarios, per week of `per_week` random judge evaluations (a `sample_rate` share of the invocations):
* "stable": faithfulness 4.2, relevance 4.4, completeness 4.0 (1-5, sd ~1), hallucination 5%, 2% errors.
* "degradation": the same, except that in the last week faithfulness slides day by day from 4.2 to 3.6 (a weekly
  mean of 3.9: the slow drop the review exists to catch, DESIGN "numbers that matter") and hallucination rises to 12%.
* "release": stable, except that at the start of the last week a release, app_version v2, takes `release_share` of
  the traffic, and its answers are worse: faithfulness 3.6 and hallucination 12%; v1 stays as it was.
Every row carries its segments (app_version, model, chain), as the monitor stores them.
Hallucinations go mostly to low-faithfulness answers, and thumbs-down to bad answers, so the worst samples, the
ratings and the scores tell one story: a low-scored or hallucinating answer is a wrong one, and its reason names what
in it is unsupported. Failed invocations are not judged (there is no answer); answers that came
after a failed step (a retry or a fallback) and thumbs-down on runs not in the random sample get forced evaluations,
scored low, as the monitor's always-evaluate rules would. `judge_change_at_week` (1 = the oldest week)
switches to another judge model and prompt version that scores the same answers ~0.3 lower (and finds a few more
hallucinations), to show the baseline reset: the users' ratings do not change with it.

Rows are written straight into the store's tables in one transaction (a few thousand rows in well under a second;
`Store.add_evaluation` commits one row at a time, `add_invocations` compiles one huge VALUES clause), and never into
the outbox: simulated scores must never reach LangSmith. Ids come from the seeded generator, so writing the same
history twice adds nothing.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from ..core.records import EvaluationRecord, InvocationRecord, UserFeedbackRecord, utcnow
from ..core.vocabulary import FORCED, NEGATIVE_RATING, POSITIVE_RATING, RANDOM, SUCCESS
from ..storage.store import Store
from ._drift import _score_probabilities

Scenario = Literal["degradation", "stable", "release"]
SCENARIOS = ("degradation", "stable", "release")
DEFAULT_SEED = 1
"""Verdicts are statistical: with another seed the demo's review may miss the drop (about one seed in three misses
the hallucination rise, one in ten the faithfulness drop) or call an untouched criterion improved. With this one, at
any `now`, it flags faithfulness and hallucination and only them."""
RELEASE_SEED = 5
"""The "release" scenario's default: at any `now`, only v2's faithfulness is flagged, while the overall faithfulness,
diluted by v1, is not (the case segments exist for)."""

_WEEK = timedelta(weeks=1)
_LEVELS = np.arange(1, 6)
_SD = {"faithfulness": 1.0, "relevance": 0.8, "completeness": 1.0}
_STABLE = {"faithfulness": 4.2, "relevance": 4.4, "completeness": 4.0, "hallucination": 0.05}
_FORCED = {"faithfulness": 2.6, "relevance": 3.0, "completeness": 2.4}
_FORCED_SD = 1.1
_JUDGES = (("openai", "gpt-4o-mini", "rag-judge-v1"), ("openai", "gpt-4.1-mini", "rag-judge-v2"))
_STRICTER = {"faithfulness": -0.3, "relevance": -0.3, "completeness": -0.3, "hallucination": 0.02}
# Hallucinations go to weak answers: relative odds by faithfulness 1..5, rescaled to hit the week's rate.
_HALLUCINATION_WEIGHT = np.array([6.0, 3.0, 1.5, 0.6, 0.3])
_THUMBS_DOWN_BY_FAITHFULNESS = np.array([0.6, 0.45, 0.22, 0.07, 0.03])
_RATED_SHARE = 0.1
_ERROR_RATE = 0.02
_RECOVERED_RATE = 0.02  # answered although a step failed: the monitor's forced "error" evaluations
_APP_MODEL_PRICE = (0.15e-6, 0.60e-6)  # USD per prompt / completion token (gpt-4o-mini)
_JUDGE_PRICE = (0.40e-6, 1.60e-6)

_APP_MODEL = "gpt-4o-mini"
_CHAIN = "rag_chain"
_RELEASE_LEVELS = {"faithfulness": 3.6, "hallucination": 0.12}


@dataclass(frozen=True, slots=True)
class _Exchange:
    """A question, the grounded answer, a wrong one, and what in the wrong one no document supports."""

    question: str
    answer: str
    wrong_answer: str
    unsupported: str


_QA = (
    _Exchange(
        "How do I reset my router to factory settings?",
        "Hold the reset button for 10 seconds until the light blinks.",
        "Hold the reset button for 30 seconds, then unplug the router for a minute.",
        "the 30 seconds and unplugging the router",
    ),
    _Exchange(
        "What is the warranty period for the X200?",
        "The X200 comes with a two-year limited warranty.",
        "The X200 comes with a five-year warranty that also covers water damage.",
        "a five-year warranty covering water damage (the policy says two years, limited)",
    ),
    _Exchange(
        "Can I return an opened item?",
        "Opened items can be returned within 30 days with the receipt.",
        "Opened items cannot be returned.",
        "that opened items cannot be returned (the policy allows 30 days with the receipt)",
    ),
    _Exchange(
        "How long does standard shipping take?",
        "Standard shipping takes 3 to 5 business days.",
        "Standard shipping takes 1 to 2 business days and is always free.",
        "1 to 2 days and free shipping",
    ),
    _Exchange(
        "Does the app support two-factor authentication?",
        "Yes, enable it under Settings > Security.",
        "No, the app does not support two-factor authentication.",
        "that two-factor authentication is unsupported (the help page says it is under Settings > Security)",
    ),
    _Exchange(
        "How do I update the firmware?",
        "Open the app, go to Device > Firmware and tap Update.",
        "Download the firmware from the website and flash it over USB.",
        "a download and USB flashing procedure",
    ),
    _Exchange(
        "Which payment methods do you accept?",
        "We accept cards, PayPal and bank transfer.",
        "We accept cards, PayPal, bank transfer and cryptocurrency.",
        "cryptocurrency as a payment method",
    ),
    _Exchange(
        "Is the X200 waterproof?",
        "The X200 is splash resistant (IP54) but not waterproof.",
        "Yes, the X200 is fully waterproof to 10 metres.",
        "that the X200 is waterproof to 10 metres (the spec sheet says IP54, splash resistant only)",
    ),
)
_GROUNDED_REASONS = {
    3: "Mostly supported; one detail is not stated in the context.",
    4: "Supported by the context, with a minor omission.",
    5: "Every claim is supported by the context.",
}
_COMMENTS_NEGATIVE = (
    "Wrong answer, the policy says otherwise.",
    "This made up a warranty period.",
    "Not what I asked.",
    "Too vague to be useful.",
)
_COMMENTS_POSITIVE = ("Exactly what I needed.", "Quick and correct, thanks!")


@dataclass(frozen=True, slots=True)
class HistorySummary:
    """What `generate_history` wrote: the time span and row counts."""

    start: datetime
    end: datetime
    invocations: int
    evaluations: int
    forced_evaluations: int
    user_feedback: int
    judge_change_at: datetime | None


def generate_history(
    store: Store,
    *,
    weeks: int = 6,
    per_week: int = 150,
    scenario: Scenario = "degradation",
    seed: int | None = None,
    now: datetime | None = None,
    judge_change_at_week: int | None = None,
    sample_rate: float = 0.25,
    project: str | None = None,
    release_share: float = 0.5,
    release_quality: Mapping[str, float] | None = None,
) -> HistorySummary:
    """Write `weeks` weeks ending at `now` (default: the current time) of simulated monitor data into `store`.

    "release" scenario: `release_share` of the last week's traffic is app_version v2, whose levels are
    `release_quality` (default faithfulness 3.6, hallucination 12%; `{}` for a release as good as v1). `seed`
    None: `RELEASE_SEED` for "release", else `DEFAULT_SEED`.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
    if weeks < 1 or per_week < 1 or not 0 < sample_rate <= 1 or not 0 < release_share <= 1:
        raise ValueError("weeks and per_week must be >= 1, sample_rate and release_share in (0, 1]")
    if judge_change_at_week is not None and not 2 <= judge_change_at_week <= weeks:
        raise ValueError(f"judge_change_at_week must be between 2 and {weeks} (1 is the oldest week)")
    end = now or utcnow()
    if end.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    start = end - weeks * _WEEK
    if seed is None:
        seed = RELEASE_SEED if scenario == "release" else DEFAULT_SEED
    simulator = _Simulator(np.random.default_rng([seed, 0x5EED]), project)
    for week in range(weeks):
        changed = judge_change_at_week is not None and week + 1 >= judge_change_at_week
        last = week == weeks - 1
        simulator.week(
            start + week * _WEEK,
            per_week,
            sample_rate,
            judge=1 if changed else 0,
            degraded=scenario == "degradation" and last,
            release_share=release_share if scenario == "release" and last else 0.0,
            release_quality=_RELEASE_LEVELS if release_quality is None else release_quality,
        )
    simulator.write(store)
    forced = sum(1 for row in simulator.evaluations if row.sampling == FORCED)
    return HistorySummary(
        start=start,
        end=end,
        invocations=len(simulator.invocations),
        evaluations=len(simulator.evaluations),
        forced_evaluations=forced,
        user_feedback=len(simulator.feedback),
        judge_change_at=None if judge_change_at_week is None else start + (judge_change_at_week - 1) * _WEEK,
    )


class _Simulator:
    def __init__(self, rng: np.random.Generator, project: str | None) -> None:
        self.rng = rng
        self.project = project
        self.invocations: list[InvocationRecord] = []
        self.evaluations: list[EvaluationRecord] = []
        self.feedback: list[UserFeedbackRecord] = []

    def week(
        self,
        week_start: datetime,
        per_week: int,
        sample_rate: float,
        *,
        judge: int,
        degraded: bool,
        release_share: float,
        release_quality: Mapping[str, float],
    ) -> None:
        rng = self.rng
        count = max(per_week, round(per_week / sample_rate))
        offsets = np.sort(rng.uniform(0, _WEEK.total_seconds() - 1800, count))  # room for late ratings and judges
        failed = rng.random(count) < _ERROR_RATE
        recovered = ~failed & (rng.random(count) < _RECOVERED_RATE)
        candidates = np.flatnonzero(~failed)
        judged = {int(i) for i in rng.choice(candidates, size=min(per_week, candidates.size), replace=False)}
        for index, offset in enumerate(offsets):
            started = week_start + timedelta(seconds=float(offset))
            levels = self._levels(int(offset // 86_400), degraded=degraded)
            release = "v1"
            if release_share and rng.random() < release_share:  # no draw at all in other scenarios: same histories
                release, levels = "v2", {**levels, **release_quality}
            segments = {"app_version": release, "model": _APP_MODEL, "chain": _CHAIN}
            run_id = self._id()
            latency = self._invocation(run_id, started, segments, failed=bool(failed[index]))
            ended = started + timedelta(seconds=latency)
            # The answer's true faithfulness: what users react to, and what each judge scores (a stricter one lower).
            quality = self._score(levels["faithfulness"], _SD["faithfulness"])
            negative = False
            if not failed[index] and rng.random() < _RATED_SHARE:
                negative = bool(rng.random() < _THUMBS_DOWN_BY_FAITHFULNESS[quality - 1])
                self._rating(run_id, ended + timedelta(seconds=float(rng.uniform(5, 600))), negative)
            if index in judged:
                self._evaluation(run_id, ended, segments, levels, judge, RANDOM, "rate", quality)
            elif recovered[index] or negative:
                forced_levels = {**_FORCED, "hallucination": 0.3}
                if recovered[index]:
                    quality = self._score(_FORCED["faithfulness"], _FORCED_SD)
                reason = "error" if recovered[index] else "feedback"
                at = ended + timedelta(minutes=10)
                self._evaluation(run_id, at, segments, forced_levels, judge, FORCED, reason, quality)

    @staticmethod
    def _levels(day: int, *, degraded: bool) -> dict[str, float]:
        levels = dict(_STABLE)
        if degraded:  # faithfulness slides from 4.2 to 3.6 over the week (mean 3.9); hallucination 12%
            levels["faithfulness"] = round(4.2 - 0.6 * (day + 0.5) / 7, 3)
            levels["hallucination"] = 0.12
        return levels

    def _score(self, mean: float, sd: float) -> int:
        return int(self.rng.choice(_LEVELS, p=_score_probabilities(mean, sd)))

    def _id(self) -> str:
        return str(uuid.UUID(bytes=self.rng.bytes(16), version=4))

    def _invocation(self, run_id: str, started: datetime, segments: dict[str, str], *, failed: bool) -> float:
        rng = self.rng
        if failed:
            latency, prompt, completion = float(rng.uniform(0.2, 30.0)), 0, 0
        else:
            latency = float(rng.lognormal(math.log(1.1), 0.45))
            if rng.random() < 0.02:  # a slow tail: retries, long contexts
                latency += float(rng.uniform(4, 14))
            prompt, completion = int(rng.normal(1200, 250)), int(rng.normal(180, 60))
            prompt, completion = max(prompt, 50), max(completion, 5)
        self.invocations.append(
            InvocationRecord(
                run_id=run_id,
                trace_id=run_id,
                name=_CHAIN,
                status="error" if failed else "success",
                started_at=started,
                latency_s=round(latency, 3),
                prompt_tokens=prompt,
                completion_tokens=completion,
                cost_usd=prompt * _APP_MODEL_PRICE[0] + completion * _APP_MODEL_PRICE[1],
                project=self.project,
                segments=segments,
            )
        )
        return latency

    def _evaluation(
        self,
        run_id: str,
        at: datetime,
        segments: dict[str, str],
        levels: dict[str, float],
        judge: int,
        sampling: str,
        reason: str,
        quality: int,
    ) -> None:
        rng = self.rng
        sd = _SD if sampling == RANDOM else dict.fromkeys(_SD, _FORCED_SD)
        shift = _STRICTER if judge else dict.fromkeys(_STRICTER, 0.0)
        scores = {name: self._score(levels[name] + shift[name], sd[name]) for name in ("relevance", "completeness")}
        # The stricter judge marks ~30% of answers one point lower (-0.3 on average, less at the floor).
        faithfulness = max(1, quality - int(judge and rng.random() < 0.3))
        expected_weight = _score_probabilities(levels["faithfulness"], sd["faithfulness"]) @ _HALLUCINATION_WEIGHT
        rate = levels["hallucination"] + shift["hallucination"]
        hallucination = bool(rng.random() < min(1.0, rate * _HALLUCINATION_WEIGHT[quality - 1] / expected_weight))
        exchange = _QA[int(rng.integers(len(_QA)))]
        answer, judge_reason = _answer_and_reason(exchange, faithfulness, hallucination)
        name, model, prompt_version = _JUDGES[judge]
        prompt_tokens, completion_tokens = int(rng.normal(900, 150)), int(rng.normal(80, 20))
        record = EvaluationRecord(
            id=self._id(),
            created_at=at + timedelta(seconds=float(rng.uniform(1, 20))),
            run_id=run_id,
            trace_id=run_id,
            project=self.project,
            judge=name,
            judge_model=model,
            prompt_version=prompt_version,
            sampling=sampling,
            sample_reason=reason,
            status=SUCCESS,
            faithfulness=faithfulness,
            relevance=scores["relevance"],
            completeness=scores["completeness"],
            hallucination=hallucination,
            reason=judge_reason,
            question=exchange.question,
            answer=answer,
            judge_prompt_tokens=prompt_tokens,
            judge_completion_tokens=completion_tokens,
            judge_cost_usd=prompt_tokens * _JUDGE_PRICE[0] + completion_tokens * _JUDGE_PRICE[1],
            segments=segments,
        )
        self.evaluations.append(record)

    def _rating(self, run_id: str, at: datetime, negative: bool) -> None:
        rng = self.rng
        pool = _COMMENTS_NEGATIVE if negative else _COMMENTS_POSITIVE
        comment = pool[int(rng.integers(len(pool)))] if rng.random() < (0.5 if negative else 0.1) else None
        record = UserFeedbackRecord(
            id=self._id(),
            created_at=at,
            run_id=run_id,
            trace_id=run_id,
            project=self.project,
            score=-1.0 if negative else 1.0,  # the monitor's thumbs scale
            rating=NEGATIVE_RATING if negative else POSITIVE_RATING,
            comment=comment,
            source="simulated",
        )
        self.feedback.append(record)

    def write(self, store: Store) -> None:
        """All records in one transaction, none of them bound for LangSmith."""
        store.import_history(self.invocations, self.evaluations, self.feedback)


def _answer_and_reason(exchange: _Exchange, faithfulness: int, hallucination: bool) -> tuple[str, str]:
    """The answer a judge scored so, and a reason that is true of it: a poor or hallucinating answer is the wrong one,
    and its reason names the unsupported claim it makes."""
    if faithfulness >= 3 and not hallucination:
        return exchange.answer, _GROUNDED_REASONS[faithfulness]
    if faithfulness == 1:
        reason = f"The answer contradicts the retrieved documents: it states {exchange.unsupported}."
    elif faithfulness == 2:
        reason = f"Most of the answer is unsupported: no retrieved document mentions {exchange.unsupported}."
    else:
        reason = f"Partly supported, but it adds {exchange.unsupported}, which no retrieved document states."
    return exchange.wrong_answer, reason
