"""Delivery to LangSmith: the forwarder that sends the store's outbox as feedback on each trace's root run."""

from .forwarder import Forwarder

__all__ = ["Forwarder"]
