"""Judge-human agreement: do the judge's flags line up with users' thumbs on the runs that have both?

Definitions, and why:
* A pair is a run with a successful judge evaluation and a user rating. The evaluation is the random one if the run
  has one, else one forced by the user's own thumbs-down (`sample_reason` "feedback"); other forced evaluations
  (errors, always-evaluate rules) are left out and counted: they were picked because the run already looked wrong, so
  they would tilt both rating classes towards "flagged". A run's latest rating counts; on the 1-5 scale 1-2 is
  thumbs-down, 4-5 thumbs-up and 3 is left out (counted). A pair belongs to the period of its evaluation.
* The judge flags a run when it finds a hallucination or scores faithfulness <= `FLAG_FAITHFULNESS` (2: "most claims
  are not supported"); agreement is "judge flags" == "user rated down".
* Every thumbs-down gets a forced evaluation while only a random share of the other runs is judged, so thumbs-down
  runs are over-represented among pairs and the agreement rate moves with their share. The share of thumbs-down runs
  the judge flags and of thumbs-up runs it passes do not, so both are shown too.
* Descriptive: rates with 95% Wilson intervals and the change with a 95% Newcombe interval; no verdict, so the
  review's alpha stays with the four quality verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from statistics import NormalDist

from ..core.vocabulary import FEEDBACK_REASON, HALLUCINATION
from ._model import AgreementCounts, CriterionReview, Disagreement, JudgeHumanAgreement
from ._records import Judged, Rating, RunLinker

FLAG_FAITHFULNESS = 2
FLAG_RULE = f"hallucination, or faithfulness ≤ {FLAG_FAITHFULNESS}"
FLAG_SCORES = frozenset({HALLUCINATION, "faithfulness"})
MAX_DISAGREEMENTS = 10
_Z = NormalDist().inv_cdf(0.975)
_FEW = 30  # fewer pairs than this: a steady agreement is weak evidence


class _Pair:
    """A judged and rated run: the judge's flag against the user's thumbs-down."""

    __slots__ = ("judged", "rating")

    def __init__(self, judged: Judged, rating: Rating) -> None:
        self.judged, self.rating = judged, rating

    @property
    def flagged(self) -> bool:
        scores = self.judged.scores
        return scores.get(HALLUCINATION, 0.0) >= 0.5 or scores.get("faithfulness", 5.0) <= FLAG_FAITHFULNESS

    @property
    def negative(self) -> bool:
        return self.rating.negative


def judge_human_agreement(
    judged: Sequence[Judged],
    ratings: Sequence[Rating],
    *,
    window_start: datetime,
    display_start: datetime,
    until: datetime,
    criteria: Sequence[CriterionReview],
    linker: RunLinker,
) -> JudgeHumanAgreement:
    """Agreement this period, in the baseline (pooled and per period), the disagreeing runs and a one-line reading."""
    pairs, neutral, forced_out = _pairs(judged, ratings, window_start, display_start, until)
    current_pairs = [p for p in pairs if p.judged.at >= window_start]
    current = _counts(current_pairs, window_start, until)
    baseline = _counts([p for p in pairs if p.judged.at < window_start], display_start, window_start)
    period = until - window_start
    periods = round((window_start - display_start) / period)
    starts = [display_start + index * period for index in range(periods)]
    weekly = tuple(_counts([p for p in pairs if s <= p.judged.at < s + period], s, s + period) for s in starts)
    difference, low, high = _newcombe(current, baseline)
    disagreeing = sorted((p for p in current_pairs if p.flagged != p.negative), key=_severity)
    agreement = JudgeHumanAgreement(
        flag_rule=FLAG_RULE,
        faithfulness_threshold=FLAG_FAITHFULNESS,
        current=current,
        baseline=baseline,
        baseline_periods=weekly,
        difference=difference,
        difference_ci_low=low,
        difference_ci_high=high,
        neutral_left_out=neutral,
        forced_left_out=forced_out,
        judge_only=tuple(_disagreement(p, linker) for p in disagreeing if p.flagged)[:MAX_DISAGREEMENTS],
        user_only=tuple(_disagreement(p, linker) for p in disagreeing if p.negative)[:MAX_DISAGREEMENTS],
        reading="",
        hint=None,
    )
    return _with_reading(agreement, period, criteria)


def _pairs(
    judged: Sequence[Judged],
    ratings: Sequence[Rating],
    window_start: datetime,
    display_start: datetime,
    until: datetime,
) -> tuple[list[_Pair], int, int]:
    """This period's and the baseline's pairs, and how many rated runs of this period were left out (neutral, forced)."""
    latest: dict[str, Rating] = {}
    for rating in sorted(ratings, key=lambda r: r.at):
        latest[rating.run_id] = rating
    chosen: dict[str, Judged] = {}
    for j in sorted(judged, key=_preference):
        if display_start <= j.at < until and (FLAG_SCORES & j.scores.keys()):
            chosen[j.run_id] = j
    pairs, neutral, forced_out = [], 0, 0
    for run_id, j in chosen.items():
        rating = latest.get(run_id)
        if rating is None:
            continue
        in_window = j.at >= window_start
        if j.forced and j.sample_reason != FEEDBACK_REASON:
            forced_out += in_window
        elif rating.rating.strip() == "3":
            neutral += in_window
        else:
            pairs.append(_Pair(j, rating))
    return pairs, neutral, forced_out


def _preference(j: Judged) -> tuple[int, datetime]:
    """A run's evaluations in rising preference, so the last one wins: other forced, forced by feedback, random."""
    return (2 if not j.forced else 1 if j.sample_reason == FEEDBACK_REASON else 0), j.at


