"""A judge that needs no key, no network and no model: lexical grounding of the answer in the retrieved context.

It exists so that demos, tests and notebooks get real, deterministic scores for free. It cannot reason: it only checks
whether the words, names and numbers an answer asserts can be found in the context, clause by clause, whether each
number sits in the context next to the same words as in the answer, and whether a yes/no answer keeps the negation
of the context clause it restates. Its ranking quality is measured on HaluEval QA and on a small hand-written hard
set by ``benchmarks/offline_judge_auroc.py``; every constant below was tuned on the HaluEval dev split only.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from itertools import pairwise

from ...core.judging import EvaluationInput, Scores, Verdict

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+")
_COMBINING_MARKS = re.compile(r"[\u0300-\u036f]")

_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "he",
        "she",
        "they",
        "them",
        "his",
        "her",
        "hers",
        "their",
        "theirs",
        "there",
        "here",
        "who",
        "whom",
        "whose",
        "which",
        "what",
        "when",
        "where",
        "why",
        "how",
        "do",
        "does",
        "did",
        "done",
        "has",
        "have",
        "had",
        "not",
        "no",
        "yes",
        "i",
        "you",
        "we",
        "us",
        "our",
        "your",
        "my",
        "me",
        "mine",
        "so",
        "than",
        "then",
        "also",
        "too",
        "very",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "about",
        "into",
        "onto",
        "over",
        "under",
        "after",
        "before",
        "between",
        "both",
        "either",
        "neither",
        "all",
        "any",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "only",
        "own",
        "same",
        "just",
        "one",
        "st",
        "nd",
        "rd",
        "th",
        "s",
        "t",
        "d",
        "ll",
        "re",
        "ve",
        "m",
    ]
)
_FRAMING_WORDS = frozenset(
    [
        "answer",
        "answers",
        "answered",
        "question",
        "context",
        "passage",
        "passages",
        "document",
        "documents",
        "text",
        "information",
        "provided",
        "provide",
        "provides",
        "according",
        "based",
        "mentioned",
        "mention",
        "states",
        "stated",
        "say",
        "says",
        "said",
        "given",
    ]
)
"""Words an answer uses to talk about the task itself ("according to the context, the answer is ..."): not claims."""

_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
_HEDGES = re.compile(
    r"\b(?:i think|i believe|probably|possibly|perhaps|maybe|might be|not sure|not certain|it seems|likely)\b", re.I
)
_ABSTENTIONS = re.compile(
    r"\b(?:i (?:don['’]t|do not) know|(?:cannot|can['’]t|unable to) (?:be )?(?:answer|determine|find|tell|say)"
    r"|(?:is|are|was|were) not (?:mentioned|provided|stated|specified|given)|no information|not enough information)\b",
    re.I,
)
"""Hedges and abstaining sentences are not claims: removed before grounding, and penalised under completeness."""
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_JUDGE_INSTRUCTIONS = re.compile(
    r"\b(?:ignore|disregard) (?:all |any |the |your )?(?:previous |prior |above |earlier |preceding |system )?"
    r"(?:instructions?|prompts?|rules)\b"
    r"|\b(?:rate|grade) (?:(?:this|the) (?:answer|response) |it |this )?(?:as |with )?(?:an? )?(?:[1-5]|five|perfect)\b"
    r"|\b(?:score|give|assign|mark) (?:(?:this|the) (?:answer|response)|it|this)(?: as| with)? (?:an? )?"
    r"(?:[1-5]|five|perfect|full|maximum|top)\b"
    r"|\byou are (?:now )?(?:the|a|an) (?:judge|evaluator|grader)\b"
    r"|\b(?:faithfulness|relevance|completeness|hallucination)\s*[:=]"
    r"|\bsystem prompt\b",
    re.I,
)
"""Text in an answer addressed to whoever grades it: scored as unsupported, never obeyed or rewarded."""
_YES_NO_OPENERS = frozenset(
    [
        "is",
        "are",
        "was",
        "were",
        "do",
        "does",
        "did",
        "can",
        "could",
        "has",
        "have",
        "had",
        "will",
        "would",
        "should",
        "shall",
        "may",
    ]
)
_NUMERIC_CUES = re.compile(
    r"\b(?:how (?:many|much|old|long|far|tall|big|large|high)|(?:what|which) (?:year|age|date)|when)\b", re.I
)
_CONTEXT_CLAUSE_END = re.compile(r"(?<=[.!?])\s+|;\s*|,\s+(?=(?:and|but|while|whereas)\s)")
"""Where a context sentence or clause ends: a number is bound to the words of its own clause."""
_ANSWER_CLAUSE_END = re.compile(r"(?<=[.!?])\s+|;\s*|,\s+(?=(?:and|but|while|whereas|which)\s)|\s+(?=(?:but|which)\s)")
"""Where an answer's claims are cut to be grounded one by one: sentences and clause connectives."""
_NEGATION = re.compile(r"\b(?:not|no|never|cannot|without|none|nor|neither|nothing)\b|n['’]t\b", re.I)
_COMPARISON = re.compile(r"\b(?:both|same|either|different|each other)\b", re.I)
"""Questions comparing two things: a bare yes/no to them is not checked against a single clause."""
_YES_NO_ANSWER = re.compile(r"\W*(yes|no)\b\W*", re.I)

