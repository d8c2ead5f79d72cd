"""The words every layer shares, defined once: outcomes, sampling, criteria, ratings, feedback keys and tags.

They are label values of the metrics, column values in the store and keys in LangSmith, so the alert rules, the
dashboard, the review and the handler all read them from here.
"""

from __future__ import annotations

# How a run ended: the `status` label of the request, invocation, retriever and tool metrics.
SUCCESS = "success"
ERROR = "error"
CANCELLED = "cancelled"
INTERRUPTED = "interrupted"  # LangGraph interrupts and `Command` control flow: not a failure
CACHED = "cached"  # a judge evaluation answered from the verdict cache

# Why a trace was judged. Only the random sample feeds trends and alerts; forced ones are kept apart.
RANDOM = "random"
FORCED = "forced"
FEEDBACK_REASON = "feedback"
"""The sample reason of a trace judged because its user rated it negatively."""

# The 1-5 criteria a judge scores; hallucination is a separate yes/no verdict.
CRITERIA = ("faithfulness", "relevance", "completeness")
HALLUCINATION = "hallucination"
SCORE_KEYS = (*CRITERIA, HALLUCINATION)
"""LangSmith feedback keys of a judge's verdict, and the review's criteria."""

# Users' ratings: the `rating` label of `llm_user_feedback_total` on the thumbs scale, and the LangSmith key.
NEGATIVE_RATING = "negative"
POSITIVE_RATING = "positive"
USER_RATING_KEY = "user_rating"

# What an outbox item carries to LangSmith.
JUDGE_FEEDBACK = "judge"
USER_FEEDBACK = "user"
USER_FEEDBACK_CHANGE = "user_edit"  # a rating the user changed: an update of the feedback already sent

UNKNOWN_MODEL = "unknown"
"""The model label when nothing names the model; never priced."""

JUDGE_TAG = "llmmonitor:judge"
"""Tag on the judge's own LangChain runs, so a Monitor attached to the judge model does not count them as traffic."""
EVALUATE_TAG = "llmmonitor:evaluate"
"""A trace carrying this tag is always judged."""
EVALUATE_METADATA_KEY = "llmmonitor_evaluate"
"""`config["metadata"]` key: True forces a trace into evaluation, False keeps it out."""