def _wilson(successes: int, n: int) -> tuple[float | None, float | None, float | None]:
    if n == 0:
        return None, None, None
    share = successes / n
    centre = (share + _Z**2 / (2 * n)) / (1 + _Z**2 / n)
    half = _Z * math.sqrt(share * (1 - share) / n + _Z**2 / (4 * n**2)) / (1 + _Z**2 / n)
    return share, max(0.0, centre - half), min(1.0, centre + half)


def _counts(pairs: Sequence[_Pair], start: datetime, end: datetime) -> AgreementCounts:
    both_bad = sum(p.flagged and p.negative for p in pairs)
    judge_only = sum(p.flagged and not p.negative for p in pairs)
    user_only = sum(p.negative and not p.flagged for p in pairs)
    n = len(pairs)
    both_fine = n - both_bad - judge_only - user_only
    agreement, low, high = _wilson(both_bad + both_fine, n)
    return AgreementCounts(
        start=start,
        end=end,
        n=n,
        both_bad=both_bad,
        judge_only=judge_only,
        user_only=user_only,
        both_fine=both_fine,
        forced=sum(p.judged.forced for p in pairs),
        agreement=agreement,
        ci_low=low,
        ci_high=high,
        kappa=_kappa(both_bad, judge_only, user_only, both_fine),
        flagged_of_negative=both_bad / (both_bad + user_only) if both_bad + user_only else None,
        passed_of_positive=both_fine / (both_fine + judge_only) if both_fine + judge_only else None,
    )


def _kappa(both_bad: int, judge_only: int, user_only: int, both_fine: int) -> float | None:
    """Cohen's kappa: agreement beyond what the two marginal rates give by chance (None when that is all of it)."""
    n = both_bad + judge_only + user_only + both_fine
    if n == 0:
        return None
    judge, user = (both_bad + judge_only) / n, (both_bad + user_only) / n
    chance = judge * user + (1 - judge) * (1 - user)
    if chance >= 1:
        return None
    return ((both_bad + both_fine) / n - chance) / (1 - chance)


def _newcombe(current: AgreementCounts, baseline: AgreementCounts) -> tuple[float | None, float | None, float | None]:
    """Difference of two shares with Newcombe's hybrid score interval (method 10), from the two Wilson intervals."""
    if current.agreement is None or baseline.agreement is None:
        return None, None, None
    p1, l1, u1 = current.agreement, current.ci_low or 0.0, current.ci_high or 1.0
    p2, l2, u2 = baseline.agreement, baseline.ci_low or 0.0, baseline.ci_high or 1.0
    difference = p1 - p2
    return difference, difference - math.hypot(p1 - l1, u2 - p2), difference + math.hypot(u1 - p1, p2 - l2)