NAME_SCALE = 1.0
"""Each unsupported name or number adds 1/NAME_SCALE evidence: one invented name alone scores ~0.63 (before bigrams)."""
SHARE_SCALE = 0.5
"""An unsupported share of SHARE_SCALE of all content words adds 1 evidence: long answers are judged by proportion."""
BIGRAM_WEIGHT = 0.15
"""Word pairs absent from question and context rank answers that recombine context words; capped below the threshold
so that an answer whose every word is in the context is never flagged for its phrasing alone."""
DEFAULT_THRESHOLD = 0.2
"""Hallucination verdict threshold on `hallucination_score`, tuned on the HaluEval dev split: dev accuracy is flat
from 0.16 to 0.2 (0.886 to 0.882), so the value leaves a margin above BIGRAM_WEIGHT."""
CLAUSE_SHARE_WEIGHT = 1.0
"""The most unsupported clause counts with this weight when it exceeds the whole answer's share: one invented clause
is not diluted by the supported clauses around it."""
BINDING_WEIGHT = 1.0
"""Evidence (as much as an invented number) per number that the context has, but only in a clause lacking the answer's other words around it
("10 seats" for "the $19 plan" when 10 is the premium plan's): recombined, not invented."""
POLARITY_WEIGHT = 1.0
"""Evidence when a yes/no answer's claim and the context clause stating it disagree on negation."""
MIN_POLARITY_OVERLAP = 0.5
"""Share of the claim's content words a context clause must hold to be the one the claim restates."""
MIN_QUESTION_OVERLAP = 0.8
"""The same for a bare "yes"/"no", whose claim is the question: HaluEval dev's bare "no" to two-entity questions
matched a clause about one entity at 0.5."""
FAITHFULNESS_CUTS = (BIGRAM_WEIGHT, DEFAULT_THRESHOLD, 0.4, 0.65)
"""Upper bounds of `hallucination_score` for faithfulness 5, 4, 3, 2 (above the last: 1). An answer with no unsupported
word is always 5; with the default threshold, hallucination is flagged exactly when faithfulness is 3 or lower."""


@dataclass(frozen=True, slots=True)
class Binding:
    """A number of the answer found in the context only in clauses lacking some of the answer's words around it."""

    number: str
    missing: tuple[str, ...]
    bound_to: tuple[str, ...]

    def describe(self) -> str:
        missing = ", ".join(self.missing[:3])
        if self.bound_to:
            return f"'{self.number}' is bound to '{', '.join(self.bound_to[:3])}' in the context, not to '{missing}'"
        return f"'{self.number}' does not appear with '{missing}' in the context"


