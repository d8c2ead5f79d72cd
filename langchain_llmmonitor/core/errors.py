"""Errors a caller of the public API can catch; each message says what was wrong and what is allowed."""

from __future__ import annotations


class UnknownRunError(LookupError):
    """No run with this run id or request id is known (yet)."""


class InvalidFeedbackError(ValueError):
    """The rating, comment, source or feedback id is not acceptable; the message says what is allowed."""


class FeedbackConflictError(InvalidFeedbackError):
    """A feedback id already used for a different rating: ids make retries idempotent, they cannot edit a rating."""


class FeedbackLimitError(InvalidFeedbackError):
    """The run already has as many ratings as one run may get (`FeedbackConfig.max_ratings_per_run`)."""