def _severity(pair: _Pair) -> tuple[bool, float, float]:
    """Most telling first: a judge flag on a hallucination and the lowest faithfulness; a thumbs-down the judge scored
    highest; then the newest."""
    faithfulness = pair.judged.scores.get("faithfulness", 3.0)
    if pair.flagged:
        return pair.judged.scores.get(HALLUCINATION, 0.0) < 0.5, faithfulness, -pair.judged.at.timestamp()
    return not pair.rating.comment, -faithfulness, -pair.judged.at.timestamp()


def _disagreement(pair: _Pair, linker: RunLinker) -> Disagreement:
    j, r = pair.judged, pair.rating
    return Disagreement(
        kind="judge_only" if pair.flagged else "user_only",
        at=j.at,
        run_id=j.run_id,
        trace_id=j.trace_id,
        request_id=j.request_id or r.request_id,
        rating=r.rating,
        comment=r.comment,
        faithfulness=j.scores.get("faithfulness"),
        hallucination=None if HALLUCINATION not in j.scores else j.scores[HALLUCINATION] >= 0.5,
        reason=j.reason,
        question=j.question,
        answer=j.answer,
        sampling=j.sampling,
        sample_reason=j.sample_reason,
        judge_key=j.judge_key,
        url=linker.url(j.run_id, j.trace_id, j.project),
    )


def _with_reading(
    agreement: JudgeHumanAgreement, period: timedelta, criteria: Sequence[CriterionReview]
) -> JudgeHumanAgreement:
    word = {timedelta(days=7): "week", timedelta(days=1): "day"}.get(period, "period")
    return replace(agreement, reading=_reading(agreement, word), hint=_hint(agreement, criteria, word))


def _reading(agreement: JudgeHumanAgreement, word: str) -> str:
    """One line: this period's agreement with its interval, against the baseline's."""
    now, base = agreement.current, agreement.baseline
    baseline = f"baseline {_pct(base.agreement)} of {base.n}" if base.agreement is not None else "none in the baseline"
    if now.agreement is None:
        return f"No run this {word} was both judged and rated by a user, so agreement cannot be measured ({baseline})."
    line = (
        f"Users and the judge agree on {_pct(now.agreement)} of the {now.n} runs rated and judged this {word} "
        f"(95% CI {_pct(now.ci_low)}–{_pct(now.ci_high)})"
    )
    if base.agreement is None or agreement.difference is None:
        return f"{line}; {baseline}."
    change = round(100 * agreement.difference)
    direction = "down from" if change < 0 else "up from" if change > 0 else "as in the baseline,"
    return (
        f"{line}, {direction} {_pct(base.agreement)} of {base.n} in the baseline (difference {change:+d} pts, "
        f"95% CI {100 * (agreement.difference_ci_low or 0):+.0f} to {100 * (agreement.difference_ci_high or 0):+.0f})."
    )


def _hint(agreement: JudgeHumanAgreement, criteria: Sequence[CriterionReview], word: str) -> str | None:
    """Judge drift or app drift: read the judge's verdicts together with the change in agreement."""
    degraded = [c.label for c in criteria if c.verdict == "degraded"]
    now = agreement.current
    fell = agreement.difference_ci_high is not None and agreement.difference_ci_high < 0
    mostly = ""
    if now.judge_only > now.user_only:
        mostly = " Most disagreements are runs the judge flags and users liked."
    elif now.user_only > now.judge_only:
        mostly = " Most disagreements are thumbs-down on runs the judge passed."
    if degraded and fell:
        return (
            f"The judge and the users disagree: {' and '.join(degraded)} degraded while agreement fell clearly. "
            f"Check the judge (model, prompt, the runs below) before the app: this may be judge drift.{mostly}"
        )
    if fell:
        return (
            f"Agreement fell clearly this {word} although no judge verdict degraded: the judge or what users expect "
            f"may be changing.{mostly}"
        )
    if degraded and now.n:
        weak = f" (only {now.n} runs: weak evidence)" if now.n < _FEW else ""
        return (
            f"Agreement with users did not fall clearly{weak}, so nothing points at the judge: the degraded "
            f"{' and '.join(degraded)} more likely reflects the app."
        )
    return None


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"
