"""Users' ratings: the recorder (validate, store, count, hook), signed per-run tokens, and the FastAPI endpoints
(`[api]` extra, imported when an app or router is built)."""

from ..core.errors import FeedbackConflictError, InvalidFeedbackError, UnknownRunError
from ..core.ratings import RatingScale
from .api import create_app, feedback_router
from .recorder import FeedbackRecorder
from .tokens import ExpiredFeedbackToken, FeedbackTokenError, FeedbackTokens, InvalidFeedbackToken

__all__ = [
    "ExpiredFeedbackToken",
    "FeedbackConflictError",
    "FeedbackRecorder",
    "FeedbackTokenError",
    "FeedbackTokens",
    "InvalidFeedbackError",
    "InvalidFeedbackToken",
    "RatingScale",
    "UnknownRunError",
    "create_app",
    "feedback_router",
]