@dataclass(frozen=True, slots=True)
class Grounding:
    """What the answer claims and how much of it the context supports; scores and reason are derived from it."""

    content_words: tuple[str, ...]
    unsupported: tuple[str, ...]
    question_only: tuple[str, ...]
    novel_bigrams: int
    bigrams: int
    repeats_question: bool
    has_context: bool
    hedged: bool
    abstains: bool
    instructs_judge: bool
    worst_clause: str = ""
    worst_clause_share: float = 0.0
    recombined: tuple[Binding, ...] = ()
    contradiction: str = ""

    @property
    def hallucination_score(self) -> float:
        """0 = every claim found in the context, towards 1 = mostly invented."""
        if self.instructs_judge:
            return 1.0
        names = sum(1 for word in self.unsupported if word[0].isupper() or word[0].isdigit())
        share = len(self.unsupported) / len(self.content_words) if self.content_words else 0.0
        share = max(share, CLAUSE_SHARE_WEIGHT * self.worst_clause_share)
        claims = BINDING_WEIGHT * len(self.recombined) + POLARITY_WEIGHT * bool(self.contradiction)
        lexical = 1.0 - math.exp(-(names / NAME_SCALE + share / SHARE_SCALE + claims))
        bigram_share = self.novel_bigrams / self.bigrams if self.bigrams else 0.0
        return (1.0 - BIGRAM_WEIGHT) * lexical + BIGRAM_WEIGHT * bigram_share


