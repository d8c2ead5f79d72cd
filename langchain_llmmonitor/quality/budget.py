"""What the judge may spend: evaluations and dollars per sliding hour."""

from __future__ import annotations

from collections import deque

_WINDOW_S = 3_600.0
_BUCKET_S = 60.0


class HourlyTotal:
    """A sum over a sliding hour at one-minute resolution: at most 61 buckets, however busy the hour.

    An amount counts until the whole minute it fell in is an hour old, so any 60-minute span sees all of it: a budget
    is never exceeded, at the price of holding an amount up to one minute longer than an hour.
    """

    __slots__ = ("_buckets", "_total")

    def __init__(self) -> None:
        self._buckets: deque[list[float]] = deque()  # [minute, amount]
        self._total = 0.0

    def total(self, now: float) -> float:
        last_expired = (now - _WINDOW_S) // _BUCKET_S - 1  # the latest minute that ended an hour ago or more
        buckets = self._buckets
        while buckets and buckets[0][0] <= last_expired:
            self._total -= buckets.popleft()[1]
        if not buckets:
            self._total = 0.0  # no float drift survives an idle hour
        return self._total

    def add(self, now: float, amount: float) -> None:
        self.total(now)
        minute = now // _BUCKET_S
        if self._buckets and self._buckets[-1][0] == minute:
            self._buckets[-1][1] += amount
        else:
            self._buckets.append([minute, amount])
        self._total += amount


class Budget:
    """Evaluations accepted and dollars spent per sliding hour, against optional limits. Not thread safe: the
    pipeline calls it under its queue lock."""

    def __init__(self, *, max_evaluations: int | None, max_cost: float | None) -> None:
        self._max_evaluations = max_evaluations
        self._max_cost = max_cost
        self._accepted = HourlyTotal()
        self._spent = HourlyTotal()

    def exhausted(self, now: float) -> bool:
        """No evaluation may be accepted now."""
        if self._max_evaluations is not None and self._accepted.total(now) >= self._max_evaluations:
            return True
        return self.spent(now)

    def spent(self, now: float) -> bool:
        """The dollars of this hour are spent: even an accepted evaluation must not call the judge now."""
        return self._max_cost is not None and self._spent.total(now) >= self._max_cost

    def accept(self, now: float) -> None:
        if self._max_evaluations is not None:
            self._accepted.add(now, 1)

    def charge(self, now: float, cost_usd: float) -> None:
        if self._max_cost is not None:
            self._spent.add(now, cost_usd)
