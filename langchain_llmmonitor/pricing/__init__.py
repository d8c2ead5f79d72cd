"""What LLM calls cost: a versioned price table, overridable, that never prices an unknown model at zero."""

from .table import ModelPrice, PriceTable

__all__ = ["ModelPrice", "PriceTable"]
