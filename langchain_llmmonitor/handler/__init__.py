"""The callback layer: the LangChain handler and what it keeps while runs are in flight (run table, model and usage
extraction, sampling, capture of what a judge will see, recently finished traces)."""

from .callbacks import CallbackHandler, outcome_of

__all__ = ["CallbackHandler", "outcome_of"]
