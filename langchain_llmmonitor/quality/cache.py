"""Verdicts remembered for identical inputs, so a repeated (question, context, answer) costs nothing."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from ..core.judging import EvaluationInput, Judge, Verdict

CacheKey = tuple[str, str, str, str]


def fingerprint(item: EvaluationInput) -> str:
    """sha256 of question, passages and answer, each length-prefixed: no two different inputs share a preimage."""
    digest = hashlib.sha256()
    for text in (item.question, *item.context, item.answer):
        data = str(text).encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


class VerdictCache:
    """An LRU of verdicts keyed by the judge, its model, its prompt version and the input's fingerprint."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._verdicts: OrderedDict[CacheKey, Verdict] = OrderedDict()
        self._lock = threading.Lock()

    def key(self, judge: Judge, judge_name: str, item: EvaluationInput) -> CacheKey | None:
        if not self._size:
            return None
        model, prompt_version = str(getattr(judge, "model", "")), str(getattr(judge, "prompt_version", ""))
        return (judge_name, model, prompt_version, fingerprint(item))

    def get(self, key: CacheKey | None) -> Verdict | None:
        if key is None:
            return None
        with self._lock:
            verdict = self._verdicts.get(key)
            if verdict is not None:
                self._verdicts.move_to_end(key)
            return verdict

    def put(self, key: CacheKey | None, verdict: Verdict) -> None:
        if key is None:
            return
        with self._lock:
            self._verdicts[key] = verdict
            self._verdicts.move_to_end(key)
            while len(self._verdicts) > self._size:
                self._verdicts.popitem(last=False)

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