class OfflineJudge:
    """Deterministic lexical judge; the default when no API key is configured.

    `threshold` only moves the yes/no hallucination verdict; the 1-5 faithfulness bands stay on FAITHFULNESS_CUTS.
    """

    name = "offline"
    model = "lexical-grounding-v1"
    prompt_version = "2"  # bump on any change to a constant, word list or rule: scores are compared across versions

    def __init__(self, *, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.threshold = threshold

    def hallucination_score(self, item: EvaluationInput) -> float:
        """Continuous score for ranking (AUROC): higher means more of the answer is absent from the context."""
        return ground(item).hallucination_score

    def evaluate(self, item: EvaluationInput) -> Verdict:
        grounding = ground(item)
        score = grounding.hallucination_score
        shape = _QuestionShape.of(item.question)
        relevance, relevance_note = _relevance(shape, item.answer, grounding)
        completeness, completeness_note = _completeness(shape, item.answer, grounding, relevance)
        scores = Scores(
            faithfulness=_faithfulness(score, grounding),
            relevance=relevance,
            completeness=completeness,
            hallucination=score >= self.threshold,
            reason=_reason(grounding, score, (relevance_note, completeness_note)),
        )
        return Verdict(scores=scores, judge=self.name, model=self.model, prompt_version=self.prompt_version)


def ground(item: EvaluationInput) -> Grounding:
    """Compare the answer's content words and word pairs against the context; the question's own words count as
    support, because restating the question is not a claim the answer invents."""
    context_tokens = [_normalise(token) for passage in item.context for token in _tokens(passage)]
    question_tokens = [_normalise(token) for token in _tokens(item.question)]
    sentences = _SENTENCE_END.split(item.answer)
    claims = _HEDGES.sub(" ", " ".join(sentence for sentence in sentences if not _ABSTENTIONS.search(sentence)))
    answer_surface = _tokens(claims)
    answer_tokens = [_normalise(token) for token in answer_surface]
    context_words, question_words = set(context_tokens), set(question_tokens)

    content, unsupported, question_only = [], [], []
    restated = 0
    for surface, word in zip(answer_surface, answer_tokens, strict=True):
        if not _is_content(word):
            continue
        content.append(surface)
        restated += word in question_words
        if word not in context_words:
            (question_only if word in question_words else unsupported).append(surface)

    answer_pairs = _pairs(answer_tokens)
    units = [_Unit.of(clause) for passage in item.context for clause in _CONTEXT_CLAUSE_END.split(passage)]
    clauses = [_tokens(clause) for clause in _ANSWER_CLAUSE_END.split(claims)]
    worst_clause, worst_share = _worst_clause(clauses, context_words, question_words)
    return Grounding(
        content_words=tuple(content),
        unsupported=tuple(unsupported),
        question_only=tuple(question_only),
        novel_bigrams=len(answer_pairs - _pairs(context_tokens) - _pairs(question_tokens)),
        bigrams=len(answer_pairs),
        repeats_question=bool(content) and restated == len(content),
        has_context=bool(context_tokens),
        hedged=_HEDGES.search(item.answer) is not None,
        abstains=_ABSTENTIONS.search(item.answer) is not None,
        instructs_judge=_JUDGE_INSTRUCTIONS.search(item.answer) is not None,
        worst_clause=worst_clause,
        worst_clause_share=worst_share if len(clauses) > 1 else 0.0,
        recombined=tuple(
            binding for clause in clauses for binding in _bindings(clause, units, context_words, question_words)
        ),
        contradiction=_contradiction(item, units),
    )


@dataclass(frozen=True, slots=True)
class _Unit:
    """One clause of the context: its text, for negation, and its normalised words, for binding."""

    text: str
    words: frozenset[str]

    @classmethod
    def of(cls, text: str) -> _Unit:
        return cls(text.strip(), frozenset(_normalise(token) for token in _tokens(text)))


def _worst_clause(clauses: list[list[str]], context_words: set[str], question_words: set[str]) -> tuple[str, float]:
    """The answer clause (of two content words or more) with the largest unsupported share, and that share."""
    worst, worst_share = "", 0.0
    for surface in clauses:
        content = [word for word in map(_normalise, surface) if _is_content(word)]
        if len(content) < 2:
            continue
        share = sum(word not in context_words and word not in question_words for word in content) / len(content)
        if share > worst_share:
            worst, worst_share = " ".join(surface), share
    return worst, worst_share


def _bindings(surface: list[str], units: list[_Unit], context_words: set[str], topic: set[str]) -> list[Binding]:
    """Each number of this answer clause (not given by the question, `topic`) must share a context clause with the
    clause's other grounded words; only a missing number, name (capitalised in the answer) or word of the question
    counts, not a verb."""
    words = [_normalise(token) for token in surface]
    anchors = {word for word in words if _is_content(word) and word in context_words}
    if all(word in topic for word in words if _is_content(word)):
        return []  # the clause restates the question: its numbers are the question's, not the answer's claims
    specific = topic | {word for token, word in zip(surface, words, strict=True) if token[0].isupper()}
    found = []
    for token, number in zip(surface, words, strict=True):
        others = anchors - {number}
        if not number[0].isdigit() or number not in context_words or number in topic or not others:
            continue
        best = min((unit for unit in units if number in unit.words), key=lambda unit: len(others - unit.words))
        missing = {word for word in others - best.words if word[0].isdigit() or word in specific}
        if missing:
            bound_to = [w for w in map(_normalise, _tokens(best.text)) if _is_content(w) and w not in anchors]
            ordered = tuple(word for word in dict.fromkeys(words) if word in missing)
            found.append(Binding(token, ordered, tuple(dict.fromkeys(bound_to))))
    return found


def _contradiction(item: EvaluationInput, units: list[_Unit]) -> str:
    """A yes/no answer whose claim (its first sentence after yes/no, or else the question) is negated an odd number
    of times where the context clause restating it is not, or the reverse: names that clause, else returns ""."""
    opener = _YES_NO_ANSWER.match(item.answer)
    if not opener:
        return ""
    body = _SENTENCE_END.split(item.answer[opener.end() :], maxsplit=1)[0]
    claim, negated, needed = body, len(_NEGATION.findall(body)) % 2 == 1, MIN_POLARITY_OVERLAP
    if sum(_is_content(word) for word in map(_normalise, _tokens(body))) < 2:
        if _COMPARISON.search(item.question):
            return ""
        claim, needed = item.question, MIN_QUESTION_OVERLAP
        negated = (len(_NEGATION.findall(claim)) % 2 == 1) != (opener.group(1).casefold() == "no")
    content = {word for word in map(_normalise, _tokens(claim)) if _is_content(word)}
    if len(content) < 2 or not units:
        return ""
    best = max(units, key=lambda unit: len(content & unit.words))
    overlap = len(content & best.words)
    if overlap < 2 or overlap < needed * len(content):
        return ""
    if (len(_NEGATION.findall(best.text)) % 2 == 1) == negated:
        return ""
    return f"'{opener.group(1)}' contradicts the context: '{_shortened(best.text)}'"


def _shortened(text: str, *, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(_COMBINING_MARKS.sub("", unicodedata.normalize("NFKD", text)))


def _normalise(token: str) -> str:
    """Casefold, drop thousands separators, spell small numbers as digits, strip plural suffixes."""
    if token[0].isdigit():
        return token.replace(",", "")
    word = token.casefold()
    if word in _NUMBER_WORDS:
        return _NUMBER_WORDS[word]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _is_content(word: str) -> bool:
    return word not in _STOPWORDS and word not in _FRAMING_WORDS and (len(word) > 1 or word.isdigit())


def _pairs(tokens: list[str]) -> set[tuple[str, str]]:
    return set(pairwise(tokens))


def _faithfulness(score: float, grounding: Grounding) -> int:
    if grounding.instructs_judge:
        return 1
    if not grounding.unsupported and not grounding.recombined and not grounding.contradiction:
        return 5
    return 5 - sum(score >= cut for cut in FAITHFULNESS_CUTS)


@dataclass(frozen=True, slots=True)
class _QuestionShape:
    """What kind of reply the question asks for: "yes/no", "choice" (A or B), "number" (counts, dates) or "open"."""

    kind: str
    names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, question: str) -> _QuestionShape:
        if " or " in question:
            capitalised = (token for token in _tokens(question)[1:] if token[0].isupper() or token[0].isdigit())
            return cls("choice", frozenset(word for word in map(_normalise, capitalised) if _is_content(word)))
        first_word = question.strip().split(maxsplit=1)[0].casefold() if question.strip() else ""
        if first_word in _YES_NO_OPENERS:
            return cls("yes/no")
        return cls("number") if _NUMERIC_CUES.search(question) else cls("open")


def _relevance(shape: _QuestionShape, answer: str, grounding: Grounding) -> tuple[int, str]:
    """1 empty or addressed to the judge; 2 no content; 3 wrong shape or only repeats the question; 4 a yes/no
    question answered without yes or no; 5 otherwise."""
    if grounding.instructs_judge:
        return 1, "answer addresses the judge instead of the question"
    if not answer.strip():
        return 1, "empty answer"
    if grounding.abstains:
        return 3, "answer abstains"
    says_yes_or_no = re.match(r"\W*(yes|no)\b", answer, re.I) is not None
    if shape.kind == "yes/no" and says_yes_or_no:
        return 5, ""
    if not grounding.content_words:
        return 2, "answer has no content words"
    if shape.kind == "number" and not any(word[0].isdigit() for word in grounding.content_words):
        return 3, "question asks for a number or date; none in the answer"
    if shape.kind != "choice" and grounding.repeats_question:
        return 3, "answer only repeats the question"
    if shape.kind == "yes/no":
        return 4, "yes/no question answered without yes or no"
    return 5, ""


def _completeness(shape: _QuestionShape, answer: str, grounding: Grounding, relevance: int) -> tuple[int, str]:
    """It cannot know which facts are missing, so it only caps: 1 when the answer abstains, is empty or addresses the
    judge; 2 when irrelevant; otherwise one above relevance at most, one point off for hedging and one for a choice
    question ("A or B?") whose answer names neither."""
    if grounding.instructs_judge or grounding.abstains or not answer.strip():
        return 1, ""
    if relevance <= 2:
        return 2, ""
    completeness, notes = 5, []
    if grounding.hedged:
        completeness, notes = completeness - 1, ["answer hedges"]
    answer_words = {_normalise(token) for token in _tokens(answer)}
    if shape.kind == "choice" and shape.names and not shape.names & answer_words:
        completeness, notes = completeness - 1, [*notes, "names neither option"]
    return min(completeness, relevance + 1), "; ".join(notes)


def _reason(grounding: Grounding, score: float, notes: tuple[str, ...]) -> str:
    if grounding.instructs_judge:
        return "answer contains instructions addressed to the judge; treated as unsupported"
    parts = [] if grounding.has_context else ["no context to check against"]
    total = len(grounding.content_words)
    if not total:
        parts.append("no content words to check")
    elif grounding.unsupported:
        missing = len(grounding.unsupported)
        parts.append(f"{missing} of {total} content words not found in the context: {_listing(grounding.unsupported)}")
    else:
        parts.append(f"all {total} content words found in the context or the question")
    if grounding.question_only:
        parts.append("only in the question: " + _listing(grounding.question_only))
    if grounding.contradiction:
        parts.append(grounding.contradiction)
    parts.extend(binding.describe() for binding in grounding.recombined[:2])
    if grounding.worst_clause_share >= 0.5:
        parts.append(f"clause mostly unsupported: '{_shortened(grounding.worst_clause)}'")
    parts.extend(note for note in notes if note)
    parts.append(f"hallucination score {score:.2f}")
    return "; ".join(parts)


def _listing(words: tuple[str, ...], *, limit: int = 6) -> str:
    distinct = list(dict.fromkeys(words))
    return ", ".join(distinct[:limit]) + (", ..." if len(distinct) > limit else "")
